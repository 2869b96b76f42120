//! List filters (`-f key=value`), as `ps`, `images` and `prune` take them.

use std::collections::{BTreeMap, BTreeSet};

/// Filter values by key. Several values for a key match when any matches (Docker's rule);
/// different keys must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.entry(key.into()).or_default().insert(value.into());
    }
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// Refuses keys outside `allowed` with Docker's message.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), crate::Error> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(crate::Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }
    /// True when `key` is absent, or any of its values satisfies `pred`.
    pub fn matches_any(&self, key: &str, mut pred: impl FnMut(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vals) => vals.iter().any(|v| pred(v)),
        }
    }
    /// `label=key` / `label=key=value` against a label map; all given labels must match.
    pub fn match_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vals) => vals.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
                None => labels.contains_key(v.as_str()),
            }),
        }
    }
    /// `label!=key` / `label!=key=value`: none may match.
    pub fn match_labels_negated(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vals) => vals.iter().all(|v| match v.split_once('=') {
                Some((k, want)) => labels.get(k).is_none_or(|have| have != want),
                None => !labels.contains_key(v.as_str()),
            }),
        }
    }
    /// A boolean filter value (`dangling=true`), refusing anything else as Docker does.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, crate::Error> {
        let mut out = None;
        for v in self.get(key) {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(crate::Error::invalid(format!("Invalid filter '{key}={v}'"))),
            };
            out = Some(b);
        }
        Ok(out)
    }
}

impl FromIterator<(String, String)> for Filters {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut f = Filters::new();
        for (k, v) in iter {
            f.add(k, v);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_by_key_or_key_value() {
        let mut f = Filters::new();
        f.add("label", "a");
        f.add("label", "b=2");
        let mut labels = BTreeMap::new();
        labels.insert("a".to_string(), "1".to_string());
        labels.insert("b".to_string(), "2".to_string());
        assert!(f.match_labels("label", &labels));
        labels.insert("b".to_string(), "3".to_string());
        assert!(!f.match_labels("label", &labels));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut f = Filters::new();
        f.add("colour", "red");
        assert_eq!(
            f.validate(&["status"]).unwrap_err().to_string(),
            "invalid filter 'colour'"
        );
    }
}
