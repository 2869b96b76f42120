//! Cgroups of containers: where they are, which processes they hold, what they use, and
//! removing the empty ones a crash left behind.
//!
//! [`CgroupLayout::detect`] looks at a cgroup root (normally `/sys/fs/cgroup`; tests pass a
//! fixture directory) and returns the layout: [`V1Layout`] (one hierarchy per controller,
//! possibly with a `unified` cgroup2 mount beside them: "hybrid") or [`V2Layout`] (one unified
//! hierarchy). Both implement [`CgroupBackend`], and so does [`CgroupLayout`] by dispatching,
//! so callers never branch on the version. Containers live at `<parent>/<id>` in every
//! hierarchy, as the runtime's cgroupfs driver puts them for `cgroupsPath: /parent/id`.
//!
//! ```no_run
//! use berth_runtime::cgroups::{CgroupBackend, CgroupLayout};
//! let layout = CgroupLayout::detect("/sys/fs/cgroup".as_ref()).unwrap();
//! let stats = layout.stats("/berth", "4f2a...").unwrap();
//! println!("{} bytes, {} pids", stats.memory_usage, stats.pids_current);
//! ```

pub mod limits;
pub mod support;
mod v1;
mod v2;

use berth_core::error::{ErrorKind, HasKind};
pub use limits::{CgroupLimits, DeviceThrottle, DeviceWeight, ThrottleKind};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
pub use support::CgroupSupport;
pub use v1::V1Layout;
pub use v2::V2Layout;

/// `USER_HZ`: the unit of `/proc/stat` and `cpuacct.stat` (100 on every Linux ABI).
const CLOCK_TICKS_PER_SECOND: u64 = 100;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// What went wrong with a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{root} is not a cgroup root (no cgroup v2 hierarchy and no v1 controller under it)")]
    NotCgroupRoot { root: PathBuf },
    #[error("no cgroup for container {id} under {parent}")]
    NotFound { parent: String, id: String },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Swap(#[from] limits::SwapConversionError),
    #[error("removing cgroups: {}", describe_failures(.failures))]
    Remove {
        failures: Vec<(PathBuf, std::io::Error)>,
    },
}

impl HasKind for CgroupError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Swap(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}
crate::error_chain::into_core_error!(CgroupError);

fn describe_failures(failures: &[(PathBuf, std::io::Error)]) -> String {
    failures
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// CPU time a cgroup spent throttled by its CFS quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuThrottling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// One `major:minor op value` line of block I/O accounting. `op` is spelt as the kernel
/// spells it: `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total` on v1, `read`/`write` on v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// What a container's cgroups report, in the units Docker's stats use. Counters a
/// hierarchy does not have (a controller not mounted, `per_cpu_ns` on v2) are zero or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub cpu_usage_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    /// Per-CPU usage (v1 `cpuacct.usage_percpu`; empty on v2).
    pub per_cpu_ns: Vec<u64>,
    /// Total CPU time of the host since boot (`/proc/stat`), for usage percentages.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub throttling: CpuThrottling,
    pub memory_usage: u64,
    /// The high-water mark (v1 `max_usage_in_bytes`, v2 `memory.peak` where the kernel has it).
    pub memory_max_usage: Option<u64>,
    /// `None`: unlimited.
    pub memory_limit: Option<u64>,
    pub memory_failcnt: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub memory_cache: u64,
    /// Reclaimable cache that `docker stats` subtracts from usage (v1 `total_inactive_file`,
    /// v2 `inactive_file`).
    pub memory_inactive_file: u64,
    /// The whole `memory.stat`, as Docker's stats API passes it on.
    pub memory_stat: BTreeMap<String, u64>,
    pub pids_current: u64,
    /// `None`: unlimited.
    pub pids_limit: Option<u64>,
    /// Bytes per device and operation.
    pub blkio: Vec<BlkioEntry>,
    /// Operations per device and operation.
    pub blkio_serviced: Vec<BlkioEntry>,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
}

impl CgroupStats {
    fn sum_blkio(&mut self) {
        let sum = |op: &str| {
            self.blkio
                .iter()
                .filter(|e| e.op.eq_ignore_ascii_case(op))
                .map(|e| e.value)
                .sum()
        };
        self.blkio_read_bytes = sum("read");
        self.blkio_write_bytes = sum("write");
    }
}

