//! [`Node`]s → typed [`Instruction`]s grouped into [`Stage`]s, with Docker's argument rules
//! and messages. Arguments stay unsubstituted: the executor substitutes variables when it
//! reaches each instruction, with the ARG and ENV values in scope there.

use crate::error::{BuildError, Result};
use crate::parser::{self, Heredoc, Node};
use crate::shell::split_words;

/// Exec form (`["a", "b"]`) or shell form (`a b`, run through the SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

/// `COPY`/`ADD` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources then destination, unsubstituted.
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `COPY <<name /dst`: files made from heredocs.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthcheckArgs {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// One instruction with its arguments as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run {
        command: CommandForm,
        heredocs: Vec<Heredoc>,
        network: Option<String>,
    },
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    /// `ENV`/`LABEL` pairs: raw words, substituted (and unquoted) at build time.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    /// `ARG name[=default]`, several allowed.
    Arg(Vec<(String, Option<String>)>),
    Maintainer(String),
    Expose(String),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// The trigger text (`RUN echo hi`), checked to parse.
    Onbuild(String),
    StopSignal(String),
    Healthcheck(HealthcheckArgs),
    Shell(Vec<String>),
}

impl Instruction {
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::From { .. } => "FROM",
            Self::Run { .. } => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Env(_) => "ENV",
            Self::Label(_) => "LABEL",
            Self::Arg(_) => "ARG",
            Self::Maintainer(_) => "MAINTAINER",
            Self::Expose(_) => "EXPOSE",
            Self::Volume(_) => "VOLUME",
            Self::Workdir(_) => "WORKDIR",
            Self::User(_) => "USER",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Onbuild(_) => "ONBUILD",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
        }
    }
}

/// An instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// As written on one line (`Step N/M : <original>`).
    pub original: String,
    pub instruction: Instruction,
}

/// A `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// The `FROM` step itself.
    pub from: Step,
    pub steps: Vec<Step>,
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub file: String,
    pub escape: char,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// Parses a Dockerfile named `file` (the name is used in error messages).
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let parsed = parser::parse(text, file)?;
        if parsed.nodes.is_empty() {
            return Err(BuildError::EmptyDockerfile {
                file: file.to_string(),
            });
        }
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &parsed.nodes {
            let step = Step {
                line: node.line,
                original: node.original.clone(),
                instruction: parse_node(node, file, parsed.escape)?,
            };
            match (&step.instruction, stages.last_mut()) {
                (Instruction::From { name, .. }, _) => {
                    if let Some(n) = name {
                        if stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                            return Err(BuildError::StageNameUsed { name: n.clone() });
                        }
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        name: name.clone(),
                        from: step.clone(),
                        steps: Vec::new(),
                    });
                }
                (Instruction::Arg(args), None) => global_args.extend(args.iter().cloned()),
                (_, None) => return Err(BuildError::NoStage),
                (_, Some(stage)) => stage.steps.push(step),
            }
        }
        if stages.is_empty() {
            return Err(BuildError::NoStage);
        }
        Ok(Self {
            file: file.to_string(),
            escape: parsed.escape,
            global_args,
            stages,
            warnings: parsed.warnings,
        })
    }
}

/// Parses one ONBUILD trigger (or any single instruction line).
pub fn parse_line(text: &str, escape: char) -> Result<Step> {
    let p = parser::parse(text, "ONBUILD trigger")?;
    let node = p
        .nodes
        .into_iter()
        .next()
        .ok_or_else(|| BuildError::invalid("ONBUILD requires at least one argument"))?;
    Ok(Step {
        line: node.line,
        original: node.original.clone(),
        instruction: parse_node(&node, "ONBUILD trigger", escape)?,
    })
}

fn err(node: &Node, file: &str, message: impl Into<String>) -> BuildError {
    BuildError::Parse {
        file: file.to_string(),
        line: node.line,
        message: message.into(),
    }
}

/// `["a", "b"]` when the text is a JSON array of strings.
pub fn json_list(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command_form(args: &str) -> CommandForm {
    match json_list(args) {
        Some(v) => CommandForm::Exec(v),
        None => CommandForm::Shell(args.to_string()),
    }
}

/// Parsed `--name=value` flags of one instruction, with Docker's "Unknown flag" check.
struct Flags<'a> {
    node: &'a Node,
    file: &'a str,
    allowed: &'a [&'a str],
}

impl Flags<'_> {
    fn values(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for f in &self.node.flags {
            let body = &f[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
                None => (body.to_ascii_lowercase(), None),
            };
            if !self.allowed.contains(&name.as_str()) {
                return Err(err(self.node, self.file, format!("Unknown flag: {name}")));
            }
            out.push((name, value));
        }
        Ok(out)
    }
}

