//! Volumes, binds, `--volumes-from`, `cp`, `commit`, `diff`, `export`, `system df` (docker CLI).

use berth_tests::{require_root, TestDaemon};

#[test]
fn named_and_anonymous_volumes_and_binds() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&["volume", "create", "--label", "team=a", "data"])
        .ok();
    let mp = d
        .docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}} {{.Driver}} {{.Labels.team}}",
            "data",
        ])
        .ok();
    assert_eq!(
        mp.out(),
        format!("{}/volumes/data/_data local a", d.data_root.display())
    );
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /d/f",
    ])
    .ok();
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            "data:/d:ro",
            "busybox",
            "sh",
            "-c",
            "cat /d/f; touch /d/x 2>/dev/null || echo ro"
        ])
        .ok()
        .stdout,
        "persisted\nro\n"
    );
    // a named volume is created on first use and survives rm -v
    d.docker(&[
        "run", "--name", "user", "-v", "auto:/a", "-v", "/anon", "busybox", "true",
    ])
    .ok();
    let mounts: serde_json::Value = serde_json::from_str(
        &d.docker(&["inspect", "-f", "{{json .Mounts}}", "user"])
            .ok()
            .stdout,
    )
    .unwrap();
    let anon = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(anon.len(), 64);
    let auto = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/a")
        .unwrap();
    assert_eq!(
        (
            auto["Type"].as_str(),
            auto["Name"].as_str(),
            auto["RW"].as_bool()
        ),
        (Some("volume"), Some("auto"), Some(true))
    );
    d.docker(&["rm", "-v", "user"]).ok();
    let vols = d.docker(&["volume", "ls", "-q"]).ok();
    assert!(
        vols.stdout.contains("auto") && !vols.stdout.contains(&anon),
        "{}",
        vols.stdout
    );
    // a bind: changes seen on both sides, missing host dirs created, read-only honoured
    let host = d.root.path().join("bind-src/deep");
    d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/b", host.display()),
        "busybox",
        "sh",
        "-c",
        "echo in > /b/from-container",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "in\n"
    );
    std::fs::write(host.join("from-host"), "out\n").unwrap();
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/b:ro", host.display()),
            "busybox",
            "sh",
            "-c",
            "cat /b/from-host; touch /b/z 2>/dev/null || echo ro"
        ])
        .ok()
        .stdout,
        "out\nro\n"
    );
    // --mount syntax
    let r = d
        .docker(&[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={},target=/m,readonly", host.display()),
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m",
            "busybox",
            "sh",
            "-c",
            "cat /m/from-host; df -k /t | tail -1",
        ])
        .ok();
    assert!(
        r.stdout.starts_with("out\n") && r.stdout.contains(" 1024 "),
        "{}",
        r.stdout
    );
    let r = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/does/not/exist,target=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("bind source path does not exist"),
        "{}",
        r.stderr
    );
    // volume rm refuses one in use, prune keeps named ones unless -a
    d.docker(&[
        "create", "--name", "holder", "-v", "data:/d", "busybox", "true",
    ])
    .ok();
    let r = d.docker(&["volume", "rm", "data"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("volume is in use"), "{}", r.stderr);
    d.docker(&["rm", "holder"]).ok();
    d.docker(&["volume", "prune", "-f"]).ok();
    assert!(d
        .docker(&["volume", "ls", "-q"])
        .ok()
        .stdout
        .contains("data"));
    d.docker(&["volume", "prune", "-a", "-f"]).ok();
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().out(), "");
}

