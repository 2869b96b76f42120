//! Tests of loading: files, merging, interpolation, validation errors and the create bodies.

use super::*;
use crate::container::ContainerContext;
use serde_json::json;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        let d = tempfile::Builder::new()
            .prefix("My_App.")
            .tempdir()
            .unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> &Self {
        let p = self.0.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }
    fn path(&self) -> PathBuf {
        self.0.path().to_path_buf()
    }
    fn opts(&self) -> LoadOptions {
        LoadOptions {
            working_dir: self.path(),
            environ: [("HOME".to_string(), "/home/u".to_string())].into(),
            ..Default::default()
        }
    }
    fn load(&self) -> Result<Project> {
        Project::load(&self.opts())
    }
}

const SEED: &str = r#"version: '2.0'
services:
  gitlab:
    image: gitlab/gitlab-ee:latest
    hostname: 192.166.1.241
    # restart: always
    container_name: gitlab2
    ports:
      - "8053:443"
      - "8052:80"
      - "60022:22"
    volumes:
      - /home/gitlab/config:/etc/gitlab
      - ./logs:/var/log/gitlab
      - ~/data:/var/opt/gitlab
    shm_size: 256m
"#;

#[test]
fn the_seed_file_loads_with_its_defaults() {
    let d = Dir::new();
    d.write("docker-compose.yml", SEED);
    let p = d.load().unwrap();
    let base = d
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    assert_eq!(p.name, normalize_project_name(&base));
    assert!(p.name.starts_with("my_app"));
    let s = &p.services["gitlab"];
    assert_eq!(s.container_name.as_deref(), Some("gitlab2"));
    assert_eq!(s.shm_size, Some(256 << 20));
    assert_eq!(s.ports.len(), 3);
    assert_eq!(s.ports[1].published.as_deref(), Some("8052"));
    let sources: Vec<_> = s
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap())
        .collect();
    assert_eq!(
        sources,
        vec![
            "/home/gitlab/config".to_string(),
            d.path().join("logs").display().to_string(),
            "/home/u/data".to_string()
        ]
    );
    assert!(s.networks.contains_key("default"));
    assert_eq!(p.network_name("default"), format!("{}_default", p.name));
}

#[test]
fn the_seed_service_becomes_a_docker_create_body() {
    let d = Dir::new();
    d.write("docker-compose.yml", SEED);
    let mut opts = d.opts();
    opts.project_name = Some("fhbx".into());
    let p = Project::load(&opts).unwrap();
    let s = &p.services["gitlab"];
    let none = |_: &str| None;
    let spec = p
        .create_spec(
            s,
            &ContainerContext {
                service: "gitlab",
                number: 1,
                name: "gitlab2".into(),
                oneoff: false,
                image: "gitlab/gitlab-ee:latest".into(),
                image_id: None,
                container_of: &none,
                anonymous_volumes: Default::default(),
            },
        )
        .unwrap();
    let b = &spec.body;
    assert_eq!(b["Hostname"], "192.166.1.241");
    assert_eq!(b["HostConfig"]["ShmSize"], 256 << 20);
    assert_eq!(
        b["HostConfig"]["PortBindings"]["80/tcp"],
        json!([{"HostIp": "", "HostPort": "8052"}])
    );
    assert_eq!(b["ExposedPorts"]["22/tcp"], json!({}));
    assert_eq!(
        b["HostConfig"]["Binds"][0],
        "/home/gitlab/config:/etc/gitlab"
    );
    assert_eq!(b["HostConfig"]["NetworkMode"], "fhbx_default");
    assert_eq!(
        b["NetworkingConfig"]["EndpointsConfig"]["fhbx_default"]["Aliases"],
        json!(["gitlab"])
    );
    let labels = &b["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "fhbx");
    assert_eq!(labels["com.docker.compose.service"], "gitlab");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn variables_come_from_the_environment_before_dot_env() {
    let d = Dir::new();
    d.write(
        ".env",
        "TAG=fromfile\nPORT=8080\nCOMPOSE_PROJECT_NAME=envproj\n",
    );
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: \"busybox:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    command: echo $$HOME ${MISSING:-dflt} ${UNSET}\n    deploy:\n      replicas: ${N:-2}\n",
    );
    let mut opts = d.opts();
    opts.environ.insert("TAG".into(), "fromenv".into());
    let p = Project::load(&opts).unwrap();
    assert_eq!(p.name, "envproj");
    let s = &p.services["web"];
    assert_eq!(s.image.as_deref(), Some("busybox:fromenv"));
    assert_eq!(s.ports[0].published.as_deref(), Some("8080"));
    assert_eq!(s.command.clone().unwrap(), vec!["echo", "$HOME", "dflt"]);
    assert_eq!(s.replicas(), 2);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("\"UNSET\" variable is not set")));
}

