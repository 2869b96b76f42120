//! Logging drivers (`json-file`, `local`, `none`) and their options, checked as Docker
//! checks them, and where each container's log lives.
//!
//! `json-file` rotates by default here (20 MiB × 5 files; Docker's grows without bound),
//! `local` as in Docker (20 MiB × 5, compressed). `max-size=-1` turns rotation off.

use crate::Engine;
use berth_core::container::{Container, LogConfig};
use berth_core::{Error, Result};
use berth_shim::logfile::{self, LogFormat, Rotation};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The drivers this daemon has.
pub const DRIVERS: &[&str] = &["json-file", "local", "none"];

const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];
const LOCAL_OPTS: &[&str] = &["max-file", "max-size", "compress"];
/// Options every driver takes (Docker's `mode` and `max-buffer-size`).
const GENERIC_OPTS: &[&str] = &["mode", "max-buffer-size"];

/// Checks a driver and its options as Docker does at create and at daemon start.
pub fn validate(driver: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    if driver == "none" {
        return Ok(());
    }
    match opts.get("mode").map(String::as_str) {
        None | Some("") | Some("blocking") | Some("non-blocking") => {}
        Some(m) => {
            return Err(Error::invalid(format!(
                "logger: logging mode not supported: {m}"
            )))
        }
    }
    let known = match driver {
        "json-file" => JSON_FILE_OPTS,
        "local" => LOCAL_OPTS,
        _ => {
            return Err(Error::invalid(format!(
                "logger: no log driver named '{driver}' is registered"
            )))
        }
    };
    for key in opts.keys().filter(|k| !GENERIC_OPTS.contains(&k.as_str())) {
        if !known.contains(&key.as_str()) {
            return Err(Error::invalid(if driver == "json-file" {
                format!("unknown log opt '{key}' for json-file log driver")
            } else {
                format!("unknown log opt '{key}' for log driver {driver}")
            }));
        }
    }
    rotation(driver, opts).map(|_| ())
}

/// Rotation settings of a driver from its options (and its defaults).
pub fn rotation(driver: &str, opts: &BTreeMap<String, String>) -> Result<Rotation> {
    let max_size = match opts.get("max-size").map(String::as_str) {
        Some("-1") => 0,
        Some(s) => match logfile::parse_size(s) {
            Some(n) if n > 0 => n,
            Some(_) => return Err(Error::invalid("max-size must be a positive number")),
            None => return Err(Error::invalid(format!("invalid size: '{s}'"))),
        },
        None => logfile::DEFAULT_MAX_SIZE,
    };
    let max_files = match opts.get("max-file") {
        Some(s) => {
            let n: i64 = s.parse().map_err(|_| {
                Error::invalid(format!("strconv.Atoi: parsing \"{s}\": invalid syntax"))
            })?;
            if n < 1 {
                return Err(Error::invalid("max-file cannot be less than 1"));
            }
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        None => logfile::DEFAULT_MAX_FILES,
    };
    let compress = match opts.get("compress").map(String::as_str) {
        None => driver == "local",
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
        Some(v) => {
            return Err(Error::invalid(format!(
            "error reading compress log option: strconv.ParseBool: parsing \"{v}\": invalid syntax"
        )))
        }
    };
    Ok(Rotation {
        max_size,
        max_files,
        compress,
    })
}

/// Docker's `mergeAndVerifyLogConfig`: the daemon's driver when none is given, with the
/// daemon's options under the container's when the drivers match; then the check.
pub fn merge(
    cfg: &mut LogConfig,
    daemon_driver: &str,
    daemon_opts: &BTreeMap<String, String>,
) -> Result<()> {
    if cfg.driver.is_empty() {
        cfg.driver = daemon_driver.to_string();
    }
    if cfg.driver == daemon_driver {
        for (k, v) in daemon_opts {
            cfg.options.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    validate(&cfg.driver, &cfg.options)
}

/// Where and how a container logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub driver: String,
    pub format: LogFormat,
    pub path: PathBuf,
    pub rotation: Rotation,
}

impl Engine {
    /// The effective driver of a container (older records may leave it empty).
    pub(crate) fn log_driver_of(&self, c: &Container) -> String {
        if c.host_config.log_config.driver.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            c.host_config.log_config.driver.clone()
        }
    }

    /// The log of a container; `None` for the `none` driver.
    pub(crate) fn log_settings(&self, c: &Container) -> Result<Option<LogSettings>> {
        let driver = self.log_driver_of(c);
        let Some(format) = LogFormat::of_driver(&driver) else {
            return Ok(None);
        };
        let path = match format {
            LogFormat::JsonFile if !c.log_path.is_empty() => PathBuf::from(&c.log_path),
            LogFormat::JsonFile => self.container_dir(&c.id).join(format!("{}-json.log", c.id)),
            LogFormat::Local => self
                .container_dir(&c.id)
                .join("local-logs")
                .join(logfile::LOCAL_FILE),
        };
        Ok(Some(LogSettings {
            rotation: rotation(&driver, &c.host_config.log_config.options)?,
            driver,
            format,
            path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_options_and_drivers_get_dockers_errors() {
        let e = |d: &str, o: &[(&str, &str)]| validate(d, &opts(o)).unwrap_err().to_string();
        assert_eq!(
            e("json-file", &[("foo", "1")]),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            e("local", &[("tag", "x")]),
            "unknown log opt 'tag' for log driver local"
        );
        assert_eq!(
            e("syslog", &[]),
            "logger: no log driver named 'syslog' is registered"
        );
        assert_eq!(
            e("json-file", &[("max-file", "0")]),
            "max-file cannot be less than 1"
        );
        assert!(e("local", &[("compress", "maybe")]).contains("strconv.ParseBool"));
        assert!(validate("none", &opts(&[("anything", "goes")])).is_ok());
        assert!(validate(
            "json-file",
            &opts(&[("mode", "non-blocking"), ("tag", "x")])
        )
        .is_ok());
    }

    #[test]
    fn defaults_rotate_and_local_compresses() {
        let r = rotation("json-file", &BTreeMap::new()).unwrap();
        assert_eq!((r.max_size, r.max_files, r.compress), (20 << 20, 5, false));
        let r = rotation("local", &BTreeMap::new()).unwrap();
        assert!(r.compress);
        let r = rotation(
            "json-file",
            &opts(&[("max-size", "-1"), ("compress", "true")]),
        )
        .unwrap();
        assert_eq!((r.max_size, r.compress), (0, true));
    }

    #[test]
    fn daemon_options_apply_to_containers_of_the_daemons_driver() {
        let daemon = opts(&[("max-size", "5m")]);
        let mut c = LogConfig::default();
        merge(&mut c, "json-file", &daemon).unwrap();
        assert_eq!(
            (c.driver.as_str(), c.options["max-size"].as_str()),
            ("json-file", "5m")
        );
        let mut c = LogConfig {
            driver: "local".into(),
            ..Default::default()
        };
        merge(&mut c, "json-file", &daemon).unwrap();
        assert!(c.options.is_empty());
    }
}