/// `KEY=value` pairs (or the legacy `KEY value` when `legacy` allows it).
fn name_values(
    node: &Node,
    file: &str,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, String)>> {
    let words = split_words(&node.args, escape);
    if words.is_empty() {
        return Err(err(
            node,
            file,
            format!("{} requires at least one argument", node.keyword),
        ));
    }
    if !words[0].contains('=') {
        if !legacy {
            return Err(err(
                node,
                file,
                format!("{} names can not be blank", node.keyword),
            ));
        }
        // Legacy `ENV KEY value with spaces`: the value is the rest of the line.
        let args = node.args.trim();
        let (k, v) = args.split_once(char::is_whitespace).ok_or_else(|| {
            err(
                node,
                file,
                format!("{} must have two arguments", node.keyword),
            )
        })?;
        return Ok(vec![(k.to_string(), v.trim_start().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(err(
                node,
                file,
                format!("{} names can not be blank", node.keyword),
            )),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(err(
                node,
                file,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            )),
        })
        .collect()
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn parse_node(node: &Node, file: &str, escape: char) -> Result<Instruction> {
    let args = node.args.trim();
    let kw = node.keyword.as_str();
    let one_arg = |what: &str| -> Result<String> {
        let words = split_words(args, escape);
        if words.len() != 1 {
            return Err(err(
                node,
                file,
                format!("{what} requires exactly one argument"),
            ));
        }
        Ok(args.to_string())
    };
    Ok(match kw {
        "FROM" => {
            let flags = Flags {
                node,
                file,
                allowed: &["platform"],
            }
            .values()?;
            let platform = flags.into_iter().find_map(|(_, v)| v);
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, kw_as, name] if kw_as.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(err(
                            node,
                            file,
                            format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                        ));
                    }
                    Some(lower)
                }
                _ => {
                    return Err(err(
                        node,
                        file,
                        "FROM requires either one or three arguments",
                    ))
                }
            };
            Instruction::From {
                image: words[0].to_string(),
                name,
                platform,
            }
        }
        "RUN" => {
            let flags = Flags {
                node,
                file,
                allowed: &["network", "mount", "security"],
            }
            .values()?;
            if args.is_empty() && node.heredocs.is_empty() {
                return Err(err(node, file, "RUN requires at least one argument"));
            }
            let network = flags
                .into_iter()
                .find(|(n, _)| n == "network")
                .and_then(|(_, v)| v);
            Instruction::Run {
                command: command_form(args),
                heredocs: node.heredocs.clone(),
                network,
            }
        }
        "CMD" | "ENTRYPOINT" => {
            let c = command_form(args);
            if kw == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "ENV" => Instruction::Env(name_values(node, file, escape, true)?),
        "LABEL" => Instruction::Label(name_values(node, file, escape, false)?),
        "ARG" => {
            let words = split_words(args, escape);
            if words.is_empty() {
                return Err(err(node, file, "ARG requires exactly one argument"));
            }
            let mut out = Vec::new();
            for w in words {
                match w.split_once('=') {
                    Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
                    None => out.push((w, None)),
                }
            }
            for (k, _) in &out {
                if k.is_empty() {
                    return Err(err(node, file, "ARG names can not be blank"));
                }
            }
            Instruction::Arg(out)
        }
        "MAINTAINER" => {
            if args.is_empty() {
                return Err(err(node, file, "MAINTAINER requires exactly one argument"));
            }
            Instruction::Maintainer(args.to_string())
        }
        "EXPOSE" => {
            if args.is_empty() {
                return Err(err(node, file, "EXPOSE requires at least one argument"));
            }
            Instruction::Expose(args.to_string())
        }
        "VOLUME" => {
            let list = json_list(args)
                .unwrap_or_else(|| args.split_whitespace().map(str::to_string).collect());
            if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
                return Err(err(node, file, "VOLUME requires at least one argument"));
            }
            Instruction::Volume(list)
        }
        "WORKDIR" => Instruction::Workdir(one_arg("WORKDIR")?),
        "USER" => Instruction::User(one_arg("USER")?),
        "STOPSIGNAL" => Instruction::StopSignal(one_arg("STOPSIGNAL")?),
        "COPY" | "ADD" => {
            let allowed: &[&str] = if kw == "COPY" {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            } else {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            };
            let mut c = CopyArgs::default();
            for (name, value) in (Flags {
                node,
                file,
                allowed,
            })
            .values()?
            {
                match name.as_str() {
                    "from" => c.from = value,
                    "chown" => c.chown = value,
                    "chmod" => c.chmod = value,
                    "link" => c.link = value.as_deref() != Some("false"),
                    _ => {}
                }
            }
            let mut words = json_list(args)
                .unwrap_or_else(|| args.split_whitespace().map(str::to_string).collect());
            if words.len() < 2 {
                return Err(err(
                    node,
                    file,
                    format!("{kw} requires at least two arguments, but only one was provided. Destination could not be determined"),
                ));
            }
            c.dest = words.pop().unwrap_or_default();
            let names: Vec<&str> = node.heredocs.iter().map(|h| h.name.as_str()).collect();
            c.sources = words
                .into_iter()
                .filter(|w| !is_heredoc_word(w, &names))
                .collect();
            c.heredocs = node.heredocs.clone();
            if kw == "COPY" {
                Instruction::Copy(c)
            } else {
                Instruction::Add(c)
            }
        }
        "ONBUILD" => {
            if args.is_empty() {
                return Err(err(node, file, "ONBUILD requires at least one argument"));
            }
            let trigger = args
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        node,
                        file,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err(
                        node,
                        file,
                        format!("{trigger} isn't allowed as an ONBUILD trigger"),
                    ))
                }
                _ => {}
            }
            parse_line(args, escape).map_err(|e| match e {
                BuildError::Parse { message, .. } => err(node, file, message),
                other => other,
            })?;
            Instruction::Onbuild(args.to_string())
        }
        "HEALTHCHECK" => {
            let flags = Flags {
                node,
                file,
                allowed: &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            }
            .values()?;
            let (typ, rest) = match args.find(char::is_whitespace) {
                Some(p) => (&args[..p], args[p..].trim()),
                None => (args, ""),
            };
            let mut h = HealthcheckArgs::default();
            match typ.to_ascii_uppercase().as_str() {
                "" => {
                    return Err(err(
                        node,
                        file,
                        "HEALTHCHECK requires at least one argument",
                    ))
                }
                "NONE" => {
                    if !rest.is_empty() {
                        return Err(err(node, file, "HEALTHCHECK NONE takes no arguments"));
                    }
                    if !flags.is_empty() {
                        return Err(err(node, file, "HEALTHCHECK NONE does not support options"));
                    }
                    h.test = vec!["NONE".into()];
                }
                "CMD" => {
                    if rest.is_empty() {
                        return Err(err(node, file, "Missing command after HEALTHCHECK CMD"));
                    }
                    h.test = match command_form(rest) {
                        CommandForm::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v);
                            t
                        }
                        CommandForm::Shell(s) => vec!["CMD-SHELL".into(), s],
                    };
                }
                other => {
                    return Err(err(
                        node,
                        file,
                        format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"),
                    ))
                }
            }
            for (name, value) in flags {
                let v = Some(value.unwrap_or_default());
                match name.as_str() {
                    "interval" => h.interval = v,
                    "timeout" => h.timeout = v,
                    "start-period" => h.start_period = v,
                    "start-interval" => h.start_interval = v,
                    _ => h.retries = v,
                }
            }
            Instruction::Healthcheck(h)
        }
        "SHELL" => match json_list(args) {
            Some(v) if !v.is_empty() => Instruction::Shell(v),
            _ => {
                return Err(err(
                    node,
                    file,
                    "SHELL requires the arguments to be in JSON form",
                ))
            }
        },
        other => {
            return Err(err(node, file, format!("unknown instruction: {other}")));
        }
    })
}

