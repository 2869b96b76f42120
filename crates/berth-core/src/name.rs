//! Container names: Docker's validity rule and generated `adjective_noun` names.

use rand::seq::SliceRandom;

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`.
pub fn validate(name: &str) -> Result<&str, crate::Error> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let b = bare.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
    if ok {
        Ok(bare)
    } else {
        Err(crate::Error::invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

// Berth's own word lists: moods and harbour things.
const ADJECTIVES: &[&str] = &[
    "able", "agile", "amber", "ample", "ardent", "azure", "bold", "brave", "breezy", "bright",
    "brisk", "calm", "candid", "careful", "cheerful", "civil", "clever", "coastal", "cosmic",
    "crisp", "curious", "daring", "deft", "devoted", "eager", "earnest", "easy", "elated", "epic",
    "fair", "faithful", "fearless", "festive", "fond", "frank", "gallant", "gentle", "glad",
    "golden", "graceful", "grand", "happy", "hardy", "hearty", "honest", "humble", "jolly", "keen",
    "kind", "lively", "loyal", "lucid", "lucky", "mellow", "merry", "mighty", "modest", "nimble",
    "noble", "patient", "placid", "plucky", "polite", "proud", "quick", "quiet", "radiant",
    "rapid", "ready", "robust", "rosy", "serene", "sharp", "shiny", "silent", "sincere", "smooth",
    "snug", "solid", "spry", "stable", "steady", "stoic", "sturdy", "sunny", "swift", "tender",
    "tidy", "tranquil", "trusty", "upbeat", "valiant", "vivid", "warm", "wise", "witty", "zealous",
];

const NOUNS: &[&str] = &[
    "anchor",
    "bay",
    "beacon",
    "bollard",
    "bow",
    "buoy",
    "cabin",
    "canal",
    "cape",
    "cargo",
    "channel",
    "compass",
    "coral",
    "cove",
    "crane",
    "current",
    "deck",
    "delta",
    "dock",
    "dune",
    "estuary",
    "ferry",
    "fjord",
    "flag",
    "fleet",
    "galley",
    "gull",
    "harbor",
    "hatch",
    "haven",
    "helm",
    "hull",
    "inlet",
    "island",
    "jetty",
    "keel",
    "kelp",
    "lagoon",
    "lantern",
    "ledge",
    "lighthouse",
    "lock",
    "mast",
    "marina",
    "mooring",
    "oar",
    "ocean",
    "otter",
    "pelican",
    "pier",
    "pilot",
    "port",
    "quay",
    "raft",
    "reef",
    "rigging",
    "river",
    "rope",
    "rudder",
    "sail",
    "sandbar",
    "schooner",
    "seal",
    "shell",
    "ship",
    "shore",
    "skiff",
    "sloop",
    "sound",
    "starboard",
    "stern",
    "strait",
    "surf",
    "tern",
    "tide",
    "tugboat",
    "wake",
    "wave",
    "wharf",
    "whale",
    "winch",
    "yacht",
];

/// A random `adjective_noun` name; `attempt` > 0 appends a digit as Docker does on retries.
pub fn generate(attempt: u32) -> String {
    let mut rng = rand::thread_rng();
    let a = ADJECTIVES.choose(&mut rng).copied().unwrap_or("calm");
    let n = NOUNS.choose(&mut rng).copied().unwrap_or("harbor");
    if attempt == 0 {
        format!("{a}_{n}")
    } else {
        format!("{a}_{n}{}", rand::Rng::gen_range(&mut rng, 0..10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass_and_lose_their_slash() {
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert_eq!(validate("a.b_c").unwrap(), "a.b_c");
    }

    #[test]
    fn invalid_names_get_dockers_message() {
        let e = validate("bad name").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(validate("-x").is_err());
        assert!(validate("a").is_err());
    }

    #[test]
    fn generated_names_are_valid() {
        for i in 0..20 {
            validate(&generate(i % 2)).unwrap();
        }
    }
}
