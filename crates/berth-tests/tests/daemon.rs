//! The daemon itself: restarts, live containers, pid file, flags, several daemons at once.

use berth_tests::{require_root, TestDaemon};
use std::time::Duration;

#[test]
fn containers_survive_a_killed_daemon_and_keep_logging() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "tick",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "quick",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 6",
    ])
    .ok();
    let pid = d.inspect("tick", "{{.State.Pid}}");
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let lines_while_down = std::fs::read_to_string(d.inspect_log_path_offline("tick"))
        .unwrap()
        .lines()
        .count();
    d.spawn();
    assert_eq!(
        d.inspect("tick", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    // it exited while the daemon was away: the exit was recorded from the shim's file
    assert_eq!(
        d.inspect("quick", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 6"
    );
    assert!(
        lines_while_down > 10,
        "logging stopped while the daemon was down ({lines_while_down} lines)"
    );
    assert_eq!(
        d.berth(&["exec", "tick", "echo", "exec-ok"]).ok().out(),
        "exec-ok"
    );
    let n = d.berth(&["logs", "tick"]).ok().stdout.lines().count();
    assert!(n >= lines_while_down);
    // follow keeps streaming from the live container
    let child = d
        .berth_cmd(&["logs", "-f", "--tail", "0", "tick"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    d.berth(&["stop", "-t", "1", "tick"]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 3);
    assert_eq!(d.inspect("tick", "{{.State.Status}}"), "exited");
}

#[test]
fn restart_policies_apply_and_always_survives_daemon_restart() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "fail2",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "ok0",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    assert!(d.wait_until(10, || d
        .inspect("fail2", "{{.RestartCount}} {{.State.Status}}")
        == "2 exited"));
    assert_eq!(d.inspect("ok0", "{{.RestartCount}}"), "0");
    // `always` restarts after its process dies
    let pid = d.inspect("alw", "{{.State.Pid}}");
    kill9_pid(pid.parse().unwrap());
    assert!(d.wait_until(10, || {
        let s = d.inspect("alw", "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}");
        s.starts_with("running") && !s.contains(&format!(" {pid} ")) && s.ends_with(" 1")
    }));
    // a manual stop is not undone
    d.berth(&["stop", "-t", "0", "alw"]).ok();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect("alw", "{{.State.Status}}"), "exited");
    // an always container that stopped by itself is started again with the daemon
    d.berth(&[
        "run",
        "-d",
        "--name",
        "alw2",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.kill9();
    let pid2: i32 = std::fs::read_to_string(
        d.exec_root
            .join("containers")
            .join(d_id(&d, "alw2"))
            .join("init.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    kill9_pid(pid2);
    std::thread::sleep(Duration::from_millis(800));
    d.spawn();
    assert!(d.wait_until(10, || d.inspect("alw2", "{{.State.Status}}") == "running"));
    assert_eq!(d.inspect("alw", "{{.State.Status}}"), "exited");
}

fn d_id(d: &TestDaemon, name: &str) -> String {
    let out = std::fs::read_dir(d.data_root.join("containers")).unwrap();
    for e in out.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let cfg =
            std::fs::read_to_string(d.exec_root.join("containers").join(&id).join("config.json"))
                .unwrap_or_default();
        if cfg.contains(&format!("\"{name}\"")) || cfg.contains("sleep") {
            let _ = name;
            return id;
        }
    }
    panic!("no container {name}");
}

fn kill9_pid(pid: i32) {
    let _ = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status();
}

#[test]
fn two_daemons_run_side_by_side_without_seeing_each_other() {
    if !require_root() {
        return;
    }
    let a = TestDaemon::start();
    let b = TestDaemon::start();
    a.berth(&["run", "-d", "--name", "only-a", "busybox", "sleep", "1000"])
        .ok();
    b.berth(&["run", "-d", "--name", "only-b", "busybox", "sleep", "1000"])
        .ok();
    assert_eq!(
        a.berth(&["ps", "--format", "{{.Names}}"]).ok().out(),
        "only-a"
    );
    assert_eq!(
        b.berth(&["ps", "--format", "{{.Names}}"]).ok().out(),
        "only-b"
    );
}

#[test]
fn unreachable_daemon_is_reported_clearly() {
    let r = std::process::Command::new(berth_tests::bin("berth"))
        .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is berthd running?"), "{err}");
}

#[test]
fn a_second_daemon_on_the_same_pid_file_or_socket_is_refused() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let out = std::process::Command::new(berth_tests::bin("berthd"))
        .args(["-H", &d.host(), "--data-root"])
        .arg(d.root.path().join("other-data"))
        .arg("--exec-root")
        .arg(d.root.path().join("other-exec"))
        .arg("--pidfile")
        .arg(d.root.path().join("berthd.pid"))
        .arg("--config-file")
        .arg(d.root.path().join("daemon.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pid file found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(berth_tests::bin("berthd"))
        .args(["-H", &d.host(), "--data-root"])
        .arg(d.root.path().join("other-data"))
        .arg("--exec-root")
        .arg(d.root.path().join("other-exec"))
        .arg("--pidfile")
        .arg(d.root.path().join("other.pid"))
        .arg("--config-file")
        .arg(d.root.path().join("daemon.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another daemon is serving this socket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(d.root.path().join("other-data"));
    let _ = std::fs::remove_dir_all(d.root.path().join("other-exec"));
}

#[test]
fn plain_tcp_is_refused_off_loopback_and_served_on_it() {
    if !require_root() {
        return;
    }
    let port = berth_tests::free_port();
    let d = TestDaemon::start_with(&["-H", &format!("tcp://127.0.0.1:{port}")]);
    let r = std::process::Command::new(berth_tests::bin("berth"))
        .args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "version",
            "--format",
            "{{.Server.APIVersion}}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "1.47");
    let out = std::process::Command::new(berth_tests::bin("berthd"))
        .args(["-H", "tcp://0.0.0.0:1", "--data-root"])
        .arg(d.root.path().join("x-data"))
        .arg("--exec-root")
        .arg(d.root.path().join("x-exec"))
        .arg("--pidfile")
        .arg(d.root.path().join("x.pid"))
        .arg("--config-file")
        .arg(d.root.path().join("daemon.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to serve plain TCP"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(d.root.path().join("x-data"));
    let _ = std::fs::remove_dir_all(d.root.path().join("x-exec"));
}