fn is_heredoc_word(word: &str, names: &[&str]) -> bool {
    let Some(rest) = word.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.trim_start_matches('-');
    let rest = rest.trim_matches(|c| c == '"' || c == '\'');
    names.contains(&rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df(text: &str) -> Dockerfile {
        Dockerfile::parse(text, "Dockerfile").unwrap()
    }

    fn parse_err(text: &str) -> String {
        Dockerfile::parse(text, "Dockerfile")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn stages_split_at_from_and_global_args_come_before() {
        let d = df("ARG V=1\nFROM busybox AS Build\nRUN a\nFROM build\nCOPY --from=build /a /b\n");
        assert_eq!(
            d.global_args,
            vec![("V".to_string(), Some("1".to_string()))]
        );
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].name.as_deref(), Some("build"));
        assert_eq!(d.stages[0].steps.len(), 1);
        assert_eq!(d.stages[1].index, 1);
        match &d.stages[1].steps[0].instruction {
            Instruction::Copy(c) => {
                assert_eq!(c.from.as_deref(), Some("build"));
                assert_eq!(c.sources, vec!["/a"]);
                assert_eq!(c.dest, "/b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_and_shell_forms_are_told_apart() {
        let d = df("FROM x\nCMD [\"sh\", \"-c\", \"echo\"]\nENTRYPOINT echo hi\nRUN [not json\n");
        let i: Vec<_> = d.stages[0]
            .steps
            .iter()
            .map(|s| s.instruction.clone())
            .collect();
        assert_eq!(
            i[0],
            Instruction::Cmd(CommandForm::Exec(vec![
                "sh".into(),
                "-c".into(),
                "echo".into()
            ]))
        );
        assert_eq!(
            i[1],
            Instruction::Entrypoint(CommandForm::Shell("echo hi".into()))
        );
        assert!(
            matches!(&i[2], Instruction::Run { command: CommandForm::Shell(s), .. } if s == "[not json")
        );
    }

    #[test]
    fn env_accepts_both_forms_and_label_requires_pairs() {
        let d = df("FROM x\nENV A=1 B=\"two words\"\nENV C three words\nLABEL a=b \"c d\"=e\n");
        let s = &d.stages[0].steps;
        assert_eq!(
            s[0].instruction,
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ])
        );
        assert_eq!(
            s[1].instruction,
            Instruction::Env(vec![("C".into(), "three words".into())])
        );
        assert_eq!(
            s[2].instruction,
            Instruction::Label(vec![
                ("a".into(), "b".into()),
                ("\"c d\"".into(), "e".into())
            ])
        );
        assert!(parse_err("FROM x\nLABEL novalue\n").contains("line 2"));
        assert_eq!(
            parse_err("FROM busybox\nENV\n"),
            "dockerfile parse error line 2 of Dockerfile: ENV requires at least one argument"
        );
    }

    #[test]
    fn dockers_argument_errors_are_kept() {
        assert_eq!(
            parse_err("FROM busybox\nFROBNICATE x\n"),
            "dockerfile parse error line 2 of Dockerfile: unknown instruction: FROBNICATE"
        );
        assert!(parse_err("FROM busybox\nCOPY a\n").ends_with(
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
        assert_eq!(parse_err("RUN x\n"), "no build stage in current context");
        assert_eq!(parse_err(""), "the Dockerfile (Dockerfile) cannot be empty");
        assert_eq!(
            parse_err("# only a comment\n\n"),
            "the Dockerfile (Dockerfile) cannot be empty"
        );
        assert_eq!(
            parse_err("FROM busybox AS x\nFROM busybox AS x\n"),
            "x stage name already used"
        );
        assert!(parse_err("FROM a b\n").contains("FROM requires either one or three arguments"));
        assert!(parse_err("FROM a AS 1x\n").contains("invalid name for build stage"));
        assert!(parse_err("FROM a\nCOPY --bogus=1 a b\n").contains("Unknown flag: bogus"));
        assert!(parse_err("FROM a\nSHELL /bin/sh -c\n")
            .contains("SHELL requires the arguments to be in JSON form"));
        assert!(parse_err("FROM a\nWORKDIR\n").contains("WORKDIR requires exactly one argument"));
        assert!(parse_err("FROM a\nONBUILD ONBUILD RUN x\n").contains("isn't allowed"));
        assert!(parse_err("FROM a\nONBUILD FROM x\n")
            .contains("FROM isn't allowed as an ONBUILD trigger"));
        assert!(parse_err("FROM a\nONBUILD BOGUS x\n").contains("unknown instruction: BOGUS"));
        assert!(parse_err("FROM a\nHEALTHCHECK PING x\n")
            .contains("Unknown type \"PING\" in HEALTHCHECK"));
    }

    #[test]
    fn healthcheck_forms_and_options() {
        let d = df("FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n");
        let s = &d.stages[0].steps;
        match &s[0].instruction {
            Instruction::Healthcheck(h) => {
                assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/"]);
                assert_eq!(h.interval.as_deref(), Some("5s"));
                assert_eq!(h.retries.as_deref(), Some("3"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&s[1].instruction, Instruction::Healthcheck(h) if h.test == ["NONE"]));
        assert!(
            matches!(&s[2].instruction, Instruction::Healthcheck(h) if h.test == ["CMD", "/bin/check", "-q"])
        );
    }

    #[test]
    fn copy_heredocs_become_sources_of_their_own() {
        let d = df("FROM x\nCOPY <<hello.txt <<-EOF /dst/\nhi\nhello.txt\n\tb\n\tEOF\n");
        match &d.stages[0].steps[0].instruction {
            Instruction::Copy(c) => {
                assert!(c.sources.is_empty());
                assert_eq!(c.heredocs.len(), 2);
                assert_eq!(c.heredocs[0].name, "hello.txt");
                assert_eq!(c.dest, "/dst/");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn args_may_be_several_and_have_defaults() {
        let d = df("FROM x\nARG A B=2 C=\"x y\"\n");
        assert_eq!(
            d.stages[0].steps[0].instruction,
            Instruction::Arg(vec![
                ("A".into(), None),
                ("B".into(), Some("2".into())),
                ("C".into(), Some("\"x y\"".into()))
            ])
        );
    }

    #[test]
    fn onbuild_triggers_parse_on_their_own() {
        let s = parse_line("RUN echo hi", '\\').unwrap();
        assert_eq!(s.original, "RUN echo hi");
        assert!(matches!(s.instruction, Instruction::Run { .. }));
    }
}
