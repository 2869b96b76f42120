//! Platforms (`linux/amd64`, `linux/arm64/v8`) and how an index entry is chosen for one.
//!
//! Names are normalised as containerd's `platforms` package does (`x86_64` → `amd64`,
//! `aarch64` → `arm64`, `arm64` without a variant means `v8`, `arm` without one `v7`), and
//! [`Platform::matches`] accepts what can run on the wanted platform: the same os and
//! architecture, and for 32-bit arm a variant no newer than the wanted one (an `arm/v7`
//! host runs `v6` and `v5` images). [`Platform::select`] picks the best entry of a list.

use crate::error::{RegistryError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An os / architecture / variant triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Self {
        let (architecture, variant) = normalize_arch(architecture, variant);
        Self {
            os: normalize_os(os),
            architecture,
            variant,
        }
    }

    /// The platform this process runs on (`linux/amd64` on x86-64 Linux).
    pub fn host() -> Self {
        Self::new(std::env::consts::OS, std::env::consts::ARCH, "")
    }

    /// Whether an image built for `candidate` runs here.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let c = Platform::new(&candidate.os, &candidate.architecture, &candidate.variant);
        if c.os != self.os || c.architecture != self.architecture {
            return false;
        }
        if self.variant == c.variant {
            return true;
        }
        match self.architecture.as_str() {
            // An arm/v7 host runs v6 and v5 images, never v8.
            "arm" => variant_rank(&c.variant) <= variant_rank(&self.variant),
            // amd64 micro-architecture levels (v2, v3) run older levels.
            "amd64" => variant_rank(&c.variant) <= variant_rank(&self.variant),
            _ => false,
        }
    }

    /// The index of the best match among `candidates`: an exact variant first, else the
    /// newest compatible variant, earliest in the list on ties.
    pub fn select<'a>(&self, candidates: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        let mut best: Option<(usize, (bool, u32))> = None;
        for (i, c) in candidates.into_iter().enumerate() {
            if !self.matches(c) {
                continue;
            }
            let c = Platform::new(&c.os, &c.architecture, &c.variant);
            let score = (c.variant == self.variant, variant_rank(&c.variant));
            if best.as_ref().is_none_or(|(_, s)| score > *s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::host()
    }
}

fn normalize_os(os: &str) -> String {
    let os = os.to_lowercase();
    match os.as_str() {
        "macos" => "darwin".into(),
        _ => os,
    }
}

fn variant_rank(v: &str) -> u32 {
    v.trim_start_matches('v').parse().unwrap_or(0)
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" | "x86" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "" => "v8".to_string(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

impl FromStr for Platform {
    type Err = RegistryError;

    /// Parses `os[/arch[/variant]]` or a bare architecture (`arm64` → `linux/arm64/v8`).
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| RegistryError::InvalidPlatform {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(invalid("expected os[/arch[/variant]]"));
        }
        let host = Platform::host();
        Ok(match parts.as_slice() {
            [one] if is_known_os(one) => Platform::new(one, &host.architecture, &host.variant),
            [one] => Platform::new(&host.os, one, ""),
            [os, arch] => Platform::new(os, arch, ""),
            [os, arch, variant] => Platform::new(os, arch, variant),
            _ => return Err(invalid("expected os[/arch[/variant]]")),
        })
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s.to_lowercase().as_str(),
        "linux" | "windows" | "darwin" | "freebsd" | "netbsd" | "openbsd" | "solaris" | "macos"
    )
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn architecture_aliases_normalise_as_containerd() {
        assert_eq!(p("linux/x86_64"), p("linux/amd64"));
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("arm64").to_string(), "linux/arm64/v8");
        assert_eq!(Platform::host().os, std::env::consts::OS);
        assert!("linux//x".parse::<Platform>().is_err());
    }

    #[test]
    fn arm64_without_variant_matches_v8() {
        let want = p("linux/arm64");
        assert!(want.matches(&Platform::new("linux", "arm64", "")));
        assert!(want.matches(&Platform::new("linux", "arm64", "v8")));
        assert!(!want.matches(&Platform::new("linux", "arm", "v7")));
    }

    #[test]
    fn arm_v7_runs_older_variants_but_prefers_its_own() {
        let want = p("linux/arm/v7");
        let list = [
            Platform::new("linux", "arm", "v6"),
            Platform::new("linux", "arm", "v7"),
            Platform::new("linux", "arm", "v8"),
        ];
        assert_eq!(want.select(&list), Some(1));
        assert_eq!(want.select(&list[..1]), Some(0));
        assert_eq!(want.select(&list[2..]), None);
    }

    #[test]
    fn amd64_selection_skips_other_platforms_and_unknown_entries() {
        let want = p("linux/amd64");
        let list = [
            Platform::new("linux", "arm64", "v8"),
            Platform::new("unknown", "unknown", ""),
            Platform::new("linux", "amd64", ""),
            Platform::new("windows", "amd64", ""),
        ];
        assert_eq!(want.select(&list), Some(2));
        assert_eq!(p("linux/s390x").select(&list), None);
    }
}
