//! Query parameters the way Docker reads them (`1`/`true`/`True` are true; repeated keys).

use crate::error::{bad_request, ApiResult};

/// All query pairs in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or("").to_string()
    }
    /// Docker's `BoolValue`: anything but "", "0", "no", "false", "none" is true.
    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
    /// Like [`bool`](Self::bool) with a default when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_some() {
            self.bool(key)
        } else {
            default
        }
    }
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| bad_request(format!("invalid value for {key}: {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_docker() {
        let p = Params::parse(Some("a=1&b=True&c=0&d=&e=no&names=x&names=y"));
        assert!(p.bool("a") && p.bool("b"));
        assert!(!p.bool("c") && !p.bool("d") && !p.bool("e") && !p.bool("zzz"));
        assert_eq!(p.all("names"), vec!["x", "y"]);
    }
}
