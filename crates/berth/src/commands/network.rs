//! `network create|ls|inspect|rm|prune|connect|disconnect`: requests to `/networks`, IPAM
//! configuration consolidated per subnet as docker's `createIPAMConfig` does, rows as
//! docker's network formatter computes them (`NETWORK ID   NAME      DRIVER    SCOPE`).

use super::volume::print_prune_report;
use super::{
    confirm, esc, exit_status, filters_json, inspect, kv_options, labels_map, labels_string,
    labels_value, list_format, sort_natural_by, Ctx,
};
use crate::client::{version_lt, ClientError};
use crate::flags::Parsed;
use crate::template::{map, render_rows, str_value, Format};
use gotmpl::Value;
use serde_json::{json, Value as Json};
use std::net::IpAddr;

/// pflag's `strings` flags: every value split at commas.
pub fn string_slice(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(',').map(str::to_string))
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn prefix_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// docker's `subnetMatches`: whether `data` (an address or CIDR) lies inside `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> anyhow::Result<bool> {
    let (net, len) = parse_cidr(subnet)
        .ok_or_else(|| anyhow::anyhow!("invalid subnet: invalid CIDR address: {subnet}"))?;
    let ip = if data.contains('/') {
        parse_cidr(data)
            .ok_or_else(|| anyhow::anyhow!("invalid CIDR address: {data}"))?
            .0
    } else {
        match data.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(false),
        }
    };
    if net.is_ipv4() != ip.is_ipv4() {
        return Ok(false);
    }
    let width = if net.is_ipv4() { 32 } else { 128 };
    let shift = width - len as u32;
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    Ok(prefix_bits(net) & mask == prefix_bits(ip) & mask)
}

/// The IPAM section of `POST /networks/create` (docker's `createIPAMConfig`).
pub fn ipam_config(
    driver: &str,
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[(String, String)],
    opts: Json,
) -> anyhow::Result<Json> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    struct Cfg {
        subnet: String,
        range: String,
        gateway: String,
        aux: serde_json::Map<String, Json>,
    }
    let mut data: Vec<Cfg> = Vec::new();
    for s in subnets {
        for d in &data {
            if subnet_matches(s, &d.subnet)? || subnet_matches(&d.subnet, s)? {
                anyhow::bail!("multiple overlapping subnet configuration is not supported");
            }
        }
        data.push(Cfg {
            subnet: s.clone(),
            range: String::new(),
            gateway: String::new(),
            aux: Default::default(),
        });
    }
    for r in ranges {
        let mut matched = false;
        for d in data.iter_mut() {
            if !subnet_matches(&d.subnet, r)? {
                continue;
            }
            if !d.range.is_empty() {
                anyhow::bail!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                    d.range,
                    d.subnet
                );
            }
            d.range = r.clone();
            matched = true;
        }
        if !matched {
            anyhow::bail!("no matching subnet for range {r}");
        }
    }
    for g in gateways {
        let mut matched = false;
        for d in data.iter_mut() {
            if !subnet_matches(&d.subnet, g)? {
                continue;
            }
            if !d.gateway.is_empty() {
                anyhow::bail!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                    d.gateway,
                    d.subnet
                );
            }
            d.gateway = g.clone();
            matched = true;
        }
        if !matched {
            anyhow::bail!("no matching subnet for gateway {g}");
        }
    }
    for (k, a) in aux {
        let mut matched = false;
        for d in data.iter_mut() {
            if !subnet_matches(&d.subnet, a)? {
                continue;
            }
            d.aux.insert(k.clone(), json!(a));
            matched = true;
        }
        if !matched {
            anyhow::bail!("no matching subnet for aux-address {a}");
        }
    }
    let config: Vec<Json> = data
        .into_iter()
        .map(|d| {
            let mut m = serde_json::Map::new();
            m.insert("Subnet".into(), json!(d.subnet));
            if !d.range.is_empty() {
                m.insert("IPRange".into(), json!(d.range));
            }
            if !d.gateway.is_empty() {
                m.insert("Gateway".into(), json!(d.gateway));
            }
            if !d.aux.is_empty() {
                m.insert("AuxiliaryAddresses".into(), Json::Object(d.aux));
            }
            Json::Object(m)
        })
        .collect();
    Ok(json!({"Driver": driver, "Options": opts, "Config": config}))
}

