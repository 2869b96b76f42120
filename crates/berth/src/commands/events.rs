//! `events`: the daemon's event stream (`GET /events`) printed in docker's line format
//! (`2024-01-01T00:00:00.000000000Z container start <id> (image=busybox, name=web)`) or
//! through a `--format` template.

use super::{filters_json, Ctx};
use crate::flags::Parsed;
use crate::template::{from_json, Format, Renderer};
use serde_json::Value as Json;
use std::io::Write;

/// Go's `RFC3339NanoFixed` in a zone (`Z` for UTC).
fn fixed<Tz: chrono::TimeZone>(tz: &Tz, nanos: i64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    tz.timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
        .to_string()
        .replace("+00:00", "Z")
}

/// docker's `prettyPrintEvent`, times in the local zone.
pub fn pretty_line(e: &Json) -> String {
    pretty_line_in(&chrono::Local, e)
}

fn pretty_line_in<Tz: chrono::TimeZone>(tz: &Tz, e: &Json) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut s = String::new();
    if let Some(n) = e["timeNano"].as_i64().filter(|n| *n != 0) {
        s.push_str(&fixed(tz, n));
        s.push(' ');
    } else if let Some(t) = e["time"].as_i64().filter(|t| *t != 0) {
        s.push_str(&fixed(tz, t * 1_000_000_000));
        s.push(' ');
    }
    s.push_str(&format!(
        "{} {} {}",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or("")
    ));
    let mut attrs: Vec<(String, String)> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    if !attrs.is_empty() {
        attrs.sort();
        let joined: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" ({})", joined.join(", ")));
    }
    s.push('\n');
    s
}

pub async fn events(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let format = p.string("format");
    let renderer = if format.is_empty() {
        None
    } else {
        Some(Renderer::new(&Format::new(&format).text)?)
    };
    let mut q = Vec::new();
    for (flag, key) in [("since", "since"), ("until", "until")] {
        let v = p.string(flag);
        if !v.is_empty() {
            q.push((key, super::container::timestamp_param(&v)?));
        }
    }
    if let Some(f) = filters_json(&p.list("filter"))? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::GET,
            "/events",
            &q,
            crate::client::empty_body(),
            &[],
        )
        .await?;
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = crate::client::next_chunk(&mut body).await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match &renderer {
                None => out.write_all(pretty_line(&serde_json::from_str(text)?).as_bytes())?,
                Some(r) => writeln!(out, "{}", r.render(&from_json(text.as_bytes())?)?)?,
            }
            out.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_lines_sort_attributes() {
        let e = json!({"Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "time": 1704067200, "timeNano": 1704067200000000000i64});
        assert_eq!(
            pretty_line_in(&chrono::Utc, &e),
            "2024-01-01T00:00:00.000000000Z container start abc (image=busybox, name=web)\n"
        );
        let e = json!({"Type": "network", "Action": "create", "Actor": {"ID": "n"}});
        assert_eq!(pretty_line_in(&chrono::Utc, &e), "network create n\n");
    }
}
