//! Pull, push, login and search through the real docker CLI against berthd, with a real
//! `docker-registry` (distribution 2.8) per test on a local address, and a tiny HTTP
//! server speaking Docker Hub's search API. Nothing here reaches the internet.

use berth_tests::registry::{hub_search_server, Auth, TcpProxy, TestRegistry};
use berth_tests::{host_arch, import_random_image, require_root, Run, TestDaemon};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The 12-hex short form of `sha256:...`.
fn short(digest: &str) -> &str {
    &digest["sha256:".len().."sha256:".len() + 12]
}

fn assert_has(run: &Run, text: &str) {
    assert!(
        run.stdout.contains(text) || run.stderr.contains(text),
        "expected {text:?} in\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

/// The digest from a push's `TAG: digest: sha256:... size: N` line.
fn pushed_digest(run: &Run, tag: &str) -> String {
    let prefix = format!("{tag}: digest: ");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no digest line in {}", run.stdout));
    let rest = &line[prefix.len()..];
    let (digest, size) = rest.split_once(" size: ").expect("size");
    assert!(size.parse::<u64>().unwrap() > 0, "{line}");
    assert_eq!(digest.len(), 71, "{line}");
    digest.to_string()
}

/// An API request over the daemon's socket: status and body.
fn api(d: &TestDaemon, method: &str, path: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn sha256_of(bytes: &[u8]) -> String {
    berth_core::Digest::of(bytes).to_string()
}

/// Layers in the daemon's storage (each a directory named by chain id).
fn stored_layers(d: &TestDaemon) -> usize {
    std::fs::read_dir(d.data_root.join("storage/layers"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// Half-made layers and blobs (storage keeps them under tmp until verified).
fn leftovers(d: &TestDaemon) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["storage/tmp", "storage/blobs/tmp"] {
        if let Ok(rd) = std::fs::read_dir(d.data_root.join(dir)) {
            out.extend(rd.flatten().map(|e| format!("{dir}/{:?}", e.file_name())));
        }
    }
    out
}

#[test]
fn push_rmi_and_pull_back_give_the_same_image() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    let host = reg.host();
    let name = format!("{host}/bb:v1");
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "busybox"])
        .ok()
        .out()
        .to_string();
    let diff_id = d
        .docker(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "busybox"])
        .ok()
        .out()
        .to_string();
    d.docker(&["tag", "busybox", &name]).ok();

    let push = d.docker(&["push", &name]).ok();
    assert_has(&push, &format!("The push refers to repository [{host}/bb]"));
    assert_has(&push, &format!("{}: Preparing", short(&diff_id)));
    assert_has(&push, &format!("{}: Pushed", short(&diff_id)));
    let digest = pushed_digest(&push, "v1");
    let (m, raw) = reg.manifest("bb", "v1");
    assert_eq!(
        sha256_of(&raw),
        digest,
        "the printed digest is the manifest's"
    );
    let blob = m["layers"][0]["digest"].as_str().unwrap().to_string();
    // The pushed digest becomes a RepoDigest, as with dockerd.
    let rows = d
        .docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Digest}}",
        ])
        .ok();
    assert!(
        rows.stdout.contains(&format!("{name} {digest}")),
        "{}",
        rows.stdout
    );

    let again = d.docker(&["push", &name]).ok();
    assert_has(
        &again,
        &format!("{}: Layer already exists", short(&diff_id)),
    );
    assert_eq!(pushed_digest(&again, "v1"), digest);
    let other = format!("{host}/other:v1");
    d.docker(&["tag", "busybox", &other]).ok();
    let mounted = d.docker(&["push", &other]).ok();
    assert_has(&mounted, &format!("{}: Mounted from bb", short(&diff_id)));

    // Every reference gone: the image and its layer go too.
    let rmi = d.docker(&["rmi", &name, &other, "busybox"]).ok();
    assert_has(&rmi, &format!("Untagged: {host}/bb@{digest}"));
    assert_has(&rmi, &format!("Deleted: {id}"));
    assert_ne!(d.docker(&["inspect", &id]).code, 0);
    assert_eq!(stored_layers(&d), 0);

    let pull = d.docker(&["pull", &name]).ok();
    let lines: Vec<&str> = pull.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"v1: Pulling from bb"),
        "{}",
        pull.stdout
    );
    assert!(lines.contains(&format!("{}: Pulling fs layer", short(&blob)).as_str()));
    assert!(lines.contains(&format!("{}: Pull complete", short(&blob)).as_str()));
    assert_eq!(
        &lines[lines.len() - 3..],
        &[
            format!("Digest: {digest}").as_str(),
            format!("Status: Downloaded newer image for {name}").as_str(),
            name.as_str(),
        ]
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Id}}", &name]).ok().out(),
        id
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{json .RepoDigests}}", &name])
            .ok()
            .out(),
        format!("[\"{host}/bb@{digest}\"]")
    );
    let run = d
        .docker(&["run", "--rm", "--network", "none", &name, "echo", "pulled"])
        .ok();
    assert_eq!(run.stdout, "pulled\n");

    // Already here: one manifest request, no blob, "up to date".
    let blob_gets = reg.count_requests("GET", "/v2/bb/blobs/");
    let t = Instant::now();
    let present = d.docker(&["pull", &name]).ok();
    let took = t.elapsed();
    assert_eq!(
        present.stdout,
        format!(
            "v1: Pulling from bb\nDigest: {digest}\nStatus: Image is up to date for {name}\n{name}\n"
        )
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(reg.count_requests("GET", "/v2/bb/blobs/"), blob_gets);
    // By digest, known here: no request at all.
    let by_digest = format!("{host}/bb@{digest}");
    let manifests = reg.count_requests("GET", "/v2/bb/manifests/");
    let p = d.docker(&["pull", &by_digest]).ok();
    assert_has(&p, &format!("Status: Image is up to date for {by_digest}"));
    assert_eq!(reg.count_requests("GET", "/v2/bb/manifests/"), manifests);
}

