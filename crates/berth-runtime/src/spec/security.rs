//! `--security-opt`: seccomp, no-new-privileges, AppArmor, SELinux labels and writable
//! cgroups, parsed as the Docker daemon parses them (`key=value`, the deprecated `key:value`,
//! and the bare `no-new-privileges`, `writable-cgroups` and `disable` forms).

use super::SpecError;
use crate::seccomp::SeccompError;
use std::path::PathBuf;

/// Which seccomp profile a container asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum SeccompChoice {
    /// Nothing asked: the default profile (none under `--privileged`).
    #[default]
    Unset,
    /// `seccomp=builtin`: the default profile, explicitly.
    Builtin,
    /// `seccomp=unconfined`.
    Unconfined,
    /// A Docker-format profile, as JSON text (the docker CLI sends the file's content; a
    /// path is read here).
    Custom(String),
}

/// The parsed `--security-opt` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SecurityOptions {
    pub seccomp: SeccompChoice,
    pub no_new_privileges: bool,
    pub apparmor: Option<String>,
    /// SELinux label options; accepted and ignored on hosts without SELinux.
    pub labels: Vec<String>,
    /// `None`: writable only under `--privileged`.
    pub writable_cgroups: Option<bool>,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse(opts: &[String]) -> Result<SecurityOptions, SpecError> {
    let mut parsed = SecurityOptions::default();
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                parsed.no_new_privileges = true;
                continue;
            }
            "writable-cgroups" => {
                parsed.writable_cgroups = Some(true);
                continue;
            }
            "disable" => {
                parsed.labels.push("disable".to_string());
                continue;
            }
            _ => {}
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SpecError::MalformedSecurityOpt { opt: opt.clone() });
        };
        let unknown = || SpecError::UnknownSecurityOpt { opt: opt.clone() };
        match key {
            "label" => parsed.labels.push(value.to_string()),
            "apparmor" => parsed.apparmor = Some(value.to_string()),
            "seccomp" => parsed.seccomp = seccomp_choice(value)?,
            "no-new-privileges" => {
                parsed.no_new_privileges = parse_bool(value).ok_or_else(unknown)?
            }
            "writable-cgroups" => {
                parsed.writable_cgroups = Some(parse_bool(value).ok_or_else(unknown)?)
            }
            _ => return Err(unknown()),
        }
    }
    Ok(parsed)
}

fn seccomp_choice(value: &str) -> Result<SeccompChoice, SpecError> {
    Ok(match value {
        "" => SeccompChoice::Unset,
        "builtin" => SeccompChoice::Builtin,
        "unconfined" => SeccompChoice::Unconfined,
        json if json.trim_start().starts_with('{') => SeccompChoice::Custom(json.to_string()),
        path => {
            let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
                path: PathBuf::from(path),
                source,
            })?;
            SeccompChoice::Custom(text)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Result<SecurityOptions, SpecError> {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_new_privileges_takes_the_bare_and_boolean_forms() {
        assert!(opts(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(opts(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(
            !opts(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(opts(&["no-new-privileges:true"]).unwrap().no_new_privileges);
    }

    #[test]
    fn seccomp_choices_are_recognised() {
        assert_eq!(
            opts(&["seccomp=unconfined"]).unwrap().seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            opts(&["seccomp=builtin"]).unwrap().seccomp,
            SeccompChoice::Builtin
        );
        let json = r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#;
        assert!(matches!(
            opts(&[json]).unwrap().seccomp,
            SeccompChoice::Custom(_)
        ));
    }

    #[test]
    fn seccomp_profile_paths_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        std::fs::write(&path, r#"{"defaultAction":"SCMP_ACT_LOG"}"#).unwrap();
        let parsed = opts(&[&format!("seccomp={}", path.display())]).unwrap();
        assert_eq!(
            parsed.seccomp,
            SeccompChoice::Custom(r#"{"defaultAction":"SCMP_ACT_LOG"}"#.into())
        );
        let err = opts(&["seccomp=/does/not/exist.json"]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("opening seccomp profile (/does/not/exist.json) failed"));
    }

    #[test]
    fn apparmor_and_labels_are_accepted() {
        let parsed = opts(&[
            "apparmor=unconfined",
            "label=disable",
            "label:type:svirt_t",
            "disable",
        ])
        .unwrap();
        assert_eq!(parsed.apparmor.as_deref(), Some("unconfined"));
        assert_eq!(parsed.labels, vec!["disable", "type:svirt_t", "disable"]);
    }

    #[test]
    fn unknown_security_opts_give_dockers_errors() {
        assert_eq!(
            opts(&["bogus"]).unwrap_err().to_string(),
            r#"invalid --security-opt 1: "bogus""#
        );
        assert_eq!(
            opts(&["bogus=1"]).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "bogus=1""#
        );
        assert_eq!(
            opts(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }
}
