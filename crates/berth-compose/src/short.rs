//! The short syntaxes of `ports` (`"127.0.0.1:8080-8081:80-81/udp"`) and `volumes`
//! (`"./data:/data:ro"`), read into their long forms ([`PortConfig`], [`ServiceVolume`]).

use crate::de;
use crate::model::{BindOptions, PortConfig, ServiceVolume, VolumeOptions};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn range(s: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| -> Result<u32, String> {
        p.parse::<u32>()
            .ok()
            .filter(|n| (1..=65535).contains(n))
            .ok_or_else(|| format!("invalid port {p:?}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}"));
            }
            Ok((a, b))
        }
        None => parse(s).map(|p| (p, p)),
    }
}

/// Parses `[[ip:][host[-range]]:]container[-range][/protocol]`.
pub fn parse_port(spec: &str) -> Result<Vec<PortConfig>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {protocol:?} in port {spec:?}"));
    }
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| format!("invalid port {spec:?}"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port {spec:?}"))?;
        (Some(ip.to_string()), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [i, h, c]) => (Some(i.to_string()), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err(format!("invalid port {spec:?}")),
    };
    let host = host.filter(|h| !h.is_empty());
    let (c0, c1) = range(container).map_err(|e| format!("{e} in {spec:?}"))?;
    let mut out = Vec::new();
    let one = |target: u32, published: Option<String>| PortConfig {
        name: None,
        target: target as u16,
        published,
        host_ip: ip.clone().filter(|i| !i.is_empty()),
        protocol: protocol.clone(),
        mode: None,
        app_protocol: None,
    };
    match host {
        None => {
            for p in c0..=c1 {
                out.push(one(p, None));
            }
        }
        Some(h) => {
            let (h0, h1) = range(h).map_err(|e| format!("{e} in {spec:?}"))?;
            if c0 == c1 {
                let published = if h0 == h1 {
                    h0.to_string()
                } else {
                    format!("{h0}-{h1}")
                };
                out.push(one(c0, Some(published)));
            } else if h1 - h0 == c1 - c0 {
                for k in 0..=(c1 - c0) {
                    out.push(one(c0 + k, Some((h0 + k).to_string())));
                }
            } else {
                return Err(format!(
                    "invalid port {spec:?}: host and container port ranges differ in size"
                ));
            }
        }
    }
    Ok(out)
}

pub fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortConfig>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(de::expected("a list", &other)),
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Number(n) => out.extend(parse_port(&n.to_string()).map_err(D::Error::custom)?),
            Value::String(s) => out.extend(parse_port(&s).map_err(D::Error::custom)?),
            v @ Value::Object(_) => out.push(de::from_value(v)?),
            other => return Err(de::expected("a port", &other)),
        }
    }
    Ok(out)
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

const PROPAGATION: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// Parses `[source:]target[:mode,...]`.
pub fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let is_mode = |m: &str| {
        m.split(',').all(|o| {
            matches!(
                o,
                "ro" | "rw" | "z" | "Z" | "nocopy" | "cached" | "delegated" | "consistent"
            ) || PROPAGATION.contains(&o)
        })
    };
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [t, m] if t.starts_with('/') && is_mode(m) && !m.is_empty() => (None, *t, Some(*m)),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(format!("invalid volume specification: {spec:?}")),
    };
    if target.is_empty() {
        return Err(format!(
            "invalid volume specification: {spec:?}: empty target"
        ));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume specification: {spec:?}: the target must be an absolute path"
        ));
    }
    let source = source.filter(|s| !s.is_empty());
    let kind = match source {
        Some(s) if is_path(s) => "bind",
        _ => "volume",
    };
    let mut v = ServiceVolume {
        kind: kind.into(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: false,
        consistency: None,
        bind: None,
        volume: None,
        tmpfs: None,
    };
    if kind == "bind" {
        v.bind = Some(BindOptions {
            create_host_path: Some(true),
            ..Default::default()
        });
    }
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" => {
                v.bind.get_or_insert_with(Default::default).selinux = Some(opt.to_string())
            }
            "nocopy" => {
                v.volume = Some(VolumeOptions {
                    nocopy: true,
                    subpath: None,
                })
            }
            "cached" | "delegated" | "consistent" => v.consistency = Some(opt.to_string()),
            p if PROPAGATION.contains(&p) => {
                v.bind.get_or_insert_with(Default::default).propagation = Some(p.to_string())
            }
            other => {
                return Err(format!(
                    "invalid volume specification: {spec:?}: unknown mode {other:?}"
                ))
            }
        }
    }
    Ok(v)
}

