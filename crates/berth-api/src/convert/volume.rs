//! Volumes on the wire.

use berth_core::volume::Volume;
use serde_json::{json, Value};

fn map_or_null(m: &std::collections::BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// Docker's volume object; `usage` is (size, ref count) for `system df`.
pub fn volume_out(v: &Volume, usage: Option<(i64, i64)>) -> Value {
    let mut o = json!({
        "CreatedAt": v.created_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    });
    if let Some((size, refs)) = usage {
        o["UsageData"] = json!({"Size": size, "RefCount": refs});
    }
    o
}
