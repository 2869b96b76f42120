//! The berth CLI's resource commands (network, volume, cp, commit, diff, export, system df,
//! inspect --type) against berthd: they do what they say, and where the output
//! is deterministic it is byte for byte what the real docker CLI prints for the same daemon.

use berth_tests::{require_root, TestDaemon};

/// Runs the same command with berth and docker; both must succeed with the same output.
fn same(d: &TestDaemon, args: &[&str]) -> String {
    let b = d.berth(args).ok();
    let k = d.docker(args).ok();
    assert_eq!(b.stdout, k.stdout, "berth vs docker: {args:?}");
    b.stdout
}

#[test]
fn network_commands_match_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let sub = d.test_subnet(0);
    let id = d
        .berth(&[
            "network", "create", "--subnet", &sub, "--label", "a=b", "front",
        ])
        .ok()
        .out()
        .to_string();
    assert_eq!(id.len(), 64);
    d.berth(&["network", "create", "--internal", "back"]).ok();
    same(&d, &["network", "ls"]);
    same(&d, &["network", "ls", "-q", "-f", "label=a=b"]);
    same(
        &d,
        &[
            "network",
            "ls",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Name}} {{.Internal}}",
        ],
    );
    d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    same(&d, &["network", "inspect", "front", "bridge"]);
    same(&d, &["network", "inspect", "-f", "{{json .IPAM}}", "front"]);
    same(&d, &["inspect", "--type", "network", "back"]);
    d.berth(&["network", "connect", "--alias", "api", "back", "web"])
        .ok();
    let nets = d.inspect(
        "web",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert_eq!(nets, "back front");
    same(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.back.Aliases}}",
            "web",
        ],
    );
    d.berth(&["network", "disconnect", "back", "web"]).ok();
    let r = d.berth(&["network", "rm", "front"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("has active endpoints"), "{}", r.stderr);
    let r = d.berth(&["network", "rm", "nosuch"]);
    assert!(
        r.stderr.contains("network nosuch not found"),
        "{}",
        r.stderr
    );
    d.berth(&["rm", "-f", "web"]).ok();
    let pruned = d.berth(&["network", "prune", "-f"]).ok();
    assert_eq!(pruned.stdout, "Deleted Networks:\nback\nfront\n\n");
    same(&d, &["network", "ls"]);
}

#[test]
fn volume_commands_match_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    assert_eq!(
        d.berth(&["volume", "create", "--label", "k=v", "data"])
            .ok()
            .out(),
        "data"
    );
    d.berth(&["volume", "create", "other"]).ok();
    same(&d, &["volume", "ls"]);
    same(&d, &["volume", "ls", "-q", "-f", "label=k=v"]);
    same(&d, &["volume", "inspect", "data"]);
    same(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    same(&d, &["inspect", "--type", "volume", "other"]);
    d.berth(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo hi > /d/f",
    ])
    .ok();
    let r = d.berth(&["volume", "rm", "nosuch"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no such volume"), "{}", r.stderr);
    same(
        &d,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ],
    );
    let out = d.berth(&["volume", "prune", "-a", "-f"]).ok();
    assert!(
        out.stdout.starts_with("Deleted Volumes:\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("data\n") && out.stdout.contains("other\n"));
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().out(), "");
}

#[test]
fn cp_commit_diff_export_with_berth() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host\n").unwrap();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "600"])
        .ok();
    let src = dir.path().join("in.txt");
    d.berth(&["cp", src.to_str().unwrap(), "box:/tmp/"]).ok();
    d.berth(&["exec", "box", "sh", "-c", "echo made inside > /root/made"])
        .ok();
    assert_eq!(
        d.berth(&["exec", "box", "cat", "/tmp/in.txt"]).ok().stdout,
        "from the host\n"
    );
    let out = dir.path().join("made");
    d.berth(&["cp", "box:/root/made", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "made inside\n");
    let r = d.berth(&["cp", "box:/nosuch", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Could not find the file /nosuch in container box"),
        "{}",
        r.stderr
    );
    same(&d, &["diff", "box"]);
    let diff = d.berth(&["diff", "box"]).ok();
    assert!(
        diff.stdout.contains("A /tmp/in.txt\n") && diff.stdout.contains("A /root/made\n"),
        "{}",
        diff.stdout
    );
    let img = d
        .berth(&["commit", "-c", "ENV MARK=1", "box", "snap:v1"])
        .ok()
        .out()
        .to_string();
    assert!(img.starts_with("sha256:"), "{img}");
    assert_eq!(
        d.berth(&[
            "run",
            "--rm",
            "snap:v1",
            "sh",
            "-c",
            "cat /root/made; echo $MARK"
        ])
        .ok()
        .stdout,
        "made inside\n1\n"
    );
    let tar = dir.path().join("box.tar");
    d.berth(&["export", "-o", tar.to_str().unwrap(), "box"])
        .ok();
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(
        names
            .lines()
            .any(|l| l.trim_start_matches("./") == "root/made"),
        "{names}"
    );
    d.berth(&["rm", "-f", "box"]).ok();
    d.berth(&["rmi", "snap:v1"]).ok();
}
