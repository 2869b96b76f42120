//! Harness for end-to-end tests: each test starts its own `berthd` (own data root, exec
//! root, socket and cgroup parent, all under a temp dir) and talks to it with the `berth`
//! CLI or the real docker CLI. Everything the daemon made is removed on drop, even when the
//! test panics: containers, shims, mounts, cgroups, files.
//!
//! Root is required. Without it the tests fail, unless `BERTH_SKIP_ROOT_TESTS=1` is set, in
//! which case [`require_root`] prints a loud skip line and the test returns early.

pub mod registry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Fails (or loudly skips with `BERTH_SKIP_ROOT_TESTS=1`) when not root. Returns false
/// when the test must stop.
pub fn require_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("!!! SKIPPED: this test needs root (BERTH_SKIP_ROOT_TESTS=1) !!!");
        return false;
    }
    panic!("this test needs root; run it as root or set BERTH_SKIP_ROOT_TESTS=1 to skip it");
}

/// The directory with the workspace's built binaries (`target/debug` or `target/release`).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BERTH_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built; run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The real docker CLI the tests compare against.
pub fn docker_cli() -> PathBuf {
    for p in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("the docker CLI is not installed (expected /usr/local/bin/docker)");
}

/// A busybox rootfs tarball, made once per test process from the host's busybox-static.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        // One shared file, replaced atomically: test processes never leave one each behind.
        let tar = std::env::temp_dir().join("berth-test-busybox.tar");
        let tmp =
            std::env::temp_dir().join(format!("berth-test-busybox.tar.{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkimage-busybox.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("running mkimage-busybox.sh");
        assert!(
            out.status.success(),
            "mkimage-busybox.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&tmp, &out.stdout).unwrap();
        std::fs::rename(&tmp, &tar).unwrap();
        tar
    })
}

/// The host's architecture as image configs name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Imports a one-layer image of `mib` MiB of random bytes as `name`; returns its id.
pub fn import_random_image(d: &TestDaemon, name: &str, mib: usize) -> String {
    use std::io::Read;
    let dir = temp_dir("random-rootfs-");
    let mut data = vec![0u8; mib << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(dir.path().join("random.bin"), &data).unwrap();
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "rootfs.tar", "random.bin"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tar = std::fs::read(dir.path().join("rootfs.tar")).unwrap();
    d.berth_stdin(&["import", "-", name], &tar)
        .ok()
        .out()
        .to_string()
}

/// Result of a CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Panics with both streams unless the exit code is 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn out(&self) -> &str {
        self.stdout.trim_end()
    }
}

/// How long one CLI command of a test may take before `timeout` kills it.
const CLIENT_TIMEOUT_SECS: &str = "300";

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A private berthd for one test.
pub struct TestDaemon {
    pub root: tempfile::TempDir,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// The default bridge of this daemon (unique, so daemons can run side by side).
    pub bridge: String,
    /// Its subnet's second octet block: `10.<net_a>.<net_b>.0/24` is the default bridge,
    /// `10.<net_a>.128.0/17` holds this process's daemons' networks.
    pub bip: String,
    /// This daemon's number in the test process.
    pub n: u32,
    pub extra_args: Vec<String>,
    child: Option<std::process::Child>,
}