fn map_pairs(values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| {
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            (k.to_string(), val.to_string())
        })
        .collect()
}

/// The body of `POST /networks/create` for `network create` flags at an API version.
pub fn create_body(p: &Parsed, api: &str) -> anyhow::Result<Json> {
    let ipam = ipam_config(
        &p.string("ipam-driver"),
        &string_slice(&p.list("subnet")),
        &string_slice(&p.list("ip-range")),
        &string_slice(&p.list("gateway")),
        &map_pairs(&p.list("aux-address")),
        kv_options(&p.list("ipam-opt")),
    )?;
    let mut b = serde_json::Map::new();
    b.insert("Name".into(), json!(p.args[0]));
    b.insert("Driver".into(), json!(p.string("driver")));
    b.insert("Scope".into(), json!(p.string("scope")));
    if p.changed("ipv4") {
        b.insert("EnableIPv4".into(), json!(p.bool("ipv4")));
    }
    if p.changed("ipv6") {
        b.insert("EnableIPv6".into(), json!(p.bool("ipv6")));
    }
    b.insert("IPAM".into(), ipam);
    b.insert("Internal".into(), json!(p.bool("internal")));
    b.insert("Attachable".into(), json!(p.bool("attachable")));
    b.insert("Ingress".into(), json!(p.bool("ingress")));
    b.insert("ConfigOnly".into(), json!(p.bool("config-only")));
    let from = p.string("config-from");
    b.insert(
        "ConfigFrom".into(),
        if from.is_empty() {
            Json::Null
        } else {
            json!({ "Network": from })
        },
    );
    b.insert("Options".into(), kv_options(&p.list("opt")));
    b.insert("Labels".into(), labels_map(&p.list("label"), "--label")?);
    if version_lt(api, "1.44") {
        b.insert("CheckDuplicate".into(), json!(true));
    }
    Ok(Json::Object(b))
}

pub async fn create(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let body = create_body(p, client.version())?;
    let v = client
        .post_json("/networks/create", &[], Some(&body))
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// Go's `time.Time.String()` of an RFC 3339 timestamp as the daemon sends it:
/// `2024-01-02 15:04:05.123456789 +0000 UTC` (fraction trimmed, zone kept).
pub fn go_time_string_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let off = t.offset().local_minus_utc();
    let zone = if off == 0 && (s.ends_with('Z') || s.ends_with('z')) {
        "UTC".to_string()
    } else {
        t.format("%z").to_string()
    };
    format!(
        "{}{frac} {} {zone}",
        t.format("%Y-%m-%d %H:%M:%S"),
        t.format("%z")
    )
}

/// One `network ls` row.
pub fn network_row(n: &Json, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let b = |k: &str| str_value(n[k].as_bool().unwrap_or(false).to_string());
    map([
        (
            "ID",
            str_value(if trunc {
                super::list::truncate_id(id)
            } else {
                id.to_string()
            }),
        ),
        ("Name", str_value(n["Name"].as_str().unwrap_or(""))),
        ("Driver", str_value(n["Driver"].as_str().unwrap_or(""))),
        ("Scope", str_value(n["Scope"].as_str().unwrap_or(""))),
        ("IPv4", b("EnableIPv4")),
        ("IPv6", b("EnableIPv6")),
        ("Internal", b("Internal")),
        ("Labels", str_value(labels_string(&n["Labels"]))),
        (
            "CreatedAt",
            str_value(go_time_string_rfc3339(n["Created"].as_str().unwrap_or(""))),
        ),
        ("__labels", labels_value(&n["Labels"])),
    ])
}

