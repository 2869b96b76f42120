//! The bits of Go formatting that Docker's history texts are made of (`%q` of strings,
//! slices and runes, `time.Duration` strings) and Go's duration syntax for `HEALTHCHECK`
//! options, so `docker history` reads the same for images built here.

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub fn quote_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
    )
}

/// `%v` of a `[]string`: `[a b]`.
pub fn plain_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// `%q` of an integer (Go formats it as a quoted rune: 0 → `'\x00'`, 65 → `'A'`).
pub fn quote_rune(n: i64) -> String {
    match n {
        7 => "'\\a'".into(),
        8 => "'\\b'".into(),
        9 => "'\\t'".into(),
        10 => "'\\n'".into(),
        11 => "'\\v'".into(),
        12 => "'\\f'".into(),
        13 => "'\\r'".into(),
        39 => "'\\''".into(),
        92 => "'\\\\'".into(),
        0..=31 | 127 => format!("'\\x{n:02x}'"),
        32..=126 => format!("'{}'", n as u8 as char),
        _ => match char::from_u32(n as u32) {
            Some(c) => format!("'{c}'"),
            None => "'\u{fffd}'".into(),
        },
    }
}

/// Go's `time.Duration.String()` of `ns` nanoseconds.
pub fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    let frac = |v: u64, scale: u64| -> String {
        let whole = v / scale;
        let rest = v % scale;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = scale.to_string().len() - 1;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 1_000_000));
    }
    let secs_ns = u % 60_000_000_000;
    let mins = (u / 60_000_000_000) % 60;
    let hours = u / 3_600_000_000_000;
    let s = format!("{}s", frac(secs_ns, 1_000_000_000));
    if hours > 0 {
        format!("{sign}{hours}h{mins}m{s}")
    } else if mins > 0 {
        format!("{sign}{mins}m{s}")
    } else {
        format!("{sign}{s}")
    }
}

/// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`, `10us`), in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut rest = s.trim();
    let neg = rest.starts_with('-');
    rest = rest.trim_start_matches(['-', '+']);
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    let v = total.round() as i64;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_lists_quote_like_go() {
        assert_eq!(quote("echo $A"), "\"echo $A\"");
        assert_eq!(quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(
            quote_list(&["sh".into(), "-c".into(), "echo $A".into()]),
            "[\"sh\" \"-c\" \"echo $A\"]"
        );
        assert_eq!(plain_list(&["/bin/sh".into(), "-c".into()]), "[/bin/sh -c]");
    }

    #[test]
    fn integers_quote_as_runes() {
        assert_eq!(quote_rune(0), "'\\x00'");
        assert_eq!(quote_rune(3), "'\\x03'");
        assert_eq!(quote_rune(10), "'\\n'");
        assert_eq!(quote_rune(65), "'A'");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(5_000_000_000), "5s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(500_000_000), "500ms");
        assert_eq!(duration(1_500_000), "1.5ms");
        assert_eq!(duration(2_000), "2µs");
        assert_eq!(duration(7), "7ns");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("10us"), Some(10_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
    }
}
