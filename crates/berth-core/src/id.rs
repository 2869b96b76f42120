//! Identifiers: 64 lowercase hex characters, shown as their first 12.

use rand::RngCore;

/// Length of the short form of an id, as Docker prints it.
pub const SHORT_LEN: usize = 12;

/// A new random 64-hex id. Ids that are all digits are avoided, as Docker does, so a short
/// id can never be mistaken for a number.
pub fn new_id() -> String {
    let mut rng = rand::thread_rng();
    loop {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        if !id[..SHORT_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// The first 12 characters of an id (or the id itself when shorter).
pub fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(SHORT_LEN)]
}

/// Whether `s` could be a (possibly abbreviated) hex id.
pub fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_64_hex_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 64);
        assert!(is_hex_prefix(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn short_strips_algorithm() {
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
    }
}
