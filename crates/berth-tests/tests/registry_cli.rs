//! Pull, push, login/logout, search, history and image prune through the `berth` CLI,
//! each compared with what the real docker CLI prints against the same berthd and the
//! same local `docker-registry` (or a tiny server speaking Docker Hub's search API).
//! Nothing here reaches the internet.

use berth_tests::registry::{hub_search_server, TcpProxy, TestRegistry};
use berth_tests::{host_arch, import_random_image, require_root, run_in_pty, Run, TestDaemon};
use std::time::Duration;

/// Both CLIs ran the same command: same exit code, same output.
#[track_caller]
fn assert_same(berth: &Run, docker: &Run) {
    assert_eq!(
        (berth.code, berth.stdout.as_str(), berth.stderr.as_str()),
        (docker.code, docker.stdout.as_str(), docker.stderr.as_str()),
        "berth (left) and docker (right) differ"
    );
}

/// Runs `args` through berth, then through docker, with `reset` before each.
fn both(d: &TestDaemon, args: &[&str], mut reset: impl FnMut()) -> (Run, Run) {
    reset();
    let b = d.berth(args);
    reset();
    let k = d.docker(args);
    (b, k)
}

#[test]
fn berth_logs_in_pushes_and_pulls_as_the_docker_cli_does() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::with_user("alice", "s3cret");
    let host = reg.host();
    let name = format!("{host}/team/bb:v1");
    d.berth(&["tag", "busybox", &name]).ok();

    let (b, k) = both(&d, &["push", &name], || {});
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("no basic auth credentials"), "{b:?}");
    assert_same(&b, &k);
    let (b, k) = both(&d, &["login", "-u", "alice", "-p", "wrong", &host], || {});
    assert_eq!(b.code, 1);
    assert!(
        b.stderr.contains(&format!(
            "login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"
        )),
        "{b:?}"
    );
    assert_same(&b, &k);

    let login = d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret\n",
    );
    assert_eq!(login.code, 0, "{login:?}");
    assert_eq!(login.stdout, "Login Succeeded\n");
    let config = std::fs::read_to_string(d.root.path().join("docker-config/config.json")).unwrap();
    assert!(config.contains(&host), "{config}");

    // The first push uploads, with docker's plain (not a terminal) progress lines.
    let push = d.berth(&["push", &name]).ok();
    let lines: Vec<&str> = push.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{host}/team/bb]")
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{lines:?}");
    let digest_line = lines.last().unwrap().to_string();
    assert!(digest_line.starts_with("v1: digest: sha256:"), "{lines:?}");
    let digest = digest_line.split_whitespace().nth(2).unwrap().to_string();
    // Again: both CLIs print the same "already exists" report.
    let (b, k) = both(&d, &["push", &name], || {});
    assert!(b.stdout.contains("Layer already exists"), "{b:?}");
    assert_same(&b, &k);

    // Pull after rmi: identical output, by tag, by digest and quiet.
    let rmi = || {
        d.berth(&["rmi", "-f", &name]);
        d.berth(&["rmi", "-f", &format!("{host}/team/bb@{digest}")]);
    };
    let (b, k) = both(&d, &["pull", &name], rmi);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(
        b.stdout
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{b:?}"
    );
    assert_same(&b, &k);
    let by_digest = format!("{host}/team/bb@{digest}");
    let (b, k) = both(&d, &["pull", &by_digest], rmi);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains(&format!("Digest: {digest}")), "{b:?}");
    assert_same(&b, &k);
    let (b, k) = both(&d, &["pull", "-q", &name], rmi);
    assert_eq!(b.stdout, format!("{name}\n"));
    assert_same(&b, &k);
    let (b, k) = both(&d, &["pull", &name], || {});
    assert!(b.stdout.contains("Image is up to date"), "{b:?}");
    assert_same(&b, &k);
    let digests = d
        .berth(&[
            "images",
            "--digests",
            "--format",
            "{{.Digest}}",
            &format!("{host}/team/bb"),
        ])
        .ok();
    assert_eq!(digests.stdout, format!("{digest}\n"));

    // Errors: a missing tag, a bad name, a tag that is not here.
    let (b, k) = both(&d, &["pull", &format!("{host}/team/bb:nope")], || {});
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("manifest unknown"), "{b:?}");
    assert_same(&b, &k);
    let (b, k) = both(&d, &["pull", &format!("{host}/Team/bb")], || {});
    assert_ne!(b.code, 0);
    assert!(b.stderr.contains("invalid reference format"), "{b:?}");
    let (b, k2) = both(&d, &["push", &format!("{host}/team/bb:v9")], || {});
    assert_eq!(b.code, 1);
    assert_same(&b, &k2);
    drop(k);

    let logout = d.berth(&["logout", &host]).ok();
    assert_eq!(
        logout.stdout,
        format!("Removing login credentials for {host}\n")
    );
    let config = std::fs::read_to_string(d.root.path().join("docker-config/config.json")).unwrap();
    assert!(!config.contains(&host), "{config}");
    let (b, k) = both(&d, &["pull", &name], rmi);
    assert_eq!(b.code, 1);
    assert!(b.stderr.contains("no basic auth credentials"), "{b:?}");
    assert_same(&b, &k);
}

