//! Variable substitution in Dockerfile words, as Docker's shell lexer does it: `$VAR`,
//! `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
//! `${VAR?msg}`; single quotes are literal, double quotes allow substitution, the escape
//! character (`\` or the `# escape=` one) makes the next character literal. Quotes are
//! removed from the result; whitespace is kept (words are not split).
//!
//! ```
//! use berth_builder::shell::Lexer;
//! let env = vec!["A=1".to_string(), "B=two words".to_string()];
//! let lx = Lexer::new('\\');
//! assert_eq!(lx.process_word("${A:-x}-'$B'-\"$B\"", &env).unwrap(), "1-$B-two words");
//! ```

use std::iter::Peekable;
use std::str::Chars;

/// Why a word could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingle,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDouble,
    #[error("missing '}}' in substitution")]
    MissingBrace,
    #[error("unsupported modifier ({0}) in substitution")]
    BadModifier(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// The value of `name` in a `KEY=value` list (the last entry wins, as in an environment).
pub fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|e| {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        (k == name).then_some(v)
    })
}

/// Substitutes variables in Dockerfile words.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Self { escape }
    }

    /// One word with variables substituted and quotes removed.
    pub fn process_word(&self, word: &str, env: &[String]) -> Result<String, ShellError> {
        let mut it = word.chars().peekable();
        self.process_until(&mut it, env, None)
    }

    /// Several words: substitution as [`process_word`](Self::process_word), then a split on
    /// whitespace outside quotes (for instructions whose arguments are a list, like EXPOSE).
    pub fn process_words(&self, text: &str, env: &[String]) -> Result<Vec<String>, ShellError> {
        let mut out = Vec::new();
        for w in split_words(text, self.escape) {
            let v = self.process_word(&w, env)?;
            if !v.is_empty() {
                out.extend(v.split_whitespace().map(str::to_string));
            }
        }
        Ok(out)
    }

    fn process_until(
        &self,
        it: &mut Peekable<Chars<'_>>,
        env: &[String],
        stop: Option<char>,
    ) -> Result<String, ShellError> {
        let mut out = String::new();
        while let Some(&ch) = it.peek() {
            if Some(ch) == stop {
                break;
            }
            it.next();
            match ch {
                c if c == self.escape => {
                    if let Some(n) = it.next() {
                        out.push(n);
                    }
                }
                '\'' => out.push_str(&single_quoted(it)?),
                '"' => out.push_str(&self.double_quoted(it, env)?),
                '$' => out.push_str(&self.dollar(it, env)?),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn double_quoted(
        &self,
        it: &mut Peekable<Chars<'_>>,
        env: &[String],
    ) -> Result<String, ShellError> {
        let mut out = String::new();
        loop {
            let Some(ch) = it.next() else {
                return Err(ShellError::UnterminatedDouble);
            };
            match ch {
                '"' => return Ok(out),
                '$' => out.push_str(&self.dollar(it, env)?),
                c if c == self.escape => match it.peek() {
                    Some(&n) if n == '"' || n == '$' || n == self.escape => {
                        out.push(n);
                        it.next();
                    }
                    _ => out.push(c),
                },
                c => out.push(c),
            }
        }
    }

    fn dollar(&self, it: &mut Peekable<Chars<'_>>, env: &[String]) -> Result<String, ShellError> {
        match it.peek() {
            Some('{') => {
                it.next();
                let name = take_name(it);
                if name.is_empty() {
                    return Err(ShellError::MissingBrace);
                }
                match it.next() {
                    Some('}') => Ok(lookup(env, &name).unwrap_or("").to_string()),
                    Some(c @ (':' | '-' | '+' | '?')) => {
                        let colon = c == ':';
                        let op = if colon {
                            match it.next() {
                                Some(o @ ('-' | '+' | '?')) => o,
                                Some(o) => return Err(ShellError::BadModifier(format!(":{o}"))),
                                None => return Err(ShellError::MissingBrace),
                            }
                        } else {
                            c
                        };
                        let word = self.process_until(it, env, Some('}'))?;
                        if it.next() != Some('}') {
                            return Err(ShellError::MissingBrace);
                        }
                        let value = lookup(env, &name);
                        // With ':' an empty value counts as unset.
                        let set = match value {
                            Some(v) => !colon || !v.is_empty(),
                            None => false,
                        };
                        Ok(match op {
                            '-' if set => value.unwrap_or("").to_string(),
                            '-' => word,
                            '+' if set => word,
                            '+' => String::new(),
                            _ if set => value.unwrap_or("").to_string(),
                            _ => {
                                return Err(ShellError::Required {
                                    name,
                                    message: if word.is_empty() {
                                        "is not allowed to be unset".to_string()
                                    } else {
                                        word
                                    },
                                })
                            }
                        })
                    }
                    Some(c) => Err(ShellError::BadModifier(c.to_string())),
                    None => Err(ShellError::MissingBrace),
                }
            }
            Some(&c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = take_name(it);
                Ok(lookup(env, &name).unwrap_or("").to_string())
            }
            _ => Ok("$".to_string()),
        }
    }
}

fn take_name(it: &mut Peekable<Chars<'_>>) -> String {
    let mut name = String::new();
    while let Some(&c) = it.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
            it.next();
        } else {
            break;
        }
    }
    name
}

