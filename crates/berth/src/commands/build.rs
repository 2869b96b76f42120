//! `berth build [OPTIONS] PATH | URL | -`, as the docker CLI's classic builder does it: the
//! context directory is sent as a tar (owners 0:0, modes and times kept) filtered by its
//! `.dockerignore` on this side; a Dockerfile from stdin (`-f -`) or from outside the
//! context is added under a random name that `.dockerignore` then hides; `-` sends stdin
//! (a tar or a lone Dockerfile); a URL is left for the daemon to fetch. The daemon's
//! messages print as docker prints them, and a failed `RUN` exits with its code.

use super::Ctx;
use crate::client::Body;
use crate::flags::Parsed;
use crate::StatusError;
use anyhow::Context as _;
use berth_builder::dockerignore::Matcher;
use bytes::Bytes;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What goes into the context tar besides the directory.
struct ContextPlan {
    dir: PathBuf,
    ignore: Matcher,
    /// The Dockerfile's path inside the context (as sent in `dockerfile=`).
    dockerfile: String,
    /// A Dockerfile added under a random name, and the `.dockerignore` text that hides it.
    extra: Option<(String, Vec<u8>, Vec<u8>)>,
}

/// A blocking writer that feeds an HTTP request body, counting bytes.
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    total: u64,
}

const CHUNK: usize = 1024 * 1024;

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "daemon went away"))
    }
}

fn channel_body(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> Body {
    use http_body_util::BodyExt;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|r| (r.map(hyper::body::Frame::data), rx))
    });
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

fn tar_header(meta: &std::fs::Metadata, typ: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(typ);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(size);
    h
}

/// Writes the context directory as a tar to `w`, with `.dockerignore` applied.
fn write_context(plan: &ContextPlan, w: impl Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(w);
    let always: [&str; 2] = [".dockerignore", plan.dockerfile.as_str()];
    let exceptions = plan.ignore.has_exceptions();
    fn walk(
        tar: &mut tar::Builder<impl Write>,
        plan: &ContextPlan,
        rel: &str,
        always: &[&str; 2],
        exceptions: bool,
    ) -> std::io::Result<()> {
        let dir = if rel.is_empty() {
            plan.dir.clone()
        } else {
            plan.dir.join(rel)
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = plan.dir.join(&child);
            let meta = std::fs::symlink_metadata(&path)?;
            let excluded = !always.contains(&child.as_str()) && plan.ignore.excluded(&child);
            if rel.is_empty() && plan.extra.is_some() && name == ".dockerignore" {
                continue;
            }
            if meta.is_dir() {
                if !excluded {
                    let mut h = tar_header(&meta, tar::EntryType::Directory, 0);
                    tar.append_data(&mut h, format!("{child}/"), std::io::empty())?;
                }
                if !excluded || exceptions {
                    walk(tar, plan, &child, always, exceptions)?;
                }
                continue;
            }
            if excluded {
                continue;
            }
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?;
                let mut h = tar_header(&meta, tar::EntryType::Symlink, 0);
                tar.append_link(&mut h, &child, target)?;
            } else if meta.is_file() {
                let mut h = tar_header(&meta, tar::EntryType::Regular, meta.len());
                let f = std::fs::File::open(&path)?;
                let f = std::io::BufReader::with_capacity(CHUNK, f);
                tar.append_data(&mut h, &child, f.take(meta.len()))?;
            }
        }
        Ok(())
    }
    walk(&mut tar, plan, "", &always, exceptions)?;
    if let Some((name, content, ignore)) = &plan.extra {
        for (n, data) in [(name.as_str(), content), (".dockerignore", ignore)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_size(data.len() as u64);
            h.set_mtime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            tar.append_data(&mut h, n, &data[..])?;
        }
    }
    tar.into_inner()?.flush()
}

fn is_remote(s: &str) -> bool {
    s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("github.com/")
}

fn random_name() -> String {
    let n: u128 = rand_u128();
    format!(".dockerfile.{:020x}", n & ((1u128 << 80) - 1))
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u128::from_le_bytes(b)
}