#[test]
fn a_required_variable_names_the_file_and_key() {
    let d = Dir::new();
    d.write("compose.yaml", "services:\n  db:\n    image: busybox\n    environment:\n      PASS: ${DB_PASS:?set DB_PASS}\n");
    let e = d.load().unwrap_err().to_string();
    assert!(e.contains("compose.yaml"), "{e}");
    assert!(e.contains("services.db.environment.PASS"), "{e}");
    assert!(
        e.contains("required variable DB_PASS is missing a value: set DB_PASS"),
        "{e}"
    );
}

#[test]
fn unknown_keys_name_the_file_service_and_key() {
    let d = Dir::new();
    d.write("compose.yaml", "services:\n  web:\n    imag: busybox\n");
    let e = d.load().unwrap_err().to_string();
    assert!(e.contains("compose.yaml"), "{e}");
    assert!(e.contains("services.web"), "{e}");
    assert!(e.contains("'imag'"), "{e}");
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    healthcheck:\n      tst: x\n",
    );
    let e = d.load().unwrap_err().to_string();
    assert!(
        e.contains("services.web.healthcheck") && e.contains("'tst'"),
        "{e}"
    );
    let d = Dir::new();
    d.write("compose.yaml", "servics: {}\n");
    assert!(d.load().unwrap_err().to_string().contains("'servics'"));
}

#[test]
fn extension_keys_and_anchors_are_allowed() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "x-common: &common\n  image: busybox\n  labels: {x-kept: \"1\"}\nservices:\n  a:\n    <<: *common\n    x-note: hi\n  b:\n    <<: *common\n    command: [\"true\"]\n",
    );
    let p = d.load().unwrap();
    assert_eq!(p.services["b"].image.as_deref(), Some("busybox"));
    assert_eq!(p.services["a"].labels["x-kept"], "1");
}

#[test]
fn bad_values_are_refused_with_their_path() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    ports: [\"80:99999\"]\n",
    );
    let e = d.load().unwrap_err().to_string();
    assert!(
        e.contains("services.web.ports") && e.contains("invalid port"),
        "{e}"
    );
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    shm_size: lots\n",
    );
    assert!(d
        .load()
        .unwrap_err()
        .to_string()
        .contains("services.web.shm_size"));
    let d = Dir::new();
    d.write("compose.yaml", "services: [a]\n");
    assert!(d.load().is_err());
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n   bad-indent: 1\n",
    );
    assert!(d.load().unwrap_err().to_string().contains("compose.yaml"));
}

#[test]
fn override_files_merge_by_the_specification_rules() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    command: [a]\n    environment: {A: \"1\", B: \"2\"}\n    ports: [\"80:80\"]\n    volumes: [\"/x:/data\", \"/c:/cache\"]\n",
    );
    d.write(
        "compose.override.yaml",
        "services:\n  web:\n    command: [b]\n    environment: [B=3]\n    ports: [\"81:81\"]\n    volumes: [\"/y:/data\"]\n  extra:\n    image: busybox\n",
    );
    let p = d.load().unwrap();
    assert_eq!(p.config_files.len(), 2);
    let s = &p.services["web"];
    assert_eq!(s.command.clone().unwrap(), vec!["b"]);
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"].as_deref(), Some("3"));
    assert_eq!(s.ports.len(), 2);
    let vols: Vec<_> = s
        .volumes
        .iter()
        .map(|v| (v.source.clone().unwrap(), v.target.clone()))
        .collect();
    assert_eq!(
        vols,
        vec![
            ("/y".into(), "/data".into()),
            ("/c".into(), "/cache".into())
        ]
    );
    assert!(p.services.contains_key("extra"));
}

