//! Dockerfile text → [`Node`]s: parser directives (`# escape=`, `# syntax=`), comments,
//! line continuations with the escape character, heredocs (`<<EOF`, `<<-EOF`, quoted
//! delimiters) for `RUN`, `COPY` and `ADD`, and the leading `--flags` of an instruction.
//!
//! Nodes keep their arguments as written; [`crate::instructions`] gives them meaning and
//! variables are substituted when the build reaches them.

use crate::error::{BuildError, Result};

/// Heredoc content attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`); for `COPY <<name /dst`, the file name.
    pub name: String,
    /// The lines between the instruction and the delimiter, each ending in `\n` (with
    /// `<<-`, leading tabs removed).
    pub content: String,
    /// Unquoted delimiters let the build substitute variables in `COPY` content.
    pub expand: bool,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// First line of the instruction (1-based).
    pub line: usize,
    /// The instruction word, upper-case (`RUN`).
    pub keyword: String,
    /// The whole instruction on one line, continuations joined (what `Step N/M :` shows).
    pub original: String,
    /// Leading `--name[=value]` words.
    pub flags: Vec<String>,
    /// The arguments after the flags.
    pub args: String,
    pub heredocs: Vec<Heredoc>,
}

/// A parsed Dockerfile: its escape character and its nodes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub escape: char,
    /// `# syntax=` (accepted and recorded; berth has one frontend).
    pub syntax: Option<String>,
    pub nodes: Vec<Node>,
    /// Things Docker warns about (empty continuation lines).
    pub warnings: Vec<String>,
}

/// Instructions that take leading `--flags`.
const WITH_FLAGS: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];
/// Instructions whose arguments may open heredocs.
const WITH_HEREDOCS: &[&str] = &["RUN", "COPY", "ADD"];

fn parse_error(file: &str, line: usize, message: impl Into<String>) -> BuildError {
    BuildError::Parse {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// `# key=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

/// Whether `line` ends with the escape character (trailing whitespace allowed); returns the
/// line without it.
fn continued(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Parses the text of a Dockerfile named `file` (for messages).
pub fn parse(text: &str, file: &str) -> Result<Parsed> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    let mut seen = std::collections::HashSet::new();
    // Parser directives: only at the very top, before anything else (even blank lines).
    while i < lines.len() {
        let Some((k, v)) = directive(lines[i].trim_start()) else {
            break;
        };
        match k.as_str() {
            "escape" | "syntax" | "check" => {
                if !seen.insert(k.clone()) {
                    return Err(parse_error(
                        file,
                        i + 1,
                        format!("only one {k} parser directive can be used"),
                    ));
                }
                if k == "escape" {
                    escape = match v.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            return Err(parse_error(
                                file,
                                i + 1,
                                format!("invalid ESCAPE '{other}'. Must be ` or \\"),
                            ))
                        }
                    };
                } else if k == "syntax" {
                    syntax = Some(v);
                }
            }
            // Unknown directives are comments, as in Docker.
            _ => {}
        }
        i += 1;
    }
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while i < lines.len() {
        let first = lines[i].trim_start();
        let start = i + 1;
        i += 1;
        if first.is_empty() || is_comment(first) {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        let mut empty_continuation = false;
        loop {
            match continued(cur, escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Comments and blank lines inside a continuation are dropped.
                    loop {
                        if i >= lines.len() {
                            cur = "";
                            break;
                        }
                        let next = lines[i];
                        i += 1;
                        if is_comment(next) {
                            continue;
                        }
                        if next.trim().is_empty() {
                            empty_continuation = true;
                            continue;
                        }
                        cur = next;
                        break;
                    }
                    if cur.is_empty() && i >= lines.len() {
                        break;
                    }
                }
                None => {
                    logical.push_str(cur);
                    break;
                }
            }
        }
        if empty_continuation {
            warnings.push(format!(
                "[WARNING]: Empty continuation line found in: {}",
                logical.trim()
            ));
        }
        let logical = logical.trim_end().to_string();
        let (word, rest) = match logical.find(|c: char| c.is_whitespace()) {
            Some(p) => (&logical[..p], logical[p..].trim_start()),
            None => (logical.as_str(), ""),
        };
        let keyword = word.to_ascii_uppercase();
        let (flags, args) = if WITH_FLAGS.contains(&keyword.as_str()) {
            split_flags(rest)
        } else {
            (Vec::new(), rest.to_string())
        };
        let mut heredocs = Vec::new();
        if WITH_HEREDOCS.contains(&keyword.as_str()) && !args.trim_start().starts_with('[') {
            for marker in heredoc_markers(&args) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if marker.chomp {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == marker.name {
                        closed = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !closed {
                    return Err(parse_error(
                        file,
                        start,
                        format!("unterminated heredoc {}", marker.name),
                    ));
                }
                heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                });
            }
        }
        nodes.push(Node {
            line: start,
            keyword,
            original: logical.clone(),
            flags,
            args,
            heredocs,
        });
    }
    Ok(Parsed {
        escape,
        syntax,
        nodes,
        warnings,
    })
}

/// Leading `--flag` words and what follows them.
fn split_flags(rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while s.starts_with("--") {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        let word = &s[..end];
        if word == "--" {
            s = s[end..].trim_start();
            break;
        }
        flags.push(word.to_string());
        s = s[end..].trim_start();
    }
    (flags, s.to_string())
}

struct Marker {
    name: String,
    chomp: bool,
    expand: bool,
}

