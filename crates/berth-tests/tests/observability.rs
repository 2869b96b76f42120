//! Observability through the docker CLI and `berth`: stats (API and both CLIs), top, events
//! with filters and time bounds, health checks, logging drivers, and info.

use berth_tests::{require_root, TestDaemon};
use std::time::{Duration, Instant};

/// `GET path` on the daemon's socket through curl; the body.
fn api_get(d: &TestDaemon, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket"])
        .arg(&d.socket)
        .arg(format!("http://berth{path}"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

#[test]
fn stats_report_cgroup_figures_through_the_api_and_both_clis() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "--pids-limit",
        "40",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ])
    .ok();
    d.docker(&["run", "-d", "--name", "idle", "busybox", "sleep", "1000"])
        .ok();
    d.docker(&["create", "--name", "off", "busybox", "true"])
        .ok();
    std::thread::sleep(Duration::from_millis(1500));

    // stream=false answers at once with a CPU delta already in it.
    let t = Instant::now();
    let v = json(&api_get(&d, "/containers/busy/stats?stream=false"));
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(v["name"], "/busy");
    let cpu = &v["cpu_stats"];
    let pre = &v["precpu_stats"];
    let cpu_delta = cpu["cpu_usage"]["total_usage"].as_u64().unwrap()
        - pre["cpu_usage"]["total_usage"].as_u64().unwrap();
    let sys_delta =
        cpu["system_cpu_usage"].as_u64().unwrap() - pre["system_cpu_usage"].as_u64().unwrap();
    assert!(cpu_delta > 0 && sys_delta > 0, "{v}");
    let percent =
        cpu_delta as f64 / sys_delta as f64 * cpu["online_cpus"].as_f64().unwrap() * 100.0;
    // Low bar: the test machine may be busy with other work.
    assert!(percent > 5.0, "a spinning shell uses CPU: {percent}%");
    assert_eq!(v["memory_stats"]["limit"], 64 << 20);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(v["memory_stats"]["stats"]["total_rss"].is_u64(), "{v}");
    assert_eq!(v["pids_stats"]["current"], 1);
    assert_eq!(v["pids_stats"]["limit"], 40);
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    assert!(v["blkio_stats"].is_object());
    assert_ne!(v["read"], "0001-01-01T00:00:00Z");

    // one-shot: one sample, no delta.
    let v = json(&api_get(
        &d,
        "/containers/idle/stats?stream=false&one-shot=true",
    ));
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert!(
        v["memory_stats"]["limit"].as_u64().unwrap() > 64 << 20,
        "host memory"
    );
    // A container that does not run: Docker's empty stats.
    let v = json(&api_get(&d, "/containers/off/stats?stream=false"));
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["name"], "/off");
    // Streaming: a sample a second.
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "2.5", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://berth/containers/idle/stats")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!((2..=4).contains(&lines), "{lines} samples in 2.5 s");
    let r = api_get(&d, "/containers/nosuch/stats?stream=false");
    assert!(r.contains("No such container: nosuch"), "{r}");

    // Both CLIs.
    let r = d
        .berth(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "busy",
        ])
        .ok();
    assert!(
        r.out().starts_with("busy ") && r.out().ends_with(" / 64MiB 1"),
        "{}",
        r.out()
    );
    let r = d
        .docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.CPUPerc}}",
            "busy",
            "idle",
        ])
        .ok();
    let rows: Vec<&str> = r.out().lines().collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let busy: f64 = rows[0]
        .strip_prefix("busy ")
        .and_then(|p| p.strip_suffix('%'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(busy > 5.0, "{rows:?}");
    // Streaming through both CLIs: the table is redrawn about once a second (SIGKILL: the
    // docker CLI does not stop streaming on SIGTERM).
    for cli in [berth_tests::bin("berth"), berth_tests::docker_cli()] {
        let out = std::process::Command::new("timeout")
            .args(["-s", "KILL", "2.6"])
            .arg(&cli)
            .arg("-H")
            .arg(d.host())
            .args(["stats", "--format", "{{.Name}}:{{.PIDs}}", "idle"])
            .output()
            .unwrap();
        let frames = String::from_utf8_lossy(&out.stdout)
            .matches("idle:1")
            .count();
        assert!(frames >= 2, "{} redrew {frames} times", cli.display());
    }
    let r = d.docker(&["stats", "--no-stream", "-a"]).ok();
    assert!(
        r.out().contains("off") && r.out().starts_with("CONTAINER ID"),
        "{}",
        r.out()
    );
}

#[test]
fn top_lists_the_containers_processes_with_ps_options() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tp",
        "busybox",
        "sh",
        "-c",
        "sleep 777 & sleep 888",
    ])
    .ok();
    let r = d.docker(&["top", "tp"]).ok();
    assert!(r.out().starts_with("UID"), "{}", r.out());
    assert!(
        r.out().contains("sleep 777") && r.out().contains("sleep 888"),
        "{}",
        r.out()
    );
    let r = d.docker(&["top", "tp", "-o", "pid,comm"]).ok();
    let mut lines = r.out().lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(lines.filter(|l| l.ends_with("sleep")).count(), 2);
    let r = d.berth(&["top", "tp", "aux"]).ok();
    assert!(
        r.out().contains("USER") && r.out().contains("sleep 888"),
        "{}",
        r.out()
    );
    d.docker(&["stop", "-t", "0", "tp"]).ok();
    let r = d.docker(&["top", "tp"]);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn events_carry_every_action_and_filter_like_docker() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let since = chrono_now();
    d.docker(&["volume", "create", "vol1"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ev",
        "--label",
        "team=blue",
        "-v",
        "vol1:/data",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&["exec", "ev", "true"]).ok();
    d.docker(&["pause", "ev"]).ok();
    d.docker(&["unpause", "ev"]).ok();
    d.docker(&["kill", "-s", "USR1", "ev"]).ok();
    d.docker(&["restart", "-t", "1", "ev"]).ok();
    d.docker(&["stop", "-t", "1", "ev"]).ok();
    d.docker(&["rm", "ev"]).ok();
    d.docker(&["volume", "rm", "vol1"]).ok();
    d.docker(&["tag", "busybox", "bb:one"]).ok();
    d.docker(&["rmi", "bb:one"]).ok();
    d.docker(&["run", "--rm", "--name", "other", "busybox", "true"])
        .ok();
    let until = chrono_now();
    let events = |filters: &[&str]| -> Vec<String> {
        let mut args = vec![
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}}",
        ];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        d.docker(&args)
            .ok()
            .out()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let ev = events(&["container=ev"]);
    let actions: Vec<&str> = ev.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    for want in [
        "create",
        "start",
        "exec_create: true",
        "exec_start: true",
        "exec_die",
        "pause",
        "unpause",
        "kill",
        "die",
        "stop",
        "restart",
        "destroy",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    assert!(ev.iter().all(|l| l.starts_with("container ")), "{ev:?}");
    assert!(!ev.iter().any(|l| l.contains("other")));
    // Label, event (exact and the exec family by prefix), type, image and volume filters.
    assert_eq!(
        events(&["label=team=blue", "event=create"]),
        ["container create"]
    );
    assert_eq!(events(&["label=team=red"]), Vec::<String>::new());
    assert_eq!(
        events(&["container=ev", "event=exec_start"]),
        ["container exec_start: true"]
    );
    let vol = events(&["type=volume"]);
    assert_eq!(
        vol,
        [
            "volume create",
            "volume mount",
            "volume unmount",
            "volume mount",
            "volume unmount",
            "volume destroy"
        ]
    );
    assert_eq!(
        events(&["volume=vol1", "event=destroy"]),
        ["volume destroy"]
    );
    let img = events(&["type=image"]);
    assert_eq!(img, ["image tag", "image untag"]);
    assert_eq!(events(&["image=bb:one"]), ["image tag", "image untag"]);
    let other = events(&["image=busybox", "container=other"]);
    assert_eq!(
        other,
        [
            "container create",
            "container attach",
            "container start",
            "container die",
            "container destroy"
        ]
    );
    assert!(events(&["type=network"])
        .iter()
        .all(|l| l.starts_with("network ")));
    // berth's CLI reads the same stream; a bad filter gets Docker's error.
    let b = d
        .berth(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=ev",
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.exitCode}}",
        ])
        .ok();
    assert_eq!(b.out().lines().count(), 2, "{}", b.out());
    let r = d.docker(&["events", "--filter", "bogus=1", "--until", "0s"]);
    assert!(r.stderr.contains("invalid filter 'bogus'"), "{}", r.stderr);
}

