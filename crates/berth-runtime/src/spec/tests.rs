//! Unit tests of the whole spec, against a fixture rootfs and pinned host facts.

use super::*;
use crate::host::test_facts;
use berth_core::container::{MountSpec, MountType, Ulimit};
use oci_spec::runtime::{LinuxSeccompAction, PosixRlimitType};
use std::fs;

struct Fixture {
    rootfs: tempfile::TempDir,
    config: ContainerConfig,
    host: HostConfig,
}

impl Fixture {
    fn new() -> Self {
        let rootfs = tempfile::tempdir().unwrap();
        fs::create_dir_all(rootfs.path().join("etc")).unwrap();
        fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            rootfs.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .unwrap();
        Fixture {
            rootfs,
            config: ContainerConfig::default(),
            host: HostConfig::default(),
        }
    }

    fn request(&self) -> SpecRequest<'_> {
        SpecRequest {
            id: "c1",
            config: &self.config,
            host: &self.host,
            args: vec!["sh".into(), "-c".into(), "true".into()],
            rootfs: self.rootfs.path().to_path_buf(),
            hostname: "c1host".into(),
            etc_files: EtcFiles::default(),
            extra_mounts: vec![],
            network: NetworkNamespace::New,
            ipc: NamespaceMode::Private,
            pid: NamespaceMode::Private,
            uts: NamespaceMode::Private,
            cgroups_path: "/berth/c1".into(),
            init: None,
            shm_path: None,
        }
    }

    fn spec(&self) -> Spec {
        build_spec_with(&self.request(), &test_facts()).unwrap()
    }

    fn err(&self) -> SpecError {
        build_spec_with(&self.request(), &test_facts()).unwrap_err()
    }
}

fn process(spec: &Spec) -> &Process {
    spec.process().as_ref().unwrap()
}