impl TestDaemon {
    /// Starts a daemon with a busybox image loaded as `busybox:latest`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in(test_base())
            .expect("temp dir");
        let data_root = root.path().join("data");
        let exec_root = root.path().join("exec");
        let socket = root.path().join("berth.sock");
        let pid = std::process::id();
        let cgroup_parent = format!("berth-test-{pid}-{n}");
        let octet = 100 + pid % 100;
        let mut d = Self {
            root,
            data_root,
            exec_root,
            socket,
            cgroup_parent,
            bridge: format!("bt{:x}x{n}", pid % 0x100000),
            bip: format!("10.{octet}.{}.1/24", n % 64),
            n,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        d.spawn();
        let imp = d.berth_stdin(
            &["import", "-c", r#"CMD ["sh"]"#, "-", "busybox:latest"],
            &std::fs::read(busybox_tar()).unwrap(),
        );
        assert_eq!(imp.code, 0, "importing busybox: {}", imp.stderr);
        d
    }

    /// (Re)starts the daemon process on the same roots.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("berthd.log"))
            .unwrap();
        let mut cmd = Command::new(bin("berthd"));
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(self.root.path().join("berthd.pid"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--config-file")
            .arg(self.config_file())
            .arg("--shim-path")
            .arg(bin("berth-shim"))
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--bip")
            .arg(&self.bip)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("starting berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                break;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("berthd exited at start ({status}); log:\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not start; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// daemon.json: networks without `--subnet` come from a /21 of this daemon's own.
    fn config_file(&self) -> PathBuf {
        let p = self.root.path().join("daemon.json");
        if !p.exists() {
            let n: u32 = self
                .bip
                .split('.')
                .nth(2)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let octet = self.bip.split('.').nth(1).unwrap_or("100");
            let pools = serde_json::json!({
                "default-address-pools": [
                    {"base": format!("10.{octet}.{}.0/21", 128 + (n % 16) * 8), "size": 24}
                ]
            });
            std::fs::write(&p, pools.to_string()).unwrap();
        }
        p
    }

    /// A /27 for `network create --subnet` that no other daemon of this process uses:
    /// `10.<octet>.<64 + n>.<32 k>/27`, k in 0..8.
    pub fn test_subnet(&self, k: u32) -> String {
        let octet = self.bip.split('.').nth(1).unwrap_or("100");
        format!("10.{octet}.{}.{}/27", 64 + self.n % 64, (k % 8) * 32)
    }

    /// The nftables table berthd names after its exec root.
    pub fn firewall_table(&self) -> String {
        let digest = berth_core::Digest::of(self.exec_root.as_os_str().as_encoded_bytes());
        format!("berth_{}", &digest.hex()[..12])
    }

    /// The bridges of this daemon's networks, read from its state database.
    pub fn bridges_offline(&self) -> Vec<String> {
        let out = Command::new("sqlite3")
            .arg(self.data_root.join("berth.db"))
            .arg("select json_extract(doc, '$.bridge') from networks")
            .output();
        let mut names: Vec<String> = out
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        names.push(self.bridge.clone());
        names.sort();
        names.dedup();
        names
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The log file of a container, read from the state database while the daemon is down.
    pub fn inspect_log_path_offline(&self, name: &str) -> PathBuf {
        let db = self.data_root.join("berth.db");
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg(format!(
                "select json_extract(doc, '$.log_path') from containers where name = '{name}'"
            ))
            .output()
            .expect("sqlite3");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// Kills the daemon with SIGKILL (containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.arg("-H").arg(self.host()).args(args);
        self.client_env(&mut c);
        c
    }

    /// Like [`Self::cmd`], under `timeout(1)`: a client that hangs fails the test instead of
    /// hanging it (for commands that run to completion; not for ones a test signals).
    fn timed_cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "10", CLIENT_TIMEOUT_SECS])
            .arg(program)
            .arg("-H")
            .arg(self.host())
            .args(args);
        self.client_env(&mut c);
        c
    }

    fn client_env(&self, c: &mut Command) {
        c.env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env("DOCKER_CONFIG", self.root.path().join("docker-config"));
    }

    /// Runs `berth -H <socket> args...`.
    pub fn berth(&self, args: &[&str]) -> Run {
        Run::from(
            self.timed_cmd(&bin("berth"), args)
                .stdin(Stdio::null())
                .output()
                .expect("running berth"),
        )
    }

    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_stdin(self.timed_cmd(&bin("berth"), args), input)
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        Run::from(
            self.timed_cmd(&docker_cli(), args)
                .stdin(Stdio::null())
                .output()
                .expect("running docker"),
        )
    }

    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_stdin(self.timed_cmd(&docker_cli(), args), input)
    }

    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        self.cmd(&bin("berth"), args)
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        self.cmd(&docker_cli(), args)
    }

    /// `inspect -f TEMPLATE NAME`, trimmed.
    pub fn inspect(&self, name: &str, template: &str) -> String {
        self.berth(&["inspect", "-f", template, name])
            .ok()
            .out()
            .to_string()
    }

    /// The content of a cgroup v1 file of container `id` (`controller` is `memory`, `cpu`,
    /// `pids`, ...), trimmed; empty when the file cannot be read.
    pub fn cgroup_file(&self, controller: &str, id: &str, file: &str) -> String {
        let path = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.cgroup_parent)
            .join(id)
            .join(file);
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Polls `f` until it is true or `secs` pass.
    pub fn wait_until(&self, secs: u64, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Everything this daemon left: shims, mounts, cgroups, dirs.
    fn cleanup(&mut self) {
        if self.child.is_some() {
            let ids = self.berth(&["ps", "-aq"]);
            for id in ids.stdout.split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        self.kill9();
        kill_processes_under(&self.exec_root);
        kill_processes_under(&self.data_root);
        // runc state for anything left.
        for rt in ["runc", "crun"] {
            let state = self.exec_root.join("runtime").join(rt);
            if let Ok(rd) = std::fs::read_dir(&state) {
                for e in rd.flatten() {
                    let _ = Command::new(rt)
                        .arg("--root")
                        .arg(&state)
                        .args(["delete", "-f"])
                        .arg(e.file_name())
                        .output();
                }
            }
        }
        unmount_under(self.root.path());
        remove_cgroups(&self.cgroup_parent);
        for bridge in self.bridges_offline() {
            let _ = Command::new("ip")
                .args(["link", "delete", &bridge, "type", "bridge"])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.firewall_table()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Runs a command on a pseudo-terminal of `rows`x`cols`, typing `input` chunk by chunk
/// (each after a pause), and returns everything it printed and its exit code.
pub fn run_in_pty(
    mut cmd: Command,
    rows: u16,
    cols: u16,
    input: &[&[u8]],
    timeout: Duration,
) -> (String, Option<i32>) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_string_lossy().as_ref())
        .expect("opening pty slave");
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&master, ws).expect("setting pty size");
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("spawning under a pty");
    drop(cmd);
    let master = std::sync::Arc::new(master);
    let reader = {
        let m = master.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match rustix::io::read(&*m, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            out
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    for chunk in input {
        let _ = rustix::io::write(&*master, chunk);
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The reader ends when the last slave copy closes (the child is gone).
    let out = reader.join().unwrap_or_default();
    (String::from_utf8_lossy(&out).into_owned(), code)
}

/// A TCP port on 127.0.0.1 that is free right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    l.local_addr().expect("probe port").port()
}

/// A temp dir for a test's own files, removed on drop (under `BERTH_TEST_DIR`, else
/// `/var/tmp`: a real disk).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-test-{prefix}"))
        .tempdir_in(test_base())
        .expect("temp dir")
}

fn test_base() -> PathBuf {
    let base = std::env::var("BERTH_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/var/tmp"));
    std::fs::create_dir_all(&base).unwrap();
    base
}

fn run_with_stdin(mut c: Command, input: &[u8]) -> Run {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawning");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("waiting");
    let _ = writer.join();
    Run::from(out)
}

/// Kills processes whose command line mentions `dir` (shims of this daemon) and, through
/// them, what they run.
fn kill_processes_under(dir: &Path) {
    let needle = dir.display().to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Unmounts every mount below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    for _ in 0..3 {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// Removes the cgroup dirs of a parent in every hierarchy (children first).
pub fn remove_cgroups(parent: &str) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hier in rd.flatten() {
        let dir = hier.path().join(parent);
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}