#[test]
fn explicit_files_and_project_directory() {
    let d = Dir::new();
    d.write(
        "sub/one.yml",
        "services:\n  a:\n    image: busybox\n    volumes: [\"./data:/data\"]\n",
    );
    d.write("two.yml", "services:\n  a:\n    hostname: h\n");
    let mut opts = d.opts();
    opts.files = vec!["sub/one.yml".into(), "two.yml".into()];
    let p = Project::load(&opts).unwrap();
    assert_eq!(p.working_dir, d.path().join("sub"));
    assert_eq!(p.name, "sub");
    assert_eq!(p.services["a"].hostname.as_deref(), Some("h"));
    assert_eq!(
        p.services["a"].volumes[0].source.as_deref(),
        Some(d.path().join("sub/data").to_str().unwrap())
    );
    opts.project_directory = Some("elsewhere".into());
    let p = Project::load(&opts).unwrap();
    assert_eq!(p.name, "elsewhere");
}

#[test]
fn files_are_found_in_parent_directories() {
    let d = Dir::new();
    d.write(
        "docker-compose.yaml",
        "services:\n  a:\n    image: busybox\n",
    );
    std::fs::create_dir_all(d.path().join("deep/er")).unwrap();
    let mut opts = d.opts();
    opts.working_dir = d.path().join("deep/er");
    let p = Project::load(&opts).unwrap();
    assert_eq!(p.working_dir, d.path());
    let empty = tempfile::tempdir().unwrap();
    opts.working_dir = empty.path().to_path_buf();
    assert!(matches!(Project::load(&opts), Err(Error::NoFile { .. })));
}

#[test]
fn extends_in_the_same_and_another_file() {
    let d = Dir::new();
    d.write(
        "common/base.yml",
        "services:\n  base:\n    image: busybox\n    environment: {FROM: base}\n    volumes: [\"./conf:/conf\"]\n",
    );
    d.write(
        "compose.yaml",
        "services:\n  mid:\n    extends: {file: common/base.yml, service: base}\n    labels: [tier=mid]\n  web:\n    extends: mid\n    environment: {OWN: \"1\"}\n",
    );
    let p = d.load().unwrap();
    let w = &p.services["web"];
    assert_eq!(w.image.as_deref(), Some("busybox"));
    assert_eq!(w.environment["FROM"].as_deref(), Some("base"));
    assert_eq!(w.environment["OWN"].as_deref(), Some("1"));
    assert_eq!(w.labels["tier"], "mid");
    assert_eq!(
        w.volumes[0].source.as_deref(),
        Some(d.path().join("common/conf").to_str().unwrap()),
        "paths in an extended file are relative to that file"
    );
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  a:\n    extends: b\n  b:\n    extends: a\n    image: x\n",
    );
    assert!(d.load().unwrap_err().to_string().contains("circular"));
}

#[test]
fn profiles_disable_services_until_activated() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n  debug:\n    image: busybox\n    profiles: [dev]\n",
    );
    let p = d.load().unwrap();
    assert!(p.services.contains_key("web") && !p.services.contains_key("debug"));
    let mut opts = d.opts();
    opts.profiles = vec!["dev".into()];
    assert!(Project::load(&opts).unwrap().services.contains_key("debug"));
    opts.profiles.clear();
    opts.environ.insert("COMPOSE_PROFILES".into(), "dev".into());
    assert!(Project::load(&opts).unwrap().services.contains_key("debug"));
    let mut p = d.load().unwrap();
    p.enable(&["debug".into()]).unwrap();
    assert!(p.services.contains_key("debug"));
}

