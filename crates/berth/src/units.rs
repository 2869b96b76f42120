//! Docker's `go-units` and Go's number and duration formats: `4.26MB`, `512m`, `1h30m`.

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, exponent
/// form when the exponent is below -4 or not below the precision.
pub fn go_g(x: f64, precision: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `units.HumanSizeWithPrecision`: decimal units (`1.98MB`).
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < DECIMAL_ABBRS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), DECIMAL_ABBRS[i])
}

/// `units.HumanSize`: four significant digits.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

fn parse_size(s: &str, binary: bool) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing \"{num}\": invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let l = sfx.to_lowercase();
    let b = l.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad())
        } else {
            Ok(size as i64)
        };
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let pow = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &l[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * base.powi(pow)) as i64)
}

/// `units.RAMInBytes`: `512m` is 512 MiB.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    parse_size(s, true)
}

/// `--memory-swap`: `-1` means unlimited, anything else is a RAM size.
pub fn mem_swap(s: &str) -> Result<i64, String> {
    if s == "-1" {
        Ok(-1)
    } else {
        ram_in_bytes(s)
    }
}

/// `--cpus 1.5` as nano CPUs, rejecting values finer than a nano CPU as docker does.
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let f: f64 = s
        .parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))?;
    let nano = f * 1e9;
    if (nano - nano.round()).abs() > 1e-6 {
        return Err("value is too precise".to_string());
    }
    Ok(nano.round() as i64)
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += n * mult;
    }
    let v = total.round() as i64;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_use_decimal_units_and_significant_digits() {
        assert_eq!(human_size_precision(1_981_234.0, 3), "1.98MB");
        assert_eq!(human_size_precision(4_261_000.0, 3), "4.26MB");
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(512.0, 3), "512B");
        assert_eq!(human_size_precision(123_456.0, 3), "123kB");
        assert_eq!(human_size_precision(999_999.0, 3), "1e+03kB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(human_size(5.0), "5B");
    }

    #[test]
    fn go_g_switches_to_exponent_like_go() {
        assert_eq!(go_g(0.0001, 3), "0.0001");
        assert_eq!(go_g(0.00001, 3), "1e-05");
        assert_eq!(go_g(12.5, 3), "12.5");
        assert_eq!(go_g(100.0, 3), "100");
    }

    #[test]
    fn ram_sizes_are_binary_and_human_sizes_decimal() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("12x").unwrap_err(), "invalid suffix: 'x'");
        assert_eq!(ram_in_bytes("m").unwrap_err(), "invalid size: 'm'");
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("0.000000001").unwrap(), 1);
        assert!(nano_cpus("abc").is_err());
    }

    #[test]
    fn go_durations_parse_compound_units() {
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400 * 1_000_000_000);
        assert_eq!(parse_go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_go_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert_eq!(
            parse_go_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert!(parse_go_duration("x").is_err());
    }
}
