//! Variable interpolation as the Compose Specification defines it: `$VAR`, `${VAR}`,
//! `${VAR:-default}` / `${VAR-default}`, `${VAR:?error}` / `${VAR?error}`,
//! `${VAR:+replacement}` / `${VAR+replacement}`, `$$` for a literal `$`; defaults and
//! replacements may themselves hold `${...}`.
//!
//! [`interpolate`] substitutes one string; [`interpolate_tree`] walks a parsed YAML
//! document and substitutes every string value (keys are left alone), naming the path of
//! a failure (`services.web.image`).

use yaml_serde::Value;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${VAR:?message}` or `${VAR?message}` on a missing variable.
    Required { var: String, message: String },
    /// `${` without its `}`, or a name that is not a variable name.
    Syntax { text: String },
}

impl std::fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolationError::Required { var, message } => {
                if message.is_empty() {
                    write!(f, "required variable {var} is missing a value")
                } else {
                    write!(f, "required variable {var} is missing a value: {message}")
                }
            }
            InterpolationError::Syntax { text } => write!(
                f,
                "invalid interpolation format for {text:?}; you may need to escape any $ with another $"
            ),
        }
    }
}

/// Substitutes variables in `s`. `lookup` answers a variable's value (None when unset);
/// `unset` receives every variable that was used without a value or a default.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolationError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let syntax = || InterpolationError::Syntax {
        text: s.to_string(),
    };
    while i < b.len() {
        let c = b[i];
        if c != b'$' {
            // Copy the whole UTF-8 run up to the next `$`.
            let next = s[i..].find('$').map(|k| i + k).unwrap_or(b.len());
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = matching_brace(b, i + 1).ok_or_else(syntax)?;
                let inner = &s[i + 2..close];
                out.push_str(&expand_braced(inner, s, lookup, unset)?);
                i = close + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &s[start..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset(name),
                }
                i = end;
            }
            _ => return Err(syntax()),
        }
    }
    Ok(out)
}

/// The index of the `}` closing the `{` at `open`, counting nested `${`.
fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn expand_braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolationError> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_end);
    if !is_name(name) {
        return Err(InterpolationError::Syntax {
            text: whole.to_string(),
        });
    }
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset(name);
                String::new()
            }
        });
    }
    let (colon, op, arg) = match rest.strip_prefix(':') {
        Some(r) => (true, r.chars().next(), r.get(1..).unwrap_or("")),
        None => (false, rest.chars().next(), rest.get(1..).unwrap_or("")),
    };
    // With `:` an empty value counts as missing.
    let present = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match op {
        Some('-') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                interpolate(arg, lookup, unset)
            }
        }
        Some('?') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                Err(InterpolationError::Required {
                    var: name.to_string(),
                    message: interpolate(arg, lookup, unset)?,
                })
            }
        }
        Some('+') => {
            if present {
                interpolate(arg, lookup, unset)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(InterpolationError::Syntax {
            text: whole.to_string(),
        }),
    }
}

/// Interpolates every string in `v`; `path` is where `v` sits (for errors), and the
/// error carries the path of the failing value.
pub fn interpolate_tree(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<(), (String, InterpolationError)> {
    match v {
        Value::String(s) => {
            *s = interpolate(s, lookup, unset).map_err(|e| (path.to_string(), e))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), lookup, unset)?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => yaml_serde::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_tree(item, &p, lookup, unset)?;
            }
        }
        Value::Tagged(t) => interpolate_tree(&mut t.value, path, lookup, unset)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(s: &str, env: &[(&str, &str)]) -> Result<(String, Vec<String>), InterpolationError> {
        let m: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut missing = Vec::new();
        let out = interpolate(s, &|k| m.get(k).cloned(), &mut |k| {
            missing.push(k.to_string())
        })?;
        Ok((out, missing))
    }

    #[test]
    fn plain_and_braced_variables_are_substituted() {
        let env = [("TAG", "1.2"), ("NAME", "web")];
        assert_eq!(run("img:$TAG", &env).unwrap().0, "img:1.2");
        assert_eq!(run("${NAME}-x:${TAG}", &env).unwrap().0, "web-x:1.2");
        assert_eq!(run("$NAME.conf", &env).unwrap().0, "web.conf");
        assert_eq!(run("no vars", &env).unwrap().0, "no vars");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(run("echo $$HOME $${X}", &[]).unwrap().0, "echo $HOME ${X}");
    }

    #[test]
    fn defaults_apply_to_unset_and_with_colon_to_empty() {
        let env = [("EMPTY", "")];
        assert_eq!(run("${U:-d}", &env).unwrap().0, "d");
        assert_eq!(run("${U-d}", &env).unwrap().0, "d");
        assert_eq!(run("${EMPTY:-d}", &env).unwrap().0, "d");
        assert_eq!(run("${EMPTY-d}", &env).unwrap().0, "");
        assert_eq!(run("${U:-${V:-nested}}", &env).unwrap().0, "nested");
    }

    #[test]
    fn replacement_applies_only_when_set() {
        let env = [("SET", "x"), ("EMPTY", "")];
        assert_eq!(run("${SET:+yes}", &env).unwrap().0, "yes");
        assert_eq!(run("${U:+yes}", &env).unwrap().0, "");
        assert_eq!(run("${EMPTY:+yes}", &env).unwrap().0, "");
        assert_eq!(run("${EMPTY+yes}", &env).unwrap().0, "yes");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let e = run("${DB_PASS:?set a password}", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable DB_PASS is missing a value: set a password"
        );
        assert!(run("${E:?}", &[("E", "")]).is_err());
        assert_eq!(run("${E?}", &[("E", "")]).unwrap().0, "");
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported() {
        let (out, missing) = run("a${X}b$Y", &[]).unwrap();
        assert_eq!(out, "ab");
        assert_eq!(missing, vec!["X", "Y"]);
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["${", "${X", "${1X}", "${X!y}", "$ alone", "${}"] {
            assert!(
                matches!(run(bad, &[]), Err(InterpolationError::Syntax { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn trees_are_interpolated_and_errors_name_the_path() {
        let mut doc: Value = yaml_serde::from_str(
            "services:\n  web:\n    image: \"busybox:${TAG}\"\n    ports: [\"${P:?no port}:80\"]\n",
        )
        .unwrap();
        let lookup = |k: &str| (k == "TAG").then(|| "1".to_string());
        let err = interpolate_tree(&mut doc, "", &lookup, &mut |_| {}).unwrap_err();
        assert_eq!(err.0, "services.web.ports[0]");
        let mut doc: Value =
            yaml_serde::from_str("services:\n  web:\n    image: \"busybox:${TAG}\"\n").unwrap();
        interpolate_tree(&mut doc, "", &lookup, &mut |_| {}).unwrap();
        assert_eq!(doc["services"]["web"]["image"].as_str(), Some("busybox:1"));
    }
}