/// Where a build's Dockerfile comes from.
enum DockerfileSource {
    /// `-f PATH` as given on the command line: relative to the current directory; empty
    /// means `Dockerfile` (or `dockerfile`) in the context.
    Flag(String),
    /// A path relative to the context (Compose's `build.dockerfile`).
    InContext(String),
    /// The Dockerfile's text (stdin, Compose's `dockerfile_inline`).
    Text(Vec<u8>),
}

/// Resolves the context directory and Dockerfile as docker does (`-f` relative to the
/// current directory; a Dockerfile outside the context or from stdin is added).
fn local_context(dir: &str, file: &str) -> anyhow::Result<ContextPlan> {
    let source = if file == "-" {
        let mut content = Vec::new();
        std::io::stdin().read_to_end(&mut content)?;
        DockerfileSource::Text(content)
    } else {
        DockerfileSource::Flag(file.to_string())
    };
    context_plan(dir, source)
}

fn context_plan(dir: &str, source: DockerfileSource) -> anyhow::Result<ContextPlan> {
    let dir_path = PathBuf::from(dir);
    let meta = std::fs::metadata(&dir_path)
        .map_err(|_| anyhow::anyhow!("unable to prepare context: path {dir:?} not found"))?;
    if !meta.is_dir() {
        anyhow::bail!("unable to prepare context: context must be a directory: {dir}");
    }
    let dir_abs = std::fs::canonicalize(&dir_path)?;
    let ignore_text = std::fs::read_to_string(dir_abs.join(".dockerignore")).ok();
    let ignore = Matcher::parse(ignore_text.as_deref().unwrap_or(""));
    let with_extra = |content: Vec<u8>| {
        let name = random_name();
        let mut ign = ignore_text.clone().unwrap_or_default().into_bytes();
        ign.extend_from_slice(format!("\n{name}\n").as_bytes());
        (name.clone(), Some((name, content, ign)))
    };
    let path = match source {
        DockerfileSource::Text(content) => {
            let (dockerfile, extra) = with_extra(content);
            return Ok(ContextPlan {
                dir: dir_abs,
                ignore,
                dockerfile,
                extra,
            });
        }
        DockerfileSource::Flag(file) | DockerfileSource::InContext(file) if file.is_empty() => {
            let p = dir_abs.join("Dockerfile");
            if !p.exists() && dir_abs.join("dockerfile").exists() {
                dir_abs.join("dockerfile")
            } else {
                p
            }
        }
        DockerfileSource::Flag(file) => std::env::current_dir()?.join(file),
        DockerfileSource::InContext(file) => dir_abs.join(file),
    };
    let real = std::fs::canonicalize(&path).map_err(|e| {
        anyhow::anyhow!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: {}",
            path.display(),
            crate::opts::io_reason(&e)
        )
    })?;
    let (dockerfile, extra) = match real.strip_prefix(&dir_abs) {
        Ok(rel) => (rel.to_string_lossy().into_owned(), None),
        Err(_) => with_extra(std::fs::read(&real)?),
    };
    Ok(ContextPlan {
        dir: dir_abs,
        ignore,
        dockerfile,
        extra,
    })
}

/// A Compose service's build context as `berth build` sends it (`.dockerignore` applied):
/// the tar and the `dockerfile=` value. `dockerfile` is relative to the context;
/// `inline` is `dockerfile_inline`'s text.
pub fn service_context(
    dir: &str,
    dockerfile: Option<&str>,
    inline: Option<&str>,
) -> anyhow::Result<(Vec<u8>, String)> {
    let source = match (inline, dockerfile) {
        (Some(text), _) => DockerfileSource::Text(text.as_bytes().to_vec()),
        (None, f) => DockerfileSource::InContext(f.unwrap_or_default().to_string()),
    };
    let plan = context_plan(dir, source)?;
    let mut tar = Vec::new();
    write_context(&plan, &mut tar)?;
    Ok((tar, plan.dockerfile))
}