#[test]
fn berth_pull_and_push_draw_progress_bars_on_a_terminal() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    // ~6 MB/s: 12 MiB take two seconds, long enough for the bars to move.
    let proxy = TcpProxy::throttled(reg.port, 6_000_000);
    let name = format!("{}/big:v1", proxy.host());
    import_random_image(&d, &name, 12);

    let (push, code) = run_in_pty(
        d.berth_cmd(&["push", &name]),
        40,
        120,
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{push}");
    assert!(push.contains("Pushing"), "{push}");
    assert!(push.contains("Pushed"), "{push}");
    d.berth(&["rmi", &name]).ok();

    let (pull, code) = run_in_pty(
        d.berth_cmd(&["pull", &name]),
        40,
        120,
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{pull}");
    // Per-layer lines redrawn in place, with a bar and sizes as docker draws them.
    assert!(pull.contains("Downloading"), "{pull}");
    assert!(pull.contains("[=") && pull.contains(">"), "{pull}");
    assert!(pull.contains("MB/"), "{pull}");
    assert!(
        pull.contains("\x1b[1A") || pull.contains("\x1b[2K"),
        "{pull}"
    );
    assert!(pull.contains("Pull complete"), "{pull}");
    assert!(
        pull.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pull}"
    );
}

#[test]
fn berth_search_prints_what_docker_prints() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let results = serde_json::json!([
        {"name": "library/alpine", "description": "A minimal Docker image based on Alpine Linux with a complete package index", "star_count": 100, "is_official": true, "is_automated": false},
        {"name": "someone/alpine-tools", "description": "tools", "star_count": 3, "is_official": false, "is_automated": true},
        {"name": "library/busybox", "description": "The Swiss army knife", "star_count": 50, "is_official": true, "is_automated": false},
    ]);
    let (server, _) = hub_search_server(results);
    let term = format!("{}/alpine", server.host());
    let cases: &[&[&str]] = &[
        &[],
        &["--no-trunc"],
        &["--limit", "1"],
        &["--filter", "stars=10"],
        &["--filter", "is-official=false"],
        &["--filter", "is-automated=true"],
        &["--format", "{{.Name}}: {{.StarCount}} {{.IsOfficial}}"],
        &["--format", "{{json .}}"],
        &["--filter", "colour=red"],
        &["--limit", "0"],
    ];
    for flags in cases {
        let args = [&["search"][..], flags, &[term.as_str()]].concat();
        let (b, k) = both(&d, &args, || {});
        assert_same(&b, &k);
    }
    // A server without the search API: docker's error, from both.
    let reg = TestRegistry::start();
    let (b, k) = both(&d, &["search", &format!("{}/x", reg.host())], || {});
    assert_ne!(b.code, 0);
    assert_same(&b, &k);
}