#[test]
fn undefined_dependencies_and_cycles_are_errors() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    depends_on: [db]\n",
    );
    let e = d.load().unwrap_err().to_string();
    assert!(
        e.contains("compose.yaml")
            && e.contains("\"web\"")
            && e.contains("depends_on")
            && e.contains("\"db\""),
        "{e}"
    );
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on:\n      c: {condition: service_healthy}\n  c:\n    image: busybox\n    depends_on: [a]\n",
    );
    let e = d.load().unwrap_err().to_string();
    assert!(
        e.contains("dependency cycle detected: a -> b -> c -> a"),
        "{e}"
    );
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    networks: [nope]\n",
    );
    assert!(d
        .load()
        .unwrap_err()
        .to_string()
        .contains("undefined network \"nope\""));
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    volumes: [\"data:/d\"]\n",
    );
    assert!(d
        .load()
        .unwrap_err()
        .to_string()
        .contains("undefined volume data"));
    let d = Dir::new();
    d.write("compose.yaml", "services:\n  a:\n    command: x\n");
    assert!(d
        .load()
        .unwrap_err()
        .to_string()
        .contains("neither an image nor a build"));
    let d = Dir::new();
    d.write("compose.yaml", "services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_ready}}\n  b:\n    image: x\n");
    assert!(d
        .load()
        .unwrap_err()
        .to_string()
        .contains("condition must be one of"));
}

#[test]
fn dependency_order_puts_dependencies_first() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on: [db]\n    network_mode: service:net\n  db:\n    image: x\n  net:\n    image: x\n",
    );
    let p = d.load().unwrap();
    let o = crate::graph::order(&p).unwrap();
    let pos = |n: &str| o.iter().position(|x| x == n).unwrap();
    assert!(pos("db") < pos("api") && pos("net") < pos("api") && pos("api") < pos("web"));
    let deps = crate::graph::with_dependencies(&p, &["web".into()]);
    assert_eq!(deps.len(), 4);
}

#[test]
fn env_files_merge_under_environment() {
    let d = Dir::new();
    d.write("web.env", "A=from_file\nB=from_file\n# c\nHOSTED\n");
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    env_file: web.env\n    environment:\n      B: own\n      PASSED:\n",
    );
    let mut opts = d.opts();
    opts.environ.insert("PASSED".into(), "p".into());
    opts.environ.insert("HOSTED".into(), "h".into());
    let p = Project::load(&opts).unwrap();
    let env = &p.services["web"].environment;
    assert_eq!(env["A"].as_deref(), Some("from_file"));
    assert_eq!(env["B"].as_deref(), Some("own"));
    assert_eq!(env["PASSED"].as_deref(), Some("p"));
    assert_eq!(env["HOSTED"].as_deref(), Some("h"));
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    env_file: missing.env\n",
    );
    let e = d.load().unwrap_err().to_string();
    assert!(e.contains("env_file") && e.contains("\"web\""), "{e}");
}

#[test]
fn network_and_volume_names() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "name: proj\nservices:\n  a:\n    image: x\n    networks: [front, ext]\n    volumes: [\"data:/d\", \"shared:/s\"]\nnetworks:\n  front:\n  ext:\n    external: true\n    name: corp\nvolumes:\n  data:\n  shared:\n    external: {name: legacy}\n",
    );
    let p = d.load().unwrap();
    assert_eq!(p.name, "proj");
    assert_eq!(p.network_name("front"), "proj_front");
    assert_eq!(p.network_name("ext"), "corp");
    assert_eq!(p.volume_name("data"), "proj_data");
    assert_eq!(p.volume_name("shared"), "legacy");
    assert!(!p.networks.contains_key("default"));
}

#[test]
fn project_names_are_checked() {
    let d = Dir::new();
    d.write("compose.yaml", "services:\n  a:\n    image: x\n");
    let mut opts = d.opts();
    opts.project_name = Some("Bad Name".into());
    assert!(matches!(
        Project::load(&opts),
        Err(Error::ProjectName { .. })
    ));
    assert_eq!(normalize_project_name("My App.v2"), "myappv2");
}

