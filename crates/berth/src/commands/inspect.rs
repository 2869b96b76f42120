//! `inspect`: the daemon's raw JSON, indented as docker's `json.Indent`, or `-f` templates.

use super::{esc, Ctx};
use crate::client::ClientError;
use crate::flags::Parsed;
use crate::template::{from_json, indent_json, Renderer};
use crate::StatusError;

pub async fn inspect(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let typ = p.string("type");
    if !typ.is_empty() && !matches!(typ.as_str(), "container" | "image") {
        anyhow::bail!("\"{typ}\" is not a valid value for --type");
    }
    let client = ctx.client().await?.clone();
    let size = p.bool("size");
    let format = p.string("format");
    // docker exits 64 when an inspect template does not parse.
    let renderer = if format.is_empty() {
        None
    } else {
        Some(Renderer::new(&format).map_err(|e| StatusError::exit(64, e.to_string()))?)
    };
    let mut raws = Vec::new();
    let mut errs = Vec::new();
    for name in &p.args {
        let mut found = None;
        let tries: Vec<&str> = match typ.as_str() {
            "" => vec!["container", "image"],
            t => vec![t],
        };
        for t in &tries {
            let (path, q) = match *t {
                "container" => (
                    format!("/containers/{}/json", esc(name)),
                    if size {
                        vec![("size", "1".to_string())]
                    } else {
                        vec![]
                    },
                ),
                _ => (format!("/images/{}/json", esc(name)), vec![]),
            };
            match client.get_bytes(&path, &q).await {
                Ok(b) => {
                    found = Some(b);
                    break;
                }
                Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                    return Err(e.into())
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    errs.push(e.to_string());
                    found = None;
                    break;
                }
            }
        }
        match found {
            Some(b) => raws.push(b),
            None if errs.len() < p.args.len() => match typ.as_str() {
                "" => errs.push(format!("Error: No such object: {name}")),
                "container" => errs.push(format!("Error: No such container: {name}")),
                _ => errs.push(format!("Error: No such image: {name}")),
            },
            None => {}
        }
    }
    match renderer {
        None => {
            let joined: Vec<u8> = {
                let mut v = b"[".to_vec();
                for (i, r) in raws.iter().enumerate() {
                    if i > 0 {
                        v.push(b',');
                    }
                    v.extend_from_slice(r);
                }
                v.push(b']');
                v
            };
            println!("{}", indent_json(&joined));
        }
        Some(r) => {
            for raw in &raws {
                let v = from_json(raw)?;
                println!("{}", r.render(&v)?);
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}