#[test]
fn berth_history_of_a_pulled_image_reads_like_dockers() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    let name = format!("{}/hist:v1", reg.host());
    // Two layers with history, loaded (no parent image here, as after a pull from Docker).
    let dir = berth_tests::temp_dir("hist-");
    let busybox = std::fs::read(berth_tests::busybox_tar()).unwrap();
    std::fs::write(dir.path().join("f"), "hi\n").unwrap();
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "top.tar", "f"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let top = std::fs::read(dir.path().join("top.tar")).unwrap();
    let diff_ids: Vec<String> = [&busybox, &top]
        .iter()
        .map(|l| berth_core::Digest::of(l).to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": host_arch(), "os": "linux", "created": "2024-01-02T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:busybox in / "},
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
            {"created": "2024-01-02T00:00:00Z", "created_by": "/bin/sh -c echo hi > /f", "comment": "add f"},
        ],
    })
    .to_string();
    std::fs::write(dir.path().join("l0.tar"), &busybox).unwrap();
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": [name], "Layers": ["l0.tar", "top.tar"]}]);
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    let out = std::process::Command::new("tar")
        .args([
            "-cf",
            "image.tar",
            "manifest.json",
            "config.json",
            "l0.tar",
            "top.tar",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d.berth(&["load", "-i", dir.path().join("image.tar").to_str().unwrap()])
        .ok();
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["pull", &name]).ok();
    let history = d.berth(&["history", &name]).ok();
    // Only the top layer has a local image id; the rest print <missing>, as Docker's do.
    let rows: Vec<&str> = history.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", history.stdout);
    assert!(!rows[0].starts_with("<missing>"), "{}", history.stdout);
    assert!(
        rows[1..].iter().all(|r| r.starts_with("<missing>")),
        "{}",
        history.stdout
    );
    let cases: &[&[&str]] = &[
        &["-H=false"],
        &["--no-trunc", "-H=false"],
        &["-q"],
        &["-q", "--no-trunc"],
        &["--format", "{{.ID}} {{.CreatedBy}} {{.Size}} {{.Comment}}"],
        &["--format", "{{json .}}"],
    ];
    for flags in cases {
        let args = [&["history"][..], flags, &[name.as_str()]].concat();
        let (b, k) = both(&d, &args, || {});
        assert_eq!(b.code, 0, "{b:?}");
        assert_same(&b, &k);
    }
    // Relative times can tick between the two runs: retry once.
    let (b, k) = both(&d, &["history", &name], || {});
    let (b, k) = if b.stdout == k.stdout {
        (b, k)
    } else {
        both(&d, &["history", &name], || {})
    };
    assert_same(&b, &k);
    let (b, k) = both(&d, &["history", "nothing:here"], || {});
    assert_eq!(b.code, 1);
    assert_same(&b, &k);
}

#[test]
fn berth_image_prune_removes_what_docker_would() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let tar = std::fs::read(berth_tests::busybox_tar()).unwrap();
    // A fixed set of images, loaded again before each prune so both CLIs see the same.
    d.berth_stdin(&["import", "-c", "LABEL keep=yes", "-", "keep:v1"], &tar)
        .ok();
    d.berth_stdin(&["import", "-c", "ENV X=1", "-", "drop:v1"], &tar)
        .ok();
    d.berth_stdin(&["import", "-c", "ENV X=2", "-", "dangling:v1"], &tar)
        .ok();
    let dangling_id = d.inspect("dangling:v1", "{{.Id}}");
    let dir = berth_tests::temp_dir("prune-");
    let saved = dir.path().join("images.tar");
    d.berth(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "keep:v1",
        "drop:v1",
        &dangling_id,
    ])
    .ok();
    d.berth(&["rmi", "dangling:v1"]).ok();
    // busybox stays in use by a container.
    d.berth(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .ok();
    let reload = || {
        d.berth(&["load", "-q", "-i", saved.to_str().unwrap()]).ok();
    };
    let sorted = |r: &Run| {
        let mut lines: Vec<String> = r.stdout.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };

    let (b, k) = both(&d, &["image", "prune", "-f"], reload);
    assert_eq!(b.code, 0, "{b:?}");
    assert!(
        b.stdout.contains(&format!("deleted: {dangling_id}")),
        "{b:?}"
    );
    assert_eq!(sorted(&b), sorted(&k));
    let (b, k) = both(
        &d,
        &["image", "prune", "-a", "-f", "--filter", "label!=keep=yes"],
        reload,
    );
    assert!(b.stdout.contains("untagged: drop:v1"), "{b:?}");
    assert!(!b.stdout.contains("keep:v1"), "{b:?}");
    assert_eq!(sorted(&b), sorted(&k));
    // Images made in the future are not old enough for `until`.
    let (b, k) = both(
        &d,
        &[
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            "until=2000-01-01T00:00:00Z",
        ],
        reload,
    );
    assert_eq!(b.code, 0, "{b:?}");
    assert_eq!(b.stdout, "Total reclaimed space: 0B\n");
    assert_same(&b, &k);
    let (b, k) = both(&d, &["image", "prune", "-a", "-f"], reload);
    assert!(b.stdout.contains("untagged: keep:v1"), "{b:?}");
    assert!(!b.stdout.contains("busybox"), "{b:?}");
    assert_eq!(sorted(&b), sorted(&k));
    let (b, k) = both(
        &d,
        &["image", "prune", "-f", "--filter", "colour=red"],
        || {},
    );
    assert_ne!(b.code, 0);
    assert_same(&b, &k);
    let left = d
        .berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    assert_eq!(left.stdout, "busybox:latest\n");
}