#[test]
fn pull_and_push_errors_read_like_dockers() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    let host = reg.host();
    d.docker(&["tag", "busybox", &format!("{host}/bb:v1")]).ok();
    d.docker(&["push", &format!("{host}/bb:v1")]).ok();

    let missing = d.docker(&["pull", &format!("{host}/bb:nope")]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        format!("Error response from daemon: manifest for {host}/bb:nope not found: manifest unknown: manifest unknown\n")
    );
    let (status, body) = api(
        &d,
        "POST",
        &format!("/images/create?fromImage={host}/bb&tag=nope"),
    );
    assert_eq!(status, 404, "{body}");

    let dead = berth_tests::free_port();
    let unreachable = d.docker(&["pull", &format!("127.0.0.1:{dead}/x:y")]);
    assert_eq!(unreachable.code, 1);
    assert_has(
        &unreachable,
        &format!("Get \"http://127.0.0.1:{dead}/v2/\": dial tcp 127.0.0.1:{dead}: connect: connection refused"),
    );
    let (status, _) = api(
        &d,
        "POST",
        &format!("/images/create?fromImage=127.0.0.1:{dead}/x&tag=y"),
    );
    assert_eq!(status, 500);

    let bad = d.docker(&["pull", &format!("{host}/Upper:v1")]);
    assert_eq!(bad.code, 1);
    assert_has(&bad, "invalid reference format");

    let nothing = d.docker(&["push", &format!("{host}/none:v1")]);
    assert_eq!(nothing.code, 1);
    assert_has(
        &nothing,
        &format!("An image does not exist locally with the tag: {host}/none"),
    );
    let no_tag = d.docker(&["push", &format!("{host}/bb:v9")]);
    assert_eq!(no_tag.code, 1);
    assert_has(&no_tag, &format!("tag does not exist: {host}/bb:v9"));
    // Nothing half-made was left by any of it.
    let rows = d
        .docker(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    let mut rows: Vec<&str> = rows.stdout.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![format!("{host}/bb:v1").as_str(), "busybox:latest"]
    );
    assert!(leftovers(&d).is_empty());
}

#[test]
fn login_to_an_htpasswd_registry_then_push_and_pull() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::with_user("alice", "s3cret");
    let host = reg.host();
    let name = format!("{host}/team/bb:v1");
    d.docker(&["tag", "busybox", &name]).ok();

    let anonymous = d.docker(&["push", &name]);
    assert_eq!(anonymous.code, 1);
    assert_has(&anonymous, "no basic auth credentials");

    let wrong = d.docker(&["login", "-u", "alice", "-p", "wrong", &host]);
    assert_eq!(wrong.code, 1);
    assert_has(
        &wrong,
        &format!("login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"),
    );

    let ok = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret\n",
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_has(&ok, "Login Succeeded");
    let config = std::fs::read_to_string(d.root.path().join("docker-config/config.json")).unwrap();
    assert!(config.contains(&host), "{config}");

    let push = d.docker(&["push", &name]).ok();
    assert_has(&push, "Pushed");
    d.docker(&["rmi", &name]).ok();
    let pull = d.docker(&["pull", &name]).ok();
    assert_has(&pull, &format!("Status: Downloaded newer image for {name}"));

    d.docker(&["logout", &host]).ok();
    d.docker(&["rmi", &name]).ok();
    let denied = d.docker(&["pull", &name]);
    assert_eq!(denied.code, 1);
    assert_has(&denied, "no basic auth credentials");
    let (status, _) = api(
        &d,
        "POST",
        &format!("/images/create?fromImage={host}/team/bb&tag=v1"),
    );
    assert_eq!(
        status, 500,
        "dockerd answers registry auth failures with 500, never a login challenge"
    );
}

