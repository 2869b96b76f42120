//! Pull and push progress as dockerd streams it: one JSON message a line
//! (`jsonmessage.JSONMessage`), so the docker CLI draws its own bars from
//! `progressDetail` on a terminal and prints the plain status lines elsewhere.
//!
//! - a layer step: `{"status":"Downloading","progressDetail":{"current":1,"total":2},
//!   "progress":"[>   ]  1B/2B","id":"a3ed95caeb02"}` (`progressDetail` is `{}` for steps
//!   without counts, as dockerd's `progress.Update` sends them);
//! - a line about the whole transfer: `{"status":"Pulling from library/busybox","id":"latest"}`;
//! - a push result: `{"progressDetail":{},"aux":{"Tag":..,"Digest":..,"Size":..}}`;
//! - a failure after the stream started: `{"errorDetail":{"message":m},"error":m}`.

use berth_engine::images::ImageProgress;
use serde_json::{json, Map, Value};

/// One progress event as dockerd's JSON message.
pub fn message_out(p: &ImageProgress) -> Value {
    match p {
        ImageProgress::Layer { id, status, bytes } => {
            let mut m = Map::new();
            m.insert("status".into(), json!(status));
            let mut detail = Map::new();
            let mut bar = String::new();
            if let Some((current, total)) = *bytes {
                if current > 0 {
                    detail.insert("current".into(), json!(current));
                }
                if total > 0 {
                    detail.insert("total".into(), json!(total));
                }
                bar = progress_bar(current, total);
            }
            m.insert("progressDetail".into(), Value::Object(detail));
            if !bar.is_empty() {
                m.insert("progress".into(), json!(bar));
            }
            m.insert("id".into(), json!(id));
            Value::Object(m)
        }
        ImageProgress::Message { id, text } => {
            if id.is_empty() {
                json!({ "status": text })
            } else {
                json!({ "status": text, "id": id })
            }
        }
        ImageProgress::Pushed { tag, digest, size } => json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": digest.to_string(), "Size": size},
        }),
    }
}

/// A failure reported inside a stream that already started.
pub fn error_out(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

/// `JSONProgress.String()` as dockerd renders it (no terminal: 200 columns, so with the
/// bar; no start time, so no time left).
pub fn progress_bar(current: u64, total: u64) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50) as usize;
    let bar = format!(
        "[{}>{}] ",
        "=".repeat(percentage),
        " ".repeat(50 - percentage)
    );
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// go-units' `HumanSize`: decimal units, four significant digits (`32.77kB`, `64MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g4(size), UNITS[i])
}

/// Go's `%.4g` for 0 <= x < 1000 (never the exponent form in that range).
fn go_g4(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let int_digits = if x >= 1.0 {
        x.log10().floor() as i32 + 1
    } else {
        0
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::Digest;

    #[test]
    fn sizes_print_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(32768), "32.77kB");
        assert_eq!(human_size(3623807), "3.624MB");
        assert_eq!(human_size(64_000_000), "64MB");
        assert_eq!(human_size(67_108_864), "67.11MB");
        assert_eq!(human_size(999_960), "1000kB");
    }

    #[test]
    fn bars_match_dockerds_progress_strings() {
        assert_eq!(
            progress_bar(32768, 3623807),
            format!("[>{}]  32.77kB/3.624MB", " ".repeat(50))
        );
        assert_eq!(
            progress_bar(3623807, 3623807),
            format!("[{}>]  3.624MB/3.624MB", "=".repeat(50))
        );
        assert_eq!(progress_bar(0, 0), "");
        assert_eq!(progress_bar(2048, 0), " 2.048kB");
    }

    #[test]
    fn layer_steps_carry_progress_detail_even_without_counts() {
        let v = message_out(&ImageProgress::Layer {
            id: "a3ed95caeb02".into(),
            status: "Pull complete".into(),
            bytes: None,
        });
        assert_eq!(
            v.to_string(),
            r#"{"status":"Pull complete","progressDetail":{},"id":"a3ed95caeb02"}"#
        );
        let v = message_out(&ImageProgress::Layer {
            id: "a3ed95caeb02".into(),
            status: "Downloading".into(),
            bytes: Some((10, 20)),
        });
        assert_eq!(v["progressDetail"], json!({"current": 10, "total": 20}));
        assert!(v["progress"].as_str().unwrap().ends_with("10B/20B"));
    }

    #[test]
    fn transfer_lines_and_push_results_have_dockers_shape() {
        let v = message_out(&ImageProgress::Message {
            id: "latest".into(),
            text: "Pulling from library/busybox".into(),
        });
        assert_eq!(
            v.to_string(),
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#
        );
        let d = Digest::of(b"manifest");
        let v = message_out(&ImageProgress::Pushed {
            tag: "v1".into(),
            digest: d.clone(),
            size: 528,
        });
        assert_eq!(
            v.to_string(),
            format!(r#"{{"progressDetail":{{}},"aux":{{"Tag":"v1","Digest":"{d}","Size":528}}}}"#)
        );
        assert_eq!(
            error_out("boom").to_string(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
    }
}
