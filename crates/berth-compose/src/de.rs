//! The shapes a Compose key may take, each read into one canonical form: strings or lists
//! (`dns: 8.8.8.8`), maps or `KEY=VALUE` lists (`environment`), numbers given as strings
//! after interpolation (`replicas: "${N}"`), byte sizes (`shm_size: 256m`) and durations
//! (`interval: 1m30s`). The model's fields name these functions in `deserialize_with`, and
//! serialize the canonical form, which these functions accept back.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub(crate) fn expected<E: serde::de::Error>(what: &str, v: &Value) -> E {
    E::custom(format!("must be {what}, not {}", kind(v)))
}

/// A value given in YAML, read leniently: the model's nested objects go through here so
/// that their own unknown keys are errors too.
pub(crate) fn from_value<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    v: Value,
) -> Result<T, E> {
    serde_json::from_value(v)
        .map_err(|e| E::custom(crate::load::unknown_key_message(&e.to_string())))
}

pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        v => scalar(&v).map(Some).ok_or_else(|| expected("a string", &v)),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "n" | "off" | "0" | "" => Ok(Some(false)),
            _ => Err(expected("a boolean", &v)),
        },
        _ => Err(expected("a boolean", &v)),
    }
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| expected("an integer", &v)),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be an integer, not {s:?}"))),
        _ => Err(expected("an integer", &v)),
    }
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match opt_i64(d)? {
        Some(n) if n < 0 => Err(D::Error::custom(format!("must not be negative, not {n}"))),
        other => Ok(other.map(|n| n as u64)),
    }
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be a number, not {s:?}"))),
        _ => Err(expected("a number", &v)),
    }
}

/// go-units' `RAMInBytes`: `256m`, `1.5g`, `512kb`, `100` (binary multiples).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: {s:?}"))?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: {s:?}")),
    };
    Ok((n * mult) as u64)
}

pub fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| expected("a size", &v)),
        Value::String(s) => parse_bytes(s).map(Some).map_err(D::Error::custom),
        _ => Err(expected("a size like 256m", &v)),
    }
}

/// A duration, kept in nanoseconds and written as Go writes `time.Duration` (`1m30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("invalid duration \"\"".into());
        }
        if let Ok(secs) = t.parse::<f64>() {
            return Ok(Duration((secs * 1e9) as i64));
        }
        let mut total = 0f64;
        let mut rest = t;
        while !rest.is_empty() {
            let n_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("invalid duration {s:?}: missing unit"))?;
            let n: f64 = rest[..n_end]
                .parse()
                .map_err(|_| format!("invalid duration {s:?}"))?;
            rest = &rest[n_end..];
            let u_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = match &rest[..u_end] {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(format!("invalid duration {s:?}: unknown unit")),
            };
            total += n * unit;
            rest = &rest[u_end..];
        }
        Ok(Duration(total as i64))
    }

    pub fn as_secs(&self) -> i64 {
        self.0 / 1_000_000_000
    }
}

impl std::fmt::Display for Duration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return write!(f, "0s");
        }
        let neg = if ns < 0 { "-" } else { "" };
        let u = ns.unsigned_abs();
        if u < 1_000 {
            return write!(f, "{neg}{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{neg}{}µs", trim_float(u as f64 / 1e3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{neg}{}ms", trim_float(u as f64 / 1e6));
        }
        let secs = u as f64 / 1e9;
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = secs - (h * 3600 + m * 60) as f64;
        if h > 0 {
            write!(f, "{neg}{h}h{m}m{}s", trim_float(s))
        } else if m > 0 {
            write!(f, "{neg}{m}m{}s", trim_float(s))
        } else {
            write!(f, "{neg}{}s", trim_float(s))
        }
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Number(n) => Ok(Duration((n.as_f64().unwrap_or(0.0) * 1e9) as i64)),
            Value::String(s) => Duration::parse(s).map_err(D::Error::custom),
            _ => Err(expected("a duration like 10s", &v)),
        }
    }
}

/// A string or a list of strings (`dns`, `tmpfs`, `env_file` names, `profiles`).
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| expected("a string", i)))
            .collect(),
        other => scalar(&other)
            .map(|s| vec![s])
            .ok_or_else(|| expected("a string or a list of strings", &other)),
    }
}

/// `command` and `entrypoint`: a list as given, or a string split as a shell would.
pub fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::String(s) => shell_words::split(&s)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("cannot split {s:?}: {e}"))),
        Value::Array(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| expected("a string", i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(expected("a string or a list", &other)),
    }
}

/// `environment`, `build.args`: a mapping (`K: v`, `K:` with no value) or a list
/// (`K=v`, `K`).
pub fn env_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k, None)),
                v => scalar(&v).map(|s| (k.clone(), Some(s))).ok_or_else(|| {
                    D::Error::custom(format!("{k}: {}", expected::<D::Error>("a string", &v)))
                }),
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i).ok_or_else(|| expected::<D::Error>("a string", i))?;
                Ok(match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                })
            })
            .collect(),
        other => Err(expected("a mapping or a list", &other)),
    }
}

/// `labels`, `driver_opts`, `sysctls`: a mapping or a `K=v` list; a missing value is "".
pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(env_map(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `extra_hosts`: `host:ip` / `host=ip` list entries, or a `host: ip` mapping, as the
/// Engine's `host:ip`.
pub fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Array(ips) => Ok(ips
                    .iter()
                    .filter_map(scalar)
                    .map(|ip| format!("{k}:{ip}"))
                    .collect::<Vec<_>>()),
                v => scalar(&v)
                    .map(|ip| vec![format!("{k}:{ip}")])
                    .ok_or_else(|| expected("an address", &v)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i).ok_or_else(|| expected::<D::Error>("a string", i))?;
                Ok(match s.split_once('=') {
                    Some((h, ip)) => format!("{h}:{ip}"),
                    None => s,
                })
            })
            .collect(),
        other => Err(expected("a list or a mapping", &other)),
    }
}

/// Reads a mapping whose values may be null into `T::default()`.
pub fn map_of_optional<'de, D: Deserializer<'de>, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    T: serde::de::DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| {
                let t = match v {
                    Value::Null => T::default(),
                    v => from_value::<T, D::Error>(v)
                        .map_err(|e| D::Error::custom(format!("{k}: {e}")))?,
                };
                Ok((k, t))
            })
            .collect(),
        other => Err(expected("a mapping", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!(parse_bytes("256m").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1.5GB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("12q").is_err());
    }

    #[test]
    fn durations_parse_and_print_like_go() {
        assert_eq!(Duration::parse("1m30s").unwrap().0, 90_000_000_000);
        assert_eq!(Duration::parse("1.5s").unwrap().0, 1_500_000_000);
        assert_eq!(Duration::parse("300ms").unwrap().to_string(), "300ms");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
        assert_eq!(Duration::parse("2h").unwrap().to_string(), "2h0m0s");
        assert_eq!(Duration::parse("10").unwrap().to_string(), "10s");
        assert!(Duration::parse("10 parsecs").is_err());
    }
}
