//! `.env` and `env_file` files: `KEY=VALUE` lines, `export KEY=VALUE`, `#` comments,
//! single-quoted values taken literally, double-quoted values with `\n`-style escapes and
//! `${VAR}` interpolation (from earlier lines, then the lookup), unquoted values with
//! trailing ` # comment` cut and interpolation. A bare `KEY` takes its value from the
//! lookup, or none.

use crate::interpolate::interpolate;

/// One parsed line: the name and its value (None for a bare `KEY` with no value found).
pub type Entry = (String, Option<String>);

/// Parses a dotenv text. `lookup` answers variables the file does not define itself.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let (key, rest) = match line.find('=') {
            Some(i) => (line[..i].trim(), Some(&line[i + 1..])),
            None => (line.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: unexpected character in variable name {key:?}",
                n + 1
            ));
        }
        let known = |k: &str| {
            out.iter()
                .rev()
                .find(|(name, _)| name == k)
                .and_then(|(_, v)| v.clone())
                .or_else(|| lookup(k))
        };
        let value = match rest {
            None => lookup(key),
            Some(rest) => {
                let rest = rest.trim_start();
                if let Some(body) = rest.strip_prefix('\'') {
                    Some(quoted(body, &mut lines, n, |s| s.find('\''))?)
                } else if let Some(body) = rest.strip_prefix('"') {
                    let unescaped = unescape(&quoted(body, &mut lines, n, closing_quote)?);
                    Some(
                        interpolate(&unescaped, &known, &mut |_| {})
                            .map_err(|e| format!("line {}: {e}", n + 1))?,
                    )
                } else {
                    let v = match rest.find(" #") {
                        Some(i) => &rest[..i],
                        None => rest,
                    };
                    Some(
                        interpolate(v.trim_end(), &known, &mut |_| {})
                            .map_err(|e| format!("line {}: {e}", n + 1))?,
                    )
                }
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// A quoted value from `body` (after the opening quote) on, continued on the following
/// lines until `close` finds the closing quote; the text before it.
fn quoted<'a>(
    body: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    n: usize,
    close: impl Fn(&str) -> Option<usize>,
) -> Result<String, String> {
    let mut acc = body.to_string();
    loop {
        if let Some(end) = close(&acc) {
            acc.truncate(end);
            return Ok(acc);
        }
        let Some((_, l)) = lines.next() else {
            return Err(format!("line {}: unterminated quoted value", n + 1));
        };
        acc.push('\n');
        acc.push_str(l);
    }
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => {
                if !matches!(other, '"' | '\\' | '$') {
                    out.push('\\');
                }
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<Entry> {
        parse(text, &|k| (k == "HOSTVAR").then(|| "fromhost".to_string())).unwrap()
    }

    fn v(k: &str, val: &str) -> Entry {
        (k.to_string(), Some(val.to_string()))
    }

    #[test]
    fn plain_lines_comments_and_export() {
        assert_eq!(
            p("# comment\nA=1\n\nexport B = two words # trailing\nC=\n"),
            vec![v("A", "1"), v("B", "two words"), v("C", "")]
        );
    }

    #[test]
    fn quotes_escapes_and_interpolation() {
        assert_eq!(
            p("A='lit $X # kept'\nB=\"line\\nnext \\\"q\\\"\"\nC=${A}-x\nD=\"$HOSTVAR\"\n"),
            vec![
                v("A", "lit $X # kept"),
                v("B", "line\nnext \"q\""),
                v("C", "lit $X # kept-x"),
                v("D", "fromhost"),
            ]
        );
    }

    #[test]
    fn multi_line_quoted_values() {
        assert_eq!(p("K=\"a\nb\"\nN=1"), vec![v("K", "a\nb"), v("N", "1")]);
    }

    #[test]
    fn bare_keys_take_the_lookup_value() {
        assert_eq!(
            p("HOSTVAR\nNOPE"),
            vec![v("HOSTVAR", "fromhost"), ("NOPE".to_string(), None)]
        );
    }

    #[test]
    fn bad_names_and_unterminated_quotes_fail() {
        assert!(parse("A B=1", &|_| None).is_err());
        assert!(parse("A=\"open", &|_| None).is_err());
    }
}