pub fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(de::expected("a list", &other)),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => parse_volume(&s).map_err(D::Error::custom),
            v @ Value::Object(_) => {
                let v: ServiceVolume = de::from_value(v)?;
                if !matches!(
                    v.kind.as_str(),
                    "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | "image"
                ) {
                    return Err(D::Error::custom(format!(
                        "invalid volume type {:?}",
                        v.kind
                    )));
                }
                Ok(v)
            }
            other => Err(de::expected("a volume", &other)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(target: u16, published: Option<&str>, ip: Option<&str>, proto: &str) -> PortConfig {
        PortConfig {
            name: None,
            target,
            published: published.map(str::to_string),
            host_ip: ip.map(str::to_string),
            protocol: proto.into(),
            mode: None,
            app_protocol: None,
        }
    }

    #[test]
    fn short_ports_in_all_their_forms() {
        assert_eq!(
            parse_port("3000").unwrap(),
            vec![port(3000, None, None, "tcp")]
        );
        assert_eq!(
            parse_port("8052:80").unwrap(),
            vec![port(80, Some("8052"), None, "tcp")]
        );
        assert_eq!(
            parse_port("127.0.0.1:8001:8001/udp").unwrap(),
            vec![port(8001, Some("8001"), Some("127.0.0.1"), "udp")]
        );
        assert_eq!(
            parse_port("127.0.0.1::5000").unwrap(),
            vec![port(5000, None, Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            parse_port("[::1]:6001:6001").unwrap(),
            vec![port(6001, Some("6001"), Some("::1"), "tcp")]
        );
        assert_eq!(
            parse_port("9090-9091:8080-8081").unwrap(),
            vec![
                port(8080, Some("9090"), None, "tcp"),
                port(8081, Some("9091"), None, "tcp")
            ]
        );
        assert_eq!(
            parse_port("9090-9091:8080").unwrap(),
            vec![port(8080, Some("9090-9091"), None, "tcp")]
        );
        assert_eq!(parse_port("3000-3001").unwrap().len(), 2);
    }

    #[test]
    fn bad_ports_are_refused() {
        for bad in [
            "",
            "x",
            "70000",
            "80/icmp",
            "1:2:3:4",
            "9090-9092:80-81",
            "5-1",
        ] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_volumes_are_binds_named_or_anonymous() {
        let v = parse_volume("./config:/etc/gitlab").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_deref()),
            ("bind", Some("./config"))
        );
        assert_eq!(v.bind.unwrap().create_host_path, Some(true));
        let v = parse_volume("data:/var/lib/db:ro,nocopy").unwrap();
        assert_eq!((v.kind.as_str(), v.read_only), ("volume", true));
        assert!(v.volume.unwrap().nocopy);
        let v = parse_volume("/cache").unwrap();
        assert_eq!((v.kind.as_str(), v.source), ("volume", None));
        let v = parse_volume("/host:/ctr:rshared").unwrap();
        assert_eq!(v.bind.unwrap().propagation.as_deref(), Some("rshared"));
        let v = parse_volume("/anon:ro").unwrap();
        assert!(v.read_only && v.source.is_none());
    }

    #[test]
    fn bad_volumes_are_refused() {
        for bad in ["a:b", "a:/b:bogus", "a:/b:c:d", ""] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }
}
