//! `stats`: per-container CPU, memory, network, block I/O and PIDs from
//! `GET /containers/{id}/stats`, computed as docker computes them, drawn as docker draws
//! them (one table with `--no-stream`; a redrawn table every 500 ms otherwise).

use super::{esc, Ctx};
use crate::client::ClientError;
use crate::flags::Parsed;
use crate::template::{map, str_value, Format, Renderer};
use gotmpl::Value;
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};

/// One container's figures (docker's `StatsEntry`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsEntry {
    pub container: String,
    pub name: String,
    pub id: String,
    pub cpu_percentage: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percentage: f64,
    pub network_rx: f64,
    pub network_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids_current: u64,
    pub is_invalid: bool,
}

fn u(v: &Json) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// CPU % as docker computes it: container delta / system delta × online CPUs × 100.
pub fn cpu_percent(v: &Json) -> f64 {
    let cpu = &v["cpu_stats"];
    let pre = &v["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let system_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut online = u(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0.0, |a| a.len() as f64);
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// Memory use without the page cache: usage minus `total_inactive_file` (cgroup v1) or
/// `inactive_file` (v2), when smaller than usage.
pub fn memory_usage_no_cache(mem: &Json) -> f64 {
    let usage = mem["usage"].as_u64().unwrap_or(0);
    let stats = &mem["stats"];
    if let Some(v) = stats.get("total_inactive_file").and_then(Json::as_u64) {
        if v < usage {
            return (usage - v) as f64;
        }
    }
    let v = stats
        .get("inactive_file")
        .and_then(Json::as_u64)
        .unwrap_or(0);
    if v < usage {
        return (usage - v) as f64;
    }
    usage as f64
}

/// Fills an entry from one stats JSON.
pub fn entry_from(v: &Json, container: &str) -> StatsEntry {
    let mem = memory_usage_no_cache(&v["memory_stats"]);
    let limit = u(&v["memory_stats"]["limit"]);
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"].as_object().into_iter().flatten() {
        rx += u(&n.1["rx_bytes"]);
        tx += u(&n.1["tx_bytes"]);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().and_then(|s| s.chars().next()) {
            Some('r' | 'R') => read += u(&e["value"]),
            Some('w' | 'W') => write += u(&e["value"]),
            _ => {}
        }
    }
    StatsEntry {
        container: container.to_string(),
        name: v["name"].as_str().unwrap_or("").to_string(),
        id: v["id"].as_str().unwrap_or("").to_string(),
        cpu_percentage: cpu_percent(v),
        memory: mem,
        memory_limit: limit,
        memory_percentage: if limit != 0.0 {
            mem / limit * 100.0
        } else {
            0.0
        },
        network_rx: rx,
        network_tx: tx,
        block_read: read,
        block_write: write,
        pids_current: v["pids_stats"]["current"].as_u64().unwrap_or(0),
        is_invalid: false,
    }
}

fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

/// One row as template data (docker's `statsContext`).
pub fn stats_row(s: &StatsEntry, trunc: bool) -> Value {
    let hs = |x: f64| crate::units::human_size_precision(x, 3);
    let bs = super::system::bytes_size;
    let inv = |text: &str, f: &dyn Fn() -> String| {
        if s.is_invalid {
            text.to_string()
        } else {
            f()
        }
    };
    let name = if s.name.len() > 1 {
        s.name[1..].to_string()
    } else {
        "--".to_string()
    };
    let id = if trunc {
        super::list::truncate_id(&s.id)
    } else {
        s.id.clone()
    };
    map([
        ("Container", str_value(s.container.as_str())),
        ("Name", str_value(name)),
        ("ID", str_value(id)),
        ("CPUPerc", str_value(inv("--", &|| pct(s.cpu_percentage)))),
        (
            "MemUsage",
            str_value(inv("-- / --", &|| {
                format!("{} / {}", bs(s.memory), bs(s.memory_limit))
            })),
        ),
        (
            "MemPerc",
            str_value(inv("--", &|| pct(s.memory_percentage))),
        ),
        (
            "NetIO",
            str_value(inv("--", &|| {
                format!("{} / {}", hs(s.network_rx), hs(s.network_tx))
            })),
        ),
        (
            "BlockIO",
            str_value(inv("--", &|| {
                format!("{} / {}", hs(s.block_read), hs(s.block_write))
            })),
        ),
        ("PIDs", str_value(inv("--", &|| s.pids_current.to_string()))),
    ])
}

fn stats_headers() -> Value {
    map([
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

/// The format `stats` renders.
pub fn stats_format(user: &str) -> String {
    match user {
        "" | "table" => {
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}".to_string()
        }
        f => f.to_string(),
    }
}

/// Renders the table once.
pub fn render(entries: &[StatsEntry], format: &str, trunc: bool) -> anyhow::Result<String> {
    let rows: Vec<Value> = entries.iter().map(|e| stats_row(e, trunc)).collect();
    crate::template::render_rows(&Format::new(&stats_format(format)), &stats_headers(), &rows)
}

/// One redraw of the streaming table, byte for byte as docker 28 writes it: the cursor homed and
/// the table, then every line of that text again with ` ESC[K` appended (docker splits its
/// buffer and appends to the same buffer, so the table goes out twice), then `ESC[J`.
pub fn redraw(text: &str) -> String {
    let first = format!("\x1b[H{text}");
    let mut out = first.clone();
    for line in first.split('\n') {
        out.push_str(line);
        out.push_str(" \x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
}

fn update(slot: &Mutex<StatsEntry>, v: &Json) {
    let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
    let container = s.container.clone();
    *s = entry_from(v, &container);
}

async fn collect(
    client: crate::client::Client,
    slot: Arc<Mutex<StatsEntry>>,
    id: String,
    stream: bool,
    first: tokio::sync::mpsc::Sender<()>,
) {
    let q = [("stream", if stream { "1" } else { "0" }.to_string())];
    let res = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{}/stats", esc(&id)),
            &q,
            crate::client::empty_body(),
            &[],
        )
        .await;
    let mut body = match res {
        Ok(r) => r.into_body(),
        Err(_) => {
            slot.lock().unwrap_or_else(|e| e.into_inner()).is_invalid = true;
            let _ = first.send(()).await;
            return;
        }
    };
    let mut buf = Vec::new();
    let mut sent = false;
    while let Some(Ok(chunk)) = crate::client::next_chunk(&mut body).await {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if let Ok(v) = serde_json::from_slice::<Json>(&line) {
                update(&slot, &v);
                if !sent {
                    sent = true;
                    let _ = first.send(()).await;
                }
            }
        }
    }
    if let Ok(v) = serde_json::from_slice::<Json>(&buf) {
        update(&slot, &v);
    }
    if !sent {
        let _ = first.send(()).await;
    }
}

pub async fn stats(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let format = p.string("format");
    let trunc = !p.bool("no-trunc");
    let no_stream = p.bool("no-stream");
    // Parse the template before any request, as docker fails early on a bad one.
    Renderer::for_format(&Format::new(&stats_format(&format)))?;
    let client = ctx.client().await?.clone();
    let mut targets: Vec<(String, String)> = Vec::new();
    let mut errs = Vec::new();
    if p.args.is_empty() {
        let q = if p.bool("all") {
            vec![("all", "1".to_string())]
        } else {
            vec![]
        };
        let list = client.get_json("/containers/json", &q).await?;
        for c in list.as_array().into_iter().flatten() {
            let id = c["Id"].as_str().unwrap_or("").to_string();
            targets.push((id.chars().take(12).collect(), id));
        }
    } else {
        for name in &p.args {
            match client
                .get_json(&format!("/containers/{}/json", esc(name)), &[])
                .await
            {
                Ok(v) => targets.push((name.clone(), v["Id"].as_str().unwrap_or(name).to_string())),
                Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                    return Err(e.into())
                }
                Err(e) => errs.push(e.to_string()),
            }
        }
        if !errs.is_empty() {
            anyhow::bail!("{}", errs.join("\n"));
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(targets.len().max(1));
    let mut slots = Vec::new();
    for (shown, id) in &targets {
        let slot = Arc::new(Mutex::new(StatsEntry {
            container: shown.clone(),
            ..Default::default()
        }));
        slots.push(slot.clone());
        tokio::spawn(collect(
            client.clone(),
            slot,
            id.clone(),
            !no_stream,
            tx.clone(),
        ));
    }
    drop(tx);
    let snapshot = |slots: &[Arc<Mutex<StatsEntry>>]| -> Vec<StatsEntry> {
        slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    };
    // Every container reports once (or fails) before anything is drawn.
    for _ in 0..targets.len() {
        if rx.recv().await.is_none() {
            break;
        }
    }
    if no_stream {
        print!("{}", render(&snapshot(&slots), &format, trunc)?);
        return Ok(());
    }
    let period = std::time::Duration::from_millis(500);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        let text = render(&snapshot(&slots), &format, trunc)?;
        // docker redraws with escape sequences whether or not stdout is a terminal.
        print!("{}", redraw(&text));
        use std::io::Write as _;
        std::io::stdout().flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Json {
        json!({
            "name": "/web", "id": "cb16c49227be0123456789",
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 10_485_760, "limit": 104_857_600, "stats": {"inactive_file": 2_097_152}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "read", "value": 4096}, {"op": "Write", "value": 8192}, {"op": "total", "value": 1}]},
            "pids_stats": {"current": 3}
        })
    }

    #[test]
    fn cpu_percent_scales_by_online_cpus() {
        // 0.2s of 10s system time on 2 CPUs.
        assert!((cpu_percent(&sample()) - 4.0).abs() < 1e-9);
        let mut v = sample();
        v["cpu_stats"]["online_cpus"] = json!(0);
        v["cpu_stats"]["cpu_usage"]["percpu_usage"] = json!([1, 2, 3, 4]);
        assert!((cpu_percent(&v) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn memory_excludes_inactive_file_cache() {
        assert_eq!(
            memory_usage_no_cache(&sample()["memory_stats"]),
            8_388_608.0
        );
        let v1 = json!({"usage": 100, "stats": {"total_inactive_file": 40, "inactive_file": 10}});
        assert_eq!(memory_usage_no_cache(&v1), 60.0);
        let big = json!({"usage": 100, "stats": {"inactive_file": 200}});
        assert_eq!(memory_usage_no_cache(&big), 100.0);
    }

    #[test]
    fn rows_print_like_docker() {
        let e = entry_from(&sample(), "web");
        assert_eq!(
            render(std::slice::from_ref(&e), "", true).unwrap(),
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O        PIDS\n\
             cb16c49227be   web       4.00%     8MiB / 100MiB       8.00%     2kB / 500B   4.1kB / 8.19kB   3\n"
        );
        let f = render(
            &[e],
            "{{.Container}} {{.CPUPerc}} {{.MemPerc}} {{.PIDs}}",
            true,
        )
        .unwrap();
        assert_eq!(f, "web 4.00% 8.00% 3\n");
    }

    #[test]
    fn invalid_entries_show_dashes() {
        let e = StatsEntry {
            container: "x".into(),
            is_invalid: true,
            ..Default::default()
        };
        assert_eq!(
            render(&[e], "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", true).unwrap(),
            "-- -- -- / -- --\n"
        );
    }

    #[test]
    fn redraws_home_the_cursor_and_erase_leftovers() {
        assert_eq!(
            redraw("A\nB\n"),
            "\x1b[HA\nB\n\x1b[HA \x1b[K\nB \x1b[K\n \x1b[K\n\x1b[J"
        );
    }
}