fn chrono_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn health_checks_show_in_ps_inspect_and_events_and_survive_a_daemon_restart() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ready && echo ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 2; touch /tmp/ready; sleep 1000",
    ])
    .ok();
    let status = |d: &TestDaemon| {
        d.docker(&["ps", "--format", "{{.Status}}", "-f", "name=hc"])
            .ok()
            .out()
            .to_string()
    };
    assert!(status(&d).ends_with("(health: starting)"), "{}", status(&d));
    assert!(
        d.wait_until(10, || status(&d).ends_with("(unhealthy)")),
        "{}",
        status(&d)
    );
    assert!(
        d.wait_until(10, || status(&d).ends_with("(healthy)")),
        "{}",
        status(&d)
    );
    let h = json(&d.inspect("hc", "{{json .State.Health}}"));
    assert_eq!(h["Status"], "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(log.len() <= 5 && !log.is_empty());
    assert_eq!(log.last().unwrap()["Output"], "ok\n");
    assert_eq!(log.last().unwrap()["ExitCode"], 0);
    // The docker CLI sends `until` in whole seconds: let the last event's second pass.
    std::thread::sleep(Duration::from_millis(1100));
    let ev = d
        .docker(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ])
        .ok();
    assert_eq!(
        ev.out().lines().collect::<Vec<_>>(),
        ["health_status: unhealthy", "health_status: healthy"]
    );
    assert_eq!(
        d.docker(&["ps", "-q", "--filter", "health=healthy"])
            .ok()
            .out()
            .len(),
        12
    );

    // The daemon goes away and comes back: the status is kept and checking goes on.
    d.kill9();
    d.spawn();
    assert_eq!(d.inspect("hc", "{{.State.Health.Status}}"), "healthy");
    let last = |d: &TestDaemon| {
        json(&d.inspect("hc", "{{json .State.Health.Log}}"))
            .as_array()
            .and_then(|l| l.last().cloned())
            .map(|e| e["Start"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let before = last(&d);
    assert!(
        d.wait_until(5, || last(&d) != before),
        "no probe after the restart"
    );
    d.docker(&["exec", "hc", "rm", "/tmp/ready"]).ok();
    assert!(
        d.wait_until(10, || status(&d).ends_with("(unhealthy)")),
        "{}",
        status(&d)
    );

    // The image's HEALTHCHECK, and --no-healthcheck turning it off.
    d.docker(&[
        "commit",
        "--change",
        "HEALTHCHECK --interval=200ms CMD exit 0",
        "hc",
        "checked:1",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "fromimage",
        "checked:1",
        "sleep",
        "1000",
    ])
    .ok();
    assert!(
        d.wait_until(10, || d.inspect("fromimage", "{{.State.Health.Status}}")
            == "healthy")
    );
    d.docker(&[
        "run",
        "-d",
        "--name",
        "nocheck",
        "--no-healthcheck",
        "checked:1",
        "sleep",
        "1000",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(d.inspect("nocheck", "{{json .State.Health}}"), "null");
    assert!(!d
        .docker(&["ps", "-f", "name=nocheck"])
        .ok()
        .out()
        .contains("health"));
    // A probe that takes too long fails with Docker's message.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    assert!(
        d.wait_until(10, || d.inspect("slow", "{{.State.Health.Status}}")
            == "unhealthy")
    );
    let out = d.inspect("slow", "{{(index .State.Health.Log 0).Output}}");
    assert_eq!(out, "Health check exceeded timeout (300ms)");
    // Stopping leaves the status unhealthy, as Docker does.
    d.docker(&["stop", "-t", "0", "fromimage"]).ok();
    assert_eq!(
        d.inspect("fromimage", "{{.State.Health.Status}}"),
        "unhealthy"
    );
}

#[test]
fn logging_drivers_rotate_compress_and_read_back() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done; echo bye >&2";
    d.docker(&[
        "run",
        "--name",
        "json",
        "--log-opt",
        "max-size=8k",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "compress=true",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    let log_path = d.inspect("json", "{{.LogPath}}");
    assert!(log_path.ends_with("-json.log"), "{log_path}");
    let dir = std::path::Path::new(&log_path).parent().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-json.log"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names[1].ends_with(".1.gz") && names[2].ends_with(".2.gz"),
        "{names:?}"
    );
    assert!(std::fs::metadata(&log_path).unwrap().len() <= 8192);
    // Docker's json-file format, line by line.
    let current = std::fs::read_to_string(&log_path).unwrap();
    let entry: serde_json::Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    assert!(entry["log"].as_str().unwrap().starts_with("line "));
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    // Reading goes across the compressed files, in order, and ends with the last lines.
    let all = d.docker(&["logs", "json"]).ok();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert!(lines.len() > 200 && lines.len() < 3000, "{}", lines.len());
    let first: usize = lines[0].strip_prefix("line ").unwrap().parse().unwrap();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {}", first + i));
    }
    assert_eq!(lines.last().unwrap(), &"line 2999");
    assert_eq!(all.stderr, "bye\n");
    let tail = d.docker(&["logs", "--tail", "2", "json"]).ok();
    assert_eq!(tail.stdout, "line 2999\n");
    assert_eq!(tail.stderr, "bye\n");

    // local: Docker's binary format, compressed rotations, same reading.
    d.docker(&[
        "run",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=8k",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    assert_eq!(
        d.inspect("loc", "{{.HostConfig.LogConfig.Type}} {{.LogPath}}"),
        "local"
    );
    let id = d.inspect("loc", "{{.Id}}");
    let local_dir = d.data_root.join("containers").join(&id).join("local-logs");
    assert!(local_dir.join("container.log").is_file());
    assert!(local_dir.join("container.log.1.gz").is_file());
    let r = d.berth(&["logs", "--tail", "3", "loc"]).ok();
    assert_eq!(r.stdout, "line 2998\nline 2999\n");
    let r = d.docker(&["logs", "-t", "--tail", "1", "loc"]).ok();
    assert!(
        r.stderr.ends_with("Z bye\n") && r.stderr.len() > 30,
        "{}",
        r.stderr
    );

    // none: nothing kept, and Docker's error.
    d.docker(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "x",
    ])
    .ok();
    let r = d.docker(&["logs", "quiet"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("configured logging driver does not support reading"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--log-opt", "bogus=1", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("unknown log opt 'bogus' for json-file log driver"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--log-driver", "syslogx", "busybox", "true"]);
    assert!(
        r.stderr
            .contains("logger: no log driver named 'syslogx' is registered"),
        "{}",
        r.stderr
    );
}

#[test]
fn daemon_json_sets_the_default_log_driver_and_options() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    d.kill9();
    let cfg = d.root.path().join("daemon.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["log-driver"] = serde_json::json!("local");
    v["log-opts"] = serde_json::json!({"max-size": "4k", "max-file": "2"});
    std::fs::write(&cfg, v.to_string()).unwrap();
    d.spawn();
    d.docker(&[
        "run",
        "--name",
        "dflt",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done",
    ])
    .ok();
    assert_eq!(
        d.inspect("dflt", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"local","Config":{"max-file":"2","max-size":"4k"}}"#
    );
    let r = d.docker(&["logs", "--tail", "1", "dflt"]).ok();
    assert_eq!(r.stdout, "line 1999\n");
    let id = d.inspect("dflt", "{{.Id}}");
    let dir = d.data_root.join("containers").join(&id).join("local-logs");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "max-file=2");
    let info = d.docker(&["info", "--format", "{{.LoggingDriver}}"]).ok();
    assert_eq!(info.out(), "local");
    // A json-file container keeps its own driver; the daemon's options are not its.
    d.docker(&[
        "create",
        "--name",
        "jf",
        "--log-driver",
        "json-file",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.inspect("jf", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{}}"#
    );
}

#[test]
fn info_reports_containers_cgroups_runtimes_and_the_host() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"])
        .ok();
    d.docker(&["create", "--name", "down", "busybox", "true"])
        .ok();
    let v = json(&d.docker(&["info", "--format", "{{json .}}"]).ok().stdout);
    assert_eq!(v["Containers"], 2);
    assert_eq!(v["ContainersRunning"], 1);
    assert_eq!(v["ContainersStopped"], 1);
    assert_eq!(v["ContainersPaused"], 0);
    assert_eq!(v["Images"], 1);
    assert_eq!(v["CgroupDriver"], "cgroupfs");
    assert_eq!(v["CgroupVersion"], "1");
    assert_eq!(v["MemoryLimit"], true);
    assert_eq!(v["SwapLimit"], true);
    assert_eq!(v["PidsLimit"], true);
    assert_eq!(v["LoggingDriver"], "json-file");
    assert!(v["Runtimes"]["runc"]["path"].is_string());
    assert!(v["DefaultRuntime"].is_string());
    assert!(v["Driver"].is_string());
    assert_eq!(
        v["NCPU"],
        std::thread::available_parallelism().unwrap().get()
    );
    assert!(v["MemTotal"].as_u64().unwrap() > 0);
    assert_eq!(v["DockerRootDir"], d.data_root.display().to_string());
    assert!(v["KernelVersion"].as_str().unwrap().len() > 2);
    assert!(v["OperatingSystem"].is_string());
    assert!(v["RegistryConfig"]["IndexConfigs"].is_object());
    let weight = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists();
    let warnings = v["Warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        warnings
            .iter()
            .any(|w| w == "WARNING: No blkio weight support"),
        !weight,
        "{warnings:?}"
    );
    // The text form of both CLIs.
    let text = d.docker(&["info"]).ok();
    assert!(
        text.stdout.contains(" Cgroup Driver: cgroupfs"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(" Cgroup Version: 1"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(" Running: 1"), "{}", text.stdout);
    let b = d.berth(&["info"]).ok();
    assert!(b.stdout.contains("Cgroup Version: 1"), "{}", b.stdout);
    assert!(
        b.stdout.contains("Logging Driver: json-file"),
        "{}",
        b.stdout
    );
}
