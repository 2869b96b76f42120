//! Image commands through `berth`: import, tag, images, inspect, history, save/load, rmi.

use berth_tests::{require_root, TestDaemon};

#[test]
fn import_changes_tag_and_inspect() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let tar = std::fs::read(berth_tests::busybox_tar()).unwrap();
    let id = d
        .berth_stdin(
            &[
                "import",
                "-c",
                "ENV GREETING=hi",
                "-c",
                "WORKDIR /srv",
                "-c",
                "CMD [\"sh\", \"-c\", \"echo $GREETING; pwd\"]",
                "-c",
                "EXPOSE 8080",
                "-m",
                "a message",
                "-",
                "custom:v2",
            ],
            &tar,
        )
        .ok()
        .out()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(
        d.berth(&["run", "--rm", "custom:v2"]).ok().stdout,
        "hi\n/srv\n"
    );
    let cfg = d
        .berth(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.WorkingDir}} {{json .Config.ExposedPorts}} {{.Os}}",
            "custom:v2",
        ])
        .ok();
    assert_eq!(cfg.out(), "/srv {\"8080/tcp\":{}} linux");
    let hist = d
        .berth(&["history", "--format", "{{.Comment}}", "custom:v2"])
        .ok();
    assert_eq!(hist.out(), "a message");
    d.berth(&["tag", "custom:v2", "custom:latest"]).ok();
    let rows = d
        .berth(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            "custom",
        ])
        .ok();
    let mut lines: Vec<&str> = rows.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            format!("custom:latest {}", &id[7..19]),
            format!("custom:v2 {}", &id[7..19])
        ]
    );
    let r = d.berth(&["rmi", &id[7..19]]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("image is referenced in multiple repositories"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["import", "-c", "RUN true", "-", "bad"]);
    assert_ne!(r.code, 0);
    let r = d.berth(&["tag", "custom:v2", "UPPER:case"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("must be lowercase"), "{}", r.stderr);
}

#[test]
fn rmi_refuses_images_in_use_and_untags_before_deleting() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["create", "--name", "user", "busybox", "true"])
        .ok();
    let r = d.berth(&["rmi", "busybox"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container"
        ),
        "{}",
        r.stderr
    );
    d.berth(&["tag", "busybox", "second:tag"]).ok();
    let r = d.berth(&["rmi", "second:tag"]).ok();
    assert_eq!(r.out(), "Untagged: second:tag");
    d.berth(&["rm", "user"]).ok();
    let r = d.berth(&["rmi", "busybox"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "Untagged: busybox:latest");
    assert!(lines[1].starts_with("Deleted: sha256:"), "{}", r.stdout);
    assert_eq!(d.berth(&["images", "-q"]).ok().out(), "");
    // the layer went too
    let layers = std::fs::read_dir(d.data_root.join("storage/layers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(layers, 0);
}

#[test]
fn save_and_load_round_trip_keeps_ids_and_tags() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["tag", "busybox", "other/repo:1"]).ok();
    let id = d.inspect("busybox", "{{.Id}}");
    let tar = d.root.path().join("two.tar");
    d.berth(&[
        "save",
        "-o",
        tar.to_str().unwrap(),
        "busybox",
        "other/repo:1",
    ])
    .ok();
    d.berth(&["rmi", "busybox", "other/repo:1"]).ok();
    assert_eq!(d.berth(&["images", "-q"]).ok().out(), "");
    let r = d.berth(&["load", "-i", tar.to_str().unwrap()]).ok();
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["Loaded image: busybox:latest", "Loaded image: other/repo:1"]
    );
    assert_eq!(d.inspect("other/repo:1", "{{.Id}}"), id);
    // stdout streaming form, and `load` from stdin
    let out = std::process::Command::new(berth_tests::bin("berth"))
        .args(["-H", &d.host(), "save", "busybox"])
        .output()
        .unwrap();
    assert!(out.status.success());
    d.berth(&["rmi", "busybox"]).ok();
    let r = d.berth_stdin(&["load"], &out.stdout).ok();
    assert_eq!(r.out(), "Loaded image: busybox:latest");
    // skopeo reads what we write
    let sk = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("docker-archive:{}", tar.display()),
        ])
        .output();
    if let Ok(sk) = sk {
        assert!(
            sk.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&sk.stderr)
        );
    }
}

#[test]
fn corrupt_archives_and_tarballs_fail_cleanly() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let before = d.berth(&["images", "-aq"]).ok().stdout;
    let r = d.berth_stdin(&["load"], b"this is not a tar archive at all");
    assert_eq!(r.code, 1);
    assert!(!r.stderr.is_empty());
    let mut good = Vec::new();
    {
        let out = std::process::Command::new(berth_tests::bin("berth"))
            .args(["-H", &d.host(), "save", "busybox"])
            .output()
            .unwrap();
        good.extend_from_slice(&out.stdout[..out.stdout.len() / 2]);
    }
    let r = d.berth_stdin(&["load"], &good);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let r = d.berth_stdin(&["import", "-", "broken:1"], b"\x1f\x8b\x08garbage");
    assert_ne!(r.code, 0);
    assert_eq!(d.berth(&["images", "-aq"]).ok().stdout, before);
    let tmp = std::fs::read_dir(d.data_root.join("storage/tmp"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary files left behind");
}

#[test]
fn image_prune_removes_dangling_then_unused_images_with_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let tar = std::fs::read(berth_tests::busybox_tar()).unwrap();
    let dangling = d
        .docker_stdin(&["import", "-c", "ENV A=1", "-"], &tar)
        .ok()
        .out()
        .to_string();
    let kept = d
        .docker_stdin(
            &[
                "import",
                "-c",
                "LABEL keep=yes",
                "-c",
                "ENV B=1",
                "-",
                "kept:v1",
            ],
            &tar,
        )
        .ok()
        .out()
        .to_string();
    d.docker_stdin(&["import", "-c", "ENV C=1", "-", "unused:v1"], &tar)
        .ok();
    d.docker(&["create", "--name", "user", "busybox", "true"])
        .ok();

    // Default: dangling images only.
    let pruned = d.docker(&["image", "prune", "-f"]).ok();
    assert!(
        pruned.stdout.contains(&format!("deleted: {dangling}")),
        "{}",
        pruned.stdout
    );
    assert!(pruned.stdout.contains("Total reclaimed space:"));
    assert!(d.docker(&["inspect", "unused:v1"]).code == 0);

    // -a: every image no container uses, except what the label filter keeps.
    let all = d
        .docker(&["image", "prune", "-af", "--filter", "label!=keep=yes"])
        .ok();
    assert!(all.stdout.contains("untagged: unused:v1"), "{}", all.stdout);
    assert_ne!(d.docker(&["inspect", "unused:v1"]).code, 0);
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Id}}", "kept:v1"])
            .ok()
            .out(),
        kept
    );
    d.docker(&["inspect", "busybox"]).ok();
    let none = d.docker(&["image", "prune", "-f"]).ok();
    assert_eq!(none.stdout.trim(), "Total reclaimed space: 0B");
}