/// Where a container's OOM kills are counted: the memory cgroup directory and the cgroup
/// version (v1 `memory.oom_control`, v2 `memory.events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomWatch {
    pub version: u8,
    pub dir: PathBuf,
}

impl OomWatch {
    /// `v1:<dir>` or `v2:<dir>`, as `berth-shim --oom-watch` takes it.
    pub fn to_arg(&self) -> String {
        format!("v{}:{}", self.version, self.dir.display())
    }
}

/// What every cgroup layout answers about a container's cgroups.
pub trait CgroupBackend {
    /// The cgroup directory of container `id` under `parent`, per controller (v1; combined
    /// hierarchies appear once per controller) or as `unified` (v2, and the cgroup2 part of a
    /// hybrid host).
    fn container_cgroup_paths(&self, parent: &str, id: &str) -> Vec<(String, PathBuf)>;

    /// What the container's cgroups report.
    fn stats(&self, parent: &str, id: &str) -> Result<CgroupStats, CgroupError>;

    /// The container's total CPU time in nanoseconds: one file read, for the periodic
    /// samples that give `stats` its CPU delta at once.
    fn cpu_usage(&self, parent: &str, id: &str) -> Result<u64, CgroupError>;

    /// Writes `limits` into the container's cgroups (a running container's `update`).
    fn update(&self, parent: &str, id: &str, limits: &CgroupLimits) -> Result<(), CgroupError>;

    /// What the host's cgroups can enforce.
    fn support(&self) -> CgroupSupport;

    /// Where the container's OOM kills are counted, when there is a memory controller.
    fn oom_watch(&self, parent: &str, id: &str) -> Option<OomWatch>;

    /// The host pids of every process in the container's cgroups (and their sub-cgroups),
    /// sorted; what `docker top` lists.
    fn pids(&self, parent: &str, id: &str) -> Result<Vec<i32>, CgroupError> {
        let dirs = existing_dirs(&self.container_cgroup_paths(parent, id));
        if dirs.is_empty() {
            return Err(CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            });
        }
        let mut pids = Vec::new();
        for dir in dirs {
            collect_pids(&dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the container's cgroup directories (sub-cgroups first) where they exist. Only
    /// empty cgroups can go: one that still has a process fails with `EBUSY`, reported with
    /// every other failure.
    fn remove(&self, parent: &str, id: &str) -> Result<(), CgroupError> {
        let mut failures = Vec::new();
        for dir in existing_dirs(&self.container_cgroup_paths(parent, id)) {
            remove_tree(&dir, &mut failures);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::Remove { failures })
        }
    }
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    V1(V1Layout),
    V2(V2Layout),
}

impl CgroupLayout {
    /// Detects the layout under `root`, reading `/proc/stat` for the host's CPU time.
    pub fn detect(root: &Path) -> Result<CgroupLayout, CgroupError> {
        Self::detect_with_proc_stat(root, Path::new("/proc/stat"))
    }

    /// Like [`Self::detect`], with the host CPU counters read from `proc_stat`.
    pub fn detect_with_proc_stat(
        root: &Path,
        proc_stat: &Path,
    ) -> Result<CgroupLayout, CgroupError> {
        if root.join("cgroup.controllers").is_file() {
            return Ok(CgroupLayout::V2(V2Layout::new(root, proc_stat)));
        }
        V1Layout::detect(root, proc_stat).map(CgroupLayout::V1)
    }

    /// Pure cgroup v2.
    pub fn is_unified(&self) -> bool {
        matches!(self, Self::V2(_))
    }

    /// `"1"` or `"2"`, as `docker info` reports `CgroupVersion`.
    pub fn version_string(&self) -> &'static str {
        match self {
            Self::V1(_) => "1",
            Self::V2(_) => "2",
        }
    }

    /// Whether crun (1.8) runs containers here: on pure v2, and on v1 unless a cgroup2 mount
    /// beside the v1 hierarchies holds controllers (crun refuses that hybrid mode).
    /// The hybrid cgroup2 mount that keeps crun from running, when there is one: hiding it
    /// in a private mount namespace (`berth-shim runtime-exec --hide-cgroup2`) shows crun a
    /// plain v1 host. Only the controllers on that mount (here `hugetlb`) go unmanaged.
    pub fn crun_blocking_mount(&self) -> Option<&Path> {
        match self {
            Self::V2(_) => None,
            Self::V1(v1) if v1.unified_controllers().is_empty() => None,
            Self::V1(v1) => v1.unified_mount(),
        }
    }

