//! Root test: the generated spec really runs under runc on this host, with Docker's
//! defaults visible from inside (capabilities, seccomp, masked paths, hostname, user), an
//! exec process built by `build_exec_process` runs in it, and the daemon-side runtime verbs
//! and cgroup readers work on it.

mod common;

use berth_core::container::{ContainerConfig, HostConfig};
use berth_runtime::cgroups::{CgroupBackend, CgroupLayout};
use berth_runtime::oci::{Runtime, RuntimeStatus};
use berth_runtime::spec::{
    build_exec_process, build_spec, EtcFiles, ExecRequest, NamespaceMode, NetworkNamespace,
    SpecRequest,
};
use oci_spec::runtime::{LinuxPids, LinuxResources, Spec};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "id", "true", "hostname", "sleep", "wc", "grep", "ls", "head",
];

/// A bundle, a runc state dir and a cgroup parent, torn down on drop even after a panic:
/// runc containers first, then the cgroups, then the directories.
struct Harness {
    runtime: Runtime,
    cgroup_parent: String,
    layout: CgroupLayout,
    containers: Vec<String>,
    bundle: tempfile::TempDir,
    _state: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let state = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let runtime = Runtime::resolve("runc", state.path()).expect("runc is installed");
        let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup")).unwrap();
        let harness = Harness {
            runtime,
            cgroup_parent: common::unique_name("berth-rt-test"),
            layout,
            containers: Vec::new(),
            bundle,
            _state: state,
        };
        harness.build_rootfs();
        harness
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle.path().join("rootfs")
    }

    fn build_rootfs(&self) {
        let root = self.rootfs();
        for dir in [
            "bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::copy(BUSYBOX, root.join("bin/busybox"))
            .expect("busybox-static is installed at /bin/busybox");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .unwrap();
        let etc = self.bundle.path().join("etc-files");
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("hostname"), "berth-box\n").unwrap();
        fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    }

    /// Generates the spec for container `id` running `args` and writes it as config.json.
    fn write_spec(
        &self,
        id: &str,
        args: &[&str],
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Spec {
        let etc = self.bundle.path().join("etc-files");
        let spec = build_spec(&SpecRequest {
            id,
            config,
            host,
            args: args.iter().map(|s| s.to_string()).collect(),
            rootfs: self.rootfs(),
            hostname: "berth-box".into(),
            etc_files: EtcFiles {
                hostname: Some(etc.join("hostname")),
                hosts: Some(etc.join("hosts")),
                resolv_conf: Some(etc.join("resolv.conf")),
            },
            extra_mounts: vec![],
            network: NetworkNamespace::New,
            ipc: NamespaceMode::Private,
            pid: NamespaceMode::Private,
            uts: NamespaceMode::Private,
            cgroups_path: format!("/{}/{id}", self.cgroup_parent),
            init: None,
            shm_path: None,
        })
        .expect("spec builds");
        spec.save(self.bundle.path().join("config.json")).unwrap();
        spec
    }

    /// Runs runc with its output in files, not pipes: a detached container inherits runc's
    /// stdio and would hold a pipe open forever.
    fn runc(&mut self, id: &str, args: &[&str]) -> Output {
        if !self.containers.iter().any(|c| c == id) {
            self.containers.push(id.to_string());
        }
        let out_path = self.bundle.path().join("runc.stdout");
        let err_path = self.bundle.path().join("runc.stderr");
        let mut cmd = self.runtime.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap());
        let status = run_with_timeout(cmd, Duration::from_secs(60));
        Output {
            status,
            stdout: fs::read(&out_path).unwrap(),
            stderr: fs::read(&err_path).unwrap(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        for id in &self.containers {
            if let Err(e) = self.runtime.delete(id, true) {
                problems.push(format!("deleting container {id}: {e}"));
            }
        }
        // The runtime removes each container's cgroup; the parent is ours to remove.
        if let Err(e) = self.layout.remove("/", &self.cgroup_parent) {
            problems.push(format!(
                "removing cgroup parent {}: {e}",
                self.cgroup_parent
            ));
        }
        if !problems.is_empty() {
            eprintln!("cleanup problems: {}", problems.join("; "));
        }
    }
}

fn run_with_timeout(mut cmd: Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd.spawn().expect("spawn runc");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runc did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "runc failed ({}): stdout={} stderr={}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn line_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[test]
fn generated_spec_runs_under_runc_with_dockers_defaults() {
    if !common::require_root("generated_spec_runs_under_runc_with_dockers_defaults") {
        return;
    }
    let mut h = Harness::new();
    let id = common::unique_name("berth-run");
    let config = ContainerConfig {
        env: vec!["GREETING=hello".into()],
        ..Default::default()
    };
    let script = "id; grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                  echo hostname=$(hostname); echo etc_hostname=$(cat /etc/hostname); \
                  for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo masked:$f=$(wc -c < $f); done; echo firmware=$(ls /sys/firmware | wc -l); \
                  echo env=$HOSTNAME,$GREETING,$PATH; echo netdevs=$(grep -c : /proc/net/dev)";
    h.write_spec(&id, &["sh", "-c", script], &config, &HostConfig::default());
    let bundle = h.bundle.path().to_path_buf();
    let out = stdout_of(&h.runc(&id, &["run", "--bundle", bundle.to_str().unwrap(), &id]));

    assert!(
        out.contains("uid=0(root) gid=0(root) groups=0(root)"),
        "{out}"
    );
    assert_eq!(line_value(&out, "CapBnd:"), "00000000a80425fb", "{out}");
    assert_eq!(line_value(&out, "CapEff:"), "00000000a80425fb", "{out}");
    assert_eq!(line_value(&out, "Seccomp:"), "2", "{out}");
    assert_eq!(line_value(&out, "NoNewPrivs:"), "0", "{out}");
    assert_eq!(line_value(&out, "hostname="), "berth-box", "{out}");
    assert_eq!(line_value(&out, "etc_hostname="), "berth-box", "{out}");
    // /proc/kcore is masked like the others, but this host's kernel may not have it.
    for file in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        if Path::new(file).exists() {
            assert_eq!(
                line_value(&out, &format!("masked:{file}=")),
                "0",
                "{file} is masked: {out}"
            );
        }
    }
    assert!(out.contains("masked:/proc/timer_list=0"), "{out}");
    assert_eq!(
        line_value(&out, "firmware="),
        "0",
        "/sys/firmware is masked: {out}"
    );
    assert_eq!(
        line_value(&out, "env="),
        "berth-box,hello,/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "{out}"
    );
    assert_eq!(
        line_value(&out, "netdevs="),
        "1",
        "only lo in a new network namespace: {out}"
    );
}

#[test]
fn non_root_user_and_ulimits_above_the_host_still_start() {
    if !common::require_root("non_root_user_and_ulimits_above_the_host_still_start") {
        return;
    }
    let mut h = Harness::new();
    let id = common::unique_name("berth-user");
    let config = ContainerConfig {
        user: "app".into(),
        ..Default::default()
    };
    let mut host = HostConfig::default();
    // Far above any sane host hard limit: clamped rather than failing the start.
    host.resources.ulimits = vec![berth_core::container::Ulimit {
        name: "nofile".into(),
        soft: 1 << 30,
        hard: 1 << 30,
    }];
    host.group_add = vec!["root".into()];
    h.write_spec(
        &id,
        &[
            "sh",
            "-c",
            "id; grep CapEff /proc/self/status; echo nofile=$(ulimit -Hn)",
        ],
        &config,
        &host,
    );
    let bundle = h.bundle.path().to_path_buf();
    let out = stdout_of(&h.runc(&id, &["run", "--bundle", bundle.to_str().unwrap(), &id]));
    assert!(
        out.contains("uid=1000(app) gid=1000(app) groups=0(root),50(staff),1000(app)"),
        "{out}"
    );
    assert_eq!(line_value(&out, "CapEff:"), "0000000000000000", "{out}");
    let own_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let expected = own_hard
        .map(|h| h.min(1 << 30).to_string())
        .unwrap_or_else(|| (1u64 << 30).to_string());
    assert_eq!(line_value(&out, "nofile="), expected, "{out}");
}

#[test]
fn exec_process_runs_in_a_running_container_and_daemon_verbs_work() {
    if !common::require_root("exec_process_runs_in_a_running_container_and_daemon_verbs_work") {
        return;
    }
    let mut h = Harness::new();
    let id = common::unique_name("berth-exec");
    let config = ContainerConfig {
        env: vec!["A=1".into()],
        ..Default::default()
    };
    let spec = h.write_spec(&id, &["sleep", "1000"], &config, &HostConfig::default());
    let bundle = h.bundle.path().to_path_buf();
    let out = h.runc(
        &id,
        &["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id],
    );
    stdout_of(&out);

    let state = h
        .runtime
        .state(&id)
        .unwrap()
        .expect("runc knows the container");
    assert_eq!(state.status, RuntimeStatus::Running);
    assert!(state.pid > 0);
    assert!(h.runtime.list().unwrap().iter().any(|s| s.id == id));

    // The cgroup readers see the container.
    let pids = h
        .layout
        .pids(&format!("/{}", h.cgroup_parent), &id)
        .unwrap();
    assert!(pids.contains(&state.pid), "{pids:?} lacks {}", state.pid);
    let stats = h
        .layout
        .stats(&format!("/{}", h.cgroup_parent), &id)
        .unwrap();
    assert!(
        stats.memory_usage > 0 && stats.pids_current >= 1,
        "{stats:?}"
    );

    // An exec as another user, with its own environment.
    let rootfs = h.rootfs();
    let exec = |user: &str, privileged: bool| {
        build_exec_process(
            &spec,
            &ExecRequest {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "id; grep -E '^Cap(Bnd|Eff):' /proc/self/status; echo vars=$A,$B".into(),
                ],
                env: vec!["B=2".into()],
                user: user.into(),
                working_dir: String::new(),
                tty: false,
                privileged,
                rootfs: &rootfs,
            },
        )
        .unwrap()
    };
    let process_file = h.bundle.path().join("process.json");
    fs::write(
        &process_file,
        serde_json::to_vec(&exec("app", false)).unwrap(),
    )
    .unwrap();
    let out = stdout_of(&h.runc(
        &id,
        &["exec", "--process", process_file.to_str().unwrap(), &id],
    ));
    assert!(
        out.contains("uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"),
        "{out}"
    );
    assert_eq!(line_value(&out, "CapBnd:"), "00000000a80425fb", "{out}");
    assert_eq!(line_value(&out, "CapEff:"), "0000000000000000", "{out}");
    assert_eq!(line_value(&out, "vars="), "1,2", "{out}");

    fs::write(&process_file, serde_json::to_vec(&exec("", true)).unwrap()).unwrap();
    let out = stdout_of(&h.runc(
        &id,
        &["exec", "--process", process_file.to_str().unwrap(), &id],
    ));
    let expected = berth_runtime::caps::to_mask(&berth_runtime::HostFacts::current().capabilities);
    assert_eq!(
        line_value(&out, "CapBnd:"),
        format!("{expected:016x}"),
        "privileged exec: {out}"
    );

    // Daemon-side verbs.
    h.runtime.pause(&id).unwrap();
    assert_eq!(
        h.runtime.state(&id).unwrap().unwrap().status,
        RuntimeStatus::Paused
    );
    h.runtime.resume(&id).unwrap();
    assert_eq!(
        h.runtime.state(&id).unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    let mut resources = LinuxResources::default();
    let mut pids_limit = LinuxPids::default();
    pids_limit.set_limit(50);
    resources.set_pids(Some(pids_limit));
    h.runtime
        .update(&id, &serde_json::to_vec(&resources).unwrap())
        .unwrap();
    let stats = h
        .layout
        .stats(&format!("/{}", h.cgroup_parent), &id)
        .unwrap();
    assert_eq!(stats.pids_limit, Some(50));

    h.runtime.kill(&id, 9, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.runtime.state(&id).unwrap().unwrap().status != RuntimeStatus::Stopped {
        assert!(
            Instant::now() < deadline,
            "container did not stop after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.runtime.delete(&id, false).unwrap();
    assert_eq!(h.runtime.state(&id).unwrap(), None);
    assert!(matches!(
        h.runtime.pause(&id),
        Err(berth_runtime::RuntimeError::NoSuchContainer { .. })
    ));
}
