//! Dockerfile builds end to end, through `berth build` and the real `docker build` (the
//! classic builder: `DOCKER_BUILDKIT=0`, as there is no buildx here) against berthd.

use berth_tests::{require_root, Run, TestDaemon};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(mut c: Command) -> Run {
    let o = c.stdin(Stdio::null()).output().expect("running a CLI");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `docker build ARGS` with the classic builder.
fn docker_build(d: &TestDaemon, args: &[&str]) -> Run {
    let mut c = d.docker_cmd(&[&["build"], args].concat());
    c.env("DOCKER_BUILDKIT", "0");
    run(c)
}

fn berth_build(d: &TestDaemon, args: &[&str]) -> Run {
    d.berth(&[&["build"], args].concat())
}

/// A build context directory with these files.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn path(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

/// Snapshots, build temp dirs and mounts of a daemon (what a build must not leave).
fn leftovers(d: &TestDaemon) -> Vec<String> {
    let storage = d.data_root.join("storage");
    let mut out = Vec::new();
    for sub in ["containers", "tmp"] {
        for e in std::fs::read_dir(storage.join(sub)).unwrap().flatten() {
            out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
        }
    }
    let root = d.data_root.display().to_string();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if let Some(m) = l.split_whitespace().nth(4).filter(|m| m.starts_with(&root)) {
            out.push(format!("mount {m}"));
        }
    }
    out
}