    pub fn lets_crun_run(&self) -> bool {
        match self {
            Self::V2(_) => true,
            Self::V1(v1) => v1.unified_controllers().is_empty(),
        }
    }

    fn backend(&self) -> &dyn CgroupBackend {
        match self {
            Self::V1(l) => l,
            Self::V2(l) => l,
        }
    }
}

impl CgroupBackend for CgroupLayout {
    fn container_cgroup_paths(&self, parent: &str, id: &str) -> Vec<(String, PathBuf)> {
        self.backend().container_cgroup_paths(parent, id)
    }
    fn stats(&self, parent: &str, id: &str) -> Result<CgroupStats, CgroupError> {
        self.backend().stats(parent, id)
    }
    fn cpu_usage(&self, parent: &str, id: &str) -> Result<u64, CgroupError> {
        self.backend().cpu_usage(parent, id)
    }
    fn update(&self, parent: &str, id: &str, limits: &CgroupLimits) -> Result<(), CgroupError> {
        self.backend().update(parent, id, limits)
    }
    fn support(&self) -> CgroupSupport {
        self.backend().support()
    }
    fn oom_watch(&self, parent: &str, id: &str) -> Option<OomWatch> {
        self.backend().oom_watch(parent, id)
    }
    fn pids(&self, parent: &str, id: &str) -> Result<Vec<i32>, CgroupError> {
        self.backend().pids(parent, id)
    }
    fn remove(&self, parent: &str, id: &str) -> Result<(), CgroupError> {
        self.backend().remove(parent, id)
    }
}

/// The processes of container `id` under `parent` on the host whose cgroups are mounted at
/// `cgroup_root`: [`CgroupLayout::detect`] then [`CgroupBackend::pids`].
pub fn container_pids(cgroup_root: &Path, parent: &str, id: &str) -> Result<Vec<i32>, CgroupError> {
    CgroupLayout::detect(cgroup_root)?.pids(parent, id)
}

/// `<hierarchy>/<parent>/<id>`, keeping only plain components so `..` cannot climb out.
pub(crate) fn cgroup_dir(hierarchy: &Path, parent: &str, id: &str) -> PathBuf {
    let mut dir = hierarchy.to_path_buf();
    for part in Path::new(parent)
        .components()
        .chain(Path::new(id).components())
    {
        if let Component::Normal(p) = part {
            dir.push(p);
        }
    }
    dir
}

/// The distinct existing directories among `paths` (combined v1 hierarchies repeat).
fn existing_dirs(paths: &[(String, PathBuf)]) -> Vec<PathBuf> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut dirs = Vec::new();
    for (_, path) in paths {
        let Ok(canonical) = std::fs::canonicalize(path) else {
            continue;
        };
        if canonical.is_dir() && !seen.contains(&canonical) {
            seen.push(canonical);
            dirs.push(path.clone());
        }
    }
    dirs
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match std::fs::read_to_string(&procs) {
        Ok(text) => pids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CgroupError::Read {
                path: procs,
                source,
            })
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path, failures: &mut Vec<(PathBuf, std::io::Error)>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path(), failures);
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => failures.push((dir.to_path_buf(), e)),
    }
}

/// The content of a cgroup file; `None` when the file does not exist (controller absent).
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes one value to a cgroup file.
fn write_value(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// The container's cgroup directory must exist before anything is written into it
/// (writing would otherwise create plain files in a fixture, or fail obscurely).
fn require_dir(dir: &Path, parent: &str, id: &str) -> Result<(), CgroupError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CgroupError::NotFound {
            parent: parent.to_string(),
            id: id.to_string(),
        })
    }
}