fn linux(spec: &Spec) -> &oci_spec::runtime::Linux {
    spec.linux().as_ref().unwrap()
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

fn bounding_mask(spec: &Spec) -> u64 {
    let set: Vec<_> = process(spec)
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
        .into_iter()
        .collect();
    caps::to_mask(&set)
}

fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    linux(spec)
        .namespaces()
        .clone()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

#[test]
fn default_container_gets_dockers_capabilities_in_three_sets() {
    let spec = Fixture::new().spec();
    let c = process(&spec).capabilities().clone().unwrap();
    assert_eq!(bounding_mask(&spec), 0xa804_25fb);
    assert_eq!(c.bounding(), c.effective());
    assert_eq!(c.bounding(), c.permitted());
    assert!(c.inheritable().as_ref().is_none_or(|s| s.is_empty()));
    assert!(c.ambient().as_ref().is_none_or(|s| s.is_empty()));
}

#[test]
fn default_container_has_dockers_mounts_in_order() {
    let spec = Fixture::new().spec();
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    let expected: Vec<PathBuf> = [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(dests, expected);
    assert!(options(mount_at(&spec, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(options(mount_at(&spec, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    assert!(options(mount_at(&spec, "/dev/shm").unwrap()).contains(&"size=67108864".to_string()));
    assert_eq!(
        options(mount_at(&spec, "/dev/pts").unwrap()),
        [
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ]
    );
}

#[test]
fn default_container_masks_dockers_paths_and_uses_the_default_seccomp_profile() {
    let spec = Fixture::new().spec();
    let masked = linux(&spec).masked_paths().clone().unwrap();
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/scsi",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(masked.iter().any(|m| m == path), "{path}");
    }
    assert_eq!(linux(&spec).readonly_paths().clone().unwrap().len(), 5);
    let seccomp = linux(&spec).seccomp().clone().unwrap();
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
}

#[test]
fn default_container_has_private_namespaces_and_host_cgroupns_on_v1() {
    let spec = Fixture::new().spec();
    let types = namespace_types(&spec);
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
    ] {
        assert!(types.contains(&t), "{t:?}");
    }
    assert!(!types.contains(&LinuxNamespaceType::Cgroup));
    assert_eq!(spec.hostname().as_deref(), Some("c1host"));
    assert_eq!(
        linux(&spec).cgroups_path().as_deref(),
        Some(Path::new("/berth/c1"))
    );
}

#[test]
fn cgroup_namespace_is_private_by_default_on_v2_and_follows_the_mode() {
    let fx = Fixture::new();
    let v2 = HostFacts {
        cgroup_v2: true,
        ..test_facts()
    };
    let spec = build_spec_with(&fx.request(), &v2).unwrap();
    assert!(namespace_types(&spec).contains(&LinuxNamespaceType::Cgroup));

    let mut fx = Fixture::new();
    fx.host.cgroupns_mode = "private".into();
    assert!(namespace_types(&fx.spec()).contains(&LinuxNamespaceType::Cgroup));
    fx.host.cgroupns_mode = "bogus".into();
    assert_eq!(fx.err().to_string(), "invalid cgroup namespace mode: bogus");
}

#[test]
fn host_and_joined_namespaces_are_left_out_or_given_paths() {
    let fx = Fixture::new();
    let mut req = fx.request();
    req.network = NetworkNamespace::Host;
    req.uts = NamespaceMode::Host;
    req.pid = NamespaceMode::Path("/proc/42/ns/pid".into());
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    let ns = linux(&spec).namespaces().clone().unwrap();
    assert!(!ns
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network || n.typ() == LinuxNamespaceType::Uts));
    let pid = ns
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Pid)
        .unwrap();
    assert_eq!(pid.path().as_deref(), Some(Path::new("/proc/42/ns/pid")));
    assert!(
        spec.hostname().is_none(),
        "no hostname in the host's UTS namespace"
    );
}

#[test]
fn privileged_turns_off_masking_seccomp_and_read_only_sys() {
    let mut fx = Fixture::new();
    fx.host.privileged = true;
    let facts = HostFacts {
        dev_root: PathBuf::from("/dev"),
        ..test_facts()
    };
    let spec = build_spec_with(&fx.request(), &facts).unwrap();
    assert!(linux(&spec).masked_paths().clone().unwrap().is_empty());
    assert!(linux(&spec).readonly_paths().clone().unwrap().is_empty());
    assert!(linux(&spec).seccomp().is_none());
    assert!(!options(mount_at(&spec, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(!options(mount_at(&spec, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    assert_eq!(
        bounding_mask(&spec),
        caps::to_mask(&test_facts().capabilities)
    );
    let devices = linux(&spec).devices().clone().unwrap();
    assert!(devices.iter().any(|d| d.path() == Path::new("/dev/null")));
    let rules = linux(&spec)
        .resources()
        .clone()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
}

#[test]
fn explicit_masked_paths_override_the_defaults_even_when_privileged() {
    let mut fx = Fixture::new();
    fx.host.masked_paths = Some(vec!["/proc/kcore".into()]);
    fx.host.readonly_paths = Some(vec![]);
    let spec = fx.spec();
    assert_eq!(
        linux(&spec).masked_paths().clone().unwrap(),
        vec!["/proc/kcore"]
    );
    assert!(linux(&spec).readonly_paths().clone().unwrap().is_empty());
    fx.host.privileged = true;
    assert_eq!(
        linux(&fx.spec()).masked_paths().clone().unwrap(),
        vec!["/proc/kcore"]
    );
}

#[test]
fn init_becomes_args_zero_with_a_double_dash_and_a_read_only_bind() {
    let fx = Fixture::new();
    let mut req = fx.request();
    req.init = Some("/usr/libexec/berth-init".into());
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    assert_eq!(
        process(&spec).args().clone().unwrap(),
        ["/sbin/docker-init", "--", "sh", "-c", "true"]
    );
    let m = mount_at(&spec, "/sbin/docker-init").unwrap();
    assert_eq!(
        m.source().as_deref(),
        Some(Path::new("/usr/libexec/berth-init"))
    );
    assert_eq!(options(m), ["bind", "ro"]);
}

#[test]
fn init_is_skipped_outside_a_private_pid_namespace() {
    let fx = Fixture::new();
    let mut req = fx.request();
    req.init = Some("/usr/libexec/berth-init".into());
    req.pid = NamespaceMode::Host;
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    assert_eq!(process(&spec).args().clone().unwrap(), ["sh", "-c", "true"]);
    assert!(mount_at(&spec, "/sbin/docker-init").is_none());
}

#[test]
fn env_gets_path_hostname_and_term_defaults_that_config_overrides() {
    let mut fx = Fixture::new();
    fx.config.tty = true;
    fx.config.env = vec!["FOO=bar".into(), "HOSTNAME=custom".into()];
    let env = process(&fx.spec()).env().clone().unwrap();
    assert_eq!(
        env,
        [DEFAULT_PATH_ENV, "HOSTNAME=custom", "TERM=xterm", "FOO=bar"]
    );

    fx.config.tty = false;
    fx.config.env = vec!["PATH=/opt/bin".into()];
    let env = process(&fx.spec()).env().clone().unwrap();
    assert_eq!(env, ["PATH=/opt/bin", "HOSTNAME=c1host"]);
}

#[test]
fn bare_env_keys_remove_variables() {
    let env = replace_or_append_env(
        vec!["A=1".into(), "B=2".into()],
        &["A".into(), "C=3".into(), "B=4".into()],
    );
    assert_eq!(env, ["B=4", "C=3"]);
}

#[test]
fn working_dir_terminal_and_console_size_come_from_the_config() {
    let mut fx = Fixture::new();
    assert_eq!(process(&fx.spec()).cwd(), Path::new("/"));
    assert_eq!(process(&fx.spec()).terminal(), Some(false));
    fx.config.working_dir = "/srv".into();
    fx.config.tty = true;
    fx.host.console_size = Some([40, 120]);
    let spec = fx.spec();
    assert_eq!(process(&spec).cwd(), Path::new("/srv"));
    let size = process(&spec).console_size().unwrap();
    assert_eq!((size.height(), size.width()), (40, 120));
}

#[test]
fn user_and_group_add_are_resolved_in_the_rootfs() {
    let mut fx = Fixture::new();
    fx.config.user = "app".into();
    fx.host.group_add = vec!["root".into(), "77".into()];
    let spec = fx.spec();
    let user = process(&spec).user();
    assert_eq!((user.uid(), user.gid()), (1000, 1000));
    assert_eq!(
        user.additional_gids().clone().unwrap(),
        vec![1000, 50, 0, 77]
    );

    fx.config.user = "ghost".into();
    assert_eq!(
        fx.err().to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
}

#[test]
fn ulimits_are_clamped_to_the_daemons_hard_limits() {
    let mut fx = Fixture::new();
    fx.host.resources.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1 << 20,
        hard: 1 << 20,
    }];
    let rlimits = process(&fx.spec()).rlimits().clone().unwrap();
    assert_eq!(rlimits.len(), 1);
    assert_eq!(
        (rlimits[0].typ(), rlimits[0].soft(), rlimits[0].hard()),
        (PosixRlimitType::RlimitNofile, 20_000, 20_000)
    );
}

#[test]
fn no_rlimits_are_set_unless_asked_for() {
    assert!(process(&Fixture::new().spec()).rlimits().is_none());
}

#[test]
fn oom_score_adj_is_set_and_range_checked() {
    let mut fx = Fixture::new();
    fx.host.oom_score_adj = 300;
    assert_eq!(process(&fx.spec()).oom_score_adj(), Some(300));
    fx.host.oom_score_adj = 1001;
    assert_eq!(
        fx.err().to_string(),
        "Invalid value 1001, range for oom score adj is [-1000, 1000]"
    );
}

#[test]
fn security_opts_reach_the_spec() {
    let mut fx = Fixture::new();
    fx.host.security_opt = vec!["no-new-privileges".into(), "seccomp=unconfined".into()];
    let spec = fx.spec();
    assert_eq!(process(&spec).no_new_privileges(), Some(true));
    assert!(linux(&spec).seccomp().is_none());
    fx.host.security_opt = vec!["apparmor=docker-default".into()];
    assert!(
        process(&fx.spec()).apparmor_profile().is_none(),
        "ignored without AppArmor"
    );
    fx.host.security_opt = vec!["nonsense".into()];
    assert_eq!(
        fx.err().to_string(),
        r#"invalid --security-opt 1: "nonsense""#
    );
}

#[test]
fn cap_add_sys_admin_unlocks_mount_in_seccomp() {
    let mut fx = Fixture::new();
    fx.host.cap_add = vec!["SYS_ADMIN".into()];
    let spec = fx.spec();
    let seccomp = linux(&spec).seccomp().clone().unwrap();
    assert!(seccomp
        .syscalls()
        .clone()
        .unwrap()
        .iter()
        .any(|s| s.names().contains(&"mount".to_string())));
    fx.host.cap_add = vec!["CAP_NOPE".into()];
    assert_eq!(fx.err().to_string(), r#"unknown capability: "CAP_NOPE""#);
}

#[test]
fn sysctls_are_validated_and_merged_with_the_defaults() {
    let mut fx = Fixture::new();
    fx.config.domainname = "example.org".into();
    fx.host.sysctls = [("net.core.somaxconn".to_string(), "1024".to_string())].into();
    let sysctl = linux(&fx.spec()).sysctl().clone().unwrap();
    assert_eq!(sysctl["net.core.somaxconn"], "1024");
    assert_eq!(sysctl["kernel.domainname"], "example.org");

    let mut req_fx = Fixture::new();
    req_fx.host.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
    let mut req = req_fx.request();
    req.network = NetworkNamespace::Host;
    let err = build_spec_with(&req, &test_facts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"sysctl "net.ipv4.ip_forward" not allowed in host network namespace"#
    );
}

#[test]
fn default_network_sysctls_are_set_when_the_host_has_them() {
    let fx = Fixture::new();
    let facts = HostFacts {
        proc_sys: PathBuf::from("/proc/sys"),
        ..test_facts()
    };
    let spec = build_spec_with(&fx.request(), &facts).unwrap();
    let sysctl = linux(&spec).sysctl().clone().unwrap();
    if Path::new("/proc/sys/net/ipv4/ping_group_range").exists() {
        assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    }
    let mut req = fx.request();
    req.network = NetworkNamespace::Host;
    let spec = build_spec_with(&req, &facts).unwrap();
    assert!(linux(&spec).sysctl().clone().unwrap_or_default().is_empty());
}

#[test]
fn read_only_rootfs_makes_root_and_etc_files_read_only() {
    let mut fx = Fixture::new();
    fx.host.readonly_rootfs = true;
    let mut req = fx.request();
    req.etc_files.hosts = Some("/var/lib/berth/c1/hosts".into());
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(
        options(mount_at(&spec, "/etc/hosts").unwrap()),
        ["rbind", "ro", "rprivate"]
    );
    assert!(!options(mount_at(&spec, "/dev/shm").unwrap()).contains(&"ro".to_string()));
}

#[test]
fn etc_files_are_bind_mounted_after_the_defaults() {
    let fx = Fixture::new();
    let mut req = fx.request();
    req.etc_files = EtcFiles {
        hostname: Some("/run/c1/hostname".into()),
        hosts: Some("/run/c1/hosts".into()),
        resolv_conf: Some("/run/c1/resolv.conf".into()),
    };
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    let m = mount_at(&spec, "/etc/hostname").unwrap();
    assert_eq!(m.source().as_deref(), Some(Path::new("/run/c1/hostname")));
    assert_eq!(options(m), ["rbind", "rprivate"]);
    assert!(mount_at(&spec, "/etc/resolv.conf").is_some());
}

#[test]
fn tmpfs_mounts_get_dockers_options_and_replace_defaults() {
    let mut fx = Fixture::new();
    fx.host.tmpfs = [
        ("/run".to_string(), "size=64m,exec".to_string()),
        ("/dev/shm".to_string(), String::new()),
    ]
    .into();
    fx.host.mounts = vec![MountSpec {
        typ: MountType::Tmpfs,
        target: "/cache".into(),
        tmpfs_size: 1 << 20,
        tmpfs_mode: 0o700,
        ..Default::default()
    }];
    let spec = fx.spec();
    assert_eq!(
        options(mount_at(&spec, "/run").unwrap()),
        ["nosuid", "nodev", "rprivate", "size=64m", "exec"]
    );
    assert_eq!(
        options(mount_at(&spec, "/cache").unwrap()),
        [
            "noexec",
            "nosuid",
            "nodev",
            "rprivate",
            "mode=700",
            "size=1048576"
        ]
    );
    let shm: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(options(shm[0]), ["noexec", "nosuid", "nodev", "rprivate"]);
}

#[test]
fn shm_path_and_size_shape_dev_shm() {
    let mut fx = Fixture::new();
    fx.host.shm_size = 1 << 30;
    assert!(
        options(mount_at(&fx.spec(), "/dev/shm").unwrap()).contains(&"size=1073741824".to_string())
    );
    let mut req = fx.request();
    req.shm_path = Some("/var/lib/berth/c1/shm".into());
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    let m = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(m.typ().as_deref(), Some("bind"));
    fx.host.ipc_mode = "none".into();
    assert!(mount_at(&fx.spec(), "/dev/shm").is_none());
}

#[test]
fn user_mounts_are_sorted_parents_first_and_replace_dev() {
    let fx = Fixture::new();
    let mut req = fx.request();
    let bind = |dest: &str| {
        let mut m = Mount::default();
        m.set_destination(dest.into());
        m.set_typ(Some("bind".into()));
        m.set_source(Some("/src".into()));
        m.set_options(Some(vec!["rbind".into()]));
        m
    };
    req.extra_mounts = vec![bind("/data/sub/deeper"), bind("/data"), bind("/dev")];
    let spec = build_spec_with(&req, &test_facts()).unwrap();
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/sys",
            "/sys/fs/cgroup",
            "/data",
            "/dev",
            "/data/sub/deeper"
        ]
    );
}

#[test]
fn resources_and_default_device_rules_reach_the_spec() {
    let mut fx = Fixture::new();
    fx.host.resources.memory = 256 << 20;
    fx.host.resources.pids_limit = Some(64);
    fx.host.resources.device_cgroup_rules = vec!["c 42:* rmw".into()];
    let spec = fx.spec();
    let resources = linux(&spec).resources().clone().unwrap();
    assert_eq!(resources.memory().unwrap().limit(), Some(256 << 20));
    assert_eq!(resources.pids().unwrap().limit(), 64);
    let rules = resources.devices().clone().unwrap();
    assert_eq!(rules.len(), 9);
    assert_eq!(rules.last().unwrap().major(), Some(42));
}

#[test]
fn empty_args_are_refused() {
    let fx = Fixture::new();
    let mut req = fx.request();
    req.args.clear();
    assert!(matches!(
        build_spec_with(&req, &test_facts()),
        Err(SpecError::NoCommand)
    ));
}

#[test]
fn spec_serializes_to_runtime_spec_json() {
    let spec = Fixture::new().spec();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        json["linux"]["seccomp"]["architectures"][0],
        "SCMP_ARCH_X86_64"
    );
    assert_eq!(json["process"]["user"]["uid"], 0);
    assert!(json["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .contains(&"CAP_CHOWN".into()));
}

fn exec_request(rootfs: &Path) -> ExecRequest<'_> {
    ExecRequest {
        args: vec!["id".into()],
        env: vec![],
        user: String::new(),
        working_dir: String::new(),
        tty: false,
        privileged: false,
        rootfs,
    }
}

#[test]
fn exec_inherits_the_container_process_and_overrides_env() {
    let mut fx = Fixture::new();
    fx.config.env = vec!["A=1".into(), "B=2".into()];
    fx.config.working_dir = "/srv".into();
    fx.host.security_opt = vec!["no-new-privileges".into()];
    fx.host.resources.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 100,
        hard: 200,
    }];
    let spec = fx.spec();
    let mut req = exec_request(fx.rootfs.path());
    req.env = vec!["B=3".into(), "C=4".into()];
    let p = build_exec_process_with(&spec, &req, &test_facts()).unwrap();
    assert_eq!(
        p.env().clone().unwrap(),
        [DEFAULT_PATH_ENV, "HOSTNAME=c1host", "A=1", "B=3", "C=4"]
    );
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!(p.user(), process(&spec).user());
    assert_eq!(p.capabilities(), process(&spec).capabilities());
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.rlimits(), process(&spec).rlimits());
    assert_eq!(p.args().clone().unwrap(), ["id"]);
}

#[test]
fn exec_resolves_its_own_user_and_gets_all_caps_when_privileged() {
    let fx = Fixture::new();
    let spec = fx.spec();
    let mut req = exec_request(fx.rootfs.path());
    req.user = "app".into();
    req.privileged = true;
    req.tty = true;
    req.working_dir = "/tmp".into();
    let p = build_exec_process_with(&spec, &req, &test_facts()).unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().clone().unwrap(), vec![1000, 50]);
    let bounding: Vec<_> = p
        .capabilities()
        .clone()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        caps::to_mask(&bounding),
        caps::to_mask(&test_facts().capabilities)
    );
    assert!(p.env().clone().unwrap().contains(&"TERM=xterm".to_string()));
    assert_eq!(p.cwd(), Path::new("/tmp"));
    assert_eq!(p.terminal(), Some(true));

    req.user = "ghost".into();
    assert!(matches!(
        build_exec_process_with(&spec, &req, &test_facts()),
        Err(SpecError::User(_))
    ));
}