/// Layers in storage that no image uses.
fn dangling_layers(d: &TestDaemon) -> Vec<String> {
    let ids = d.berth(&["images", "-aq", "--no-trunc"]).ok();
    let mut used = std::collections::HashSet::new();
    for id in ids.stdout.split_whitespace() {
        let layers = d.inspect(id, "{{range .RootFS.Layers}}{{.}} {{end}}");
        let mut chain: Option<String> = None;
        for diff in layers.split_whitespace() {
            let next = match &chain {
                None => diff.to_string(),
                Some(p) => {
                    use std::fmt::Write as _;
                    let digest = sha256_hex(format!("{p} {diff}").as_bytes());
                    let mut s = String::from("sha256:");
                    let _ = write!(s, "{digest}");
                    s
                }
            };
            used.insert(next.trim_start_matches("sha256:").to_string());
            chain = Some(next);
        }
    }
    std::fs::read_dir(d.data_root.join("storage/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|l| !used.contains(l))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

const APP: &str = r#"FROM busybox
ENV GREETING="hello there" TARGET=world
WORKDIR /srv
WORKDIR app
COPY greet.sh ./
COPY conf /etc/app/
RUN chmod +x greet.sh && echo built > /srv/app/stamp
USER nobody
EXPOSE 8080
CMD ["/srv/app/greet.sh"]
"#;

fn app_context() -> tempfile::TempDir {
    context(&[
        ("Dockerfile", APP),
        (
            "greet.sh",
            "#!/bin/sh\necho \"$GREETING $TARGET from $(id -un) in $(pwd): $(cat stamp) $(cat /etc/app/a.conf)\"\n",
        ),
        ("conf/a.conf", "conf-a"),
    ])
}

#[test]
fn a_dockerfile_builds_and_runs_with_berth_and_with_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = app_context();
    let b = berth_build(&d, &["-t", "app:berth", &path(&ctx)]).ok();
    let lines: Vec<&str> = b.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Sending build context to Docker daemon"),
        "{}",
        b.stdout
    );
    assert_eq!(lines[1], "Step 1/10 : FROM busybox");
    assert!(
        lines[2].starts_with(" ---> ") && lines[2].len() == 18,
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "Step 2/10 : ENV GREETING=\"hello there\" TARGET=world"
    );
    assert!(lines[4].starts_with(" ---> Running in "), "{}", b.stdout);
    assert!(lines[5].starts_with("Removing intermediate container "));
    assert!(
        b.stdout.contains("Step 5/10 : COPY greet.sh ./\n ---> "),
        "{}",
        b.stdout
    );
    assert!(b.stdout.contains("Successfully tagged app:berth\n"));
    let built = lines[lines.len() - 2]
        .strip_prefix("Successfully built ")
        .unwrap();
    assert_eq!(built.len(), 12);
    let expected = "hello there world from nobody in /srv/app: built conf-a";
    assert_eq!(d.berth(&["run", "--rm", "app:berth"]).ok().out(), expected);
    assert_eq!(
        d.inspect("app:berth", "{{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}"),
        "nobody /srv/app [\"/srv/app/greet.sh\"] {\"8080/tcp\":{}}"
    );
    let dk = docker_build(&d, &["--no-cache", "-t", "app:docker", &path(&ctx)]).ok();
    assert!(
        dk.stdout
            .contains("Step 10/10 : CMD [\"/srv/app/greet.sh\"]"),
        "{}",
        dk.stdout
    );
    assert!(dk.stdout.contains("Successfully tagged app:docker"));
    assert_eq!(
        d.docker(&["run", "--rm", "app:docker"]).ok().out(),
        expected
    );
    // The docker CLI sees the same image config.
    let cfg = d
        .docker(&["image", "inspect", "-f", "{{.Config.Env}}", "app:docker"])
        .ok();
    assert!(cfg.out().contains("GREETING=hello there"), "{}", cfg.stdout);
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    assert!(d.berth(&["ps", "-aq"]).ok().out().is_empty());
}

#[test]
fn rebuilds_hit_the_cache_and_history_reads_like_dockers() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = app_context();
    let first = berth_build(&d, &["-t", "app", &path(&ctx)]).ok();
    assert!(!first.stdout.contains("Using cache"));
    let again = docker_build(&d, &["-t", "app", &path(&ctx)]).ok();
    assert_eq!(
        again.stdout.matches(" ---> Using cache").count(),
        9,
        "{}",
        again.stdout
    );
    let id = |r: &Run| r.stdout.lines().rev().nth(1).unwrap().to_string();
    assert_eq!(id(&first), id(&again));
    // A changed file invalidates its COPY and every step after it.
    std::fs::write(ctx.path().join("conf/a.conf"), "conf-b").unwrap();
    let changed = berth_build(&d, &["-t", "app", &path(&ctx)]).ok();
    assert_eq!(
        changed.stdout.matches(" ---> Using cache").count(),
        4,
        "{}",
        changed.stdout
    );
    assert!(d
        .berth(&["run", "--rm", "app"])
        .ok()
        .out()
        .ends_with("conf-b"));
    // Metadata steps are empty layers with Docker's texts; every row has its step's id.
    let h = d
        .docker(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
            "app",
        ])
        .ok();
    let rows: Vec<&str> = h.stdout.lines().collect();
    assert_eq!(rows.len(), 10, "{}", h.stdout);
    assert!(
        rows.iter().all(|r| r.starts_with("sha256:")),
        "{}",
        h.stdout
    );
    assert!(
        rows[0].contains("|/bin/sh -c #(nop)  CMD [\"/srv/app/greet.sh\"]|0B"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("|/bin/sh -c #(nop)  EXPOSE 8080|0B"));
    assert!(rows[2].contains("|/bin/sh -c #(nop)  USER nobody|0B"));
    assert!(rows[3].contains("|/bin/sh -c chmod +x greet.sh && echo built > /srv/app/stamp|"));
    assert!(
        rows[4].contains("|/bin/sh -c #(nop) COPY dir:"),
        "{}",
        rows[4]
    );
    assert!(rows[4].contains(" in /etc/app/ |"));
    assert!(rows[5].contains("|/bin/sh -c #(nop) COPY file:"));
    assert!(rows[6].contains("|/bin/sh -c #(nop) WORKDIR /srv/app|"));
    assert!(rows[8].contains("|/bin/sh -c #(nop)  ENV GREETING=hello there TARGET=world|0B"));
    let busybox = d.inspect("busybox", "{{.Id}}");
    assert!(rows[9].starts_with(&format!("{busybox}|")));
    // `images` hides the intermediate images, `images -a` shows them.
    let all = d.berth(&["images", "-aq"]).ok().stdout.lines().count();
    let top = d.berth(&["images", "-q"]).ok().stdout.lines().count();
    assert!(all > top + 8, "{all} {top}");
}

