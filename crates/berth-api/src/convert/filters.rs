//! The `filters` query parameter: `{"status":["running"]}`, or the old
//! `{"status":{"running":true}}` form.

use crate::error::{bad_request, ApiResult};
use berth_core::filters::Filters;

pub fn parse(raw: Option<&str>) -> ApiResult<Filters> {
    let mut f = Filters::new();
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(f);
    };
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| bad_request(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad_request("invalid filter: expected an object"))?;
    for (k, vals) in obj {
        match vals {
            serde_json::Value::Array(a) => {
                for x in a {
                    if let Some(s) = x.as_str() {
                        f.add(k.clone(), s.to_string());
                    }
                }
            }
            serde_json::Value::Object(m) => {
                for (x, on) in m {
                    if on.as_bool().unwrap_or(false) {
                        f.add(k.clone(), x.clone());
                    }
                }
            }
            serde_json::Value::String(s) => f.add(k.clone(), s.clone()),
            _ => {
                return Err(bad_request(format!(
                    "invalid filter: values of {k} must be a list"
                )))
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filter_forms_parse() {
        let f = parse(Some(r#"{"status":["running","exited"]}"#)).unwrap();
        assert_eq!(f.get("status").count(), 2);
        let f = parse(Some(r#"{"label":{"a=b":true,"c":false}}"#)).unwrap();
        assert_eq!(f.get("label").collect::<Vec<_>>(), vec!["a=b"]);
        assert!(parse(Some("{bad")).is_err());
    }
}
