//! Image commands: rmi, tag, save, load, import, pull, push.

use super::{esc, Ctx};
use crate::client::{empty_body, reader_body, ClientError};
use crate::progress::{self, StreamError};
use crate::{term, StatusError};
use berth_core::reference::Reference;
use serde_json::Value as Json;
use std::io::{IsTerminal, Write};

fn parse_ref(s: &str) -> anyhow::Result<Reference> {
    Reference::parse_with_default_tag(s).map_err(|e| {
        anyhow::anyhow!("Error parsing reference: {s:?} is not a valid repository/tag: {e}")
    })
}

/// Whether a reference names a repository only (no tag, no digest).
fn name_only(name: &str) -> bool {
    Reference::parse(name).is_ok_and(|r| r.tag().is_none() && r.digest().is_none())
}

fn stream_err(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<StreamError>() {
        Ok(se) => anyhow::anyhow!("{}", se.0),
        Err(e) => e,
    }
}

pub async fn rmi(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let mut q = Vec::new();
    if p.bool("force") {
        q.push(("force", "1".to_string()));
    }
    if p.bool("no-prune") {
        q.push(("noprune", "1".to_string()));
    }
    let mut errs = Vec::new();
    for name in &p.args {
        match client.delete(&format!("/images/{}", esc(name)), &q).await {
            Ok(b) => {
                let items: Json = serde_json::from_slice(&b).unwrap_or(Json::Null);
                for it in items.as_array().into_iter().flatten() {
                    if let Some(u) = it["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                return Err(e.into())
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

pub async fn tag(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let target = parse_ref(&p.args[1])?;
    if target.digest().is_some() {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    let client = ctx.client().await?.clone();
    let q = vec![
        ("repo", target.repository()),
        ("tag", target.tag().unwrap_or("latest").to_string()),
    ];
    client
        .post(&format!("/images/{}/tag", esc(&p.args[0])), &q, None)
        .await?;
    Ok(())
}

pub async fn save(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let output = p.string("output");
    if output.is_empty() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let client = ctx.client().await?.clone();
    let mut q: Vec<(&str, String)> = p.args.iter().map(|n| ("names", n.clone())).collect();
    for pl in p.list("platform") {
        q.push(("platform", pl));
    }
    let res = client
        .send(hyper::Method::GET, "/images/get", &q, empty_body(), &[])
        .await?;
    let mut body = res.into_body();
    let mut out: Box<dyn Write> = if output.is_empty() {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&output)
                .map_err(|e| anyhow::anyhow!("failed to save image: invalid output path: {e}"))?,
        )
    };
    while let Some(chunk) = crate::client::next_chunk(&mut body).await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

async fn open_input(path: &str) -> anyhow::Result<crate::client::Body> {
    if path.is_empty() || path == "-" {
        Ok(reader_body(tokio::io::stdin()))
    } else {
        let f = tokio::fs::File::open(path)
            .await
            .map_err(|e| anyhow::anyhow!("open {path}: {}", crate::opts::io_reason(&e)))?;
        Ok(reader_body(f))
    }
}

pub async fn load(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let input = p.string("input");
    if input.is_empty() && term::stdin_is_tty() {
        anyhow::bail!("requested load from stdin, but stdin is empty");
    }
    let client = ctx.client().await?.clone();
    let body = open_input(&input).await?;
    let mut q = vec![("quiet", if p.bool("quiet") { "1" } else { "0" }.to_string())];
    for pl in p.list("platform") {
        q.push(("platform", pl));
    }
    let res = client
        .send(
            hyper::Method::POST,
            "/images/load",
            &q,
            body,
            &[("Content-Type", "application/x-tar".to_string())],
        )
        .await?;
    let json = res
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let mut body = res.into_body();
    if json {
        progress::display(&mut body, false, std::io::stdout().is_terminal(), false)
            .await
            .map_err(stream_err)?;
    } else {
        let mut o = std::io::stdout().lock();
        while let Some(c) = crate::client::next_chunk(&mut body).await {
            o.write_all(&c?)?;
        }
    }
    Ok(())
}

pub async fn import(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let source = p.args[0].clone();
    let mut q = Vec::new();
    let body = if source == "-" {
        q.push(("fromSrc", "-".to_string()));
        reader_body(tokio::io::stdin())
    } else if source.starts_with("http://") || source.starts_with("https://") {
        q.push(("fromSrc", source.clone()));
        empty_body()
    } else {
        q.push(("fromSrc", "-".to_string()));
        open_input(&source).await?
    };
    if let Some(r) = p.args.get(1) {
        let r = Reference::parse(r).map_err(|e| anyhow::anyhow!("{e}"))?;
        q.push(("repo", r.repository()));
        if let Some(t) = r.tag() {
            q.push(("tag", t.to_string()));
        }
    }
    if !p.string("message").is_empty() {
        q.push(("message", p.string("message")));
    }
    for c in p.list("change") {
        q.push(("changes", c));
    }
    if !p.string("platform").is_empty() {
        q.push(("platform", p.string("platform")));
    }
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::POST,
            "/images/create",
            &q,
            body,
            &[("Content-Type", "application/x-tar".to_string())],
        )
        .await?;
    let mut body = res.into_body();
    progress::display(&mut body, false, std::io::stdout().is_terminal(), false)
        .await
        .map_err(stream_err)?;
    Ok(())
}

pub async fn pull(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let name = &p.args[0];
    let all = p.bool("all-tags");
    let r = if all {
        Reference::parse(name)
    } else {
        Reference::parse_with_default_tag(name)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if all && (r.tag().is_some() || r.digest().is_some()) {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    if !all && !p.bool("quiet") && name_only(name) {
        println!("Using default tag: latest");
    }
    let client = ctx.client().await?.clone();
    let mut q = vec![("fromImage", r.repository())];
    if let Some(d) = r.digest() {
        q.push(("tag", d.to_string()));
    } else if let Some(t) = r.tag() {
        q.push(("tag", t.to_string()));
    }
    if !p.string("platform").is_empty() {
        q.push(("platform", p.string("platform")));
    }
    let auth = ctx.registry_auth(r.domain())?;
    let res = client
        .send(
            hyper::Method::POST,
            "/images/create",
            &q,
            empty_body(),
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    let mut body = res.into_body();
    let quiet = p.bool("quiet");
    progress::display(&mut body, false, std::io::stdout().is_terminal(), quiet)
        .await
        .map_err(stream_err)?;
    println!("{r}");
    Ok(())
}

pub async fn push(ctx: &mut Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let name = &p.args[0];
    let all = p.bool("all-tags");
    let r = if all {
        Reference::parse(name)
    } else {
        Reference::parse_with_default_tag(name)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !all && !p.bool("quiet") && name_only(name) {
        println!("Using default tag: latest");
    }
    let client = ctx.client().await?.clone();
    let mut q = Vec::new();
    if let Some(t) = r.tag().filter(|_| !all) {
        q.push(("tag", t.to_string()));
    }
    if !p.string("platform").is_empty() {
        q.push(("platform", p.string("platform")));
    }
    let path = format!("/images/{}/push", r.familiar_repository());
    let auth = ctx.registry_auth(r.domain())?;
    let res = client
        .send(
            hyper::Method::POST,
            &path,
            &q,
            empty_body(),
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    let mut body = res.into_body();
    progress::display(
        &mut body,
        false,
        std::io::stdout().is_terminal(),
        p.bool("quiet"),
    )
    .await
    .map_err(stream_err)?;
    if p.bool("quiet") {
        println!("{}", r.familiar());
    }
    Ok(())
}

const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_IMAGES_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

/// The report `image prune` prints for the daemon's answer (before the total line).
pub fn prune_report(v: &Json) -> String {
    let mut out = String::new();
    let deleted = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for d in deleted {
            match d["Untagged"].as_str().filter(|s| !s.is_empty()) {
                Some(u) => out.push_str(&format!("untagged: {u}\n")),
                None => out.push_str(&format!(
                    "deleted: {}\n",
                    d["Deleted"].as_str().unwrap_or("")
                )),
            }
        }
    }
    out
}

pub async fn prune(ctx: &mut super::Ctx, p: &crate::flags::Parsed) -> anyhow::Result<()> {
    let all = p.bool("all");
    let mut filters = p.list("filter");
    filters.push(format!("dangling={}", !all));
    let filters = super::filters_json(&filters)?;
    let warning = if all {
        ALL_IMAGES_WARNING
    } else {
        DANGLING_WARNING
    };
    if !p.bool("force") && !super::confirm(warning) {
        return Ok(());
    }
    let client = ctx.client().await?.clone();
    let q: Vec<(&str, String)> = filters.map(|f| vec![("filters", f)]).unwrap_or_default();
    let v = client.post_json("/images/prune", &q, None).await?;
    let out = prune_report(&v);
    if !out.is_empty() {
        println!("{out}");
    }
    println!(
        "Total reclaimed space: {}",
        crate::units::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_report_lists_untagged_then_deleted() {
        let v = serde_json::json!({"ImagesDeleted": [
            {"Untagged": "busybox:old"}, {"Deleted": "sha256:abc"}], "SpaceReclaimed": 2048});
        assert_eq!(
            prune_report(&v),
            "Deleted Images:\nuntagged: busybox:old\ndeleted: sha256:abc\n"
        );
        assert_eq!(
            prune_report(&serde_json::json!({"ImagesDeleted": null})),
            ""
        );
    }
}