#[test]
fn moving_a_copy_before_a_run_changes_the_cache_hits() {
    if !require_root() {
        return;
    }
    // The example of ../shared/seeds/002: 2.4.3.
    let d = TestDaemon::start();
    let run = "RUN echo installing vim > /vim.log";
    let one = context(&[
        ("Dockerfile", &format!("FROM busybox\n{run}\n")),
        ("testfile", "t"),
    ]);
    let first = berth_build(&d, &[&path(&one)]).ok();
    assert!(!first.stdout.contains("Using cache"));
    let two = context(&[
        (
            "Dockerfile",
            &format!("FROM busybox\n{run}\nCOPY testfile /\n"),
        ),
        ("testfile", "t"),
    ]);
    let second = docker_build(&d, &[&path(&two)]).ok();
    assert_eq!(
        second.stdout.matches("Using cache").count(),
        1,
        "{}",
        second.stdout
    );
    assert!(second
        .stdout
        .contains(&format!("Step 2/3 : {run}\n ---> Using cache")));
    let three = context(&[
        (
            "Dockerfile",
            &format!("FROM busybox\nCOPY testfile /\n{run}\n"),
        ),
        ("testfile", "t"),
    ]);
    let third = berth_build(&d, &[&path(&three)]).ok();
    assert_eq!(
        third.stdout.matches("Using cache").count(),
        0,
        "{}",
        third.stdout
    );
}

const STAGES: &str = "FROM busybox AS base
RUN echo base > /base
FROM base AS tool
RUN echo tool > /tool
FROM busybox AS skipped
RUN echo never-built
FROM busybox
COPY --from=tool /tool /from-name
COPY --from=0 /base /from-index
COPY --from=busybox /bin/busybox /from-image
CMD cat /from-name /from-index
";

#[test]
fn multi_stage_builds_copy_from_stages_and_stop_at_the_target() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = context(&[("Dockerfile", STAGES)]);
    let b = berth_build(&d, &["-t", "staged", &path(&ctx)]).ok();
    assert!(
        !b.stdout.contains("never-built"),
        "unneeded stages are skipped: {}",
        b.stdout
    );
    assert!(b.stdout.contains("Step 1/9 : FROM busybox AS base"));
    assert!(b
        .stdout
        .contains("Step 9/9 : CMD cat /from-name /from-index"));
    assert_eq!(d.berth(&["run", "--rm", "staged"]).ok().out(), "tool\nbase");
    let t = docker_build(&d, &["--target", "tool", "-t", "tool-only", &path(&ctx)]).ok();
    assert!(
        t.stdout.contains("Step 4/4 : RUN echo tool > /tool"),
        "{}",
        t.stdout
    );
    assert!(!t.stdout.contains("COPY"));
    let r = d
        .berth(&["run", "--rm", "tool-only", "cat", "/base", "/tool"])
        .ok();
    assert_eq!(r.out(), "base\ntool");
    let bad = berth_build(&d, &["--target", "nope", &path(&ctx)]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("failed to reach build target nope in Dockerfile"),
        "{}",
        bad.stderr
    );
}

#[test]
fn independent_stages_build_in_parallel() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS a\nRUN sleep 2 && echo a > /a\nFROM busybox AS b\nRUN sleep 2 && echo b > /b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )]);
    let t0 = Instant::now();
    let b = berth_build(&d, &["--no-cache", "-t", "par", &path(&ctx)]).ok();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "two 2 s stages took {took:?}"
    );
    // Output stays in Dockerfile order.
    let a = b.stdout.find("Step 2/7").unwrap();
    let bb = b.stdout.find("Step 3/7").unwrap();
    assert!(a < bb);
    let t0 = Instant::now();
    docker_build(&d, &["--no-cache", "-t", "par", &path(&ctx)]).ok();
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        d.berth(&["run", "--rm", "par", "cat", "/a", "/b"])
            .ok()
            .out(),
        "a\nb"
    );
}