/// A file holding one number (`max` and unparsable content read as `None`).
fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    Ok(read_optional(path)?.and_then(|t| t.trim().parse().ok()))
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
fn read_flat_keyed(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    Ok(read_optional(path)?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

/// Host CPU time since boot in nanoseconds and the number of CPUs, from `/proc/stat`, as
/// Docker computes them (user, nice, system, idle, iowait, irq and softirq).
pub fn system_cpu(proc_stat: &Path) -> Result<(u64, u32), CgroupError> {
    let text = read_optional(proc_stat)?.unwrap_or_default();
    let mut total = 0;
    let mut cpus = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            let ticks: u64 = rest
                .split_whitespace()
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
            total = ticks * (NANOS_PER_SECOND / CLOCK_TICKS_PER_SECOND);
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    Ok((total, cpus))
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Builds fake cgroup trees in temp dirs.
    use std::path::Path;

    /// The layout of a fixture root, with `/proc/stat` read from `<root>/stat`.
    pub fn layout(root: &Path) -> super::CgroupLayout {
        super::CgroupLayout::detect_with_proc_stat(root, &root.join("stat")).unwrap()
    }

    pub fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub const PROC_STAT: &str = "cpu  19670 0 7347 129135 832 0 107 821 0 0\n\
                                 cpu0 9027 0 3257 66148 138 0 11 358 0 0\n\
                                 cpu1 10643 0 4089 62986 694 0 95 463 0 0\n\
                                 intr 1 2 3\nctxt 42\n";
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn system_cpu_sums_the_first_seven_fields_and_counts_cpus() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "stat", PROC_STAT);
        let (ns, cpus) = system_cpu(&dir.path().join("stat")).unwrap();
        assert_eq!(ns, (19670 + 7347 + 129135 + 832 + 107) * 10_000_000);
        assert_eq!(cpus, 2);
    }

    #[test]
    fn cgroup_dirs_never_climb_out_of_the_hierarchy() {
        assert_eq!(
            cgroup_dir(Path::new("/cg/memory"), "/berth", "abc"),
            PathBuf::from("/cg/memory/berth/abc")
        );
        assert_eq!(
            cgroup_dir(Path::new("/cg"), "../../etc", "../x"),
            PathBuf::from("/cg/etc/x")
        );
    }

    #[test]
    fn a_directory_that_is_no_cgroup_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            CgroupLayout::detect(dir.path()),
            Err(CgroupError::NotCgroupRoot { .. })
        ));
    }

    #[test]
    fn crun_runs_on_v2_and_v1_but_not_hybrid_with_controllers() {
        let v2 = tempfile::tempdir().unwrap();
        write(v2.path(), "cgroup.controllers", "cpu memory pids\n");
        assert!(CgroupLayout::detect(v2.path()).unwrap().lets_crun_run());
        assert_eq!(
            CgroupLayout::detect(v2.path()).unwrap().version_string(),
            "2"
        );

        let hybrid = tempfile::tempdir().unwrap();
        write(hybrid.path(), "memory/cgroup.procs", "");
        write(hybrid.path(), "unified/cgroup.controllers", "hugetlb\n");
        let layout = CgroupLayout::detect(hybrid.path()).unwrap();
        assert!(!layout.is_unified());
        assert_eq!(layout.version_string(), "1");
        assert!(!layout.lets_crun_run());

        write(hybrid.path(), "unified/cgroup.controllers", "\n");
        assert!(CgroupLayout::detect(hybrid.path()).unwrap().lets_crun_run());

        let pure_v1 = tempfile::tempdir().unwrap();
        write(pure_v1.path(), "memory/cgroup.procs", "");
        assert!(CgroupLayout::detect(pure_v1.path())
            .unwrap()
            .lets_crun_run());
    }

    #[test]
    fn remove_takes_empty_cgroup_dirs_and_reports_what_it_cannot_remove() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "cgroup.controllers", "memory\n");
        std::fs::create_dir_all(root.path().join("berth/gone/sub")).unwrap();
        let layout = CgroupLayout::detect(root.path()).unwrap();
        layout.remove("/berth", "gone").unwrap();
        assert!(!root.path().join("berth/gone").exists());
        layout.remove("/berth", "never-existed").unwrap();

        // A regular directory with a file in it stands for a cgroup that is still busy.
        write(root.path(), "berth/busy/cgroup.procs", "42\n");
        let err = layout.remove("/berth", "busy").unwrap_err();
        assert!(
            matches!(&err, CgroupError::Remove { failures } if failures.len() == 1),
            "{err}"
        );
    }
}
