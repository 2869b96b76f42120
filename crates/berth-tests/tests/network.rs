//! Networking through the real docker CLI: the default bridge, user-defined networks with
//! DNS, isolation, `--internal`, published ports (loopback, host address, hairpin),
//! connect/disconnect, links, and what survives a daemon restart. Every daemon has its own
//! bridge, subnets and nftables table; the harness removes them.

use berth_tests::{free_port, require_root, TestDaemon};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// `GET /hostname` from a busybox httpd serving /etc; `None` when it cannot connect.
fn http_get(ip: &str, port: u16) -> Option<String> {
    let addr = format!("{ip}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

/// The host's own (non-loopback) address: the source of its default route.
fn host_ip() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", "192.0.2.200"])
        .output()
        .expect("ip route get");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "src")
        .and_then(|i| words.get(i + 1))
        .map(|s| s.to_string())
        .expect("the host has an address")
}

fn links_on(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn nft_table(d: &TestDaemon) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &d.firewall_table()])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn httpd(d: &TestDaemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.docker(&a).ok().out().to_string()
}

#[test]
fn default_bridge_none_host_and_container_modes() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let ls = d
        .docker(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ])
        .ok();
    assert_eq!(
        ls.out(),
        "bridge bridge local\nhost host local\nnone null local"
    );
    let gw = d.bip.split('/').next().unwrap().to_string();
    let prefix = gw.rsplit_once('.').unwrap().0.to_string();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip addr show eth0; ip route; cat /sys/class/net/eth0/address",
        ])
        .ok();
    assert!(
        out.stdout.contains(&format!("inet {prefix}.2/24")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("default via {gw} dev eth0")),
        "{}",
        out.stdout
    );
    let mac = out.stdout.lines().last().unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");
    // The bridge is the daemon's own, on its --bip.
    let br = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &d.bridge])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&br.stdout).contains(&d.bip));
    // none: only lo.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "/sys/class/net",
        ])
        .ok();
    assert_eq!(out.out(), "lo");
    // host: the host's interfaces, including this daemon's bridge.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ls",
            "/sys/class/net",
        ])
        .ok();
    assert!(out.stdout.lines().any(|l| l == d.bridge), "{}", out.stdout);
    // container:NAME shares the stack: 127.0.0.1 reaches the other's server.
    httpd(&d, &["--name", "srv", "--hostname", "srvhost"]);
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "container:srv",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1/hostname",
        ])
        .ok();
    assert_eq!(out.out(), "srvhost");
    // No name resolution on the default bridge.
    let r = d.docker(&["run", "--rm", "busybox", "ping", "-c1", "-W1", "srv"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bad address 'srv'"), "{}", r.stderr);
    // Outbound NAT: the default bridge's subnet is masqueraded.
    assert!(nft_table(&d).contains(&format!("{prefix}.0/24 : jump nat_{}", d.bridge)));
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let (sa, sb) = (d.test_subnet(0), d.test_subnet(1));
    d.docker(&[
        "network", "create", "--subnet", &sa, "--label", "team=a", "neta",
    ])
    .ok();
    d.docker(&["network", "create", "--subnet", &sb, "netb"])
        .ok();
    let id = httpd(
        &d,
        &[
            "--name",
            "web",
            "--network",
            "neta",
            "--network-alias",
            "www",
            "--hostname",
            "webhost",
        ],
    );
    httpd(
        &d,
        &[
            "--name",
            "other",
            "--network",
            "netb",
            "--hostname",
            "otherhost",
        ],
    );
    let web_ip = d.inspect("web", "{{.NetworkSettings.Networks.neta.IPAddress}}");
    assert!(
        web_ip.starts_with(sa.rsplit_once('.').unwrap().0),
        "{web_ip}"
    );
    // Name, alias and short id resolve on the same network.
    for name in ["web", "www", &id[..12]] {
        let out = d
            .docker(&[
                "run",
                "--rm",
                "--network",
                "neta",
                "busybox",
                "wget",
                "-qO-",
                &format!("http://{name}/hostname"),
            ])
            .ok();
        assert_eq!(out.out(), "webhost", "{name}");
    }
    let resolv = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "neta",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(
        resolv.stdout.starts_with("nameserver 127.0.0.11\n"),
        "{}",
        resolv.stdout
    );
    // From the other network: the name does not resolve and the address is unreachable.
    let r = d.docker(&["exec", "other", "nslookup", "web"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let r = d.docker(&[
        "exec",
        "other",
        "sh",
        "-c",
        &format!("timeout 3 wget -qO- http://{web_ip}/hostname"),
    ]);
    assert_ne!(r.code, 0);
    // After connect a second interface appears and both work; disconnect removes it.
    d.docker(&["network", "connect", "--alias", "second", "neta", "other"])
        .ok();
    let ifaces = d.docker(&["exec", "other", "ls", "/sys/class/net"]).ok();
    assert_eq!(ifaces.out(), "eth0\neth1\nlo");
    let out = d
        .docker(&["exec", "other", "wget", "-qO-", "http://web/hostname"])
        .ok();
    assert_eq!(out.out(), "webhost");
    let out = d
        .docker(&["exec", "web", "wget", "-qO-", "http://second/hostname"])
        .ok();
    assert_eq!(out.out(), "otherhost");
    let members = d
        .docker(&[
            "network", "inspect", "-f",
            "{{range .Containers}}{{.Name}} {{end}}|{{.Labels.team}}|{{(index .IPAM.Config 0).Subnet}}",
            "neta",
        ])
        .ok();
    let (names, rest) = members.out().split_once('|').unwrap();
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["other", "web"]);
    assert_eq!(rest, format!("a|{sa}"));
    d.docker(&["network", "disconnect", "neta", "other"]).ok();
    let ifaces = d.docker(&["exec", "other", "ls", "/sys/class/net"]).ok();
    assert_eq!(ifaces.out(), "eth0\nlo");
    let r = d.docker(&["network", "disconnect", "neta", "other"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not connected to network neta"),
        "{}",
        r.stderr
    );
    // A network in use cannot be removed; a removed one leaves no bridge and no rules.
    let r = d.docker(&["network", "rm", "neta"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("has active endpoints"), "{}", r.stderr);
    let bridge = format!(
        "br-{}",
        &d.docker(&["network", "inspect", "-f", "{{.Id}}", "neta"])
            .ok()
            .out()[..12]
    );
    assert_eq!(links_on(&bridge).len(), 1);
    d.docker(&["rm", "-f", "web"]).ok();
    assert!(links_on(&bridge).is_empty() || d.wait_until(5, || links_on(&bridge).is_empty()));
    d.docker(&["network", "rm", "neta"]).ok();
    assert!(!std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists());
    assert!(!nft_table(&d).contains(&bridge));
    let r = d.docker(&["network", "rm", "bridge"]);
    assert!(
        r.stderr
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{}",
        r.stderr
    );
}

#[test]
fn internal_networks_have_no_route_out() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    d.docker(&["network", "create", "--internal", "inside"])
        .ok();
    httpd(
        &d,
        &[
            "--name",
            "ina",
            "--network",
            "inside",
            "--hostname",
            "ahost",
        ],
    );
    let port = free_port();
    httpd(
        &d,
        &[
            "--name",
            "pub",
            "-p",
            &format!("{port}:80"),
            "--hostname",
            "pubhost",
        ],
    );
    let out = d
        .docker(&[
            "run", "--rm", "--network", "inside", "busybox", "sh", "-c",
            &format!(
                "ip route; wget -qO- http://ina/hostname; timeout 3 wget -qO- http://{}:{port}/hostname || echo unreachable",
                host_ip()
            ),
        ])
        .ok();
    assert!(!out.stdout.contains("default"), "{}", out.stdout);
    assert!(out.stdout.contains("ahost\n"), "{}", out.stdout);
    assert!(out.stdout.ends_with("unreachable\n"), "{}", out.stdout);
    let internal = d
        .docker(&["network", "inspect", "-f", "{{.Internal}}", "inside"])
        .ok();
    assert_eq!(internal.out(), "true");
}

#[test]
fn published_ports_reach_the_container_from_everywhere_they_should() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let (p1, p2) = (free_port(), free_port());
    httpd(
        &d,
        &[
            "--name",
            "web",
            "--hostname",
            "webhost",
            "-p",
            &format!("{p1}:80"),
        ],
    );
    httpd(
        &d,
        &[
            "--name",
            "local",
            "--hostname",
            "localhost1",
            "-p",
            &format!("127.0.0.1:{p2}:80"),
        ],
    );
    let host = host_ip();
    assert_eq!(http_get("127.0.0.1", p1).as_deref(), Some("webhost"));
    assert_eq!(http_get(&host, p1).as_deref(), Some("webhost"));
    assert_eq!(http_get("127.0.0.1", p2).as_deref(), Some("localhost1"));
    assert_eq!(http_get(&host, p2), None, "bound to 127.0.0.1 only");
    // Hairpin: a container through the host's address, including the server itself.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{host}:{p1}/hostname"),
        ])
        .ok();
    assert_eq!(out.out(), "webhost");
    let out = d
        .docker(&[
            "exec",
            "web",
            "wget",
            "-qO-",
            &format!("http://{host}:{p1}/hostname"),
        ])
        .ok();
    assert_eq!(out.out(), "webhost");
    // port and ps PORTS as Docker prints them.
    assert_eq!(
        d.docker(&["port", "web"]).ok().out(),
        format!("80/tcp -> 0.0.0.0:{p1}")
    );
    assert_eq!(
        d.docker(&["ps", "--filter", "name=local", "--format", "{{.Ports}}"])
            .ok()
            .out(),
        format!("127.0.0.1:{p2}->80/tcp")
    );
    // -P publishes every exposed port on an ephemeral port; udp too.
    d.docker(&[
        "run", "-d", "--name", "all", "-P", "--expose", "81", "--expose", "82/udp", "busybox",
        "sleep", "600",
    ])
    .ok();
    let ports = d.docker(&["port", "all"]).ok();
    let lines: Vec<&str> = ports.out().lines().collect();
    assert_eq!(lines.len(), 2, "{}", ports.stdout);
    assert!(lines[0].starts_with("81/tcp -> 0.0.0.0:"));
    assert!(lines[1].starts_with("82/udp -> 0.0.0.0:"));
    let eph: u16 = lines[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!((32768..=60999).contains(&eph));
    // A port in use: Docker's error, exit 125, and nothing half started.
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{p1}:80"),
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains(&format!(
            "Bind for 0.0.0.0:{p1} failed: port is already allocated"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        d.inspect(
            "clash",
            "{{.State.Status}} {{.NetworkSettings.SandboxKey}}|"
        ),
        "created |"
    );
    // web, local and all only (the refused one's veth goes with its namespace).
    assert!(d.wait_until(5, || links_on(&d.bridge).len() == 3));
    // Ports are released when the container stops.
    d.docker(&["stop", "-t", "0", "web"]).ok();
    assert_eq!(http_get("127.0.0.1", p1), None);
    d.docker(&["start", "clash"]).ok();
    assert_eq!(
        d.docker(&["port", "clash", "80"]).ok().out(),
        format!("0.0.0.0:{p1}")
    );
}

#[test]
fn run_flags_for_addresses_names_and_links() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let sub = d.test_subnet(2);
    let base = sub.rsplit_once('.').unwrap().0.to_string();
    let last: u32 = sub
        .rsplit_once('.')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    d.docker(&["network", "create", "--subnet", &sub, "fixed"])
        .ok();
    d.docker(&["network", "create", "auto"]).ok();
    let ip = format!("{base}.{}", last + 20);
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fixed",
            "--ip",
            &ip,
            "--mac-address",
            "02:42:de:ad:be:ef",
            "--hostname",
            "h1",
            "--add-host",
            "db.local:10.9.9.9",
            "--dns",
            "10.8.8.8",
            "--dns-search",
            "example.org",
            "busybox",
            "sh",
            "-c",
            "ip addr show eth0; cat /etc/hosts /etc/resolv.conf; hostname",
        ])
        .ok();
    assert!(
        out.stdout.contains(&format!("inet {ip}/27")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("link/ether 02:42:de:ad:be:ef"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("10.9.9.9\tdb.local\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("{ip}\th1\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("nameserver 127.0.0.11\nsearch example.org\noptions ndots:0\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("h1\n"));
    // Docker's rules for --ip and --network-alias.
    let r = d.docker(&[
        "run",
        "--rm",
        "--network",
        "auto",
        "--ip",
        "10.1.2.3",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("user specified IP address is supported only when connecting to networks with user configured subnets"), "{}", r.stderr);
    let r = d.docker(&["run", "--rm", "--ip", "10.1.2.3", "busybox", "true"]);
    assert!(
        r.stderr
            .contains("user specified IP address is supported on user defined networks only"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--network-alias", "x", "busybox", "true"]);
    // The docker CLI refuses it itself; the daemon would too.
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("user-defined networks") || r.stderr.contains("user defined networks"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("network nosuch not found"),
        "{}",
        r.stderr
    );
    // The same static address twice is refused.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "fixed",
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let r = d.docker(&[
        "run",
        "--rm",
        "--network",
        "fixed",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Address already in use"), "{}", r.stderr);
    // --link on the default bridge: an /etc/hosts entry and Docker's environment.
    d.docker(&[
        "run", "-d", "--name", "db", "--expose", "5432", "-e", "SECRET=s", "busybox", "sleep",
        "600",
    ])
    .ok();
    let db_ip = d.inspect("db", "{{.NetworkSettings.IPAddress}}");
    let db_host = d.inspect("db", "{{.Config.Hostname}}");
    let out = d
        .docker(&[
            "run", "--rm", "--name", "app", "--link", "db:sql", "busybox", "sh", "-c",
            "grep sql /etc/hosts; echo $SQL_PORT; echo $SQL_PORT_5432_TCP_ADDR; echo $SQL_ENV_SECRET; echo $SQL_NAME",
        ])
        .ok();
    assert_eq!(
        out.stdout,
        format!("{db_ip}\tsql {db_host} db\ntcp://{db_ip}:5432\n{db_ip}\ns\n/app/sql\n")
    );
    let links = d
        .docker(&["create", "--name", "l2", "--link", "db", "busybox"])
        .ok();
    assert!(!links.out().is_empty());
    assert_eq!(
        d.inspect("l2", "{{json .HostConfig.Links}}"),
        r#"["/db:/l2/db"]"#
    );
    let r = d.docker(&["run", "--rm", "--link", "nosuch", "busybox", "true"]);
    assert!(
        r.stderr.contains("could not get container for nosuch"),
        "{}",
        r.stderr
    );
}

#[test]
fn overlapping_subnets_are_refused() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let sub = d.test_subnet(3);
    d.docker(&["network", "create", "--subnet", &sub, "one"])
        .ok();
    let r = d.docker(&["network", "create", "--subnet", &sub, "two"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Pool overlaps with other one on this address space"),
        "{}",
        r.stderr
    );
    // A host route that is not berth's: a link of this test (a bridge: no dummy module here).
    let dummy = format!("btd{}x{}", std::process::id() % 0x10000, d.n);
    let route_net = d.test_subnet(4);
    let (base, last) = route_net.rsplit_once('.').unwrap();
    let last: u32 = last.split('/').next().unwrap().parse().unwrap();
    let gw = format!("{base}.{}/27", last + 1);
    struct Dummy(String);
    impl Drop for Dummy {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    assert!(Command::new("ip")
        .args(["link", "add", &dummy, "type", "bridge"])
        .status()
        .unwrap()
        .success());
    let _guard = Dummy(dummy.clone());
    assert!(Command::new("ip")
        .args(["addr", "add", &gw, "dev", &dummy])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["link", "set", &dummy, "up"])
        .status()
        .unwrap()
        .success());
    let r = d.docker(&["network", "create", "--subnet", &route_net, "three"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("overlaps with host route") && r.stderr.contains(&dummy),
        "{}",
        r.stderr
    );
    let r = d.docker(&["network", "create", "--subnet", "10.0.0.1/8", "bad"]);
    assert!(
        r.stderr.contains("invalid subnet 10.0.0.1/8"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["network", "create", "one"]);
    assert!(
        r.stderr.contains("network with name one already exists"),
        "{}",
        r.stderr
    );
    // Nothing was left by the refused creates.
    let names = d.docker(&["network", "ls", "--format", "{{.Name}}"]).ok();
    assert_eq!(names.out(), "bridge\nhost\nnone\none");
}

#[test]
fn network_commands_list_filter_inspect_and_prune() {
    if !require_root() {
        return;
    }
    let d = TestDaemon::start();
    let sub = d.test_subnet(5);
    let id = d
        .docker(&[
            "network",
            "create",
            "-d",
            "bridge",
            "--subnet",
            &sub,
            "--ip-range",
            &sub,
            "--label",
            "env=test",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--attachable",
            "mynet",
        ])
        .ok()
        .out()
        .to_string();
    assert_eq!(id.len(), 64);
    d.docker(&["network", "create", "spare"]).ok();
    let q = d
        .docker(&["network", "ls", "-q", "-f", "label=env=test"])
        .ok();
    assert_eq!(q.out(), &id[..12]);
    let custom = d
        .docker(&[
            "network",
            "ls",
            "-f",
            "type=custom",
            "--format",
            "{{.Name}}",
        ])
        .ok();
    assert_eq!(custom.out(), "mynet\nspare");
    let v: serde_json::Value =
        serde_json::from_str(&d.docker(&["network", "inspect", "mynet"]).ok().stdout).unwrap();
    let n = &v[0];
    assert_eq!(n["Name"], "mynet");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Attachable"], true);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], sub.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["IPRange"], sub.as_str());
    assert_eq!(n["Options"]["com.docker.network.driver.mtu"], "1400");
    assert_eq!(n["Labels"]["env"], "test");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "cc",
        "--network",
        "mynet",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let mtu = d
        .docker(&["exec", "cc", "cat", "/sys/class/net/eth0/mtu"])
        .ok();
    assert_eq!(mtu.out(), "1400");
    let v: serde_json::Value =
        serde_json::from_str(&d.docker(&["inspect", "cc"]).ok().stdout).unwrap();
    let ep = &v[0]["NetworkSettings"]["Networks"]["mynet"];
    assert_eq!(ep["NetworkID"], id.as_str());
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    assert_eq!(ep["IPPrefixLen"], 27);
    let dns: Vec<&str> = ep["DNSNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(dns[0], "cc");
    let bridge_settings = &v[0]["NetworkSettings"];
    assert_eq!(
        bridge_settings["IPAddress"], "",
        "legacy fields are for the default bridge"
    );
    // prune removes unused user networks only.
    let out = d.docker(&["network", "prune", "-f"]).ok();
    assert_eq!(out.out(), "Deleted Networks:\nspare");
    let names = d.docker(&["network", "ls", "--format", "{{.Name}}"]).ok();
    assert_eq!(names.out(), "bridge\nhost\nmynet\nnone");
}

#[test]
fn daemon_restart_keeps_addresses_ports_and_names() {
    if !require_root() {
        return;
    }
    let mut d = TestDaemon::start();
    let port = free_port();
    d.docker(&["network", "create", "keep"]).ok();
    httpd(
        &d,
        &[
            "--name",
            "web",
            "--network",
            "keep",
            "--hostname",
            "webhost",
            "-p",
            &format!("{port}:80"),
        ],
    );
    let ip = d.inspect("web", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    assert_eq!(http_get("127.0.0.1", port).as_deref(), Some("webhost"));
    d.kill9();
    // The kernel keeps forwarding while the daemon is away.
    assert_eq!(http_get("127.0.0.1", port).as_deref(), Some("webhost"));
    d.spawn();
    assert_eq!(http_get("127.0.0.1", port).as_deref(), Some("webhost"));
    assert_eq!(
        d.inspect("web", "{{.NetworkSettings.Networks.keep.IPAddress}}"),
        ip
    );
    // Names still resolve, the address is not handed out again, the port stays taken.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "keep",
            "busybox",
            "sh",
            "-c",
            "wget -qO- http://web/hostname; ip -o -4 addr show eth0",
        ])
        .ok();
    assert!(out.stdout.starts_with("webhost\n"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(&format!("inet {ip}/")),
        "{}",
        out.stdout
    );
    let r = d.docker(&[
        "run",
        "--rm",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "true",
    ]);
    assert!(
        r.stderr.contains("port is already allocated"),
        "{}",
        r.stderr
    );
    // A graceful restart too; then removal leaves nothing of the container.
    d.kill9();
    d.spawn();
    assert_eq!(http_get("127.0.0.1", port).as_deref(), Some("webhost"));
    d.docker(&["rm", "-f", "web"]).ok();
    assert_eq!(http_get("127.0.0.1", port), None);
    assert!(std::fs::read_dir(d.exec_root.join("netns"))
        .unwrap()
        .next()
        .is_none());
    assert!(!nft_table(&d).contains(&format!("p_tcp_{port}")));
}