#[test]
fn a_failing_run_shows_its_output_and_exit_code_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let layers_before = std::fs::read_dir(d.data_root.join("storage/layers"))
        .unwrap()
        .count();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo before; false\nRUN echo never\n",
    )]);
    for r in [
        berth_build(&d, &[&path(&ctx)]),
        docker_build(&d, &[&path(&ctx)]),
    ] {
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.contains(" ---> Running in "));
        assert!(r.stdout.contains("before\n"), "{}", r.stdout);
        assert!(!r.stdout.contains("never"));
        assert!(
            r.stderr.contains(
                "The command '/bin/sh -c echo before; false' returned a non-zero code: 1"
            ),
            "{}",
            r.stderr
        );
    }
    let three = context(&[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    assert_eq!(berth_build(&d, &[&path(&three)]).code, 3);
    assert_eq!(docker_build(&d, &["-q", &path(&three)]).code, 3);
    assert!(d.berth(&["ps", "-aq"]).ok().out().is_empty());
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    let layers_after = std::fs::read_dir(d.data_root.join("storage/layers"))
        .unwrap()
        .count();
    assert_eq!(layers_before, layers_after);
    assert!(dangling_layers(&d).is_empty());
}

#[test]
fn a_cancelled_build_kills_its_command_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo started; exec sleep 37\n",
    )]);
    for docker in [false, true] {
        let mut c = if docker {
            let mut c = d.docker_cmd(&["build", "--no-cache", &path(&ctx)]);
            c.env("DOCKER_BUILDKIT", "0");
            c
        } else {
            d.berth_cmd(&["build", "--no-cache", &path(&ctx)])
        };
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("started") {}
        assert!(line.contains("started"), "{line}");
        child.kill().unwrap();
        child.wait().unwrap();
        let clean = d.wait_until(10, || leftovers(&d).is_empty() && !sleeping("37"));
        assert!(
            clean,
            "docker={docker} left: {:?}, sleeping: {}",
            leftovers(&d),
            sleeping("37")
        );
    }
    assert!(dangling_layers(&d).is_empty());
}

/// Whether some process runs `sleep SECS`.
fn sleeping(secs: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| c == format!("sleep\0{secs}\0").as_bytes())
            .unwrap_or(false)
    })
}

/// Serves `body` to every GET on 127.0.0.1 until the process ends; returns the port.
fn http_server(body: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    port
}

fn tar_of(dir: &Path, compress: &str, out: &Path) {
    let st = Command::new("tar")
        .arg(format!("-c{compress}f"))
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn add_unpacks_local_archives_and_downloads_urls() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let port = http_server(b"downloaded\n");
    let src = context(&[("one", "1"), ("inner/two", "2")]);
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD a.tar.gz /gz/\nADD a.tar.bz2 /bz/\nADD a.tar.xz /xz\nADD a.tar /plain/\nADD http://127.0.0.1:{port}/files/data.txt /dl/\nADD --chown=nobody http://127.0.0.1:{port}/named.txt /renamed.txt\n"
        ),
    )]);
    for (c, name) in [
        ("z", "a.tar.gz"),
        ("j", "a.tar.bz2"),
        ("J", "a.tar.xz"),
        ("", "a.tar"),
    ] {
        tar_of(src.path(), c, &ctx.path().join(name));
    }
    berth_build(&d, &["-t", "added", &path(&ctx)]).ok();
    let r = d
        .berth(&["run", "--rm", "added", "sh", "-c", "cat /gz/one /bz/inner/two /xz/one /plain/inner/two /dl/data.txt; stat -c '%a %U %Y' /dl/data.txt /renamed.txt"])
        .ok();
    assert_eq!(
        r.out(),
        "1212downloaded\n600 root 1445412480\n600 nobody 1445412480"
    );
    // docker build gives the same image from the cache.
    let again = docker_build(&d, &["-t", "added", &path(&ctx)]).ok();
    assert_eq!(
        again.stdout.matches("Using cache").count(),
        6,
        "{}",
        again.stdout
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let parent = context(&[(
        "Dockerfile",
        "FROM busybox\nONBUILD RUN echo triggered > /onbuild\nONBUILD COPY marker /marker\n",
    )]);
    berth_build(&d, &["-t", "parent", &path(&parent)]).ok();
    assert!(d.berth(&["run", "--rm", "parent", "ls", "/onbuild"]).code != 0);
    let child = context(&[
        ("Dockerfile", "FROM parent\nRUN cat /onbuild /marker\n"),
        ("marker", "m"),
    ]);
    let b = docker_build(&d, &["-t", "child", &path(&child)]).ok();
    assert!(
        b.stdout.contains("# Executing 2 build triggers\n"),
        "{}",
        b.stdout
    );
    assert!(b.stdout.contains("triggered\nm"), "{}", b.stdout);
    assert_eq!(d.inspect("child", "{{json .Config.OnBuild}}"), "null");
}