fn network_headers() -> Value {
    map([
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

/// Renders `network ls` output for the daemon's network list.
pub fn render_list(
    networks: &[Json],
    user_format: &str,
    quiet: bool,
    trunc: bool,
) -> anyhow::Result<String> {
    let mut nets = networks.to_vec();
    sort_natural_by(&mut nets, "Name");
    let format = list_format(
        user_format,
        quiet,
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        "{{.ID}}",
        if quiet {
            "network_id: {{.ID}}"
        } else {
            "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
        },
    );
    let rows: Vec<Value> = nets.iter().map(|n| network_row(n, trunc)).collect();
    render_rows(&Format::new(&format), &network_headers(), &rows)
}

pub async fn ls(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(f) = filters_json(&p.list("filter"))? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let v = client.get_json("/networks", &q).await?;
    let nets = v.as_array().cloned().unwrap_or_default();
    print!(
        "{}",
        render_list(
            &nets,
            &p.string("format"),
            p.bool("quiet"),
            !p.bool("no-trunc")
        )?
    );
    Ok(())
}

pub async fn rm(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let force = p.bool("force");
    let mut failed = false;
    for name in &p.args {
        // docker inspects first to prompt before removing an ingress network.
        if let Ok(n) = client
            .get_json(&format!("/networks/{}", esc(name)), &[])
            .await
        {
            if n["Ingress"].as_bool() == Some(true)
                && !confirm("WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.\nAre you sure you want to continue?")
            {
                continue;
            }
        }
        match client
            .delete(&format!("/networks/{}", esc(name)), &[])
            .await
        {
            Ok(_) => println!("{name}"),
            Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                return Err(e.into())
            }
            Err(e) if force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(exit_status(1))
    } else {
        Ok(())
    }
}

pub async fn prune(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let filters = filters_json(&p.list("filter"))?;
    if !p.bool("force")
        && !confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?")
    {
        return Ok(());
    }
    let client = ctx.client().await?.clone();
    let q: Vec<(&str, String)> = filters.map(|f| vec![("filters", f)]).unwrap_or_default();
    let v = client.post_json("/networks/prune", &q, None).await?;
    let deleted: Vec<String> = v["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    print_prune_report("Deleted Networks", &deleted, None);
    Ok(())
}

/// The body of `POST /networks/{id}/connect` (an `EndpointSettings` as docker sends it).
pub fn connect_body(p: &Parsed, container: &str) -> anyhow::Result<Json> {
    let mut ipam = serde_json::Map::new();
    if !p.string("ip").is_empty() {
        ipam.insert("IPv4Address".into(), json!(p.string("ip")));
    }
    if !p.string("ip6").is_empty() {
        ipam.insert("IPv6Address".into(), json!(p.string("ip6")));
    }
    let lla = string_slice(&p.list("link-local-ip"));
    if !lla.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(lla));
    }
    let mut driver_opts = serde_json::Map::new();
    for o in string_slice(&p.list("driver-opt")) {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                driver_opts.insert(k.trim().to_string(), json!(v.trim()));
            }
            _ => anyhow::bail!("invalid key/value pair format in driver options"),
        }
    }
    let links = p.list("link");
    let prio = p.string("gw-priority");
    let prio: i64 = if prio.is_empty() {
        0
    } else {
        prio.parse().map_err(|_| {
            crate::opts::InvalidArgument(format!("invalid argument \"{prio}\" for \"--gw-priority\" flag: strconv.ParseInt: parsing \"{prio}\": invalid syntax"))
        })?
    };
    Ok(json!({
        "Container": container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": if links.is_empty() { Json::Null } else { json!(links) },
            "Aliases": string_slice(&p.list("alias")),
            "MacAddress": "",
            "DriverOpts": driver_opts,
            "GwPriority": prio,
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": null,
        }
    }))
}

pub async fn connect(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let body = connect_body(p, &p.args[1])?;
    let client = ctx.client().await?.clone();
    client
        .post(
            &format!("/networks/{}/connect", esc(&p.args[0])),
            &[],
            Some(&body),
        )
        .await?;
    Ok(())
}

pub async fn disconnect(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let body = json!({"Container": p.args[1], "Force": p.bool("force")});
    let client = ctx.client().await?.clone();
    client
        .post(
            &format!("/networks/{}/disconnect", esc(&p.args[0])),
            &[],
            Some(&body),
        )
        .await?;
    Ok(())
}