#[test]
fn berth_pull_picks_the_hosts_platform_from_an_index() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    let host = reg.host();
    let tar = std::fs::read(berth_tests::busybox_tar()).unwrap();
    let here = d.inspect("busybox", "{{.Id}}");
    let other = d
        .berth_stdin(
            &["import", "-c", "ENV V=2", "-", &format!("{host}/bb:v2")],
            &tar,
        )
        .ok()
        .out()
        .to_string();
    d.berth(&["tag", "busybox", &format!("{host}/bb:v1")]).ok();
    d.berth(&["push", "-a", &format!("{host}/bb")]).ok();
    // An OCI index with the host's platform in the middle.
    let entry = |tag: &str, arch: &str| {
        let (_, raw) = reg.manifest("bb", tag);
        serde_json::json!({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": berth_core::Digest::of(&raw).to_string(),
            "size": raw.len(),
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("v2", "s390x"), entry("v1", host_arch()), entry("v2", "ppc64le")],
    })
    .to_string();
    let (status, _, body) = reg.request(
        "PUT",
        "/v2/bb/manifests/multi",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let name = format!("{host}/bb:multi");
    let pull = d.berth(&["pull", &name]).ok();
    assert!(
        pull.stdout.contains(&format!(
            "Digest: {}",
            berth_core::Digest::of(index.as_bytes())
        )),
        "{pull:?}"
    );
    assert_eq!(d.inspect(&name, "{{.Id}}"), here);
    d.berth(&["rmi", &name]).ok();
    d.berth(&["pull", "--platform", "linux/s390x", &name]).ok();
    assert_eq!(d.inspect(&name, "{{.Id}}"), other);
    let none = d.berth(&["pull", "--platform", "linux/riscv64", &name]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr
            .contains("no matching manifest for linux/riscv64 in the manifest list entries"),
        "{none:?}"
    );
}

#[test]
fn builds_pull_their_base_image_with_the_clients_credentials() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::with_user("alice", "s3cret");
    let host = reg.host();
    let base = format!("{host}/base/bb:v1");
    d.berth(&["tag", "busybox", &base]).ok();
    d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret\n",
    )
    .ok();
    d.berth(&["push", &base]).ok();
    let ctx = berth_tests::temp_dir("build-ctx-");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /built\n"),
    )
    .unwrap();
    let ctx_path = ctx.path().to_str().unwrap();
    let base_id = d.inspect("busybox", "{{.Id}}");
    for (cli, tag) in [("berth", "from-reg:berth"), ("docker", "from-reg:docker")] {
        d.berth(&["rmi", &base]).ok();
        let out = if cli == "berth" {
            d.berth(&["build", "--network", "none", "-t", tag, ctx_path])
        } else {
            let mut c = d.docker_cmd(&["build", "--network", "none", "-t", tag, ctx_path]);
            c.env("DOCKER_BUILDKIT", "0");
            let o = c.output().unwrap();
            Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }
        };
        assert_eq!(out.code, 0, "{cli}: {out:?}");
        // The pull's lines stand between the FROM step and its image id, as dockerd's.
        let lines: Vec<&str> = out.stdout.lines().collect();
        let at = |l: &str| lines.iter().position(|x| *x == l);
        let step = at(&format!("Step 1/2 : FROM {base}")).expect(&out.stdout);
        let pulling = at("v1: Pulling from base/bb").expect(&out.stdout);
        let status = at(&format!("Status: Downloaded newer image for {base}")).expect(&out.stdout);
        assert!(step < pulling && pulling < status, "{}", out.stdout);
        assert!(lines[status + 1].starts_with(" ---> "), "{}", out.stdout);
        assert_eq!(d.inspect(&base, "{{.Id}}"), base_id, "{cli}");
        let run = d
            .berth(&["run", "--rm", "--network", "none", tag, "cat", "/built"])
            .ok();
        assert_eq!(run.stdout, "built\n");
    }
    // Without credentials the registry refuses, and the build says so.
    d.berth(&["logout", &host]).ok();
    d.berth(&["rmi", &base]).ok();
    let denied = d.berth(&["build", "--network", "none", ctx_path]);
    assert_ne!(denied.code, 0);
    assert!(
        format!("{}{}", denied.stdout, denied.stderr).contains("no basic auth credentials"),
        "{denied:?}"
    );
}
