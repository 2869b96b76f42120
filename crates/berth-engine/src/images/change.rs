//! `--change` instructions for `import` and `commit` (`CMD ["sh"]`, `ENV A=b`, ...), applied
//! to an image's run config with the Dockerfile semantics of each instruction.

use berth_core::image::{Empty, RunConfig};
use berth_core::{Error, Result};

const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Words of a JSON array (`["a", "b"]`), or `None` when the text is not one.
fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Exec form as is; shell form wrapped in `/bin/sh -c`.
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.trim().to_string()])
}

/// `A=b C="d e"` or the legacy `A b c` form.
fn key_values(rest: &str, legacy_allowed: bool) -> Result<Vec<(String, String)>> {
    let rest = rest.trim();
    let words = shell_words::split(rest)
        .map_err(|e| Error::invalid(format!("invalid change {rest:?}: {e}")))?;
    if words.is_empty() {
        return Err(Error::invalid("change needs at least one argument"));
    }
    if !words[0].contains('=') {
        if !legacy_allowed {
            return Err(Error::invalid(format!(
                "invalid change {rest:?}: expected key=value"
            )));
        }
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(Error::invalid(format!(
                "invalid change {rest:?}: {w} is not key=value"
            ))),
        })
        .collect()
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D]
/// [--retries=N] CMD ...` or `HEALTHCHECK NONE`, as in a Dockerfile.
fn healthcheck(rest: &str) -> Result<berth_core::image::ImageHealthcheck> {
    let mut h = berth_core::image::ImageHealthcheck::default();
    let mut rest = rest.trim();
    while let Some(opt) = rest.strip_prefix("--") {
        let (word, tail) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("HEALTHCHECK: option --{word} needs a value")))?;
        let duration = || -> Result<i64> {
            crate::containers::parse_go_duration(value)
                .and_then(|d| d.num_nanoseconds())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "HEALTHCHECK: invalid duration for --{key}: {value}"
                    ))
                })
        };
        match key {
            "interval" => h.interval = duration()?,
            "timeout" => h.timeout = duration()?,
            "start-period" => h.start_period = duration()?,
            "start-interval" => h.start_interval = duration()?,
            "retries" => {
                h.retries = value.parse().map_err(|_| {
                    Error::invalid(format!("HEALTHCHECK: invalid --retries: {value}"))
                })?
            }
            _ => return Err(Error::invalid(format!("HEALTHCHECK: unknown flag --{key}"))),
        }
        rest = tail.trim_start();
    }
    let (kind, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    h.test = match kind.to_ascii_uppercase().as_str() {
        "NONE" if cmd.trim().is_empty() => vec!["NONE".to_string()],
        "CMD" if !cmd.trim().is_empty() => match json_array(cmd) {
            Some(args) => std::iter::once("CMD".to_string()).chain(args).collect(),
            None => vec!["CMD-SHELL".to_string(), cmd.trim().to_string()],
        },
        _ => {
            return Err(Error::invalid(
                "HEALTHCHECK needs NONE or CMD followed by a command",
            ))
        }
    };
    Ok(h)
}

/// Applies each change in order to `cfg`.
pub fn apply(cfg: &mut RunConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        let (word, rest) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        let instr = word.to_ascii_uppercase();
        if !ALLOWED.contains(&instr.as_str()) {
            return Err(Error::invalid(format!(
                "{instr} is not a valid change command"
            )));
        }
        match instr.as_str() {
            "CMD" => cfg.cmd = Some(command(rest)),
            "ENTRYPOINT" => {
                cfg.entrypoint = Some(command(rest));
                // As in a Dockerfile, a new ENTRYPOINT resets an inherited CMD.
                cfg.cmd = None;
            }
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(rest, true)? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(rest, false)? {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(Default::default);
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, Empty);
                }
            }
            "VOLUME" => {
                let vols = cfg.volumes.get_or_insert_with(Default::default);
                let list = json_array(rest)
                    .unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
                for v in list {
                    vols.insert(v, Empty);
                }
            }
            "HEALTHCHECK" => cfg.healthcheck = Some(healthcheck(rest)?),
            "USER" => cfg.user = rest.trim().to_string(),
            "WORKDIR" => cfg.working_dir = rest.trim().to_string(),
            "STOPSIGNAL" => cfg.stop_signal = rest.trim().to_string(),
            "ONBUILD" => cfg
                .on_build
                .get_or_insert_with(Vec::new)
                .push(rest.trim().to_string()),
            _ => unreachable!("checked against ALLOWED"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_in_exec_and_shell_form() {
        let mut c = RunConfig::default();
        apply(&mut c, &[r#"CMD ["sh"]"#.into()]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh"]);
        let mut c = RunConfig::default();
        apply(&mut c, &["CMD echo hi".into()]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn env_replaces_existing_keys_and_accepts_both_forms() {
        let mut c = RunConfig {
            env: Some(vec!["A=1".into()]),
            ..Default::default()
        };
        apply(&mut c, &["ENV A=2 B=\"x y\"".into(), "ENV C z w".into()]).unwrap();
        assert_eq!(c.env.unwrap(), vec!["A=2", "B=x y", "C=z w"]);
    }

    #[test]
    fn healthchecks_take_options_and_both_command_forms() {
        let mut c = RunConfig::default();
        apply(
            &mut c,
            &["HEALTHCHECK --interval=2s --retries=4 CMD wget -q -O- localhost".into()],
        )
        .unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q -O- localhost"]);
        assert_eq!((h.interval, h.retries), (2_000_000_000, 4));
        let mut c = RunConfig::default();
        apply(
            &mut c,
            &[
                r#"HEALTHCHECK CMD ["true"]"#.into(),
                "HEALTHCHECK NONE".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.healthcheck.as_ref().unwrap().test, ["NONE"]);
        assert!(apply(&mut c, &["HEALTHCHECK --bogus=1 CMD true".into()]).is_err());
        assert!(apply(&mut c, &["HEALTHCHECK CMD".into()]).is_err());
    }

    #[test]
    fn expose_defaults_to_tcp_and_bad_instructions_are_refused() {
        let mut c = RunConfig::default();
        apply(&mut c, &["EXPOSE 80 53/udp".into()]).unwrap();
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(
            apply(&mut RunConfig::default(), &["RUN true".into()])
                .unwrap_err()
                .to_string(),
            "RUN is not a valid change command"
        );
    }
}