/// `KEY=value` → value; `KEY` → the client's environment, or null.
fn build_args(list: &[String]) -> BTreeMap<String, Option<String>> {
    list.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), std::env::var(a).ok()),
        })
        .collect()
}

pub async fn build(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let source = p.args[0].clone();
    let quiet = p.bool("quiet");
    let iidfile = p.string("iidfile");
    if !iidfile.is_empty() {
        let _ = std::fs::remove_file(&iidfile);
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in p.list("tag") {
        q.push(("t", t));
    }
    let args = build_args(&p.list("build-arg"));
    if !args.is_empty() {
        q.push(("buildargs", serde_json::to_string(&args)?));
    }
    let labels: BTreeMap<String, String> = p
        .list("label")
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect();
    if !labels.is_empty() {
        q.push(("labels", serde_json::to_string(&labels)?));
    }
    for (flag, key) in [
        ("target", "target"),
        ("network", "networkmode"),
        ("platform", "platform"),
    ] {
        let v = p.string(flag);
        let default_network = flag == "network" && v == "default";
        if !v.is_empty() && !default_network {
            q.push((key, v));
        }
    }
    for (flag, key) in [
        ("no-cache", "nocache"),
        ("pull", "pull"),
        ("force-rm", "forcerm"),
        ("quiet", "q"),
    ] {
        if p.bool(flag) {
            q.push((key, "1".into()));
        }
    }
    if !p.bool("rm") {
        q.push(("rm", "0".into()));
    }
    let shm = p.string("shm-size");
    if !shm.is_empty() {
        let bytes = crate::units::ram_in_bytes(&shm).map_err(|e| {
            crate::opts::InvalidArgument(format!(
                "invalid argument {shm:?} for \"--shm-size\" flag: {e}"
            ))
        })?;
        q.push(("shmsize", bytes.to_string()));
    }
    for h in p.list("add-host") {
        q.push(("extrahosts", h));
    }
    let file = p.string("file");
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let producer: tokio::task::JoinHandle<std::io::Result<u64>>;
    if source == "-" {
        if file == "-" {
            anyhow::bail!(
                "invalid argument: can't use stdin for both build context and dockerfile"
            );
        }
        if !file.is_empty() {
            q.push(("dockerfile", file.clone()));
        }
        producer = tokio::task::spawn_blocking(move || {
            let mut w = BodyWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
                total: 0,
            };
            std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
            w.flush()?;
            Ok(w.total)
        });
    } else if is_remote(&source) {
        q.push(("remote", source.clone()));
        if !file.is_empty() {
            q.push(("dockerfile", file.clone()));
        }
        drop(tx);
        producer = tokio::task::spawn(async { Ok(0) });
    } else {
        let plan = local_context(&source, &file)?;
        q.push(("dockerfile", plan.dockerfile.clone()));
        let compress = p.bool("compress");
        producer = tokio::task::spawn_blocking(move || {
            let mut w = BodyWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
                total: 0,
            };
            if compress {
                let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
                write_context(&plan, &mut gz)?;
                gz.finish()?;
            } else {
                write_context(&plan, &mut w)?;
            }
            w.flush()?;
            Ok(w.total)
        });
    }
    let registry_config =
        crate::config::ConfigFile::load(&crate::config::config_dir(Some(&ctx.config_dir)))?
            .registry_config_header();
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::POST,
            "/build",
            &q,
            channel_body(rx),
            &[
                ("Content-Type", "application/x-tar".to_string()),
                ("X-Registry-Config", registry_config),
            ],
        )
        .await;
    let sent = producer
        .await
        .map_err(|e| anyhow::anyhow!("sending the build context: {e}"))?
        .context("error sending the build context")?;
    let res = res?;
    let mut out = std::io::stdout().lock();
    if !quiet && !is_remote(&source) {
        write!(
            out,
            "Sending build context to Docker daemon {:>8}\r\r\n",
            crate::units::human_size(sent as f64)
        )?;
        out.flush()?;
    }
    drop(out);
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let mut image_id = String::new();
    let mut quiet_text = String::new();
    let mut handle = |m: Json| -> anyhow::Result<()> {
        if let Some(err) = m.get("errorDetail").or_else(|| m.get("error").map(|_| &m)) {
            let message = err
                .get("message")
                .and_then(Json::as_str)
                .or_else(|| m.get("error").and_then(Json::as_str))
                .unwrap_or("")
                .to_string();
            let code = err
                .get("code")
                .and_then(Json::as_i64)
                .filter(|c| *c > 0)
                .unwrap_or(1);
            return Err(StatusError::exit(code as i32, message));
        }
        if let Some(id) = m
            .get("aux")
            .and_then(|a| a.get("ID"))
            .and_then(Json::as_str)
        {
            image_id = id.to_string();
        }
        if let Some(s) = m.get("stream").and_then(Json::as_str) {
            if quiet {
                quiet_text.push_str(s);
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(s.as_bytes())?;
                o.flush()?;
            }
        }
        Ok(())
    };
    while let Some(chunk) = crate::client::next_chunk(&mut body).await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if let Err(e) = handle(serde_json::from_str(text)?) {
                if quiet && !quiet_text.is_empty() {
                    eprint!("{quiet_text}");
                }
                return Err(e);
            }
        }
    }
    if quiet {
        let id = quiet_text.trim().to_string();
        if image_id.is_empty() {
            image_id = id.clone();
        }
        println!("{id}");
    }
    if !iidfile.is_empty() && !image_id.is_empty() {
        std::fs::write(&iidfile, &image_id)
            .map_err(|e| anyhow::anyhow!("Failed to write image ID to file: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn dockerignore_filters_the_context_but_keeps_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "Dockerfile\n**/*.log\nsecret\nlogs\n!logs/keep.log\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/x.log"), "").unwrap();
        std::fs::write(d.path().join("a/b/x.txt"), "").unwrap();
        std::fs::write(d.path().join("secret"), "").unwrap();
        std::fs::create_dir(d.path().join("logs")).unwrap();
        std::fs::write(d.path().join("logs/keep.log"), "").unwrap();
        std::fs::write(d.path().join("logs/other"), "").unwrap();
        let plan = local_context(d.path().to_str().unwrap(), "").unwrap();
        let mut out = Vec::new();
        write_context(&plan, &mut out).unwrap();
        let n = names(&out);
        assert!(n.contains(&"Dockerfile".to_string()), "{n:?}");
        assert!(n.contains(&".dockerignore".to_string()));
        assert!(n.contains(&"a/b/x.txt".to_string()));
        assert!(!n.iter().any(|x| x.ends_with("x.log")), "{n:?}");
        assert!(!n.contains(&"secret".to_string()));
        assert!(n.contains(&"logs/keep.log".to_string()), "{n:?}");
        assert!(!n.contains(&"logs/other".to_string()));
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_and_hidden() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(d.path().join("Other.dockerfile"), "FROM y\n").unwrap();
        let plan = local_context(
            ctx.to_str().unwrap(),
            d.path().join("Other.dockerfile").to_str().unwrap(),
        )
        .unwrap();
        assert!(plan.dockerfile.starts_with(".dockerfile."));
        let mut out = Vec::new();
        write_context(&plan, &mut out).unwrap();
        let n = names(&out);
        assert!(n.contains(&plan.dockerfile));
        assert!(n.contains(&".dockerignore".to_string()));
    }

    #[test]
    fn build_args_without_values_come_from_the_environment() {
        std::env::set_var("BERTH_TEST_BUILD_ARG", "from-env");
        let a = build_args(&[
            "A=1".into(),
            "BERTH_TEST_BUILD_ARG".into(),
            "BERTH_TEST_UNSET_ARG".into(),
        ]);
        assert_eq!(a["A"].as_deref(), Some("1"));
        assert_eq!(a["BERTH_TEST_BUILD_ARG"].as_deref(), Some("from-env"));
        assert_eq!(a["BERTH_TEST_UNSET_ARG"], None);
    }
}