#[test]
fn pull_all_tags_and_platform_selection() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let reg = TestRegistry::start();
    let host = reg.host();
    let tar = std::fs::read(berth_tests::busybox_tar()).unwrap();
    d.docker_stdin(
        &["import", "-c", "ENV V=2", "-", &format!("{host}/bb:v2")],
        &tar,
    )
    .ok();
    d.docker(&["tag", "busybox", &format!("{host}/bb:v1")]).ok();
    d.docker(&["push", "-a", &format!("{host}/bb")]).ok();
    d.docker(&["rmi", &format!("{host}/bb:v1"), &format!("{host}/bb:v2")])
        .ok();

    let all = d.docker(&["pull", "-a", &format!("{host}/bb")]).ok();
    assert_has(&all, "v1: Pulling from bb");
    assert_has(&all, "v2: Pulling from bb");
    assert_has(
        &all,
        &format!("Status: Downloaded newer image for {host}/bb"),
    );
    let tags = d
        .docker(&["images", "--format", "{{.Tag}}", &format!("{host}/bb")])
        .ok();
    let mut tags: Vec<&str> = tags.stdout.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);

    // A single-platform image of another platform: pulled, with dockerd's warning.
    let arch = host_arch();
    let other = d
        .docker(&[
            "pull",
            "--platform",
            "linux/s390x",
            &format!("{host}/bb:v1"),
        ])
        .ok();
    assert_has(
        &other,
        &format!("WARNING: image with reference {host}/bb:v1 was found but does not match the specified platform: wanted linux/s390x, actual: linux/{arch}"),
    );

    // An index that only lists s390x: no match for this host.
    let (_, raw) = reg.manifest("bb", "v1");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": sha256_of(&raw),
            "size": raw.len(),
            "platform": {"architecture": "s390x", "os": "linux"},
        }],
    })
    .to_string();
    let (status, _, body) = reg.request(
        "PUT",
        "/v2/bb/manifests/multi",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let none = d.docker(&["pull", &format!("{host}/bb:multi")]);
    assert_eq!(none.code, 1);
    assert_has(&none, "multi: Pulling from bb");
    assert_has(
        &none,
        &format!("no matching manifest for linux/{arch} in the manifest list entries"),
    );
    let s390x = d
        .docker(&[
            "pull",
            "--platform",
            "linux/s390x",
            &format!("{host}/bb:multi"),
        ])
        .ok();
    // RepoDigests name the index, as Docker records it.
    assert_has(&s390x, &format!("Digest: {}", sha256_of(index.as_bytes())));
}

#[test]
fn search_speaks_docker_hubs_v1_api() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let results = serde_json::json!([
        {"name": "library/alpine", "description": "A minimal image", "star_count": 100, "is_official": true, "is_automated": false},
        {"name": "someone/alpine-tools", "description": "tools", "star_count": 3, "is_official": false, "is_automated": false},
        {"name": "library/busybox", "description": "The Swiss army knife", "star_count": 50, "is_official": true, "is_automated": false},
    ]);
    let (server, limits) = hub_search_server(results);
    let term = format!("{}/alpine", server.host());
    let table = d.docker(&["search", &term]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", table.stdout);
    assert!(lines.iter().any(|l| l.starts_with("library/alpine")
        && l.contains("A minimal image")
        && l.contains("100")
        && l.contains("[OK]")));
    assert!(lines.iter().any(|l| l.starts_with("someone/alpine-tools")));
    assert_eq!(lines.len(), 3);

    let fmt = ["--format", "{{.Name}} {{.StarCount}} {{.IsOfficial}}."];
    let stars = d
        .docker(&[&["search", "--filter", "stars=10"][..], &fmt, &[&term]].concat())
        .ok();
    assert_eq!(stars.stdout, "library/alpine 100 [OK].\n");
    let official = d
        .docker(
            &[
                &["search", "--filter", "is-official=false"][..],
                &fmt,
                &[&term],
            ]
            .concat(),
        )
        .ok();
    assert_eq!(official.stdout, "someone/alpine-tools 3 .\n");
    let one = d
        .docker(&[&["search", "--limit", "1"][..], &fmt, &[&term]].concat())
        .ok();
    assert_eq!(one.stdout.lines().count(), 1);
    assert_eq!(limits.lock().unwrap().last(), Some(&1));
    let bad = d.docker(&["search", "--filter", "colour=red", &term]);
    assert_eq!(bad.code, 1);
    assert_has(&bad, "invalid filter 'colour'");
}

