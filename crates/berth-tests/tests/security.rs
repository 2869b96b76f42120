//! Docker's default confinement and the flags that change it.

use berth_tests::{require_root, TestDaemon};

fn status_field(d: &TestDaemon, args: &[&str], field: &str) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "grep", field, "/proc/self/status"]);
    let r = d.berth(&a).ok();
    r.out().split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn default_capabilities_seccomp_and_masked_paths_match_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    assert_eq!(status_field(&d, &[], "CapBnd"), "00000000a80425fb");
    assert_eq!(status_field(&d, &[], "CapEff"), "00000000a80425fb");
    assert_eq!(status_field(&d, &[], "Seccomp:"), "2");
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    // seccomp and missing CAP_SYS_ADMIN stop namespace and mount tricks
    let r = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "unshare -n true || echo denied; mkdir -p /m; mount -t tmpfs t /m || echo denied",
        ])
        .ok();
    assert_eq!(r.stdout, "denied\ndenied\n");
    // masked and read-only /proc paths
    let r = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/domainname || echo ro",
        ])
        .ok();
    assert_eq!(r.stdout, "0\nro\n");
    // /sys read-only, /dev a small tmpfs with the standard nodes
    let r = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "touch /sys/x 2>/dev/null || echo sys-ro; ls /dev | tr '\\n' ' '",
        ])
        .ok();
    assert!(r.stdout.starts_with("sys-ro\n"), "{}", r.stdout);
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(
            r.stdout.split_whitespace().any(|n| n == node),
            "/dev lacks {node}: {}",
            r.stdout
        );
    }
    // pid 1 is the command; hostname is the short id
    let r = d
        .berth(&["run", "--rm", "busybox", "sh", "-c", "echo $$"])
        .ok();
    assert_eq!(r.out(), "1");
    let r = d
        .berth(&["run", "--rm", "busybox", "cat", "/proc/1/cgroup"])
        .ok();
    assert!(r.stdout.contains(&d.cgroup_parent), "{}", r.stdout);
}

#[test]
fn privileged_cap_flags_read_only_and_no_new_privileges() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let full = status_field(&d, &["--privileged"], "CapEff");
    assert_ne!(full, "00000000a80425fb");
    assert_eq!(status_field(&d, &["--privileged"], "Seccomp:"), "0");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /m && mount -t tmpfs t /m && echo mounted",
        ])
        .ok();
    assert_eq!(r.out(), "mounted");
    // NET_ADMIN added (bit 12), CHOWN (bit 0) dropped
    let with = u64::from_str_radix(
        &status_field(
            &d,
            &["--cap-add", "NET_ADMIN", "--cap-drop", "chown"],
            "CapEff",
        ),
        16,
    )
    .unwrap();
    assert_eq!(with, (0xa80425fb | (1 << 12)) & !1);
    let none = status_field(&d, &["--cap-drop", "ALL"], "CapEff");
    assert_eq!(none, "0000000000000000");
    let r = d.berth(&["run", "--rm", "--cap-add", "CAP_FOO", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.to_lowercase().contains("cap_foo"), "{}", r.stderr);
    assert_eq!(
        status_field(&d, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--read-only",
            "busybox",
            "sh",
            "-c",
            "touch /x || echo ro; touch /dev/shm/ok && echo shm-rw",
        ])
        .ok();
    assert_eq!(r.stdout, "ro\nshm-rw\n");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "grep",
            "Seccomp:",
            "/proc/self/status",
        ])
        .ok();
    assert!(r.out().ends_with('0'), "{}", r.stdout);
    let r = d.berth(&["run", "--rm", "--security-opt", "bogus", "busybox", "true"]);
    assert_eq!(r.code, 125);
}

#[test]
fn shm_size_tmpfs_and_ulimits() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--shm-size",
            "16m",
            "busybox",
            "sh",
            "-c",
            "df -k /dev/shm | tail -1",
        ])
        .ok();
    assert!(
        r.stdout.split_whitespace().nth(1) == Some("16384"),
        "{}",
        r.stdout
    );
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--tmpfs",
            "/scratch:size=1m",
            "busybox",
            "sh",
            "-c",
            "df -k /scratch | tail -1",
        ])
        .ok();
    assert!(
        r.stdout.split_whitespace().nth(1) == Some("1024"),
        "{}",
        r.stdout
    );
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn",
        ])
        .ok();
    assert_eq!(r.stdout, "512\n1024\n");
    // A hard limit above the daemon's own is clamped, never a failed start.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=1073741824:1073741824",
            "busybox",
            "sh",
            "-c",
            "ulimit -Hn",
        ])
        .ok();
    let hard: u64 = r.out().parse().unwrap();
    assert!(hard < 1073741824 && hard > 0, "{}", r.stdout);
}

#[test]
fn network_none_and_host_modes() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "/sys/class/net",
        ])
        .ok();
    assert_eq!(r.out(), "lo");
    // Other tests add and remove veths and bridges meanwhile: the container must see every
    // host link that existed before and after its run.
    let links = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = links();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ls",
            "/sys/class/net",
        ])
        .ok();
    let after = links();
    let seen: std::collections::BTreeSet<String> = r.stdout.lines().map(str::to_string).collect();
    for l in before.intersection(&after) {
        assert!(seen.contains(l), "host link {l} not seen in {seen:?}");
    }
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let r = d
        .berth(&["run", "--rm", "--network", "host", "busybox", "hostname"])
        .ok();
    assert_eq!(r.out(), host_name.trim());
    // container:NAME shares the other container's network stack
    d.berth(&[
        "run", "-d", "--name", "srv", "busybox", "nc", "-l", "-p", "7777", "-e", "echo", "from-srv",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "container:srv",
            "busybox",
            "sh",
            "-c",
            "nc 127.0.0.1 7777 </dev/null",
        ])
        .ok();
    assert_eq!(r.out(), "from-srv");
}
