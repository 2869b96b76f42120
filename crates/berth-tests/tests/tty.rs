//! Interactive containers: `-it` with a real pty, window size, detach keys, re-attach.

use berth_tests::{require_root, run_in_pty, TestDaemon};
use std::time::Duration;

#[test]
fn run_it_gives_a_pty_of_the_terminals_size_and_its_exit_code() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    for cli in [
        d.berth_cmd(&["run", "-it", "--rm", "busybox", "sh"]),
        d.docker_cmd(&["run", "-it", "--rm", "busybox", "sh"]),
    ] {
        let (out, code) = run_in_pty(
            cli,
            33,
            101,
            &[b"stty size; tty\n", b"exit 7\n"],
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(7), "{out}");
        assert!(out.contains("33 101"), "{out}");
        assert!(out.contains("/dev/pts/0"), "{out}");
    }
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_reconnects() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let (out, code) = run_in_pty(
        d.berth_cmd(&["run", "-it", "--name", "sess", "busybox", "sh"]),
        24,
        80,
        &[b"echo before\n", b"\x10\x11"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(d.inspect("sess", "{{.State.Status}}"), "running");
    let (out, code) = run_in_pty(
        d.docker_cmd(&["attach", "sess"]),
        24,
        80,
        &[b"echo again\n", b"exit 3\n"],
        Duration::from_secs(10),
    );
    assert!(out.contains("again"), "{out}");
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(
        d.inspect("sess", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    // custom detach keys
    let (_, code) = run_in_pty(
        d.docker_cmd(&[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-x,x",
            "--name",
            "sess2",
            "busybox",
            "sh",
        ]),
        24,
        80,
        &[b"\x18x"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0));
    assert_eq!(d.inspect("sess2", "{{.State.Status}}"), "running");
}

#[test]
fn exec_it_runs_a_shell_in_a_running_container() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"])
        .ok();
    for cli in [
        d.berth_cmd(&["exec", "-it", "box", "sh"]),
        d.docker_cmd(&["exec", "-it", "box", "sh"]),
    ] {
        let (out, code) = run_in_pty(
            cli,
            40,
            120,
            &[b"stty size; echo $$\n", b"exit 4\n"],
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(4), "{out}");
        assert!(out.contains("40 120"), "{out}");
    }
}