#[test]
fn insecure_registries_allow_plain_http_to_other_addresses() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    // The daemon's default bridge address: a local, non-loopback address only this test
    // uses. Docker treats registries there as secure unless told otherwise.
    let ip: std::net::IpAddr = d.bip.split('/').next().unwrap().parse().unwrap();
    let reg = TestRegistry::start_on(ip, Auth::None, None);
    let host = reg.host();
    let name = format!("{host}/bb:v1");
    d.docker(&["tag", "busybox", &name]).ok();
    let refused = d.docker(&["push", &name]);
    assert_eq!(refused.code, 1);
    assert_has(&refused, "http: server gave HTTP response to HTTPS client");

    d.kill9();
    d.extra_args = vec!["--insecure-registry".into(), host.clone()];
    d.spawn();
    let push = d.docker(&["push", &name]).ok();
    assert_has(&push, "Pushed");
    let info = d.docker(&["info"]).ok();
    assert!(
        info.stdout.contains("Insecure Registries:") && info.stdout.contains(&host),
        "{}",
        info.stdout
    );

    // A CIDR covers every registry in it.
    d.kill9();
    d.extra_args = vec!["--insecure-registry".into(), format!("{ip}/32")];
    d.spawn();
    d.docker(&["rmi", &name, "busybox"]).ok();
    let pull = d.docker(&["pull", &name]).ok();
    assert_has(&pull, &format!("Status: Downloaded newer image for {name}"));
}

/// Starts `docker pull NAME` (output discarded) and lets it run for a while.
fn slow_pull(d: &TestDaemon, name: &str) -> std::process::Child {
    let mut client = d
        .docker_cmd(&["pull", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        client.try_wait().unwrap().is_none(),
        "the pull is still going"
    );
    client
}

/// Waits for the daemon to finish cleaning up after an interrupted pull.
fn wait_clean(d: &TestDaemon, layers_before: usize) {
    let clean = d.wait_until(20, || {
        leftovers(d).is_empty() && stored_layers(d) == layers_before
    });
    assert!(
        clean,
        "left behind: {:?}, {} layers (expected {layers_before})",
        leftovers(d),
        stored_layers(d)
    );
}

fn image_names(d: &TestDaemon) -> String {
    d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok()
        .stdout
}

#[test]
fn interrupted_pulls_leave_nothing_and_the_next_pull_completes() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    let mut reg = TestRegistry::start();
    let id = import_random_image(&d, &format!("{}/big:v1", reg.host()), 24);
    d.docker(&["push", &format!("{}/big:v1", reg.host())]).ok();
    d.docker(&["rmi", &format!("{}/big:v1", reg.host())]).ok();
    let layers_before = stored_layers(&d);
    // ~4 MB/s: the pull of 24 MiB takes several seconds.
    let proxy = TcpProxy::throttled(reg.port, 4_000_000);
    let slow = format!("{}/big:v1", proxy.host());

    // The client goes away (ctrl-c): the daemon stops the pull.
    let mut client = slow_pull(&d, &slow);
    client.kill().unwrap();
    client.wait().unwrap();
    wait_clean(&d, layers_before);
    assert!(!image_names(&d).contains("big"), "{}", image_names(&d));

    // The registry dies mid-download: the pull fails, cleanly.
    let client = d
        .docker_cmd(&["pull", &slow])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    reg.stop();
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    wait_clean(&d, layers_before);
    assert!(!image_names(&d).contains("big"));

    // The daemon is killed mid-download: after its restart nothing half-made is left.
    reg.restart();
    let mut client = slow_pull(&d, &slow);
    d.kill9();
    let _ = client.wait();
    d.spawn();
    wait_clean(&d, layers_before);
    assert!(!image_names(&d).contains("big"));

    // The next pull completes, to the same image.
    let name = format!("{}/big:v1", reg.host());
    d.docker(&["pull", &name]).ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Id}}", &name]).ok().out(),
        id
    );
    assert_eq!(stored_layers(&d), layers_before + 1);
    assert!(leftovers(&d).is_empty());
}

/// The daemon's data root holds no files of a registry's data (sanity check for the
/// harness: each registry has its own storage).
#[test]
fn test_registries_keep_their_storage_to_themselves() {
    let a = TestRegistry::start();
    let b = TestRegistry::start();
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.port, b.port);
    let dir = a.dir().to_path_buf();
    drop(a);
    assert!(!Path::new(&dir).exists());
}
