//! A small flag parser with the semantics of Go's `pflag` as the docker CLI configures it.
//!
//! clap was tried first, but docker's users rely on details clap does not share: `-i=false`
//! on a shorthand, the last occurrence of a flag winning, parsing that stops at the first
//! positional for `run`/`exec` (`SetInterspersed(false)`), and pflag's exact error texts
//! (`unknown shorthand flag: 'z' in -z`). A [`Spec`] lists a command's flags; [`parse`] turns
//! argv into [`Parsed`], which answers `bool`, `string`, `list` and `changed` like pflag.

use std::collections::HashMap;

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--rm`, `--rm=false`, `-d`.
    Bool,
    /// One value; the last occurrence wins.
    Value,
    /// Repeatable; every value is kept (`-e A -e B`).
    List,
}

/// One flag of a command.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// Type word printed in help (`string`, `list`, `int`, `bytes`, `duration`).
    pub typ: &'static str,
    pub help: &'static str,
    /// Default shown in help and returned when the flag is absent.
    pub default: &'static str,
    pub hidden: bool,
}

pub const fn b(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::Bool,
        typ: "",
        help,
        default: "false",
        hidden: false,
    }
}
pub const fn v(
    long: &'static str,
    short: Option<char>,
    typ: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::Value,
        typ,
        help,
        default: "",
        hidden: false,
    }
}
pub const fn vd(
    long: &'static str,
    short: Option<char>,
    typ: &'static str,
    default: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::Value,
        typ,
        help,
        default,
        hidden: false,
    }
}
pub const fn l(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::List,
        typ: "list",
        help,
        default: "",
        hidden: false,
    }
}
pub const fn hidden(mut f: Flag) -> Flag {
    f.hidden = true;
    f
}
pub const fn default_true(mut f: Flag) -> Flag {
    f.default = "true";
    f
}

/// A command's usage line and flags.
pub struct Spec {
    /// `run [OPTIONS] IMAGE [COMMAND] [ARG...]` (without the program name).
    pub usage: &'static str,
    pub about: &'static str,
    pub aliases: &'static str,
    pub flags: Vec<Flag>,
    /// Stop at the first positional argument (`run`, `create`, `exec`).
    pub stop_at_positional: bool,
    /// `-h` is taken by a flag (`run -h HOSTNAME`), so only `--help` prints help.
    pub no_short_help: bool,
}

/// Parse failures, worded as pflag words them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    Help,
    Message(String),
}

/// The outcome of parsing: values keyed by long name, and the positionals.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    defaults: HashMap<&'static str, &'static str>,
    pub args: Vec<String>,
}

impl Parsed {
    /// Whether the user gave the flag (pflag's `Changed`).
    pub fn changed(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
    /// The last value given, or the default.
    pub fn string(&self, long: &str) -> String {
        match self.values.get(long).and_then(|v| v.last()) {
            Some(s) => s.clone(),
            None => self
                .defaults
                .get(long)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        }
    }
    pub fn bool(&self, long: &str) -> bool {
        self.string(long) == "true"
    }
    pub fn list(&self, long: &str) -> Vec<String> {
        self.values.get(long).cloned().unwrap_or_default()
    }
    /// Sets a value as if given on the command line (tests, and flags that alias others).
    pub fn set(&mut self, long: &'static str, value: &str) {
        self.values.entry(long).or_default().push(value.to_string());
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn flag_name(f: &Flag) -> String {
    match f.short {
        Some(c) => format!("-{c}, --{}", f.long),
        None => format!("--{}", f.long),
    }
}

fn bad_bool(f: &Flag, val: &str) -> FlagError {
    FlagError::Message(format!(
        "invalid argument \"{val}\" for \"{}\" flag: strconv.ParseBool: parsing \"{val}\": invalid syntax",
        flag_name(f)
    ))
}

/// The error text for a value a flag's own parser rejected, as pflag prints it.
pub fn invalid_argument(spec: &Spec, long: &str, val: &str, reason: &str) -> String {
    let name = spec
        .flags
        .iter()
        .find(|f| f.long == long)
        .map(flag_name)
        .unwrap_or_else(|| format!("--{long}"));
    format!("invalid argument \"{val}\" for \"{name}\" flag: {reason}")
}

pub fn parse(spec: &Spec, argv: &[String]) -> Result<Parsed, FlagError> {
    let mut p = Parsed::default();
    for f in &spec.flags {
        p.defaults.insert(f.long, f.default);
    }
    let mut i = 0;
    let mut only_args = false;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if only_args || a == "-" || !a.starts_with('-') {
            p.args.push(a.clone());
            if spec.stop_at_positional && !only_args {
                p.args.extend(argv[i..].iter().cloned());
                break;
            }
            continue;
        }
        if a == "--" {
            only_args = true;
            if spec.stop_at_positional {
                p.args.extend(argv[i..].iter().cloned());
                break;
            }
            continue;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name == "help" {
                return Err(FlagError::Help);
            }
            let Some(f) = spec.flags.iter().find(|f| f.long == name) else {
                return Err(FlagError::Message(format!("unknown flag: --{name}")));
            };
            match f.kind {
                Kind::Bool => {
                    let val = inline.unwrap_or_else(|| "true".to_string());
                    let b = parse_go_bool(&val).ok_or_else(|| bad_bool(f, &val))?;
                    p.values.insert(f.long, vec![b.to_string()]);
                }
                Kind::Value | Kind::List => {
                    let val = match inline {
                        Some(v) => v,
                        None if i < argv.len() => {
                            i += 1;
                            argv[i - 1].clone()
                        }
                        None => {
                            return Err(FlagError::Message(format!(
                                "flag needs an argument: --{name}"
                            )))
                        }
                    };
                    store(&mut p, f, val);
                }
            }
            continue;
        }
        // A cluster of shorthands: -it, -e=A, -eA, -i=false.
        let body = &a[1..];
        let chars: Vec<(usize, char)> = body.char_indices().collect();
        let mut k = 0;
        while k < chars.len() {
            let (pos, c) = chars[k];
            if c == 'h' && !spec.no_short_help && !spec.flags.iter().any(|f| f.short == Some('h')) {
                return Err(FlagError::Help);
            }
            let Some(f) = spec.flags.iter().find(|f| f.short == Some(c)) else {
                return Err(FlagError::Message(format!(
                    "unknown shorthand flag: '{c}' in -{body}"
                )));
            };
            let rest = &body[pos + c.len_utf8()..];
            match f.kind {
                Kind::Bool => {
                    if let Some(val) = rest.strip_prefix('=') {
                        let b = parse_go_bool(val).ok_or_else(|| bad_bool(f, val))?;
                        p.values.insert(f.long, vec![b.to_string()]);
                        break;
                    }
                    p.values.insert(f.long, vec!["true".to_string()]);
                    k += 1;
                }
                Kind::Value | Kind::List => {
                    let val = if let Some(v) = rest.strip_prefix('=') {
                        v.to_string()
                    } else if !rest.is_empty() {
                        rest.to_string()
                    } else if i < argv.len() {
                        i += 1;
                        argv[i - 1].clone()
                    } else {
                        return Err(FlagError::Message(format!(
                            "flag needs an argument: '{c}' in -{body}"
                        )));
                    };
                    store(&mut p, f, val);
                    break;
                }
            }
        }
    }
    Ok(p)
}

fn store(p: &mut Parsed, f: &Flag, val: String) {
    match f.kind {
        Kind::List => p.values.entry(f.long).or_default().push(val),
        _ => {
            p.values.insert(f.long, vec![val]);
        }
    }
}

/// Help in cobra's layout: usage, description, aliases, options.
pub fn help(prog: &str, spec: &Spec) -> String {
    let mut s = format!("Usage:  {prog} {}\n\n{}\n", spec.usage, spec.about);
    if !spec.aliases.is_empty() {
        s.push_str(&format!("\nAliases:\n  {}\n", spec.aliases));
    }
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut flags: Vec<&Flag> = spec.flags.iter().filter(|f| !f.hidden).collect();
    flags.sort_by_key(|f| f.long);
    for f in flags {
        let mut left = match f.short {
            Some(c) => format!("  -{c}, --{}", f.long),
            None => format!("      --{}", f.long),
        };
        if !f.typ.is_empty() {
            left.push(' ');
            left.push_str(f.typ);
        }
        let mut right = f.help.to_string();
        if f.kind == Kind::Value && !f.default.is_empty() && f.typ == "string" {
            right.push_str(&format!(" (default \"{}\")", f.default));
        } else if (f.kind == Kind::Value && !f.default.is_empty() && f.default != "0")
            || (f.kind == Kind::Bool && f.default == "true")
        {
            right.push_str(&format!(" (default {})", f.default));
        }
        rows.push((left, right));
    }
    let help_left = if spec.no_short_help {
        "      --help".to_string()
    } else {
        "  -h, --help".to_string()
    };
    if !spec.flags.iter().any(|f| f.long == "help") {
        rows.push((help_left, "Print usage".to_string()));
        rows.sort_by(|a, b| {
            a.0.trim_start_matches([' ', '-'])
                .split(", --")
                .last()
                .cmp(&b.0.trim_start_matches([' ', '-']).split(", --").last())
        });
    }
    if !rows.is_empty() {
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        s.push_str("\nOptions:\n");
        for (left, right) in rows {
            s.push_str(&format!("{left:<w$}   {right}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            usage: "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
            about: "",
            aliases: "",
            flags: vec![
                b("interactive", Some('i'), ""),
                b("tty", Some('t'), ""),
                b("rm", None, ""),
                default_true(b("sig-proxy", None, "")),
                l("env", Some('e'), ""),
                v("name", None, "string", ""),
                v("hostname", Some('h'), "string", ""),
            ],
            stop_at_positional: true,
            no_short_help: true,
        }
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn shorthand_clusters_set_every_bool() {
        let p = parse(&spec(), &argv("-it busybox sh")).unwrap();
        assert!(p.bool("interactive") && p.bool("tty"));
        assert_eq!(p.args, vec!["busybox", "sh"]);
    }

    #[test]
    fn parsing_stops_at_the_first_positional() {
        let p = parse(&spec(), &argv("--rm busybox ls -l --rm")).unwrap();
        assert_eq!(p.args, vec!["busybox", "ls", "-l", "--rm"]);
    }

    #[test]
    fn bools_accept_explicit_values_and_the_last_one_wins() {
        let p = parse(
            &spec(),
            &argv("--rm=true -i=false --rm=0 --sig-proxy=false x"),
        )
        .unwrap();
        assert!(!p.bool("rm"));
        assert!(!p.bool("interactive"));
        assert!(!p.bool("sig-proxy"));
        assert!(p.changed("rm"));
        let p = parse(&spec(), &argv("x")).unwrap();
        assert!(p.bool("sig-proxy"));
        assert!(!p.changed("sig-proxy"));
    }

    #[test]
    fn values_attach_in_every_pflag_form() {
        let p = parse(
            &spec(),
            &argv("-eA=1 -e=B=2 -e C --env=D --env E --name=n --name m x"),
        )
        .unwrap();
        assert_eq!(p.list("env"), vec!["A=1", "B=2", "C", "D", "E"]);
        assert_eq!(p.string("name"), "m");
    }

    #[test]
    fn errors_read_like_pflag() {
        assert_eq!(
            parse(&spec(), &argv("--foo x")).unwrap_err(),
            FlagError::Message("unknown flag: --foo".into())
        );
        assert_eq!(
            parse(&spec(), &argv("-iz x")).unwrap_err(),
            FlagError::Message("unknown shorthand flag: 'z' in -iz".into())
        );
        assert_eq!(
            parse(&spec(), &argv("--name")).unwrap_err(),
            FlagError::Message("flag needs an argument: --name".into())
        );
        assert_eq!(
            parse(&spec(), &argv("-e")).unwrap_err(),
            FlagError::Message("flag needs an argument: 'e' in -e".into())
        );
        assert_eq!(
            parse(&spec(), &argv("--rm=maybe x")).unwrap_err(),
            FlagError::Message("invalid argument \"maybe\" for \"--rm\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax".into())
        );
        assert_eq!(
            parse(&spec(), &argv("--help")).unwrap_err(),
            FlagError::Help
        );
    }

    #[test]
    fn short_h_is_a_flag_when_the_command_defines_it() {
        let p = parse(&spec(), &argv("-h myhost busybox")).unwrap();
        assert_eq!(p.string("hostname"), "myhost");
    }
}
