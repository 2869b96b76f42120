//! `inspect` and the typed `container|image|network|volume inspect`: the daemon's raw
//! JSON, indented as docker's `json.Indent`, compact with `--format json`, or `-f` templates.
//!
//! Typed inspects print the daemon's own error for a missing object; the generic `inspect`
//! without `--type` tries each kind in docker's order and says `Error: No such object`.

use super::{esc, Ctx};
use crate::client::{Client, ClientError};
use crate::flags::Parsed;
use crate::template::{from_json, indent_json, Renderer};
use crate::StatusError;
use bytes::Bytes;

/// The object kinds berth inspects, in the order docker's autodetection tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Container, Kind::Image, Kind::Network, Kind::Volume];

    fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }

    /// The request that inspects `name`.
    fn request(
        self,
        name: &str,
        size: bool,
        verbose: bool,
    ) -> (String, Vec<(&'static str, String)>) {
        let flag = |on: bool, k: &'static str| {
            if on {
                vec![(k, "true".to_string())]
            } else {
                vec![]
            }
        };
        match self {
            Kind::Container => (
                format!("/containers/{}/json", esc(name)),
                if size {
                    vec![("size", "1".to_string())]
                } else {
                    vec![]
                },
            ),
            Kind::Image => (format!("/images/{}/json", esc(name)), vec![]),
            Kind::Network => (format!("/networks/{}", esc(name)), flag(verbose, "verbose")),
            Kind::Volume => (format!("/volumes/{}", esc(name)), vec![]),
        }
    }
}

const TYPE_ERROR: &str = "must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\"";

/// Prints inspected objects as docker's inspectors do, given their raw JSON.
struct Output {
    format: String,
    renderer: Option<Renderer>,
    raws: Vec<Bytes>,
}

impl Output {
    fn new(format: &str) -> anyhow::Result<Self> {
        // docker exits 64 when an inspect template does not parse.
        let renderer = if format.is_empty() || format == "json" {
            None
        } else {
            Some(Renderer::new(format).map_err(|e| StatusError::exit(64, e.to_string()))?)
        };
        Ok(Self {
            format: format.to_string(),
            renderer,
            raws: Vec::new(),
        })
    }

    fn add(&mut self, raw: Bytes) -> anyhow::Result<()> {
        match &self.renderer {
            Some(r) => {
                let v = from_json(&raw)?;
                println!("{}", r.render(&v)?);
            }
            None => self.raws.push(raw),
        }
        Ok(())
    }

    fn flush(self) {
        if self.renderer.is_some() {
            return;
        }
        let mut joined = b"[".to_vec();
        for (i, r) in self.raws.iter().enumerate() {
            if i > 0 {
                joined.push(b',');
            }
            joined.extend_from_slice(r.trim_ascii());
        }
        joined.push(b']');
        if self.format == "json" {
            println!("{}", compact_json(&joined));
        } else {
            println!("{}", indent_json(&joined));
        }
    }
}

/// Go's `json.Compact`: whitespace outside strings removed, order kept.
pub fn compact_json(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let (mut in_str, mut escaped) = (false, false);
    for &c in raw {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if !c.is_ascii_whitespace() {
            if c == b'"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fatal(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Connect { .. } | ClientError::Permission { .. }
    )
}

async fn fetch(
    client: &Client,
    kind: Kind,
    name: &str,
    size: bool,
    verbose: bool,
) -> crate::client::Result<Bytes> {
    let (path, q) = kind.request(name, size, verbose);
    client.get_bytes(&path, &q).await
}

/// `network inspect`, `volume inspect` and friends: one kind, the daemon's errors.
pub async fn inspect_typed(
    ctx: &mut Ctx,
    names: &[String],
    format: &str,
    kind: Kind,
    verbose: bool,
) -> anyhow::Result<()> {
    let mut out = Output::new(format)?;
    let client = ctx.client().await?.clone();
    let mut errs = Vec::new();
    for name in names {
        match fetch(&client, kind, name, false, verbose).await {
            Ok(b) => out.add(b)?,
            Err(e) if fatal(&e) => return Err(e.into()),
            Err(e) => errs.push(e.to_string()),
        }
    }
    out.flush();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

pub async fn inspect(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let typ = p.string("type");
    let kinds: Vec<Kind> = match typ.as_str() {
        "" => Kind::ALL.to_vec(),
        t => match Kind::ALL.into_iter().find(|k| k.name() == t) {
            Some(k) => vec![k],
            None if matches!(
                t,
                "config" | "node" | "plugin" | "secret" | "service" | "task"
            ) =>
            {
                vec![]
            }
            None => anyhow::bail!("unknown type: {t:?}: {TYPE_ERROR}"),
        },
    };
    let size = p.bool("size");
    let mut out = Output::new(&p.string("format"))?;
    let client = ctx.client().await?.clone();
    let mut errs = Vec::new();
    for name in &p.args {
        let mut found = false;
        for &kind in &kinds {
            match fetch(&client, kind, name, size, false).await {
                Ok(b) => {
                    if size && kind != Kind::Container {
                        eprintln!("WARNING: --size ignored for {}", kind.name());
                    }
                    out.add(b)?;
                    found = true;
                    break;
                }
                Err(e) if fatal(&e) => return Err(e.into()),
                // Without --type, a missing object of one kind means: try the next.
                Err(e) if typ.is_empty() && e.is_not_found() => continue,
                Err(e) => {
                    errs.push(e.to_string());
                    found = true;
                    break;
                }
            }
        }
        if !found {
            errs.push(format!("Error: No such object: {name}"));
        }
    }
    out.flush();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_spaces_inside_strings() {
        assert_eq!(
            compact_json(b"[ {\"a b\": \"c \\\" d\",\n \"e\": [1, 2]} ]"),
            "[{\"a b\":\"c \\\" d\",\"e\":[1,2]}]"
        );
    }

    #[test]
    fn each_kind_inspects_its_own_endpoint() {
        assert_eq!(Kind::Network.request("n1", false, true).0, "/networks/n1");
        assert_eq!(
            Kind::Network.request("n1", false, true).1,
            vec![("verbose", "true".to_string())]
        );
        assert_eq!(
            Kind::Volume.request("v 1", false, false).0,
            "/volumes/v%201"
        );
        assert_eq!(
            Kind::Container.request("c", true, false).1,
            vec![("size", "1".to_string())]
        );
    }
}