fn single_quoted(it: &mut Peekable<Chars<'_>>) -> Result<String, ShellError> {
    let mut out = String::new();
    for c in it.by_ref() {
        if c == '\'' {
            return Ok(out);
        }
        out.push(c);
    }
    Err(ShellError::UnterminatedSingle)
}

/// Splits on whitespace outside quotes, keeping quotes and escapes in the words (Docker's
/// `parseWords`, used for `ENV` and `LABEL` pairs before substitution).
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ if c == escape => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<String> {
        vec![
            "A=1".into(),
            "EMPTY=".into(),
            "B=two words".into(),
            "A=override".into(),
        ]
    }

    fn sub(w: &str) -> String {
        Lexer::new('\\').process_word(w, &env()).unwrap()
    }

    #[test]
    fn plain_and_braced_variables_are_substituted() {
        assert_eq!(sub("$A"), "override");
        assert_eq!(sub("${A}x"), "overridex");
        assert_eq!(sub("$Ax"), "");
        assert_eq!(sub("pre-${B}-post"), "pre-two words-post");
        assert_eq!(sub("$NOPE|"), "|");
    }

    #[test]
    fn defaults_and_alternatives_follow_the_shell() {
        assert_eq!(sub("${NOPE:-def}"), "def");
        assert_eq!(sub("${EMPTY:-def}"), "def");
        assert_eq!(sub("${EMPTY-def}"), "");
        assert_eq!(sub("${NOPE-def}"), "def");
        assert_eq!(sub("${A:+alt}"), "alt");
        assert_eq!(sub("${EMPTY:+alt}"), "");
        assert_eq!(sub("${EMPTY+alt}"), "alt");
        assert_eq!(sub("${NOPE:+alt}"), "");
        assert_eq!(sub("${NOPE:-${A}}"), "override");
        assert_eq!(sub("${NOPE:-a b}"), "a b");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let e = Lexer::new('\\')
            .process_word("${NOPE:?must be set}", &env())
            .unwrap_err();
        assert_eq!(e.to_string(), "NOPE: must be set");
        assert_eq!(sub("${A?x}"), "override");
    }

    #[test]
    fn quotes_and_escapes_control_substitution() {
        assert_eq!(sub("'$A'"), "$A");
        assert_eq!(sub("\"$A\""), "override");
        assert_eq!(sub("\\$A"), "$A");
        assert_eq!(sub("\"a\\\"b\""), "a\"b");
        assert_eq!(sub("\"a\\nb\""), "a\\nb");
        assert_eq!(sub("a\\ b"), "a b");
        assert_eq!(sub("$"), "$");
        assert_eq!(sub("a$"), "a$");
    }

    #[test]
    fn backtick_escape_replaces_backslash() {
        let lx = Lexer::new('`');
        assert_eq!(
            lx.process_word("C:\\dir\\$A", &env()).unwrap(),
            "C:\\dir\\override"
        );
        assert_eq!(lx.process_word("`$A", &env()).unwrap(), "$A");
    }

    #[test]
    fn malformed_words_are_errors() {
        let lx = Lexer::new('\\');
        assert_eq!(
            lx.process_word("'abc", &env()).unwrap_err(),
            ShellError::UnterminatedSingle
        );
        assert_eq!(
            lx.process_word("\"abc", &env()).unwrap_err(),
            ShellError::UnterminatedDouble
        );
        assert_eq!(
            lx.process_word("${A", &env()).unwrap_err(),
            ShellError::MissingBrace
        );
        assert!(lx.process_word("${A:x}", &env()).is_err());
    }

    #[test]
    fn words_split_outside_quotes_only() {
        assert_eq!(
            split_words(r#"A=1 B="x y" C='p q' D=a\ b"#, '\\'),
            vec!["A=1", "B=\"x y\"", "C='p q'", "D=a\\ b"]
        );
        let lx = Lexer::new('\\');
        assert_eq!(
            lx.process_words("80 $B \"443/udp\"", &env()).unwrap(),
            vec!["80", "two", "words", "443/udp"]
        );
    }
}