#[test]
fn dockerignore_exceptions_and_double_stars_shape_the_context() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx\nCMD find /ctx -type f\n",
        ),
        (
            ".dockerignore",
            "**/*.log\nsecret*\nlogs\n!logs/keep.log\nDockerfile\n",
        ),
        ("a/b/deep.log", ""),
        ("a/b/deep.txt", ""),
        ("top.log", ""),
        ("secret.key", ""),
        ("logs/keep.log", ""),
        ("logs/drop.txt", ""),
    ]);
    let expect = "/ctx/.dockerignore\n/ctx/a/b/deep.txt\n/ctx/logs/keep.log";
    for (cli, tag) in [("berth", "ign-b"), ("docker", "ign-d")] {
        let r = if cli == "berth" {
            berth_build(&d, &["-t", tag, &path(&ctx)])
        } else {
            docker_build(&d, &["-t", tag, &path(&ctx)])
        }
        .ok();
        assert!(r.stdout.contains("Successfully tagged"));
        let mut files: Vec<String> = d
            .berth(&["run", "--rm", tag])
            .ok()
            .stdout
            .lines()
            .map(str::to_string)
            .collect();
        files.sort();
        assert_eq!(files.join("\n"), expect, "{cli}");
    }
}

#[test]
fn build_args_labels_stdin_dockerfiles_and_syntax_errors() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    // ARG before FROM, per-stage ARG, build args and their history text.
    let ctx = context(&[(
        "Dockerfile",
        "ARG IMG=busybox\nFROM $IMG\nARG IMG\nARG WHO=nobody\nENV SEEN=${WHO:-none}-${UNSET:+x}\nRUN echo \"$IMG $WHO\" > /args\n",
    )]);
    let b = docker_build(
        &d,
        &[
            "--build-arg",
            "WHO=you",
            "--build-arg",
            "EXTRA=1",
            "--label",
            "org.test=yes",
            "-t",
            "args",
            &path(&ctx),
        ],
    )
    .ok();
    assert!(
        b.stdout
            .contains("[Warning] One or more build-args [EXTRA] were not consumed"),
        "{}",
        b.stdout
    );
    assert!(
        b.stdout.contains("Step 6/6 : LABEL \"org.test\"=\"yes\""),
        "{}",
        b.stdout
    );
    assert_eq!(
        d.berth(&["run", "--rm", "args", "cat", "/args"]).ok().out(),
        "busybox you"
    );
    assert_eq!(
        d.inspect(
            "args",
            "{{index .Config.Labels \"org.test\"}} {{index .Config.Env 1}}"
        ),
        "yes SEEN=you-"
    );
    let h = d
        .berth(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "args",
        ])
        .ok();
    assert!(
        h.stdout
            .contains("|2 IMG=busybox WHO=you /bin/sh -c echo \"$IMG $WHO\" > /args"),
        "{}",
        h.stdout
    );
    // A Dockerfile on stdin, alone or with a context; -q and --iidfile.
    let r = d
        .berth_stdin(
            &["build", "-q", "-t", "stdin", "-"],
            b"FROM busybox\nRUN echo from-stdin > /s\n",
        )
        .ok();
    assert!(
        r.out().starts_with("sha256:") && r.out().len() == 71,
        "{}",
        r.stdout
    );
    let files = context(&[("data", "d")]);
    let iid = files.path().join("iid");
    let r = d
        .berth_stdin(
            &[
                "build",
                "-f",
                "-",
                "--iidfile",
                iid.to_str().unwrap(),
                "-t",
                "stdin2",
                &path(&files),
            ],
            b"FROM busybox\nCOPY data /data\n",
        )
        .ok();
    assert!(r.stdout.contains("Successfully tagged stdin2:latest"));
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(id, d.inspect("stdin2", "{{.Id}}"));
    assert_eq!(
        d.berth(&["run", "--rm", "stdin2", "cat", "/data"])
            .ok()
            .out(),
        "d"
    );
    // Errors name the file and the line.
    let bad = context(&[("build/Dockerfile.dev", "FROM busybox\n\nFROBNICATE now\n")]);
    let f = bad.path().join("build/Dockerfile.dev");
    for r in [
        berth_build(&d, &["-f", f.to_str().unwrap(), &path(&bad)]),
        docker_build(&d, &["-f", f.to_str().unwrap(), &path(&bad)]),
    ] {
        assert_eq!(r.code, 1);
        assert!(
            r.stderr.contains("dockerfile parse error line 3 of build/Dockerfile.dev: unknown instruction: FROBNICATE"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn heredocs_scratch_images_and_user_switches() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS tools\nRUN <<EOF\nset -e\nmkdir /out\necho one > /out/a\necho two >> /out/a\nEOF\nCOPY <<-'CONF' /out/conf\n\tkey=$NOT_EXPANDED\n\tCONF\nFROM scratch\nCOPY --from=tools /bin/busybox /bin/busybox\nCOPY --from=tools /out/ /out/\nUSER 1000:1000\nCMD [\"/bin/busybox\", \"cat\", \"/out/a\", \"/out/conf\"]\n",
    )]);
    berth_build(&d, &["-t", "heredoc", &path(&ctx)]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", "heredoc"]).ok().out(),
        "one\ntwo\nkey=$NOT_EXPANDED"
    );
    assert_eq!(d.inspect("heredoc", "{{len .RootFS.Layers}}"), "2");
}