#[test]
fn image_content_is_copied_into_new_volumes_and_volumes_from_shares_them() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    // A "data-packed" image: content at a VOLUME path.
    d.docker(&[
        "run",
        "--name",
        "packer",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/data && echo packed > /srv/data/file",
    ])
    .ok();
    d.docker(&["commit", "-c", "VOLUME /srv/data", "packer", "packed:1"])
        .ok();
    d.docker(&["create", "--name", "datastore", "packed:1", "true"])
        .ok();
    // never started, yet its volume already has the image's content
    let r = d
        .docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "datastore",
            "busybox",
            "cat",
            "/srv/data/file",
        ])
        .ok();
    assert_eq!(r.out(), "packed");
    d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "datastore",
        "busybox",
        "sh",
        "-c",
        "echo shared > /srv/data/second",
    ])
    .ok();
    let r = d
        .docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "datastore:ro",
            "busybox",
            "sh",
            "-c",
            "cat /srv/data/second; touch /srv/data/n 2>/dev/null || echo ro",
        ])
        .ok();
    assert_eq!(r.stdout, "shared\nro\n");
    // a named volume over image content is filled on first use; a bind hides it
    let r = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "fresh:/etc",
            "busybox",
            "sh",
            "-c",
            "test -f /etc/passwd && echo copied",
        ])
        .ok();
    assert_eq!(r.out(), "copied");
    let empty = d.root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/etc", empty.display()),
            "busybox",
            "sh",
            "-c",
            "ls /etc | grep -c passwd || true",
        ])
        .ok();
    assert_eq!(r.out(), "0");
}

#[test]
fn cp_in_and_out_including_volumes_and_hostile_symlinks() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "cpvol:/vol",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let src = d.root.path().join("src");
    std::fs::create_dir_all(src.join("tree/sub")).unwrap();
    std::fs::write(src.join("tree/sub/f"), "deep file\n").unwrap();
    std::fs::write(src.join("one.txt"), "one\n").unwrap();
    d.docker(&["cp", src.join("one.txt").to_str().unwrap(), "box:/tmp/"])
        .ok();
    assert_eq!(
        d.docker(&["exec", "box", "cat", "/tmp/one.txt"]).ok().out(),
        "one"
    );
    d.docker(&["cp", src.join("tree").to_str().unwrap(), "box:/vol/"])
        .ok();
    assert_eq!(
        d.docker(&["exec", "box", "cat", "/vol/tree/sub/f"])
            .ok()
            .out(),
        "deep file"
    );
    let out = d.root.path().join("out");
    d.docker(&["cp", "box:/vol", out.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("tree/sub/f")).unwrap(),
        "deep file\n"
    );
    d.docker(&[
        "cp",
        "box:/etc/passwd",
        out.join("passwd").to_str().unwrap(),
    ])
    .ok();
    assert!(std::fs::read_to_string(out.join("passwd"))
        .unwrap()
        .starts_with("root:"));
    // hostile symlinks: inside the container they point to the container's /etc
    d.docker(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ln -s /etc /evil; ln -s ../../../../../etc /evil2",
    ])
    .ok();
    let marker = format!("berth-cp-escape-{}", std::process::id());
    std::fs::write(src.join(&marker), "x").unwrap();
    for target in ["box:/evil/", "box:/evil2/"] {
        d.docker(&["cp", src.join(&marker).to_str().unwrap(), target])
            .ok();
    }
    assert!(
        !std::path::Path::new("/etc").join(&marker).exists(),
        "cp wrote through a symlink onto the host"
    );
    assert_eq!(
        d.docker(&["exec", "box", "ls", &format!("/etc/{marker}")])
            .ok()
            .out(),
        format!("/etc/{marker}")
    );
    let r = d.docker(&["cp", "box:/no/such", out.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Could not find the file /no/such in container box"),
        "{}",
        r.stderr
    );
    // stopped containers too
    d.docker(&["stop", "-t", "0", "box"]).ok();
    d.docker(&[
        "cp",
        src.join("one.txt").to_str().unwrap(),
        "box:/stopped.txt",
    ])
    .ok();
    d.docker(&[
        "cp",
        "box:/stopped.txt",
        out.join("back.txt").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("back.txt")).unwrap(),
        "one\n"
    );
}

