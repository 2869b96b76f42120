//! `.dockerignore`: Docker's pattern rules (moby's patternmatcher).
//!
//! Each non-comment line is a pattern, cleaned like a path (`./a//b/` → `a/b`, a leading
//! `/` dropped). `*` matches within one path component, `?` one character, `[...]` a class,
//! `\` escapes; `**` matches any number of components (`**/x`, `a/**/b`, `a/**`). A pattern
//! that matches a directory excludes everything below it. Patterns starting with `!` are
//! exceptions that re-include what earlier patterns excluded; the last pattern that
//! matches a path decides.
//!
//! ```
//! use berth_builder::dockerignore::Matcher;
//! let m = Matcher::parse("**/*.log\ntmp\n!tmp/keep\n");
//! assert!(m.excluded("a/b/x.log"));
//! assert!(m.excluded("tmp/other"));
//! assert!(!m.excluded("tmp/keep"));
//! ```

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exception: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    Any,
    /// `**/` or `**` in the middle: `(.*/)?`.
    DirsOpt,
    /// `**` at the end: `.*`.
    Rest,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
}

/// The patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Cleans a path the way Go's `filepath.Clean` does (`a/./b/../c/` → `a/c`).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    out.push(Token::Rest);
                } else {
                    out.push(Token::DirsOpt);
                }
            }
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    out.push(Token::Char(n));
                    i += 1;
                }
                None => out.push(Token::Char('\\')),
            },
            '[' => {
                let mut j = i;
                let negated = matches!(chars.get(j), Some('^' | '!'));
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while j < chars.len() {
                    let mut lo = chars[j];
                    if lo == ']' && (j > i + usize::from(negated)) {
                        closed = true;
                        j += 1;
                        break;
                    }
                    if lo == '\\' && j + 1 < chars.len() {
                        j += 1;
                        lo = chars[j];
                    }
                    let mut hi = lo;
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|c| *c != ']')
                    {
                        hi = chars[j + 2];
                        j += 2;
                    }
                    ranges.push((lo, hi));
                    j += 1;
                }
                if closed {
                    out.push(Token::Class(negated, ranges));
                    i = j;
                } else {
                    out.push(Token::Char('['));
                }
            }
            c => out.push(Token::Char(c)),
        }
    }
    out
}

fn matches(tokens: &[Token], text: &[char]) -> bool {
    match tokens.first() {
        None => text.is_empty(),
        Some(Token::Char(c)) => text.first() == Some(c) && matches(&tokens[1..], &text[1..]),
        Some(Token::Any) => {
            text.first().is_some_and(|c| *c != '/') && matches(&tokens[1..], &text[1..])
        }
        Some(Token::Class(neg, ranges)) => {
            text.first().is_some_and(|c| {
                *c != '/' && (ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *neg)
            }) && matches(&tokens[1..], &text[1..])
        }
        Some(Token::Star) => {
            let mut k = 0;
            loop {
                if matches(&tokens[1..], &text[k..]) {
                    return true;
                }
                if k >= text.len() || text[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        Some(Token::Rest) => true,
        Some(Token::DirsOpt) => {
            // Zero directories, or any prefix that ends with '/'.
            if matches(&tokens[1..], text) {
                return true;
            }
            (0..text.len()).any(|k| text[k] == '/' && matches(&tokens[1..], &text[k + 1..]))
        }
    }
}

/// Go's `filepath.Match` for `COPY` wildcards: like a `.dockerignore` pattern, but `**` is
/// just two `*` and a pattern never matches the children of what it names.
pub fn path_match(pattern: &str, path: &str) -> bool {
    let tokens: Vec<Token> = compile(pattern)
        .into_iter()
        .map(|t| match t {
            Token::DirsOpt | Token::Rest => Token::Star,
            other => other,
        })
        .collect();
    let text: Vec<char> = path.chars().collect();
    matches(&tokens, &text)
}

/// Whether a `COPY` source uses wildcards.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

impl Matcher {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
                if p.is_empty() {
                    continue;
                }
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            patterns.push(Pattern {
                exception,
                tokens: compile(&cleaned),
            });
        }
        Self { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether there are `!` exceptions (then an excluded directory may still hold
    /// included files, and must be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded: the last
    /// pattern matching it or one of its parent directories decides.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        let text: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = text
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exception only matters once excluded, an exclusion only before.
            if p.exception != excluded {
                continue;
            }
            let hit = matches(&p.tokens, &text)
                || parents.iter().any(|&end| matches(&p.tokens, &text[..end]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean(""), ".");
    }

    #[test]
    fn simple_names_match_at_the_root_only() {
        let m = Matcher::parse("foo\n*.md\n");
        assert!(m.excluded("foo"));
        assert!(m.excluded("foo/bar/baz"), "children of an excluded dir");
        assert!(!m.excluded("a/foo"));
        assert!(m.excluded("README.md"));
        assert!(!m.excluded("docs/README.md"), "* does not cross /");
    }

    #[test]
    fn double_star_crosses_directories() {
        let m = Matcher::parse("**/*.go\n");
        assert!(m.excluded("x.go"));
        assert!(m.excluded("a/b/c.go"));
        assert!(!m.excluded("a/b/c.rs"));
        let m = Matcher::parse("a/**/z\n");
        assert!(m.excluded("a/z"));
        assert!(m.excluded("a/b/c/z"));
        assert!(!m.excluded("b/z"));
        let m = Matcher::parse("build/**\n");
        assert!(m.excluded("build/x"));
        assert!(m.excluded("build/x/y"));
        let m = Matcher::parse("**\n!keep\n");
        assert!(m.excluded("anything/at/all"));
        assert!(!m.excluded("keep"));
    }

    #[test]
    fn exceptions_reinclude_and_the_last_match_wins() {
        let m = Matcher::parse("*.md\n!README.md\n");
        assert!(m.excluded("CHANGES.md"));
        assert!(!m.excluded("README.md"));
        let m = Matcher::parse("!README.md\n*.md\n");
        assert!(m.excluded("README.md"));
        let m = Matcher::parse("docs\n!docs/keep/**\n");
        assert!(m.excluded("docs/x"));
        assert!(!m.excluded("docs/keep/a/b"));
        assert!(m.has_exceptions());
    }

    #[test]
    fn comments_blank_lines_and_leading_slashes() {
        let m = Matcher::parse("# a comment\n\n  /secret  \n./tmp/\n");
        assert!(m.excluded("secret"));
        assert!(m.excluded("tmp/x"));
        assert!(!m.excluded("# a comment"));
    }

    #[test]
    fn copy_wildcards_stay_within_one_component() {
        assert!(path_match("src/*", "src/one"));
        assert!(!path_match("src/*", "src/inner/two"));
        assert!(path_match("*.txt", "a.txt"));
        assert!(!path_match("*.txt", "d/a.txt"));
        assert!(path_match("f?le", "file"));
        assert!(has_wildcards("a*") && !has_wildcards("plain/path"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let m = Matcher::parse("file[0-9].txt\nlog?\n\\*star\n[!a]x\n");
        assert!(m.excluded("file7.txt"));
        assert!(!m.excluded("filex.txt"));
        assert!(m.excluded("log1"));
        assert!(!m.excluded("log12"));
        assert!(m.excluded("*star"));
        assert!(!m.excluded("xstar"));
        assert!(m.excluded("bx"));
        assert!(!m.excluded("ax"));
    }
}
