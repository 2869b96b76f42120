//! `commit`, `diff` and `export`: a container's filesystem changes as an image
//! (`POST /commit`), as `A`/`C`/`D` lines (`GET /containers/{id}/changes`), or as a tar
//! (`GET /containers/{id}/export`).

use super::{esc, Ctx};
use crate::flags::Parsed;
use berth_core::reference::Reference;
use serde_json::Value as Json;
use std::io::{IsTerminal, Write};

/// The query of `POST /commit` for `commit` flags.
pub fn commit_query(p: &Parsed) -> anyhow::Result<Vec<(&'static str, String)>> {
    let (mut repo, mut tag) = (String::new(), String::new());
    if let Some(r) = p.args.get(1) {
        // docker prints the reference parser's own words, without detail.
        let parsed = Reference::parse(r).map_err(|e| {
            let msg = e.to_string();
            match msg.split_once(": ") {
                Some((head, tail))
                    if head == "invalid reference format" && !tail.contains("lowercase") =>
                {
                    anyhow::anyhow!("{head}")
                }
                _ => anyhow::anyhow!("{msg}"),
            }
        })?;
        if parsed.digest().is_some() {
            anyhow::bail!("refusing to create a tag with a digest reference");
        }
        repo = parsed.repository();
        tag = parsed.tag().unwrap_or("latest").to_string();
    }
    let mut q = vec![
        ("container", p.args[0].clone()),
        ("repo", repo),
        ("tag", tag),
        ("comment", p.string("message")),
        ("author", p.string("author")),
    ];
    for c in p.list("change") {
        q.push(("changes", c));
    }
    if !p.bool("pause") {
        q.push(("pause", "0".to_string()));
    }
    Ok(q)
}

pub async fn commit(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let q = commit_query(p)?;
    let client = ctx.client().await?.clone();
    let v = client.post_json("/commit", &q, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `diff` lines: `C` changed, `A` added, `D` deleted (the API's kinds 0, 1, 2).
pub fn diff_lines(changes: &Json) -> String {
    let mut out = String::new();
    // docker sorts the daemon's changes by path.
    let mut changes: Vec<&Json> = changes.as_array().into_iter().flatten().collect();
    changes.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
    for c in changes {
        let kind = match c["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "",
        };
        out.push_str(&format!("{kind} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    out
}

pub async fn diff(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let v = client
        .get_json(&format!("/containers/{}/changes", esc(&p.args[0])), &[])
        .await?;
    print!("{}", diff_lines(&v));
    Ok(())
}

pub async fn export(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let output = p.string("output");
    if output.is_empty() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    if !output.is_empty() {
        let parent = super::cp::split_dir_entry(&super::cp::clean(&output)).0;
        if let Err(e) = std::fs::metadata(&parent) {
            anyhow::bail!(
                "failed to export container: invalid output path: stat {parent}: {}",
                crate::opts::io_reason(&e)
            );
        }
    }
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{}/export", esc(&p.args[0])),
            &[],
            crate::client::empty_body(),
            &[],
        )
        .await?;
    let mut body = res.into_body();
    let mut out: Box<dyn Write> = if output.is_empty() {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&output)?)
    };
    while let Some(chunk) = crate::client::next_chunk(&mut body).await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_prints_kind_letters() {
        let v = json!([{"Kind": 0, "Path": "/bin"}, {"Kind": 2, "Path": "/bin/ls"}, {"Kind": 1, "Path": "/newfile"}]);
        assert_eq!(diff_lines(&v), "C /bin\nD /bin/ls\nA /newfile\n");
        let v = json!([{"Kind": 1, "Path": "/z"}, {"Kind": 1, "Path": "/a"}]);
        assert_eq!(diff_lines(&v), "A /a\nA /z\n");
    }

    #[test]
    fn commit_sends_repo_tag_and_pause() {
        let mut p = Parsed::default();
        p.args = vec!["c1".into(), "myimg".into()];
        p.set("pause", "false");
        p.set("change", "ENV A=1");
        p.set("message", "m");
        let q = commit_query(&p).unwrap();
        assert!(q.contains(&("repo", "docker.io/library/myimg".to_string())));
        assert!(q.contains(&("tag", "latest".to_string())));
        assert!(q.contains(&("changes", "ENV A=1".to_string())));
        assert!(q.contains(&("pause", "0".to_string())));
        assert!(q.contains(&("comment", "m".to_string())));
    }
}