#[test]
fn commit_diff_export_and_disk_usage() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "--name",
        "work",
        "busybox",
        "sh",
        "-c",
        "echo made > /made; rm /etc/shadow; mkdir /newdir",
    ])
    .ok();
    let diff = d.docker(&["diff", "work"]).ok();
    let mut lines: Vec<&str> = diff.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["A /made", "A /newdir", "C /etc", "D /etc/shadow"]
    );
    let id = d
        .docker(&[
            "commit",
            "-a",
            "me",
            "-m",
            "msg",
            "-c",
            "CMD [\"cat\", \"/made\"]",
            "work",
            "snap:1",
        ])
        .ok()
        .out()
        .to_string();
    assert!(id.starts_with("sha256:"));
    assert_eq!(d.docker(&["run", "--rm", "snap:1"]).ok().out(), "made");
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "snap:1",
            "sh",
            "-c",
            "test -e /etc/shadow || echo gone"
        ])
        .ok()
        .out(),
        "gone"
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Author}} {{.Comment}}", "snap:1"])
            .ok()
            .out(),
        "me msg"
    );
    let out = std::process::Command::new(berth_tests::docker_cli())
        .args(["-H", &d.host(), "export", "work"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let names: Vec<String> = tar_names(&out.stdout);
    assert!(
        names.iter().any(|n| n == "made") && names.iter().any(|n| n == "bin/busybox"),
        "{:?}",
        &names[..names.len().min(10)]
    );
    assert!(!names.iter().any(|n| n == "etc/shadow"));
    let df = d.docker(&["system", "df"]).ok();
    assert!(
        df.stdout.starts_with("TYPE ")
            && df.stdout.contains("Images ")
            && df.stdout.contains("Local Volumes"),
        "{}",
        df.stdout
    );
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-t")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

/// `berth cp` to a daemon on this machine passes the files as descriptors; what lands in
/// the container is what docker's plain upload makes, byte for byte and stat for stat.
#[test]
fn berth_cp_with_passed_descriptors_matches_the_plain_upload() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let d = TestDaemon::start_with(&["--log-level", "debug"]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "rovol:/ro:ro",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let src = d.root.path().join("src/tree");
    std::fs::create_dir_all(src.join("sub/empty")).unwrap();
    std::fs::write(src.join("zero"), "").unwrap();
    std::fs::write(src.join("one"), "1").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("sub/big"), &big).unwrap();
    std::fs::write(src.join("sub/mid"), vec![b'm'; 100 * 1024 + 3]).unwrap();
    std::fs::set_permissions(src.join("one"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::symlink("sub/big", src.join("link")).unwrap();
    std::os::unix::fs::chown(src.join("sub/mid"), Some(1234), Some(5678)).unwrap();
    let tree = src.to_str().unwrap();
    let b = d.berth(&["cp", tree, "box:/a"]).ok();
    let k = d.docker(&["cp", tree, "box:/b"]).ok();
    assert!(
        d.log().contains("archive written from passed descriptors"),
        "berth cp did not pass descriptors"
    );
    // Same `Successfully copied` size as the plain tar stream.
    assert_eq!(b.stderr.replace("box:/a", "box:/b"), k.stderr);
    d.berth(&["cp", "-a", tree, "box:/c"]).ok();
    let listing = |dir: &str| {
        let script = format!(
            "cd {dir} && find . | sort | while read f; do stat -c '%n %s %a %u:%g %Y %F' \"$f\"; done; find . -type f | sort | xargs md5sum"
        );
        d.berth(&["exec", "box", "sh", "-c", &script]).ok().stdout
    };
    let a = listing("/a");
    assert_eq!(a, listing("/b"));
    assert!(a.contains("./sub/mid 102403 644 0:0"), "{a}");
    assert!(a.contains("./one 1 751 0:0"), "{a}");
    assert!(listing("/c").contains("./sub/mid 102403 644 1234:5678"));
    // Errors come back as docker's, through the same path.
    let r = d.berth(&["cp", tree, "box:/ro/"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("mounted volume is marked read-only"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["cp", tree, "box:/no/such/dir/"]);
    let k = d.docker(&["cp", tree, "box:/no/such/dir/"]);
    assert_eq!((r.code, r.stderr), (k.code, k.stderr));
}
