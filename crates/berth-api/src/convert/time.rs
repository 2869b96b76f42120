//! Timestamps as Docker writes them.

use chrono::{DateTime, SecondsFormat, Utc};

/// `0001-01-01T00:00:00Z` for "never", as Go's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds, trailing zeros trimmed (Go's `RFC3339Nano`).
pub fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ZERO_TIME.to_string(),
    }
}

/// Like [`rfc3339`] but with all nine fractional digits kept.
pub fn rfc3339_nanos(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_is_go_zero_time() {
        assert_eq!(rfc3339(None), ZERO_TIME);
    }

    #[test]
    fn times_keep_significant_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(Some(t)), "2024-01-02T03:04:05.120Z");
    }
}
