//! Container lifecycle through the `berth` CLI against a real berthd.

use berth_tests::{require_root, TestDaemon};

#[test]
fn run_prints_output_and_exits_with_the_containers_code() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth(&["run", "--rm", "busybox", "echo", "hello from berth"])
        .ok();
    assert_eq!(r.stdout, "hello from berth\n");
    let r = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    // --rm removed both.
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn commands_that_cannot_run_exit_126_and_127_and_berth_errors_125() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d.berth(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(
        r.stderr.contains("executable file not found"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    let r = d.berth(&["run", "--rm", "no-such-image:1"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("Unable to find image 'no-such-image:1' locally"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["run", "--no-such-flag", "busybox"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("unknown flag: --no-such-flag"),
        "{}",
        r.stderr
    );
    // Nothing half-made is left by any of these.
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn names_are_validated_and_unique() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["create", "--name", "web", "busybox", "true"])
        .ok();
    let r = d.berth(&["create", "--name", "web", "busybox", "true"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Conflict. The container name \"/web\" is already in use by container"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["create", "--name", "bad name", "busybox", "true"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        d.berth(&["ps", "-a", "--format", "{{.Names}}"]).ok().out(),
        "web"
    );
    let r = d.berth(&["rm", "nothere"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("No such container: nothere"),
        "{}",
        r.stderr
    );
}

#[test]
fn detached_containers_show_in_ps_logs_inspect_and_stop() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let id = d
        .berth(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "-l",
            "app=demo",
            "busybox",
            "sh",
            "-c",
            "echo started; while true; do sleep 0.1; done",
        ])
        .ok()
        .out()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = d.berth(&["ps"]).ok();
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{}",
        ps.stdout
    );
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].contains("Up ") && lines[1].ends_with("ticker"),
        "{}",
        ps.stdout
    );
    assert!(d.wait_until(5, || d.berth(&["logs", "ticker"]).stdout == "started\n"));
    assert_eq!(
        d.inspect(
            "ticker",
            "{{.State.Status}} {{.State.Running}} {{.Config.Labels.app}}"
        ),
        "running true demo"
    );
    let pid: i32 = d.inspect("ticker", "{{.State.Pid}}").parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(d.inspect("ticker", "{{.Config.Hostname}}"), id[..12]);
    assert_eq!(
        d.berth(&["ps", "-q", "-f", "label=app=demo"]).ok().out(),
        &id[..12]
    );
    assert_eq!(
        d.berth(&["ps", "-q", "-f", "label=app=other"]).ok().out(),
        ""
    );
    d.berth(&["stop", "-t", "1", "ticker"]).ok();
    assert_eq!(
        d.inspect("ticker", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    assert!(d.berth(&["ps", "-a"]).ok().stdout.contains("Exited (137)"));
    assert_eq!(d.berth(&["ps", "-q"]).ok().out(), "");
    assert_eq!(
        d.berth(&["ps", "-aq", "-f", "exited=137"]).ok().out(),
        &id[..12]
    );
    d.berth(&["rm", "ticker"]).ok();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn stop_sends_the_stop_signal_before_sigkill() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = std::time::Instant::now();
    d.berth(&["stop", "trap"]).ok();
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(d.inspect("trap", "{{.State.ExitCode}}"), "0");
    assert_eq!(d.berth(&["logs", "trap"]).ok().out(), "got TERM");
    d.berth(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.berth(&["stop", "usr1"]).ok();
    assert_eq!(d.inspect("usr1", "{{.State.ExitCode}}"), "7");
}

#[test]
fn kill_pause_unpause_restart_and_wait() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["run", "-d", "--name", "cc", "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["pause", "cc"]).ok();
    assert_eq!(
        d.inspect("cc", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let frozen = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/freezer/{}/{}/freezer.state",
        d.cgroup_parent,
        d.inspect("cc", "{{.Id}}")
    ));
    assert_eq!(
        frozen.map(|s| s.trim().to_string()).unwrap_or_default(),
        "FROZEN"
    );
    assert!(d.berth(&["ps"]).ok().stdout.contains("(Paused)"));
    let r = d.berth(&["pause", "cc"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is already paused"), "{}", r.stderr);
    d.berth(&["unpause", "cc"]).ok();
    assert_eq!(d.inspect("cc", "{{.State.Status}}"), "running");
    let pid1 = d.inspect("cc", "{{.State.Pid}}");
    d.berth(&["restart", "-t", "0", "cc"]).ok();
    assert_eq!(d.inspect("cc", "{{.State.Status}}"), "running");
    assert_ne!(d.inspect("cc", "{{.State.Pid}}"), pid1);
    d.berth(&["kill", "-s", "TERM", "cc"]).ok();
    // sleep as pid 1 ignores TERM (no handler): still running.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(d.inspect("cc", "{{.State.Status}}"), "running");
    let waiter = {
        let host = d.host();
        std::thread::spawn(move || {
            std::process::Command::new(berth_tests::bin("berth"))
                .args(["-H", &host, "wait", "cc"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.berth(&["kill", "cc"]).ok();
    let out = waiter.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "137");
    let r = d.berth(&["kill", "cc"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn logs_follow_tail_timestamps_and_streams() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 1; echo late",
    ])
    .ok();
    assert!(d.wait_until(5, || d.berth(&["logs", "lg"]).stdout.contains("line5")));
    // --tail counts entries of both streams, as Docker's does.
    let tail = d.berth(&["logs", "--tail", "2", "lg"]).ok();
    assert_eq!(
        (tail.stdout.as_str(), tail.stderr.as_str()),
        ("line5\n", "oops\n")
    );
    let r = d.berth(&["logs", "lg"]).ok();
    assert_eq!(r.stderr, "oops\n");
    let ts = d.berth(&["logs", "-t", "--tail", "2", "lg"]).ok();
    let first = ts.stdout.split_whitespace().next().unwrap_or("");
    assert!(
        first.len() == 30 && first.ends_with('Z') && first.contains('T'),
        "{}",
        ts.stdout
    );
    // follow returns when the container exits, with everything.
    let f = d.berth(&["logs", "-f", "lg"]).ok();
    assert_eq!(f.stdout, "line1\nline2\nline3\nline4\nline5\nlate\n");
    let since_future = d
        .berth(&["logs", "--since", "2099-01-01T00:00:00Z", "lg"])
        .ok();
    assert_eq!(since_future.stdout, "");
    let until_past = d
        .berth(&["logs", "--until", "2000-01-01T00:00:00Z", "lg"])
        .ok();
    assert_eq!(until_past.stdout, "");
}

#[test]
fn exec_runs_in_the_container_with_its_options() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&[
        "run", "-d", "--name", "ex", "-e", "FOO=bar", "busybox", "sleep", "1000",
    ])
    .ok();
    assert_eq!(
        d.berth(&["exec", "ex", "sh", "-c", "echo $FOO $HOSTNAME"])
            .ok()
            .out(),
        format!("bar {}", &d.inspect("ex", "{{.Id}}")[..12])
    );
    let r = d.berth(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(r.code, 5);
    assert_eq!(
        d.berth(&[
            "exec",
            "-e",
            "FOO=baz",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "ex",
            "sh",
            "-c",
            "echo $FOO $(pwd) $(id -u)"
        ])
        .ok()
        .out(),
        "baz /tmp 65534"
    );
    let r = d.berth(&["exec", "ex", "nonexistent"]);
    assert_eq!(r.code, 127, "{} {}", r.stdout, r.stderr);
    let input = d
        .berth_stdin(&["exec", "-i", "ex", "cat"], b"piped stdin\n")
        .ok();
    assert_eq!(input.stdout, "piped stdin\n");
    d.berth(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "echo detached > /tmp/marker",
    ])
    .ok();
    assert!(
        d.wait_until(5, || d.berth(&["exec", "ex", "cat", "/tmp/marker"]).stdout
            == "detached\n")
    );
    // processes of the container are visible to top
    let top = d.berth(&["top", "ex"]).ok();
    assert!(top.stdout.contains("sleep 1000"), "{}", top.stdout);
    let top = d.berth(&["top", "ex", "-o", "pid,comm"]).ok();
    assert!(top.stdout.starts_with("PID"), "{}", top.stdout);
    d.berth(&["stop", "-t", "0", "ex"]).ok();
    let r = d.berth(&["exec", "ex", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn stdin_is_piped_to_run_i() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth_stdin(
            &["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"],
            b"shout\n",
        )
        .ok();
    assert_eq!(r.stdout, "SHOUT\n");
}

#[test]
fn rename_update_and_prune() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.berth(&["create", "--name", "old", "busybox", "true"])
        .ok();
    d.berth(&["rename", "old", "new"]).ok();
    assert_eq!(d.inspect("new", "{{.Name}}"), "/new");
    assert_ne!(d.berth(&["inspect", "old"]).code, 0);
    d.berth(&["update", "--restart", "on-failure:3", "new"])
        .ok();
    assert_eq!(
        d.inspect(
            "new",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    d.berth(&["run", "-d", "--name", "keep", "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["run", "--name", "done", "busybox", "true"]).ok();
    let r = d.berth(&["container", "prune", "-f"]).ok();
    assert!(r.stdout.starts_with("Deleted Containers:"), "{}", r.stdout);
    assert!(r.stdout.contains("Total reclaimed space:"), "{}", r.stdout);
    let left = d.berth(&["ps", "-a", "--format", "{{.Names}}"]).ok();
    assert_eq!(left.out(), "keep");
    let r = d.berth(&["rm", "keep"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("cannot remove container \"/keep\": container is running"),
        "{}",
        r.stderr
    );
    d.berth(&["rm", "-f", "keep"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn workdir_env_entrypoint_and_user_flags() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-w",
            "/work/dir",
            "-e",
            "A=1",
            "--env",
            "B=2",
            "busybox",
            "sh",
            "-c",
            "pwd; echo $A$B",
        ])
        .ok();
    assert_eq!(r.stdout, "/work/dir\n12\n");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "via",
            "entrypoint",
        ])
        .ok();
    assert_eq!(r.stdout, "via entrypoint\n");
    let r = d
        .berth(&["run", "--rm", "-u", "nobody:users", "busybox", "id"])
        .ok();
    assert_eq!(
        r.out(),
        "uid=65534(nobody) gid=100(users) groups=100(users)"
    );
    let r = d
        .berth(&["run", "--rm", "-u", "1234", "busybox", "id", "-u"])
        .ok();
    assert_eq!(r.out(), "1234");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--group-add",
            "wheel",
            "-u",
            "nobody",
            "busybox",
            "id",
            "-G",
        ])
        .ok();
    assert_eq!(r.out(), "65534 10");
    let r = d.berth(&["run", "--rm", "-u", "nosuchuser", "busybox", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("unable to find user nosuchuser"),
        "{}",
        r.stderr
    );
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-h",
            "myhost",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /etc/hostname",
        ])
        .ok();
    assert_eq!(r.stdout, "myhost\nmyhost\n");
}

#[test]
fn init_reaps_and_forwards_signals() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().map(str::trim).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("1 ") && (l.contains("docker-init") || l.contains("tini"))),
        "{}",
        r.stdout
    );
    d.berth(&[
        "run", "-d", "--init", "--name", "in", "busybox", "sleep", "1000",
    ])
    .ok();
    let t = std::time::Instant::now();
    d.berth(&["stop", "in"]).ok();
    // With an init, sleep gets TERM forwarded and stops at once (without one it would wait for the timeout).
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}
