//! Resource limits through the docker CLI and `berth`: what lands in the container's cgroup
//! (cgroup v1 on this host, read back from the files), what inspect shows, `update` on a
//! running container, Docker's warnings and errors, ulimits and the OOM killer.

use berth_tests::{require_root, TestDaemon};
use std::path::Path;
use std::time::Duration;

fn id_of(d: &TestDaemon, name: &str) -> String {
    d.inspect(name, "{{.Id}}")
}

/// The host block device behind `/`, for the blkio throttles.
fn root_block_device() -> String {
    for dev in [
        "/dev/vda",
        "/dev/sda",
        "/dev/nvme0n1",
        "/dev/xvda",
        "/dev/loop0",
    ] {
        if Path::new(dev).exists() {
            return dev.to_string();
        }
    }
    panic!("no block device found for the blkio tests");
}

fn dev_numbers(dev: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(dev).unwrap().rdev();
    format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

#[test]
fn run_limits_reach_the_cgroup_and_inspect_shows_them_as_docker_does() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let dev = root_block_device();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-m",
        "64m",
        "--memory-reservation",
        "32m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "--device-write-iops",
        &format!("{dev}:100"),
        "--oom-kill-disable",
        "--ulimit",
        "nofile=1024:2048",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let id = id_of(&d, "lim");
    let cg = |c: &str, f: &str| d.cgroup_file(c, &id, f);
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(
        cg("memory", "memory.memsw.limit_in_bytes"),
        "134217728",
        "memory+swap defaults to twice the memory limit"
    );
    assert_eq!(cg("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert!(cg("memory", "memory.oom_control").contains("oom_kill_disable 1"));
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg("cpuset", "cpuset.mems"), "0");
    assert_eq!(cg("pids", "pids.max"), "50");
    let numbers = dev_numbers(&dev);
    assert_eq!(
        cg("blkio", "blkio.throttle.read_bps_device"),
        format!("{numbers} 1048576")
    );
    assert_eq!(
        cg("blkio", "blkio.throttle.write_iops_device"),
        format!("{numbers} 100")
    );
    let hc = d.inspect(
        "lim",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} \
         {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} \
         {{.HostConfig.CpusetCpus}} {{.HostConfig.OomKillDisable}} {{json .HostConfig.MemorySwappiness}} \
         {{.HostConfig.CpuQuota}}",
    );
    assert_eq!(
        hc,
        "67108864 134217728 33554432 500000000 512 50 0 true null 0"
    );
    let throttle = d.inspect("lim", "{{json .HostConfig.BlkioDeviceReadBps}}");
    assert_eq!(throttle, format!(r#"[{{"Path":"{dev}","Rate":1048576}}]"#));
    let ulimits = d.inspect("lim", "{{json .HostConfig.Ulimits}}");
    assert_eq!(ulimits, r#"[{"Name":"nofile","Hard":2048,"Soft":1024}]"#);
    let inside = d
        .docker(&["exec", "lim", "sh", "-c", "ulimit -n; ulimit -Hn"])
        .ok();
    assert_eq!(inside.out(), "1024\n2048");

    // Unset limits: the kernel's defaults, and Docker's nulls and zeros in inspect.
    d.berth(&["run", "-d", "--name", "free", "busybox", "sleep", "1000"])
        .ok();
    let free = id_of(&d, "free");
    assert_eq!(d.cgroup_file("cpu", &free, "cpu.shares"), "1024");
    assert_eq!(d.cgroup_file("pids", &free, "pids.max"), "max");
    assert_eq!(
        d.inspect(
            "free",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{json .HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}"
        ),
        "0 0 null 0"
    );
}

#[test]
fn memory_swap_follows_dockers_rules() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    // -1: unlimited swap (memsw left at the kernel's unlimited value).
    d.docker(&[
        "run",
        "-d",
        "--name",
        "unl",
        "-m",
        "32m",
        "--memory-swap",
        "-1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let id = id_of(&d, "unl");
    let memsw: u64 = d
        .cgroup_file("memory", &id, "memory.memsw.limit_in_bytes")
        .parse()
        .unwrap();
    assert!(memsw > 1 << 60, "unlimited memsw, got {memsw}");
    assert_eq!(d.inspect("unl", "{{.HostConfig.MemorySwap}}"), "-1");
    // Equal to -m: no swap at all.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "noswap",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let id = id_of(&d, "noswap");
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.memsw.limit_in_bytes"),
        "33554432"
    );
    // Docker's errors.
    let r = d.docker(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "32m",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("Minimum memoryswap limit should be larger than memory limit, see usage"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--memory-swap", "64m", "busybox", "true"]);
    assert!(
        r.stderr.contains(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        ),
        "{}",
        r.stderr
    );
    let r = d.berth(&["run", "--rm", "-m", "4m", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("Minimum memory limit allowed is 6MB"),
        "{}",
        r.stderr
    );
    let r = d.docker(&[
        "run",
        "--rm",
        "-m",
        "16m",
        "--memory-reservation",
        "32m",
        "busybox",
        "true",
    ]);
    assert!(
        r.stderr.contains(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        ),
        "{}",
        r.stderr
    );
    // Nothing was created by the refused runs.
    assert_eq!(
        d.berth(&["ps", "-aq"]).ok().out().lines().count(),
        2,
        "only the two good containers"
    );
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "up",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let id = id_of(&d, "up");
    // Docker refuses a memory limit above the memory+swap limit already set.
    let r = d.docker(&["update", "-m", "256m", "up"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"),
        "{}",
        r.stderr
    );
    d.docker(&[
        "update",
        "-m",
        "256m",
        "--memory-swap",
        "512m",
        "--memory-reservation",
        "128m",
        "--cpu-shares",
        "256",
        "--cpus",
        "1.5",
        "up",
    ])
    .ok();
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "268435456"
    );
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.memsw.limit_in_bytes"),
        "536870912"
    );
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.soft_limit_in_bytes"),
        "134217728"
    );
    assert_eq!(d.cgroup_file("cpu", &id, "cpu.shares"), "256");
    assert_eq!(d.cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "150000");
    // Lowering both again: memory first, then memory+swap.
    d.berth(&["update", "-m", "32m", "--memory-swap", "48m", "up"])
        .ok();
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(
        d.cgroup_file("memory", &id, "memory.memsw.limit_in_bytes"),
        "50331648"
    );
    // -1 (or 0) lifts the pids limit; inspect then shows 0, as Docker's does.
    d.docker(&["update", "--pids-limit", "-1", "up"]).ok();
    assert_eq!(d.cgroup_file("pids", &id, "pids.max"), "max");
    d.docker(&["update", "--pids-limit", "30", "up"]).ok();
    assert_eq!(d.cgroup_file("pids", &id, "pids.max"), "30");
    assert_eq!(
        d.inspect(
            "up",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"
        ),
        "33554432 50331648 256 1500000000 30"
    );
    // Mixing CPU quota styles is refused, as by Docker.
    let r = d.docker(&["update", "--cpu-quota", "20000", "up"]);
    assert!(
        r.stderr.contains(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        ),
        "{}",
        r.stderr
    );
    // The pids limit is enforced: forks beyond it fail.
    d.docker(&["update", "--pids-limit", "10", "up"]).ok();
    d.docker(&[
        "exec",
        "-d",
        "up",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 30 & done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let current: u32 = d.cgroup_file("pids", &id, "pids.current").parse().unwrap();
    assert!((2..=10).contains(&current), "pids.current {current}");
    assert_ne!(d.cgroup_file("pids", &id, "pids.events"), "max 0");
    // A stopped container keeps the new values for its next start.
    d.docker(&["rm", "-f", "up"]).ok();
    d.docker(&["create", "--name", "later", "busybox", "sleep", "1000"])
        .ok();
    d.docker(&["update", "-m", "48m", "--memory-swap", "96m", "later"])
        .ok();
    d.docker(&["start", "later"]).ok();
    let later = id_of(&d, "later");
    assert_eq!(
        d.cgroup_file("memory", &later, "memory.limit_in_bytes"),
        "50331648"
    );
}

#[test]
fn what_the_kernel_cannot_honour_gets_dockers_warning_or_error() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    // blkio weights need CFQ/BFQ weight files at the hierarchy root; this decides which
    // answer is right on this host, and both are checked.
    let weight_supported = Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists();
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "ww",
        "--blkio-weight",
        "300",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = id_of(&d, "ww");
    if weight_supported {
        assert!(!r.stderr.contains("WARNING"), "{}", r.stderr);
        assert_eq!(d.inspect("ww", "{{.HostConfig.BlkioWeight}}"), "300");
    } else {
        assert!(
            r.stderr.contains("WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."),
            "{}",
            r.stderr
        );
        assert_eq!(d.inspect("ww", "{{.HostConfig.BlkioWeight}}"), "0");
        assert!(!id.is_empty());
    }
    let ncpu = std::thread::available_parallelism().unwrap().get();
    let r = d.docker(&["run", "--rm", "--cpus", "99", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains(&format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--cpuset-cpus", "99", "busybox", "true"]);
    assert!(
        r.stderr
            .contains("Requested CPUs are not available - requested 99, available: "),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--cpu-period", "500", "busybox", "true"]);
    assert!(
        r.stderr.contains(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        ),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--oom-kill-disable", "busybox", "true"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains(
            "WARNING: OOM killer is disabled for the container, but no memory limit is set"
        ),
        "{}",
        r.stderr
    );
    // Raising an rlimit's hard limit above the daemon's never fails the container.
    let r = d
        .docker(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=4000000:4000000",
            "busybox",
            "sh",
            "-c",
            "ulimit -n",
        ])
        .ok();
    assert!(r.out().parse::<u64>().unwrap() > 0);
}

#[test]
fn an_oom_killed_container_exits_137_with_oomkilled_and_an_oom_event() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let r = d.docker(&[
        "run",
        "--name",
        "hog",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(r.code, 137, "{}", r.stderr);
    assert_eq!(
        d.inspect(
            "hog",
            "{{.State.OOMKilled}} {{.State.ExitCode}} {{.State.Status}}"
        ),
        "true 137 exited"
    );
    // The docker CLI sends `until` in whole seconds: let the die event's second pass.
    std::thread::sleep(Duration::from_millis(1100));
    let events = d
        .docker(&[
            "events",
            "--since",
            "5m",
            "--until",
            "0s",
            "--filter",
            "container=hog",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    let actions: Vec<&str> = events.out().lines().collect();
    let oom = actions.iter().position(|a| *a == "oom");
    let die = actions.iter().position(|a| *a == "die");
    assert!(
        oom.is_some() && die.is_some() && oom < die,
        "oom before die: {actions:?}"
    );
    d.docker(&["run", "--name", "fine", "-m", "16m", "busybox", "true"])
        .ok();
    assert_eq!(d.inspect("fine", "{{.State.OOMKilled}}"), "false");
}
