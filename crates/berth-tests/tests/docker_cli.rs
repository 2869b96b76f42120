//! The real docker CLI (28.2.2) against berthd: the commands users type every day.

use berth_tests::{require_root, TestDaemon};

#[test]
fn docker_run_ps_logs_exec_inspect_stop_rm() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .docker(&["run", "--rm", "busybox", "echo", "hi from docker"])
        .ok();
    assert_eq!(r.stdout, "hi from docker\n");
    let r = d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(r.code, 42);
    let r = d.docker(&["run", "--rm", "busybox", "nosuchbinary"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(
        !r.stderr.contains("Error waiting for container"),
        "{}",
        r.stderr
    );
    let id = d
        .docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 1000",
        ])
        .ok()
        .out()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = d
        .docker(&[
            "ps",
            "--format",
            "{{.ID}} {{.Image}} {{.Command}} {{.Names}}",
        ])
        .ok();
    assert_eq!(
        ps.out(),
        format!("{} busybox \"sh -c 'echo ready; …\" web", &id[..12])
    );
    assert!(d.wait_until(5, || d.docker(&["logs", "web"]).stdout == "ready\n"));
    assert_eq!(
        d.docker(&["exec", "web", "cat", "/etc/hostname"])
            .ok()
            .out(),
        &id[..12]
    );
    let r = d.docker(&["exec", "web", "sh", "-c", "exit 9"]);
    assert_eq!(r.code, 9);
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .ok()
        .out()
        .to_string();
    assert!(pid.parse::<u32>().unwrap() > 1);
    let inspect: serde_json::Value =
        serde_json::from_str(&d.docker(&["inspect", "web"]).ok().stdout).unwrap();
    assert_eq!(inspect[0]["Name"], "/web");
    assert_eq!(inspect[0]["Config"]["Image"], "busybox");
    assert_eq!(inspect[0]["HostConfig"]["RestartPolicy"]["Name"], "no");
    d.docker(&["stop", "-t", "1", "web"]).ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Status}}", "web"])
            .ok()
            .out(),
        "exited"
    );
    d.docker(&["start", "web"]).ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "web"])
            .ok()
            .out(),
        "true"
    );
    d.docker(&["rm", "-f", "web"]).ok();
    assert_eq!(d.docker(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn docker_pipes_stdin_and_separates_streams() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .docker_stdin(
            &["run", "--rm", "-i", "busybox", "wc", "-c"],
            &vec![b'x'; 100_000],
        )
        .ok();
    assert_eq!(r.out(), "100000");
    let r = d
        .docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2",
        ])
        .ok();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("to-out\n", "to-err\n")
    );
    d.docker(&["run", "-d", "-i", "--name", "cat", "busybox", "cat"])
        .ok();
    let r = d
        .docker_stdin(
            &["exec", "-i", "cat", "sh", "-c", "cat; echo done"],
            b"through exec\n",
        )
        .ok();
    assert_eq!(r.stdout, "through exec\ndone\n");
}

#[test]
fn docker_images_tag_save_load_import_rmi() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let imgs = d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    assert_eq!(imgs.out(), "busybox:latest");
    d.docker(&["tag", "busybox", "example.com/me/bb:v1"]).ok();
    let tar = d.root.path().join("saved.tar");
    d.docker(&["save", "-o", tar.to_str().unwrap(), "example.com/me/bb:v1"])
        .ok();
    d.docker(&["rmi", "example.com/me/bb:v1"]).ok();
    let r = d.docker(&["load", "-i", tar.to_str().unwrap()]).ok();
    assert_eq!(r.out(), "Loaded image: example.com/me/bb:v1");
    let r = d
        .docker(&["run", "--rm", "example.com/me/bb:v1", "echo", "loaded ok"])
        .ok();
    assert_eq!(r.out(), "loaded ok");
    let id = d
        .docker_stdin(
            &["import", "-c", "CMD [\"echo\", \"imported\"]", "-", "imp:1"],
            &std::fs::read(berth_tests::busybox_tar()).unwrap(),
        )
        .ok();
    assert!(id.out().starts_with("sha256:"), "{}", id.stdout);
    assert_eq!(d.docker(&["run", "--rm", "imp:1"]).ok().out(), "imported");
    let r = d.docker(&["rmi", "imp:1"]).ok();
    assert!(
        r.stdout.contains("Untagged: imp:1") && r.stdout.contains("Deleted: sha256:"),
        "{}",
        r.stdout
    );
    let r = d.docker(&["rmi", "nope:1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("No such image: nope:1"), "{}", r.stderr);
}

#[test]
fn docker_restart_policy_and_wait() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    assert!(d.wait_until(10, || d
        .docker(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky"
        ])
        .out()
        == "2 exited"));
    assert_eq!(d.docker(&["wait", "flaky"]).ok().out(), "3");
}
