//! What a build will do before it does it: the options, the target stage, the stages it
//! needs (others are skipped, as BuildKit skips them), their dependencies (so independent
//! stages run in parallel), step numbers (`Step N/M`), and the global build arguments.
//! Everything here can fail before any output is streamed.

use crate::error::{BuildError, Result};
use crate::instructions::{Dockerfile, Instruction, Stage, Step};
use crate::shell::Lexer;
use berth_core::reference::Reference;
use std::collections::{BTreeMap, BTreeSet};

/// Build arguments anyone may pass without declaring them (and that stay out of the
/// history unless declared).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The default `PATH` every stage gets when its image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the client asked for (the query of `POST /build`, as domain values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    /// `name[:tag]` references to point at the result.
    pub tags: Vec<String>,
    /// `--build-arg`; `None` values (a name the client had no value for) count as not given.
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`: the stage to stop at (empty: the last).
    pub target: String,
    pub no_cache: bool,
    pub pull: bool,
    /// `--label`: added to the final image by a `LABEL` step at the end of the target.
    pub labels: BTreeMap<String, String>,
    /// `--rm` (default true) and `--force-rm`: working containers are always removed;
    /// these only decide whether `Removing intermediate container` is printed.
    pub remove: bool,
    pub force_remove: bool,
    /// `default`, `none`, `host`.
    pub network_mode: String,
    /// `os/arch`; only the host's is supported.
    pub platform: String,
    pub shm_size: i64,
    pub extra_hosts: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            dockerfile: "Dockerfile".to_string(),
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: String::new(),
            no_cache: false,
            pull: false,
            labels: BTreeMap::new(),
            remove: true,
            force_remove: false,
            network_mode: String::new(),
            platform: String::new(),
            shm_size: 0,
            extra_hosts: Vec::new(),
        }
    }
}

impl BuildOptions {
    /// A given build argument's value.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.build_args.get(name).and_then(|v| v.as_deref())
    }
}

/// The host platform in OCI terms (`linux/amd64`).
pub fn host_platform() -> (String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux".to_string(), arch.to_string())
}

/// Checks `os[/arch[/variant]]` against the host.
pub fn check_platform(platform: &str) -> Result<()> {
    if platform.is_empty() {
        return Ok(());
    }
    let (os, arch) = host_platform();
    let mut parts = platform.split('/');
    let want_os = parts.next().unwrap_or("");
    let want_arch = parts.next();
    if want_os != os || want_arch.is_some_and(|a| a != arch) {
        return Err(BuildError::invalid(format!(
            "platform {platform} is not supported: this daemon builds for {os}/{arch} only"
        )));
    }
    Ok(())
}

/// A needed stage with its step numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    pub stage: Stage,
    /// `Step N` of its `FROM` (its other steps follow).
    pub first_step: usize,
    /// Stages it waits for (`FROM <stage>`, `COPY --from=<stage>`).
    pub deps: BTreeSet<usize>,
}

/// The plan of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Needed stages in Dockerfile order.
    pub stages: Vec<PlannedStage>,
    pub target: usize,
    /// `M` of `Step N/M`.
    pub total_steps: usize,
    /// `KEY=value` of the global ARGs (before the first FROM), for FROM lines.
    pub global_env: Vec<String>,
    /// Global ARG names and their values (for `ARG NAME` inside a stage).
    pub global_args: BTreeMap<String, Option<String>>,
    /// Validated tags, as fully qualified references.
    pub tags: Vec<Reference>,
    /// Every ARG name the Dockerfile declares (for the "not consumed" warning).
    pub declared: BTreeSet<String>,
}

/// The stage a `FROM` or `--from` names, if it names one (an index or an earlier name).
pub fn stage_ref(stages: &[Stage], before: usize, name: &str) -> Option<usize> {
    if let Ok(i) = name.parse::<usize>() {
        return (i < before).then_some(i);
    }
    let lower = name.to_ascii_lowercase();
    stages[..before]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

impl BuildPlan {
    pub fn new(df: &Dockerfile, opts: &BuildOptions) -> Result<Self> {
        check_platform(&opts.platform)?;
        let mut tags = Vec::new();
        for t in &opts.tags {
            let r = Reference::parse_with_default_tag(t).map_err(|e| {
                BuildError::invalid(format!(
                    "Error parsing reference: {t:?} is not a valid repository/tag: {e}"
                ))
            })?;
            if r.digest().is_some() {
                return Err(BuildError::invalid(format!(
                    "refusing to create a tag with a digest reference: {t}"
                )));
            }
            tags.push(r);
        }
        let lexer = Lexer::new(df.escape);
        let mut global_env = Vec::new();
        let mut global_args = BTreeMap::new();
        for (name, default) in &df.global_args {
            let value = match opts.arg(name) {
                Some(v) => Some(v.to_string()),
                None => match default {
                    Some(d) => Some(
                        lexer
                            .process_word(d, &global_env)
                            .map_err(|e| BuildError::invalid(e.to_string()))?,
                    ),
                    None => None,
                },
            };
            if let Some(v) = &value {
                global_env.retain(|e: &String| !e.starts_with(&format!("{name}=")));
                global_env.push(format!("{name}={v}"));
            }
            global_args.insert(name.clone(), value);
        }
        let mut stages = df.stages.clone();
        let target = if opts.target.is_empty() {
            stages.len() - 1
        } else {
            let t = opts.target.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| BuildError::TargetNotFound {
                    target: opts.target.clone(),
                })?
        };
        if !opts.labels.is_empty() {
            let words: Vec<String> = opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", crate::gofmt::quote(k), crate::gofmt::quote(v)))
                .collect();
            let pairs = opts
                .labels
                .iter()
                .map(|(k, v)| (crate::gofmt::quote(k), crate::gofmt::quote(v)))
                .collect();
            stages[target].steps.push(Step {
                line: 0,
                original: format!("LABEL {}", words.join(" ")),
                instruction: Instruction::Label(pairs),
            });
        }
        // Dependencies, with what can be known before running: global args and build args.
        let mut probe_env = global_env.clone();
        for (k, v) in &opts.build_args {
            if let Some(v) = v {
                probe_env.insert(0, format!("{k}={v}"));
            }
        }
        let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); stages.len()];
        let mut declared: BTreeSet<String> =
            df.global_args.iter().map(|(k, _)| k.clone()).collect();
        for (i, s) in stages.iter().enumerate() {
            if let Instruction::From { image, .. } = &s.from.instruction {
                let name = lexer.process_word(image, &global_env).unwrap_or_default();
                if let Some(d) =
                    stage_ref(&stages, i, &name).filter(|_| name.parse::<usize>().is_err())
                {
                    deps[i].insert(d);
                }
            }
            for step in &s.steps {
                match &step.instruction {
                    Instruction::Copy(c) => {
                        if let Some(from) = &c.from {
                            let name = lexer.process_word(from, &probe_env).unwrap_or_default();
                            if let Some(d) = stage_ref(&stages, i, &name) {
                                deps[i].insert(d);
                            }
                        }
                    }
                    Instruction::Arg(args) => declared.extend(args.iter().map(|(k, _)| k.clone())),
                    _ => {}
                }
            }
        }
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if needed.insert(s) {
                todo.extend(deps[s].iter().copied());
            }
        }
        let mut planned = Vec::new();
        let mut n = 1;
        for s in needed {
            let stage = stages[s].clone();
            let count = 1 + stage.steps.len();
            planned.push(PlannedStage {
                stage,
                first_step: n,
                deps: deps[s].clone(),
            });
            n += count;
        }
        Ok(Self {
            stages: planned,
            target,
            total_steps: n - 1,
            global_env,
            global_args,
            tags,
            declared,
        })
    }

    /// Build arguments given but declared nowhere (Docker warns about them).
    pub fn unused_args(&self, opts: &BuildOptions) -> Vec<String> {
        opts.build_args
            .keys()
            .filter(|k| !self.declared.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, opts: &BuildOptions) -> Result<BuildPlan> {
        BuildPlan::new(&Dockerfile::parse(text, "Dockerfile").unwrap(), opts)
    }

    const MULTI: &str = "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\nFROM busybox AS unused\nRUN x\nFROM busybox\nCOPY --from=a /a /x\nCOPY --from=1 /b /y\n";

    #[test]
    fn only_needed_stages_are_planned_and_numbered() {
        let p = plan(MULTI, &BuildOptions::default()).unwrap();
        let idx: Vec<usize> = p.stages.iter().map(|s| s.stage.index).collect();
        assert_eq!(idx, vec![0, 1, 3]);
        assert_eq!(p.total_steps, 7);
        assert_eq!(p.stages[2].first_step, 5);
        assert_eq!(p.stages[2].deps, BTreeSet::from([0, 1]));
        assert!(p.stages[0].deps.is_empty());
    }

    #[test]
    fn target_stops_at_its_stage() {
        let opts = BuildOptions {
            target: "B".into(),
            ..Default::default()
        };
        let p = plan(MULTI, &opts).unwrap();
        assert_eq!(p.target, 1);
        assert_eq!(p.stages.len(), 1);
        assert_eq!(p.total_steps, 2);
        let bad = BuildOptions {
            target: "nope".into(),
            ..Default::default()
        };
        assert_eq!(
            plan(MULTI, &bad).unwrap_err().to_string(),
            "failed to reach build target nope in Dockerfile"
        );
    }

    #[test]
    fn global_args_take_build_args_and_chain() {
        let mut opts = BuildOptions::default();
        opts.build_args.insert("B".into(), Some("given".into()));
        opts.build_args.insert("UNUSED".into(), Some("1".into()));
        opts.build_args
            .insert("HTTP_PROXY".into(), Some("p".into()));
        let p = plan("ARG A=1\nARG B=x\nARG C=$A-$B\nFROM img:$C\n", &opts).unwrap();
        assert_eq!(p.global_env, vec!["A=1", "B=given", "C=1-given"]);
        assert_eq!(p.unused_args(&opts), vec!["UNUSED"]);
    }

    #[test]
    fn labels_become_a_last_step_of_the_target() {
        let mut opts = BuildOptions::default();
        opts.labels.insert("a".into(), "b c".into());
        let p = plan("FROM x\nRUN y\n", &opts).unwrap();
        assert_eq!(p.total_steps, 3);
        assert_eq!(p.stages[0].stage.steps[1].original, "LABEL \"a\"=\"b c\"");
    }

    #[test]
    fn bad_tags_and_foreign_platforms_are_refused() {
        let opts = BuildOptions {
            tags: vec!["UPPER:bad".into()],
            ..Default::default()
        };
        assert!(plan("FROM x\n", &opts).is_err());
        let opts = BuildOptions {
            platform: "windows/amd64".into(),
            ..Default::default()
        };
        assert!(plan("FROM x\n", &opts).is_err());
        let (os, arch) = host_platform();
        assert!(check_platform(&format!("{os}/{arch}")).is_ok());
    }
}