/// The heredoc openers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`) among the words of `args`.
fn heredoc_markers(args: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let bytes: Vec<char> = args.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '<'
                && bytes.get(i + 1) == Some(&'<')
                && bytes.get(i + 2) == Some(&'<') =>
            {
                // A here-string (`<<<word`), not a heredoc.
                while bytes.get(i) == Some(&'<') {
                    i += 1;
                }
                continue;
            }
            None if c == '<' && bytes.get(i + 1) == Some(&'<') => {
                let mut j = i + 2;
                let chomp = bytes.get(j) == Some(&'-');
                if chomp {
                    j += 1;
                }
                let q = match bytes.get(j) {
                    Some(&c @ ('\'' | '"')) => {
                        j += 1;
                        Some(c)
                    }
                    _ => None,
                };
                let name_start = j;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], '_' | '.' | '-'))
                {
                    j += 1;
                }
                let name: String = bytes[name_start..j].iter().collect();
                if let Some(q) = q {
                    if bytes.get(j) != Some(&q) {
                        i += 1;
                        continue;
                    }
                    j += 1;
                }
                if !name.is_empty() {
                    out.push(Marker {
                        name,
                        chomp,
                        expand: q.is_none(),
                    });
                }
                i = j;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Vec<Node> {
        parse(text, "Dockerfile").unwrap().nodes
    }

    #[test]
    fn continuations_join_lines_and_drop_comments() {
        let n = nodes(
            "FROM busybox\nRUN echo a \\\n    && echo b # not a comment\n# comment\nRUN echo \\\n# inner comment\n  c\n",
        );
        assert_eq!(n.len(), 3);
        assert_eq!(n[1].original, "RUN echo a     && echo b # not a comment");
        assert_eq!(n[1].args, "echo a     && echo b # not a comment");
        assert_eq!(n[1].line, 2);
        assert_eq!(n[2].original, "RUN echo   c");
        assert_eq!(n[2].line, 5);
    }

    #[test]
    fn empty_continuation_lines_are_skipped_with_a_warning() {
        let p = parse("FROM x\nRUN echo hi \\\n\nCOPY a /b\n", "Dockerfile").unwrap();
        assert_eq!(p.nodes.len(), 2);
        assert_eq!(p.nodes[1].args, "echo hi COPY a /b");
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn escape_directive_switches_to_backtick() {
        let p = parse(
            "# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo done\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(p.escape, '`');
        assert_eq!(p.nodes[1].args, "dir c:\\   && echo done");
    }

    #[test]
    fn directives_only_count_at_the_top() {
        let p = parse(
            "# syntax=docker/dockerfile:1\n# escape=\\\nFROM x\n# escape=`\nRUN a \\\n b\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(p.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(p.escape, '\\');
        assert_eq!(p.nodes[1].args, "a  b");
        let e = parse("# escape=x\nFROM y\n", "Dockerfile").unwrap_err();
        assert!(e.to_string().contains("line 1 of Dockerfile"), "{e}");
        assert!(parse("# escape=`\n# escape=`\nFROM y\n", "D").is_err());
    }

    #[test]
    fn keywords_are_case_insensitive_and_flags_are_split_off() {
        let n =
            nodes("from --platform=linux/amd64 busybox AS b\ncopy --from=b --chown=1:2 /a /b\n");
        assert_eq!(n[0].keyword, "FROM");
        assert_eq!(n[0].flags, vec!["--platform=linux/amd64"]);
        assert_eq!(n[0].args, "busybox AS b");
        assert_eq!(n[1].flags, vec!["--from=b", "--chown=1:2"]);
        assert_eq!(n[1].args, "/a /b");
        assert_eq!(n[1].original, "copy --from=b --chown=1:2 /a /b");
    }

    #[test]
    fn heredocs_collect_lines_until_their_delimiter() {
        let n = nodes("FROM x\nRUN <<EOF\necho a\n  echo b\nEOF\nRUN echo after\n");
        assert_eq!(n.len(), 3);
        assert_eq!(n[1].heredocs.len(), 1);
        assert_eq!(n[1].heredocs[0].name, "EOF");
        assert_eq!(n[1].heredocs[0].content, "echo a\n  echo b\n");
        assert!(n[1].heredocs[0].expand);
        assert_eq!(n[2].line, 6);
    }

    #[test]
    fn chomped_and_quoted_heredocs() {
        let n = nodes("FROM x\nRUN <<-\"END\" cat\n\techo $A\n\tEND\nCOPY <<one <<'two' /dst/\n1\none\n2\ntwo\n");
        assert_eq!(n[1].heredocs[0].content, "echo $A\n");
        assert!(!n[1].heredocs[0].expand);
        assert_eq!(n[2].heredocs.len(), 2);
        assert_eq!(n[2].heredocs[0].name, "one");
        assert_eq!(n[2].heredocs[1].content, "2\n");
        assert!(!n[2].heredocs[1].expand);
    }

    #[test]
    fn unterminated_heredoc_is_an_error_with_its_line() {
        let e = parse("FROM x\n\nRUN <<EOF\necho\n", "build/Dockerfile.dev").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 3 of build/Dockerfile.dev: unterminated heredoc EOF"
        );
    }

    #[test]
    fn here_strings_and_json_forms_are_not_heredocs() {
        let n = nodes("FROM x\nRUN cat <<<word\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\n");
        assert!(n[1].heredocs.is_empty());
        assert!(n[2].heredocs.is_empty());
    }

    #[test]
    fn crlf_and_bom_are_tolerated() {
        let n = nodes("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
        assert_eq!(n[0].args, "x");
        assert_eq!(n[1].args, "a  b");
    }
}
