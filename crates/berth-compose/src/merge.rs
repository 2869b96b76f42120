//! Merging: a later `-f` file over an earlier one, and a service over the one it
//! `extends`. Both sides are canonical JSON (the model serialized), merged by the
//! specification's rules: mappings merge key by key, scalars are replaced, `command`,
//! `entrypoint` and a health check's `test` are replaced whole, `volumes` merge by mount
//! target, secrets and configs by source, and other sequences (ports, dns, cap_add, ...)
//! are concatenated without duplicates.

use serde_json::Value;

/// Merges `over` onto `base`; `key` is the name of the field they are the value of.
pub fn merge_value(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        // A null override (`networks: {back: }`) keeps what the base says.
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge_value(existing, v, &k),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => match key {
            "command" | "entrypoint" | "test" => *b = o,
            "volumes" => merge_by(b, o, "target"),
            "secrets" | "configs" => merge_by(b, o, "source"),
            _ => {
                for item in o {
                    if !b.contains(&item) {
                        b.push(item);
                    }
                }
            }
        },
        (b, o) => *b = o,
    }
}

/// Items of `over` replace items of `base` with the same `field`; others are added.
fn merge_by(base: &mut Vec<Value>, over: Vec<Value>, field: &str) {
    for item in over {
        match base.iter_mut().find(|b| b.get(field) == item.get(field)) {
            Some(existing) => *existing = item,
            None => base.push(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(base: Value, over: Value) -> Value {
        let mut b = base;
        merge_value(&mut b, over, "");
        b
    }

    #[test]
    fn mappings_merge_and_scalars_are_replaced() {
        let m = merged(
            json!({"image": "a", "environment": {"A": "1", "B": "2"}, "labels": {"x": "y"}}),
            json!({"image": "b", "environment": {"B": "3", "C": null}}),
        );
        assert_eq!(
            m,
            json!({"image": "b", "environment": {"A": "1", "B": "3", "C": null}, "labels": {"x": "y"}})
        );
    }

    #[test]
    fn commands_are_replaced_and_lists_concatenated() {
        let m = merged(
            json!({"command": ["a", "b"], "dns": ["1.1.1.1"], "healthcheck": {"test": ["CMD", "x"], "retries": 3}}),
            json!({"command": ["c"], "dns": ["1.1.1.1", "8.8.8.8"], "healthcheck": {"test": ["CMD", "y"]}}),
        );
        assert_eq!(m["command"], json!(["c"]));
        assert_eq!(m["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(
            m["healthcheck"],
            json!({"test": ["CMD", "y"], "retries": 3})
        );
    }

    #[test]
    fn volumes_merge_by_target() {
        let m = merged(
            json!({"volumes": [{"type": "bind", "source": "/a", "target": "/data"}, {"type": "volume", "target": "/cache"}]}),
            json!({"volumes": [{"type": "volume", "source": "v", "target": "/data"}]}),
        );
        assert_eq!(
            m["volumes"],
            json!([{"type": "volume", "source": "v", "target": "/data"}, {"type": "volume", "target": "/cache"}])
        );
    }
}