pub async fn inspect_cmd(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    inspect::inspect_typed(
        ctx,
        &p.args,
        &p.string("format"),
        inspect::Kind::Network,
        p.bool("verbose"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], flags: &[(&'static str, &str)]) -> Parsed {
        let mut p = Parsed::default();
        p.args = args.iter().map(|s| s.to_string()).collect();
        p.set("driver", "bridge");
        p.set("ipam-driver", "default");
        for (k, v) in flags {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn create_consolidates_ranges_and_gateways_under_their_subnet() {
        let p = parsed(
            &["n1"],
            &[
                ("subnet", "10.5.0.0/16"),
                ("gateway", "10.5.0.1"),
                ("ip-range", "10.5.1.0/24"),
                ("label", "x=y"),
                ("opt", "com.docker.network.bridge.name=br5"),
            ],
        );
        let b = create_body(&p, "1.50").unwrap();
        assert_eq!(
            b["IPAM"],
            json!({"Driver": "default", "Options": {}, "Config": [
                {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1"}
            ]})
        );
        assert_eq!(b["Labels"], json!({"x": "y"}));
        assert_eq!(b["Options"]["com.docker.network.bridge.name"], "br5");
        assert!(b.get("CheckDuplicate").is_none());
        assert!(b.get("EnableIPv6").is_none());
        assert_eq!(create_body(&p, "1.41").unwrap()["CheckDuplicate"], true);
    }

    #[test]
    fn create_sends_ipv6_only_when_given() {
        let b = create_body(&parsed(&["n"], &[("ipv6", "false")]), "1.50").unwrap();
        assert_eq!(b["EnableIPv6"], false);
        assert_eq!(b["IPAM"]["Config"], json!([]));
    }

    #[test]
    fn create_rejects_gateways_outside_every_subnet_and_overlaps() {
        let e = create_body(
            &parsed(&["n"], &[("subnet", "10.0.0.0/8"), ("gateway", "11.0.0.1")]),
            "1.50",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "no matching subnet for gateway 11.0.0.1");
        let e = create_body(&parsed(&["n"], &[("gateway", "11.0.0.1")]), "1.50").unwrap_err();
        assert_eq!(
            e.to_string(),
            "every ip-range or gateway must have a corresponding subnet"
        );
        let e = create_body(
            &parsed(&["n"], &[("subnet", "10.0.0.0/8,10.1.0.0/16")]),
            "1.50",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "multiple overlapping subnet configuration is not supported"
        );
    }

    #[test]
    fn connect_sends_ipam_config_and_aliases() {
        let p = parsed(
            &["n3", "c1"],
            &[("ip", "10.9.0.5"), ("alias", "a1,a2"), ("link", "db:db")],
        );
        let b = connect_body(&p, "c1").unwrap();
        assert_eq!(b["Container"], "c1");
        assert_eq!(
            b["EndpointConfig"]["IPAMConfig"],
            json!({"IPv4Address": "10.9.0.5"})
        );
        assert_eq!(b["EndpointConfig"]["Aliases"], json!(["a1", "a2"]));
        assert_eq!(b["EndpointConfig"]["Links"], json!(["db:db"]));
        let b = connect_body(&parsed(&["n", "c"], &[]), "c").unwrap();
        assert_eq!(b["EndpointConfig"]["IPAMConfig"], json!({}));
        assert_eq!(b["EndpointConfig"]["Aliases"], json!([]));
        assert_eq!(b["EndpointConfig"]["Links"], Json::Null);
    }

    #[test]
    fn ls_prints_docker_table_sorted_by_name() {
        let nets = vec![
            json!({"Id": "c9be811fa2d7e62dd3caf44a901e2cf7", "Name": "bridge", "Driver": "bridge", "Scope": "local"}),
            json!({"Id": "b528e785bc4b89f241b0d33d348715b2", "Name": "none", "Driver": "null", "Scope": "local"}),
            json!({"Id": "be0fe785177d413a56a5b5710ecdb575", "Name": "host", "Driver": "host", "Scope": "local"}),
        ];
        assert_eq!(
            render_list(&nets, "", false, true).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             c9be811fa2d7   bridge    bridge    local\n\
             be0fe785177d   host      host      local\n\
             b528e785bc4b   none      null      local\n"
        );
    }

    #[test]
    fn created_at_prints_like_go_time_string() {
        assert_eq!(
            go_time_string_rfc3339("2026-11-22T09:29:05.060680309Z"),
            "2026-11-22 09:29:05.060680309 +0000 UTC"
        );
        assert_eq!(
            go_time_string_rfc3339("2026-11-22T09:29:05.5+02:00"),
            "2026-11-22 09:29:05.5 +0200 +0200"
        );
    }
}