#[test]
fn run_steps_use_the_default_bridge_unless_told_otherwise() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    // A server on the daemon's bridge gateway: reachable from a bridge network only.
    let gateway = d.bip.split('/').next().unwrap().to_string();
    let l = std::net::TcpListener::bind((gateway.as_str(), 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nfetched\n",
            );
        }
    });
    let url = format!("http://{gateway}:{port}/");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN timeout 10 wget -q -O /got {url} && ip -4 addr show eth0 | grep -c inet > /ifs\nRUN --network=none ip -o link | grep -vc ': lo:' > /none || true\n"
        ),
    )]);
    berth_build(&d, &["-t", "netbuild", &path(&ctx)]).ok();
    let r = d
        .berth(&["run", "--rm", "netbuild", "cat", "/got", "/ifs", "/none"])
        .ok();
    assert_eq!(r.out(), "fetched\n1\n0");
    // `--network none` for the whole build: no way out.
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nRUN timeout 10 wget -q -O /got {url}\n"),
    )]);
    let r = berth_build(&d, &["--network", "none", &path(&ctx)]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    // docker build through the API: same default.
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nRUN timeout 10 wget -q -O - {url}\n"),
    )]);
    let r = docker_build(&d, &["--no-cache", &path(&ctx)]).ok();
    assert!(r.stdout.contains("fetched"), "{}", r.stdout);
    // Every step's namespace and address went away with it.
    let netns = d.exec_root.join("netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
}
