//! Compose end to end: `berth compose` and Debian's docker-compose 1.29 (Python, docker-py)
//! against a private berthd. The seed tutorial's example (appendix 3) with a busybox image;
//! Docker Compose's names and labels; recreation of changed services only; dependency
//! order and conditions; attached `up`; networks, aliases, volumes and scale; bad input
//! that names the file, service and key and creates nothing; interpolation, env files and
//! profiles; the other commands; and both tools managing the same project.

use berth_tests::{free_port, require_root, Run, TestDaemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A project directory under the daemon's temp root.
struct ProjectDir {
    dir: PathBuf,
}

impl ProjectDir {
    fn new(d: &TestDaemon, name: &str) -> Self {
        let dir = d.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        ProjectDir { dir }
    }
    fn write(&self, file: &str, text: &str) -> &Self {
        let p = self.dir.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }
    fn path(&self) -> &Path {
        &self.dir
    }
}

fn output(mut c: Command) -> Run {
    let o = c
        .stdin(Stdio::null())
        .output()
        .expect("running the command");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `berth compose ARGS` in the project directory.
fn compose(d: &TestDaemon, p: &ProjectDir, args: &[&str]) -> Run {
    let mut full = vec!["compose"];
    full.extend_from_slice(args);
    let mut c = d.berth_cmd(&full);
    c.current_dir(p.path());
    output(c)
}

/// Debian's docker-compose 1.29 pointed at the daemon.
fn docker_compose(d: &TestDaemon, p: &ProjectDir, args: &[&str]) -> Run {
    let mut c = Command::new("docker-compose");
    c.args(args)
        .current_dir(p.path())
        .env("DOCKER_HOST", d.host())
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .env_remove("DOCKER_CONFIG");
    output(c)
}

fn ids(d: &TestDaemon, filter: &str) -> Vec<String> {
    let mut v: Vec<String> = d
        .berth(&["ps", "-aq", "--no-trunc", "--filter", filter])
        .ok()
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn networks(d: &TestDaemon) -> String {
    d.berth(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
}

fn volumes(d: &TestDaemon) -> String {
    d.berth(&["volume", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
}

/// The seed's file with a local image and a process that keeps running; host ports and
/// bind sources chosen by the test.
fn seed_file(ports: [u16; 3]) -> String {
    format!(
        r#"version: '2.0'
services:
  gitlab:
    image: busybox:latest
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 1; done'
    hostname: 192.166.1.241
    # restart: always
    container_name: gitlab2
    ports:
      - "{}:443"
      - "{}:80"
      - "{}:22"
    volumes:
      - ./config:/etc/gitlab
      - ./logs:/var/log/gitlab
      - ./data:/var/opt/gitlab
    shm_size: 256m
"#,
        ports[0], ports[1], ports[2]
    )
}

#[test]
fn seed_example_comes_up_and_down_with_compose_progress() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "fhbx");
    let ports = [free_port(), free_port(), free_port()];
    p.write("docker-compose.yml", &seed_file(ports));
    std::fs::create_dir_all(p.path().join("config")).unwrap();
    std::fs::write(p.path().join("config/gitlab.rb"), "external_url 'x'\n").unwrap();

    let up = compose(&d, &p, &["up", "-d"]).ok();
    assert!(
        up.stderr.contains(" Network fhbx_default  Created"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains(" Container gitlab2  Created"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains(" Container gitlab2  Started"),
        "{}",
        up.stderr
    );
    assert_eq!(d.inspect("gitlab2", "{{.State.Running}}"), "true");
    assert_eq!(
        d.inspect("gitlab2", "{{.Config.Hostname}}"),
        "192.166.1.241"
    );
    assert_eq!(d.inspect("gitlab2", "{{.HostConfig.ShmSize}}"), "268435456");
    assert_eq!(
        d.inspect("gitlab2", "{{index .Config.Labels \"com.docker.compose.project\"}} {{index .Config.Labels \"com.docker.compose.service\"}} {{index .Config.Labels \"com.docker.compose.container-number\"}} {{index .Config.Labels \"com.docker.compose.oneoff\"}}"),
        "fhbx gitlab 1 False"
    );
    assert_eq!(
        d.inspect(
            "gitlab2",
            "{{len (index .Config.Labels \"com.docker.compose.config-hash\")}}"
        ),
        "64"
    );
    let port80 = d.berth(&["port", "gitlab2", "80/tcp"]).ok();
    assert!(
        port80.stdout.contains(&format!(":{}", ports[1])),
        "{}",
        port80.stdout
    );
    // The relative bind sources are the project's directories, created when missing.
    let cat = d
        .berth(&["exec", "gitlab2", "cat", "/etc/gitlab/gitlab.rb"])
        .ok();
    assert_eq!(cat.out(), "external_url 'x'");
    assert!(p.path().join("logs").is_dir() && p.path().join("data").is_dir());
    let ps = compose(&d, &p, &["ps"]).ok();
    assert!(ps.stdout.starts_with("NAME "), "{}", ps.stdout);
    assert!(
        ps.stdout.contains("gitlab2") && ps.stdout.contains("Up"),
        "{}",
        ps.stdout
    );

    // Unchanged: nothing is recreated.
    let before = ids(&d, "name=gitlab2");
    let again = compose(&d, &p, &["up", "-d"]).ok();
    assert!(
        again.stderr.contains(" Container gitlab2  Running"),
        "{}",
        again.stderr
    );
    assert_eq!(ids(&d, "name=gitlab2"), before);

    let down = compose(&d, &p, &["down"]).ok();
    assert!(
        down.stderr.contains(" Container gitlab2  Removed"),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr.contains(" Network fhbx_default  Removed"),
        "{}",
        down.stderr
    );
    assert!(ids(&d, "name=gitlab2").is_empty());
    assert!(!networks(&d).contains("fhbx_default"));
}

#[test]
fn docker_compose_v1_brings_the_seed_example_up_and_down() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "fhbxv1");
    let ports = [free_port(), free_port(), free_port()];
    p.write("docker-compose.yml", &seed_file(ports));
    let up = docker_compose(&d, &p, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}\n{}\n{}", up.stdout, up.stderr, d.log());
    assert!(
        up.stderr.contains("Creating network \"fhbxv1_default\""),
        "{}",
        up.stderr
    );
    assert_eq!(d.inspect("gitlab2", "{{.State.Running}}"), "true");
    assert_eq!(d.inspect("gitlab2", "{{.HostConfig.ShmSize}}"), "268435456");
    assert_eq!(
        d.inspect("gitlab2", "{{.Config.Hostname}}"),
        "192.166.1.241"
    );
    let ps = docker_compose(&d, &p, &["ps"]);
    assert_eq!(ps.code, 0, "{}", ps.stderr);
    assert!(
        ps.stdout.contains("gitlab2") && ps.stdout.contains("Up"),
        "{}",
        ps.stdout
    );
    assert!(
        ps.stdout.contains(&format!("0.0.0.0:{}->80/tcp", ports[1])),
        "{}",
        ps.stdout
    );
    // docker-compose sees its own container as up to date.
    let again = docker_compose(&d, &p, &["up", "-d"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("gitlab2 is up-to-date"),
        "{}",
        again.stderr
    );
    let logs = docker_compose(&d, &p, &["exec", "-T", "gitlab", "hostname"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert_eq!(logs.stdout.trim(), "192.166.1.241");
    let down = docker_compose(&d, &p, &["down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        down.stderr.contains("Removing network fhbxv1_default"),
        "{}",
        down.stderr
    );
    assert!(ids(&d, "name=gitlab2").is_empty());
    assert!(!networks(&d).contains("fhbxv1_default"));
}

#[test]
fn docker_compose_v1_runs_a_multi_service_project() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "v1multi");
    p.write(
        "docker-compose.yml",
        r#"version: '3.8'
services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db up; trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumes: [dbdata:/data]
    networks:
      back:
        aliases: [database]
    environment:
      ROLE: db
  web:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 1; done'
    depends_on: [db]
    networks: [back, front]
    tmpfs: /run
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    init: true
    mem_limit: 64m
  job:
    image: busybox
    command: echo done
    scale: 2
    network_mode: none
volumes:
  dbdata:
networks:
  back:
  front:
"#,
    );
    let up = docker_compose(&d, &p, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stderr, d.log());
    let ps = docker_compose(&d, &p, &["ps"]);
    for name in [
        "v1multi_db_1",
        "v1multi_web_1",
        "v1multi_job_1",
        "v1multi_job_2",
    ] {
        assert!(ps.stdout.contains(name), "{name}: {}", ps.stdout);
    }
    let ping = docker_compose(&d, &p, &["exec", "-T", "web", "nslookup", "database"]);
    assert_eq!(ping.code, 0, "{}{}", ping.stdout, ping.stderr);
    assert_eq!(
        d.inspect("v1multi_web_1", "{{.HostConfig.Memory}}"),
        "67108864"
    );
    let logs = docker_compose(&d, &p, &["logs", "--no-color", "db"]);
    assert!(logs.stdout.contains("db up"), "{}", logs.stdout);
    // dockerpty (under docker-compose 1.x on Python 3) attaches lazily, after the start,
    // so a command that prints at once races its attach, against dockerd too.
    let run = docker_compose(
        &d,
        &p,
        &[
            "run",
            "--rm",
            "-T",
            "job",
            "sh",
            "-c",
            "sleep 0.5; echo one-off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("one-off"), "{}", run.stdout);
    let down = docker_compose(&d, &p, &["down", "-v"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(ids(&d, "label=com.docker.compose.project=v1multi").is_empty());
    assert!(!volumes(&d).contains("v1multi_dbdata"));
    assert!(!networks(&d).contains("v1multi_back"));
}

#[test]
fn only_services_whose_config_changed_are_recreated() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "recreate");
    let file = |env: &str| {
        format!(
            "services:\n  a:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n    environment: [X={env}]\n    volumes: [/cache]\n  b:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n"
        )
    };
    p.write("compose.yaml", &file("1"));
    compose(&d, &p, &["up", "-d"]).ok();
    let a1 = ids(&d, "name=recreate-a-1");
    let b1 = ids(&d, "name=recreate-b-1");
    d.berth(&["exec", "recreate-a-1", "sh", "-c", "echo kept > /cache/f"])
        .ok();
    p.write("compose.yaml", &file("2"));
    let up = compose(&d, &p, &["up", "-d"]).ok();
    assert!(
        up.stderr.contains(" Container recreate-a-1  Recreated"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains(" Container recreate-b-1  Running"),
        "{}",
        up.stderr
    );
    let a2 = ids(&d, "name=recreate-a-1");
    assert_ne!(a1, a2);
    assert_eq!(ids(&d, "name=recreate-b-1"), b1);
    assert_eq!(d.inspect("recreate-a-1", "{{index .Config.Env 0}}"), "X=2");
    // The anonymous volume moved to the new container.
    let kept = d.berth(&["exec", "recreate-a-1", "cat", "/cache/f"]).ok();
    assert_eq!(kept.out(), "kept");
    // The old container is gone, not left renamed.
    assert_eq!(
        ids(&d, "label=com.docker.compose.project=recreate").len(),
        2
    );

    compose(&d, &p, &["up", "-d", "--no-recreate"]).ok();
    assert_eq!(ids(&d, "name=recreate-a-1"), a2);
    let forced = compose(&d, &p, &["up", "-d", "--force-recreate", "b"]).ok();
    assert!(
        forced.stderr.contains("recreate-b-1  Recreated"),
        "{}",
        forced.stderr
    );
    assert!(!forced.stderr.contains("recreate-a-1"), "{}", forced.stderr);
    assert_ne!(ids(&d, "name=recreate-b-1"), b1);
    compose(&d, &p, &["down", "-v"]).ok();
    assert!(ids(&d, "label=com.docker.compose.project=recreate").is_empty());
}

#[test]
fn dependencies_start_first_and_conditions_are_waited_for() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "deps");
    p.write(
        "compose.yaml",
        r#"services:
  migrate:
    image: busybox
    command: sh -c 'sleep 1; echo migrated'
  db:
    image: busybox
    command: sleep 1000
    stop_signal: SIGKILL
  web:
    image: busybox
    command: sleep 1000
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_started
      migrate:
        condition: service_completed_successfully
"#,
    );
    let up = compose(&d, &p, &["up", "-d"]).ok();
    let pos = |s: &str| {
        up.stderr
            .find(s)
            .unwrap_or_else(|| panic!("{s} in {}", up.stderr))
    };
    assert!(pos(" Container deps-migrate-1  Exited") < pos(" Container deps-web-1  Starting"));
    assert!(pos(" Container deps-db-1  Started") < pos(" Container deps-web-1  Starting"));
    let finished = d.inspect("deps-migrate-1", "{{.State.FinishedAt}}");
    let started = d.inspect("deps-web-1", "{{.State.StartedAt}}");
    assert!(finished <= started, "{finished} > {started}");
    // Down stops dependents before what they depend on.
    let down = compose(&d, &p, &["down"]).ok();
    let dpos = |s: &str| {
        down.stderr
            .find(s)
            .unwrap_or_else(|| panic!("{s} in {}", down.stderr))
    };
    assert!(dpos(" Container deps-web-1  Stopped") < dpos(" Container deps-db-1  Stopping"));

    // A dependency that fails stops the dependents from starting.
    p.write(
        "compose.yaml",
        "services:\n  migrate:\n    image: busybox\n    command: sh -c 'exit 3'\n  web:\n    image: busybox\n    command: sleep 1000\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n",
    );
    let failed = compose(&d, &p, &["up", "-d"]);
    assert_ne!(failed.code, 0);
    assert!(
        failed
            .stderr
            .contains("service \"migrate\" didn't complete successfully: exit 3"),
        "{}",
        failed.stderr
    );
    assert_eq!(d.inspect("deps-web-1", "{{.State.Status}}"), "created");
    compose(&d, &p, &["down"]).ok();

    // service_healthy waits for the dependency's health check to pass.
    p.write(
        "compose.yaml",
        r#"services:
  db:
    image: busybox
    command: sh -c 'sleep 2; touch /ready; sleep 1000'
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 500ms
      retries: 40
  web:
    image: busybox
    command: sleep 1000
    stop_signal: SIGKILL
    depends_on:
      db: {condition: service_healthy}
"#,
    );
    compose(&d, &p, &["up", "-d"]).ok();
    assert_eq!(
        d.inspect("deps-db-1", "{{.State.Health.Status}}"),
        "healthy"
    );
    // Both in UTC, to the second: "YYYY-MM-DDTHH:MM:SS" compares as text.
    let ready = d
        .berth(&[
            "exec",
            "deps-db-1",
            "date",
            "-u",
            "-r",
            "/ready",
            "+%Y-%m-%dT%H:%M:%S",
        ])
        .ok()
        .out()
        .to_string();
    let started = d.inspect("deps-web-1", "{{.State.StartedAt}}");
    assert!(
        started[..19] >= *ready.as_str(),
        "web started at {started}, before db was ready at {ready}"
    );
    compose(&d, &p, &["down"]).ok();
}

#[test]
fn attached_up_prefixes_output_and_reports_exits() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "attached");
    p.write(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    command: sh -c 'echo hello from a; echo to stderr >&2'\n  bb:\n    image: busybox\n    command: sh -c 'sleep 1; echo hello from bb'\n",
    );
    let up = compose(&d, &p, &["up"]).ok();
    assert!(
        up.stdout
            .contains("Attaching to attached-a-1, attached-bb-1"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("attached-a-1   | hello from a"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("attached-a-1   | to stderr"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("attached-bb-1  | hello from bb"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("attached-a-1 exited with code 0"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("attached-bb-1 exited with code 0"),
        "{}",
        up.stdout
    );
    assert!(!up.stdout.contains('\x1b'), "no colours off a terminal");
    // A second run shows only the new run's output.
    let again = compose(&d, &p, &["up"]).ok();
    assert_eq!(
        again.stdout.matches("hello from a").count(),
        1,
        "{}",
        again.stdout
    );

    p.write(
        "compose.yaml",
        "services:\n  quick:\n    image: busybox\n    command: sh -c 'exit 7'\n  slow:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n",
    );
    let abort = compose(&d, &p, &["up", "--abort-on-container-exit"]);
    assert_eq!(abort.code, 7, "{}{}", abort.stdout, abort.stderr);
    assert!(
        abort.stdout.contains("Aborting on container exit..."),
        "{}",
        abort.stdout
    );
    assert_eq!(d.inspect("attached-slow-1", "{{.State.Running}}"), "false");
    let code_from = compose(
        &d,
        &p,
        &["up", "--exit-code-from", "slow", "--remove-orphans"],
    );
    assert_eq!(
        code_from.code, 137,
        "{}{}",
        code_from.stdout, code_from.stderr
    );
    compose(&d, &p, &["down", "--remove-orphans"]).ok();
}

#[test]
fn networks_aliases_volumes_and_scale() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "netvol");
    let subnet = d.test_subnet(1);
    p.write(
        "compose.yaml",
        &format!(
            r#"services:
  db:
    image: busybox
    command: sh -c 'echo stored > /data/file; exec sleep 1000'
    stop_signal: SIGKILL
    volumes: [dbdata:/data]
    networks:
      back:
        aliases: [database]
  web:
    image: busybox
    command: sleep 1000
    stop_signal: SIGKILL
    networks: [back, front]
    volumes:
      - type: volume
        source: dbdata
        target: /shared
        read_only: true
networks:
  back:
  front:
    ipam:
      config:
        - subnet: {subnet}
volumes:
  dbdata:
"#
        ),
    );
    let up = compose(&d, &p, &["up", "-d", "--scale", "web=2"]).ok();
    assert!(
        up.stderr.contains(" Network netvol_back  Created"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains(" Volume \"netvol_dbdata\"  Created"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains(" Container netvol-web-2  Started"),
        "{}",
        up.stderr
    );
    let nets = networks(&d);
    assert!(
        nets.contains("netvol_back") && nets.contains("netvol_front"),
        "{nets}"
    );
    assert!(!nets.contains("netvol_default"), "{nets}");
    let label = d
        .berth(&[
            "network",
            "inspect",
            "-f",
            "{{index .Labels \"com.docker.compose.network\"}}",
            "netvol_back",
        ])
        .ok();
    assert_eq!(label.out(), "back");
    let ip = d.inspect(
        "netvol-web-1",
        "{{(index .NetworkSettings.Networks \"netvol_front\").IPAddress}}",
    );
    let prefix: String = subnet.rsplit_once('.').unwrap().0.to_string();
    assert!(ip.starts_with(&prefix), "{ip} in {subnet}");
    // The alias and the service name resolve on the shared network.
    for name in ["database", "db", "web"] {
        let r = d.berth(&["exec", "netvol-web-1", "nslookup", name]);
        assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
    }
    let shared = d
        .berth(&["exec", "netvol-web-2", "cat", "/shared/file"])
        .ok();
    assert_eq!(shared.out(), "stored");
    let ro = d.berth(&["exec", "netvol-web-2", "touch", "/shared/x"]);
    assert_ne!(ro.code, 0);
    // Scaling down removes the highest number.
    let down1 = compose(&d, &p, &["up", "-d", "--scale", "web=1"]).ok();
    assert!(
        down1.stderr.contains(" Container netvol-web-2  Removed"),
        "{}",
        down1.stderr
    );
    compose(&d, &p, &["down"]).ok();
    assert!(
        volumes(&d).contains("netvol_dbdata"),
        "down keeps named volumes"
    );
    compose(&d, &p, &["down", "-v"]).ok();
    assert!(!volumes(&d).contains("netvol_dbdata"));
    assert!(!networks(&d).contains("netvol_"));
}

#[test]
fn bad_input_names_the_file_service_and_key_and_creates_nothing() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "badinput");
    let cases: &[(&str, &[&str])] = &[
        ("services:\n  web:\n    imag: busybox\n", &["compose.yaml", "services.web", "'imag'"]),
        ("services:\n  web:\n    image: busybox\n    depends_on: [db]\n", &["compose.yaml", "\"web\"", "depends_on", "\"db\""]),
        (
            "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
            &["compose.yaml", "dependency cycle", "a -> b -> a"],
        ),
        ("services:\n  web:\n    image: \"busybox:${TAG:?set TAG}\"\n", &["compose.yaml", "services.web.image", "TAG", "set TAG"]),
        ("services:\n  web:\n    image: busybox\n    ports: [\"80:99999\"]\n", &["compose.yaml", "services.web.ports", "99999"]),
        ("services:\n  web:\n    image: busybox\n    networks: [nope]\n", &["compose.yaml", "\"web\"", "networks", "nope"]),
        ("services:\n  web:\n    image: busybox\n   bad: indent\n", &["compose.yaml"]),
        ("services:\n  ok:\n    image: busybox\n  web:\n    image: no-such-image:1\n", &["no-such-image:1"]),
    ];
    for (text, wanted) in cases {
        p.write("compose.yaml", text);
        let r = compose(&d, &p, &["up", "-d"]);
        assert_ne!(r.code, 0, "{text}");
        for w in *wanted {
            assert!(
                r.stderr.contains(w),
                "{w:?} missing for {text}: {}",
                r.stderr
            );
        }
        assert!(
            ids(&d, "label=com.docker.compose.project=badinput").is_empty(),
            "{text}"
        );
        assert!(!networks(&d).contains("badinput"), "{text}");
    }
    let missing = compose(&d, &p, &["-f", "nope.yaml", "up", "-d"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("nope.yaml"), "{}", missing.stderr);
    std::fs::remove_file(p.path().join("compose.yaml")).unwrap();
    let none = compose(&d, &p, &["up", "-d"]);
    assert!(
        none.stderr.contains("no configuration file provided"),
        "{}",
        none.stderr
    );
}

#[test]
fn interpolation_env_files_profiles_and_overrides() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "vars");
    p.write(
        ".env",
        "GREETING=from-dotenv\nCOMPOSE_PROJECT_NAME=varsproj\n",
    );
    p.write("other.env", "GREETING=from-other\n");
    p.write("app.env", "FROM_FILE=yes\n");
    p.write(
        "compose.yaml",
        "services:\n  app:\n    image: busybox\n    command: sh -c 'echo \"$$GREETING $$FROM_FILE $$PRICE\"'\n    env_file: app.env\n    environment:\n      GREETING: ${GREETING}\n      PRICE: ${PRICE:-$$5}\n  debug:\n    image: busybox\n    command: echo debug\n    profiles: [dev]\n",
    );
    p.write(
        "compose.override.yaml",
        "services:\n  app:\n    labels: [overridden=yes]\n",
    );
    let cfg = compose(&d, &p, &["config"]).ok();
    assert!(cfg.stdout.contains("name: varsproj"), "{}", cfg.stdout);
    assert!(
        cfg.stdout.contains("GREETING: from-dotenv"),
        "{}",
        cfg.stdout
    );
    assert!(
        cfg.stdout.contains("overridden: 'yes'") || cfg.stdout.contains("overridden: yes"),
        "{}",
        cfg.stdout
    );
    assert_eq!(compose(&d, &p, &["config", "--services"]).ok().out(), "app");
    let up = compose(&d, &p, &["up"]).ok();
    assert!(
        up.stdout.contains("varsproj-app-1  | from-dotenv yes $5"),
        "{}",
        up.stdout
    );
    assert!(!up.stdout.contains("debug"), "{}", up.stdout);
    assert_eq!(
        d.inspect("varsproj-app-1", "{{index .Config.Labels \"overridden\"}}"),
        "yes"
    );
    let other = compose(
        &d,
        &p,
        &["--env-file", "other.env", "-p", "varsother", "up"],
    )
    .ok();
    assert!(other.stdout.contains("from-other"), "{}", other.stdout);
    let mut env_cmd = d.berth_cmd(&["compose", "up", "app"]);
    env_cmd.current_dir(p.path()).env("GREETING", "from-shell");
    let shell = output(env_cmd);
    assert!(
        shell.stdout.contains("from-shell"),
        "{}{}",
        shell.stdout,
        shell.stderr
    );
    let profiled = compose(&d, &p, &["--profile", "dev", "up"]).ok();
    assert!(
        profiled.stdout.contains("varsproj-debug-1  | debug"),
        "{}",
        profiled.stdout
    );
    compose(&d, &p, &["--profile", "dev", "down"]).ok();
    compose(&d, &p, &["-p", "varsother", "down"]).ok();
    assert!(ids(&d, "label=com.docker.compose.project").is_empty());
}

#[test]
fn the_other_commands_work_on_a_running_project() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "cmds");
    let port = free_port();
    p.write(
        "compose.yaml",
        &format!(
            "services:\n  web:\n    image: busybox\n    command: sh -c 'echo started; trap \"exit 0\" TERM; while true; do sleep 1; done'\n    ports: [\"{port}:80\"]\n    working_dir: /tmp\n  db:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n"
        ),
    );
    compose(&d, &p, &["create"]).ok();
    assert_eq!(d.inspect("cmds-web-1", "{{.State.Status}}"), "created");
    compose(&d, &p, &["start"]).ok();
    assert_eq!(d.inspect("cmds-web-1", "{{.State.Running}}"), "true");
    let ps = compose(&d, &p, &["ps", "--services"]).ok();
    assert_eq!(ps.out(), "db\nweb");
    assert_eq!(
        compose(&d, &p, &["ps", "-q"]).ok().stdout.lines().count(),
        2
    );
    let json = compose(&d, &p, &["ps", "--format", "json", "web"]).ok();
    let row: serde_json::Value = serde_json::from_str(json.out()).unwrap();
    assert_eq!(row["Service"], "web");
    assert_eq!(row["Name"], "cmds-web-1");
    d.wait_until(10, || {
        compose(&d, &p, &["logs", "web"]).stdout.contains("started")
    });
    let logs = compose(&d, &p, &["logs", "--no-log-prefix", "-t", "web"]).ok();
    assert!(logs.out().ends_with("started"), "{}", logs.stdout);
    let exec = compose(
        &d,
        &p,
        &[
            "exec",
            "-T",
            "-e",
            "V=1",
            "web",
            "sh",
            "-c",
            "echo $V $(pwd)",
        ],
    )
    .ok();
    assert_eq!(exec.out(), "1 /tmp");
    let exec_fail = compose(&d, &p, &["exec", "-T", "web", "sh", "-c", "exit 4"]);
    assert_eq!(exec_fail.code, 4);
    let run = compose(
        &d,
        &p,
        &[
            "run",
            "--rm",
            "-T",
            "-e",
            "X=y",
            "web",
            "sh",
            "-c",
            "echo run $X",
        ],
    )
    .ok();
    assert!(run.stdout.contains("run y"), "{}", run.stdout);
    assert!(
        ids(&d, "label=com.docker.compose.oneoff=True").is_empty(),
        "--rm removed the one-off"
    );
    let detached = compose(&d, &p, &["run", "-d", "db", "sleep", "1000"]).ok();
    assert!(
        detached.out().starts_with("cmds-db-run-"),
        "{}",
        detached.stdout
    );
    assert_eq!(
        compose(&d, &p, &["port", "web", "80"]).ok().out(),
        format!("0.0.0.0:{port}")
    );
    let top = compose(&d, &p, &["top", "web"]).ok();
    assert!(
        top.stdout.starts_with("cmds-web-1\n") && top.stdout.contains("PID"),
        "{}",
        top.stdout
    );
    let images = compose(&d, &p, &["images"]).ok();
    assert!(
        images.stdout.contains("cmds-web-1") && images.stdout.contains("busybox"),
        "{}",
        images.stdout
    );
    let ls = compose(&d, &p, &["ls"]).ok();
    assert!(
        ls.stdout.contains("cmds") && ls.stdout.contains("running(3)"),
        "{}",
        ls.stdout
    );
    compose(&d, &p, &["pause", "web"]).ok();
    assert_eq!(d.inspect("cmds-web-1", "{{.State.Status}}"), "paused");
    compose(&d, &p, &["unpause", "web"]).ok();
    assert_eq!(d.inspect("cmds-web-1", "{{.State.Status}}"), "running");
    let started = d.inspect("cmds-web-1", "{{.State.StartedAt}}");
    compose(&d, &p, &["restart", "web"]).ok();
    assert_ne!(d.inspect("cmds-web-1", "{{.State.StartedAt}}"), started);
    compose(&d, &p, &["stop", "web"]).ok();
    assert_eq!(d.inspect("cmds-web-1", "{{.State.Running}}"), "false");
    compose(&d, &p, &["kill", "db"]).ok();
    assert_eq!(d.inspect("cmds-db-1", "{{.State.Running}}"), "false");
    let waited = compose(&d, &p, &["wait", "db"]).ok();
    assert_eq!(waited.out(), "137");
    compose(&d, &p, &["rm", "-f", "web"]).ok();
    assert!(ids(&d, "name=cmds-web-1").is_empty());
    assert!(compose(&d, &p, &["version", "--short"])
        .ok()
        .out()
        .starts_with(char::is_numeric));
    compose(&d, &p, &["down"]).ok();
    assert!(
        ids(&d, "label=com.docker.compose.project=cmds").is_empty(),
        "down removes one-off containers too"
    );
}

#[test]
fn berth_compose_and_docker_compose_manage_the_same_project() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "shared");
    p.write(
        "docker-compose.yml",
        "version: '2.4'\nservices:\n  web:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n",
    );
    // docker-compose made it; berth compose lists and removes it.
    let up = docker_compose(&d, &p, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let ps = compose(&d, &p, &["ps"]).ok();
    assert!(ps.stdout.contains("shared_web_1"), "{}", ps.stdout);
    let down = compose(&d, &p, &["down"]).ok();
    assert!(
        down.stderr.contains("Container shared_web_1  Removed"),
        "{}",
        down.stderr
    );
    assert!(!networks(&d).contains("shared_default"));
    // berth compose made it; docker-compose lists and removes it.
    compose(&d, &p, &["up", "-d"]).ok();
    let ps = docker_compose(&d, &p, &["ps"]);
    assert!(
        ps.stdout.contains("shared-web-1"),
        "{}{}",
        ps.stdout,
        ps.stderr
    );
    let down = docker_compose(&d, &p, &["down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(ids(&d, "label=com.docker.compose.project=shared").is_empty());
    assert!(!networks(&d).contains("shared_default"));
}

#[test]
fn built_services_reach_each_other_by_name_and_volumes_persist() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "webapp");
    p.write(
        "web/Dockerfile",
        "FROM busybox\nARG GREETING=hi\nCOPY . /ctx\nRUN mkdir -p /www && echo \"$GREETING from web\" > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write("web/secret.txt", "not sent\n");
    p.write("web/.dockerignore", "secret.txt\n");
    p.write("site/note", "bind note\n");
    let port = free_port();
    let file = |extra: &str| {
        format!(
            r#"services:
  web:
    build:
      context: ./web
      args:
        GREETING: hello
    stop_signal: SIGKILL
    ports: ["127.0.0.1:{port}:8080"]
{extra}volumes:
  data:
"#
        )
    };
    let client = r#"  client:
    image: busybox
    command: sh -c 'until timeout 5 wget -qO- http://web:8080/ >> /data/got; do sleep 0.2; done; cat /host/note; exec sleep 1000'
    stop_signal: SIGKILL
    depends_on: [web]
    volumes:
      - data:/data
      - ./site:/host:ro
"#;
    p.write("compose.yaml", &file(client));
    let build = compose(&d, &p, &["build"]).ok();
    assert!(
        build
            .stderr
            .contains("Successfully tagged webapp-web:latest"),
        "{}",
        build.stderr
    );
    let ctx = d
        .berth(&["run", "--rm", "webapp-web", "ls", "-a", "/ctx"])
        .ok();
    assert!(
        ctx.stdout.contains("Dockerfile") && !ctx.stdout.contains("secret.txt"),
        "{}",
        ctx.stdout
    );

    // Follow the client's logs while the project comes up: it fetches from web by name.
    let mut follow = d.berth_cmd(&["compose", "logs", "-f", "client"]);
    follow
        .current_dir(p.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    compose(&d, &p, &["up", "-d"]).ok();
    let follow = follow.spawn().unwrap();
    assert!(d.wait_until(20, || compose(&d, &p, &["logs", "client"])
        .stdout
        .contains("bind note")));
    let got = compose(&d, &p, &["exec", "-T", "client", "cat", "/data/got"]).ok();
    assert_eq!(got.out(), "hello from web");
    // The published port answers on the host.
    let url = format!("http://127.0.0.1:{port}/");
    let host = output({
        let mut c = Command::new("timeout");
        c.args(["5", "busybox", "wget", "-qO-", &url]);
        c
    });
    assert_eq!(host.out(), "hello from web", "{}", host.stderr);
    compose(&d, &p, &["stop", "client"]).ok();
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success());
    assert!(
        String::from_utf8_lossy(&followed.stdout).contains("webapp-client-1  | bind note"),
        "{}",
        String::from_utf8_lossy(&followed.stdout)
    );

    // The named volume outlives `down` and comes back with the next `up`.
    compose(&d, &p, &["down"]).ok();
    compose(&d, &p, &["up", "-d"]).ok();
    assert!(d.wait_until(20, || {
        compose(&d, &p, &["exec", "-T", "client", "cat", "/data/got"])
            .stdout
            .lines()
            .count()
            == 2
    }));

    // A service dropped from the file is an orphan: warned about, then removed on request.
    p.write("compose.yaml", &file(""));
    let warned = compose(&d, &p, &["up", "-d"]).ok();
    assert!(
        warned
            .stderr
            .contains("Found orphan containers ([webapp-client-1])"),
        "{}",
        warned.stderr
    );
    let removed = compose(&d, &p, &["up", "-d", "--remove-orphans"]).ok();
    assert!(
        removed
            .stderr
            .contains(" Container webapp-client-1  Removed"),
        "{}",
        removed.stderr
    );

    let down = compose(&d, &p, &["down", "-v", "--rmi", "local"]).ok();
    assert!(
        down.stderr.contains(" Volume webapp_data  Removed"),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr.contains(" Image webapp-web  Removed"),
        "{}",
        down.stderr
    );
    assert!(ids(&d, "label=com.docker.compose.project=webapp").is_empty());
    assert!(!volumes(&d).contains("webapp_data"));
    assert!(!networks(&d).contains("webapp_default"));
    let images = d.berth(&["images", "--format", "{{.Repository}}"]).ok();
    assert!(!images.stdout.contains("webapp-web"), "{}", images.stdout);
}

#[test]
fn project_names_come_from_the_directory_flag_or_environment() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "My_Dir.1");
    p.write(
        "compose.yml",
        "services:\n  s:\n    image: busybox\n    command: sleep 1000\n    stop_signal: SIGKILL\n",
    );
    compose(&d, &p, &["up", "-d"]).ok();
    assert_eq!(
        d.inspect(
            "my_dir1-s-1",
            "{{index .Config.Labels \"com.docker.compose.project\"}}"
        ),
        "my_dir1"
    );
    compose(&d, &p, &["-p", "flagged", "up", "-d"]).ok();
    let mut env_up = d.berth_cmd(&["compose", "up", "-d"]);
    env_up
        .current_dir(p.path())
        .env("COMPOSE_PROJECT_NAME", "fromenv");
    assert_eq!(output(env_up).code, 0);
    let ls = compose(&d, &p, &["ls", "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_str(ls.out()).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flagged", "fromenv", "my_dir1"]);
    // `config` prints the normalized model; `pull` skips images already present.
    let cfg = compose(&d, &p, &["config"]).ok();
    assert!(cfg.stdout.starts_with("name: my_dir1\n"), "{}", cfg.stdout);
    assert!(cfg.stdout.contains("    image: busybox"), "{}", cfg.stdout);
    compose(&d, &p, &["pull", "--policy", "missing"]).ok();
    for name in ["flagged", "fromenv", "my_dir1"] {
        compose(&d, &p, &["-p", name, "down"]).ok();
    }
    assert!(ids(&d, "label=com.docker.compose.project").is_empty());
}

#[test]
fn docker_compose_v1_builds_publishes_and_resolves_services() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let p = ProjectDir::new(&d, "v1build");
    let port = free_port();
    p.write(
        "Dockerfile",
        "FROM busybox\nARG GREETING=hi\nRUN mkdir -p /www && echo \"$GREETING from web\" > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    p.write(
        "docker-compose.yml",
        &format!(
            r#"version: '3.8'
services:
  web:
    build:
      context: .
      args:
        GREETING: v1
    stop_signal: SIGKILL
    ports: ["127.0.0.1:{port}:8080"]
  client:
    image: busybox
    command: sh -c 'until timeout 5 wget -qO- http://web:8080/ > /data/got; do sleep 0.2; done; exec sleep 1000'
    stop_signal: SIGKILL
    depends_on: [web]
    volumes: [data:/data]
volumes:
  data:
"#
        ),
    );
    let up = docker_compose(&d, &p, &["up", "-d", "--build"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stderr, d.log());
    assert!(d.wait_until(20, || {
        docker_compose(&d, &p, &["exec", "-T", "client", "cat", "/data/got"])
            .stdout
            .trim()
            == "v1 from web"
    }));
    let url = format!("http://127.0.0.1:{port}/");
    let host = output({
        let mut c = Command::new("timeout");
        c.args(["5", "busybox", "wget", "-qO-", &url]);
        c
    });
    assert_eq!(host.out(), "v1 from web", "{}", host.stderr);
    let down = docker_compose(&d, &p, &["down", "-v", "--rmi", "local"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(ids(&d, "label=com.docker.compose.project=v1build").is_empty());
    assert!(!volumes(&d).contains("v1build_data"));
    let images = d.berth(&["images", "--format", "{{.Repository}}"]).ok();
    assert!(!images.stdout.contains("v1build_web"), "{}", images.stdout);
}
