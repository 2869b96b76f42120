//! Root test: the cgroup readers on this host's real hierarchies, with a cgroup the test
//! creates under a unique parent, puts a process in, reads and removes.

mod common;

use berth_runtime::cgroups::{CgroupBackend, CgroupLayout};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A process in a fresh cgroup `/<parent>/<id>` of every v1 controller the test uses (or of
/// the v2 hierarchy), killed and removed on drop.
struct TestCgroup {
    layout: CgroupLayout,
    parent: String,
    id: String,
    child: Option<Child>,
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(layout: CgroupLayout) -> TestCgroup {
        let parent = common::unique_name("berth-cg-test");
        let id = "c1".to_string();
        let mut cg = TestCgroup {
            layout,
            parent,
            id,
            child: None,
            dirs: Vec::new(),
        };
        // On v1, the controllers the stats read (not cpuset, which needs cpus and mems set
        // first, nor the named and hybrid-unified hierarchies); on v2, the one hierarchy.
        const V1_USED: &[&str] = &["memory", "pids", "cpu", "cpuacct", "blkio"];
        let unified = cg.layout.is_unified();
        let paths = cg.layout.container_cgroup_paths(&cg.parent, &cg.id);
        for (controller, dir) in paths {
            if !unified && !V1_USED.contains(&controller.as_str()) {
                continue;
            }
            fs::create_dir_all(&dir).unwrap();
            cg.dirs.push(dir);
        }
        let child = Command::new("sleep").arg("300").spawn().unwrap();
        let pid = child.id().to_string();
        cg.child = Some(child);
        for dir in &cg.dirs {
            fs::write(dir.join("cgroup.procs"), &pid).unwrap();
        }
        cg
    }

    fn write(&self, file: &str, value: &str) {
        let dir = self
            .dirs
            .iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no {file}"));
        fs::write(dir.join(file), value).unwrap();
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_child();
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

#[test]
fn real_cgroups_of_this_host_are_listed_read_and_removed() {
    if !common::require_root("real_cgroups_of_this_host_are_listed_read_and_removed") {
        return;
    }
    let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup")).unwrap();
    let mut cg = TestCgroup::new(layout.clone());
    let pid = cg.child.as_ref().unwrap().id() as i32;

    assert_eq!(layout.pids(&cg.parent, &cg.id).unwrap(), vec![pid]);
    let pids =
        berth_runtime::cgroups::container_pids(Path::new("/sys/fs/cgroup"), &cg.parent, &cg.id);
    assert_eq!(pids.unwrap(), vec![pid]);

    let memory_limit = if layout.is_unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    cg.write(memory_limit, "67108864");
    cg.write("pids.max", "10");
    // A short-lived process joins the cgroups, burns a little CPU and leaves 1 MiB of page
    // cache charged to them, so usage counters are non-zero.
    let scratch = tempfile::tempdir().unwrap();
    let joins: Vec<String> = cg
        .dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs;", d.display()))
        .collect();
    let script = format!(
        "{} i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 1048576 /dev/zero > {}/data",
        joins.join(" "),
        scratch.path().display()
    );
    assert!(Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap()
        .success());

    let stats = layout.stats(&cg.parent, &cg.id).unwrap();
    assert_eq!(stats.memory_limit, Some(64 << 20), "{stats:?}");
    assert_eq!(stats.pids_limit, Some(10), "{stats:?}");
    assert_eq!(stats.pids_current, 1, "{stats:?}");
    assert!(stats.memory_usage > 0, "{stats:?}");
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
    assert!(
        stats.system_cpu_ns > 0 && stats.online_cpus >= 1,
        "{stats:?}"
    );
    assert!(!stats.memory_stat.is_empty(), "{stats:?}");
    if !layout.is_unified() {
        assert!(!stats.per_cpu_ns.is_empty(), "{stats:?}");
    }

    // A cgroup that still has a process is not removed; an empty one is.
    assert!(layout.remove(&cg.parent, &cg.id).is_err());
    cg.kill_child();
    layout.remove(&cg.parent, &cg.id).unwrap();
    for dir in &cg.dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    layout.remove("/", &cg.parent).unwrap();
    assert!(matches!(
        layout.stats(&cg.parent, &cg.id),
        Err(berth_runtime::CgroupError::NotFound { .. })
    ));
}