#[test]
fn the_config_hash_follows_the_container_config_only() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    scale: 2\n",
    );
    let h1 = crate::names::config_hash(&d.load().unwrap().services["a"]);
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    scale: 3\n",
    );
    let h2 = crate::names::config_hash(&d.load().unwrap().services["a"]);
    d.write(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    scale: 3\n    environment: [A=1]\n",
    );
    let h3 = crate::names::config_hash(&d.load().unwrap().services["a"]);
    assert_eq!(h1, h2);
    assert_ne!(h2, h3);
}

#[test]
fn long_syntax_and_map_forms_are_read() {
    let d = Dir::new();
    d.write(
        "compose.yaml",
        r#"services:
  a:
    image: x
    build: ./ctx
    command: sh -c 'echo "hi there"'
    ports:
      - target: 80
        published: "8080"
        host_ip: 127.0.0.1
        protocol: udp
    volumes:
      - type: tmpfs
        target: /t
        tmpfs: {size: 1m}
      - type: bind
        source: ./b
        target: /b
        read_only: true
    networks:
      back:
        aliases: [x]
        ipv4_address: 10.1.2.3
    healthcheck:
      test: curl -f localhost
      interval: 1m30s
      retries: 3
    ulimits:
      nproc: 65535
      nofile: {soft: 1024, hard: 2048}
    extra_hosts:
      somehost: 1.2.3.4
    labels: [a=b, c]
    logging:
      driver: json-file
      options: {max-size: 1m}
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M}
    stop_grace_period: 2s
networks:
  back:
    ipam:
      config:
        - subnet: 10.1.2.0/24
"#,
    );
    let p = d.load().unwrap();
    let s = &p.services["a"];
    assert_eq!(
        s.build.as_ref().unwrap().context.as_deref(),
        Some(d.path().join("ctx").to_str().unwrap())
    );
    assert_eq!(
        s.command.clone().unwrap(),
        vec!["sh", "-c", "echo \"hi there\""]
    );
    assert_eq!(s.ports[0].protocol, "udp");
    assert_eq!(s.volumes[0].tmpfs.as_ref().unwrap().size, Some(1 << 20));
    assert_eq!(s.networks["back"].as_ref().unwrap().aliases, vec!["x"]);
    let hc = s.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.clone().unwrap(),
        vec!["CMD-SHELL", "curl -f localhost"]
    );
    assert_eq!(hc.interval.unwrap().as_secs(), 90);
    assert_eq!(s.ulimits["nproc"].hard, 65535);
    assert_eq!(s.extra_hosts, vec!["somehost:1.2.3.4"]);
    assert_eq!(s.labels["c"], "");
    let none = |_: &str| None;
    let spec = p
        .create_spec(
            s,
            &ContainerContext {
                service: "a",
                number: 1,
                name: "n".into(),
                oneoff: false,
                image: "x".into(),
                image_id: None,
                container_of: &none,
                anonymous_volumes: Default::default(),
            },
        )
        .unwrap();
    let h = &spec.body["HostConfig"];
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["Memory"], 64 << 20);
    assert_eq!(h["PortBindings"]["80/udp"][0]["HostIp"], "127.0.0.1");
    assert_eq!(h["Mounts"][0]["Type"], "tmpfs");
    assert_eq!(h["Mounts"][1]["ReadOnly"], true);
    assert_eq!(spec.body["StopTimeout"], 2);
    assert_eq!(spec.body["Healthcheck"]["Interval"], 90_000_000_000i64);
    let ep = &spec.body["NetworkingConfig"]["EndpointsConfig"][&p.network_name("back")];
    assert_eq!(ep["Aliases"], json!(["a", "x"]));
    assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.1.2.3");
    // The canonical form reads back the same.
    let yaml = yaml_serde::to_string(&p.to_compose_file()).unwrap();
    let again: crate::model::ComposeFile = yaml_serde::from_str(&yaml).unwrap();
    assert_eq!(&again.services["a"].ports, &s.ports);
    assert_eq!(&again.services["a"].volumes, &s.volumes);
}
