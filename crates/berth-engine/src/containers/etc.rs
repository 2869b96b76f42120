//! The files berth manages inside every container: `/etc/hostname`, `/etc/hosts` and
//! `/etc/resolv.conf`, written in the container's directory and bind-mounted.

use berth_core::container::Container;
use std::fmt::Write as _;

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Extra host entries from `--add-host name:ip` (also `name=ip`), in Docker's format.
pub fn extra_host_lines(extra: &[String]) -> String {
    let mut out = String::new();
    for e in extra {
        let (name, ip) = match e.split_once('=').or_else(|| e.split_once(':')) {
            Some(x) => x,
            None => continue,
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let _ = writeln!(out, "{ip}\t{name}");
    }
    out
}

/// `/etc/hosts`: the host's copy with host networking, else the defaults, then
/// `--add-host` entries, `--link` entries (`links`, already formatted) and the container's
/// own address line, in Docker's order.
pub fn hosts(
    c: &Container,
    host_network: bool,
    own_ip: Option<&str>,
    links: &str,
    host_hosts: &str,
) -> String {
    let mut s = if host_network {
        host_hosts.to_string()
    } else {
        DEFAULT_HOSTS.to_string()
    };
    if !s.ends_with('\n') && !s.is_empty() {
        s.push('\n');
    }
    s.push_str(&extra_host_lines(&c.host_config.extra_hosts));
    s.push_str(links);
    if let Some(ip) = own_ip {
        let mut names = c.config.hostname.clone();
        if !c.config.domainname.is_empty() {
            names = format!(
                "{}.{} {}",
                c.config.hostname, c.config.domainname, c.config.hostname
            );
        }
        let _ = writeln!(s, "{ip}\t{names}");
    }
    s
}

/// `/etc/resolv.conf`: the host's, with `--dns`, `--dns-search` and `--dns-option`
/// replacing its parts. Loopback nameservers are dropped unless the container shares the
/// host's network, since they cannot be reached from another network namespace; when none
/// remain, Google's public resolvers are used, as Docker does.
pub fn resolv_conf(c: &Container, host_network: bool, host_resolv: &str) -> String {
    let h = &c.host_config;
    let mut nameservers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for line in host_resolv.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    nameservers.push(ns.to_string());
                }
            }
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            Some(w) if !w.starts_with('#') && !w.starts_with(';') => other.push(t.to_string()),
            _ => {}
        }
    }
    if !host_network {
        nameservers.retain(|ns| !(ns.starts_with("127.") || ns == "::1"));
    }
    if !h.dns.is_empty() {
        nameservers = h.dns.clone();
    }
    if nameservers.is_empty() && !host_network {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !h.dns_search.is_empty() {
        search = if h.dns_search == ["."] {
            Vec::new()
        } else {
            h.dns_search.clone()
        };
    }
    if !h.dns_options.is_empty() {
        options = h.dns_options.clone();
    }
    let mut s = String::new();
    for ns in &nameservers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    if !options.is_empty() {
        let _ = writeln!(s, "options {}", options.join(" "));
    }
    for o in other {
        let _ = writeln!(s, "{o}");
    }
    s
}

/// `/etc/resolv.conf` of a container on a user-defined network: the embedded DNS server
/// (which forwards to the host's resolvers, or `--dns`), the host's or `--dns-search`
/// domains, and `ndots:0` with `--dns-option`s, as Docker writes it.
pub fn resolv_conf_internal(c: &Container, host_resolv: &str) -> String {
    let h = &c.host_config;
    let mut search: Vec<String> = Vec::new();
    for line in host_resolv.lines() {
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("search") | Some("domain")) {
            search = words.map(str::to_string).collect();
        }
    }
    if !h.dns_search.is_empty() {
        search = if h.dns_search == ["."] {
            Vec::new()
        } else {
            h.dns_search.clone()
        };
    }
    let mut options = vec!["ndots:0".to_string()];
    for o in &h.dns_options {
        if o.starts_with("ndots:") {
            options.retain(|x| !x.starts_with("ndots:"));
        }
        options.push(o.clone());
    }
    let mut s = format!("nameserver {}\n", berth_net::dns::DNS_ADDRESS);
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    let _ = writeln!(s, "options {}", options.join(" "));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_replaced_off_the_host_network() {
        let c = Container::default();
        let out = resolv_conf(&c, false, "nameserver 127.0.0.53\nsearch lan\n");
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n");
        let out = resolv_conf(&c, true, "nameserver 127.0.0.53\n");
        assert_eq!(out, "nameserver 127.0.0.53\n");
    }

    #[test]
    fn user_networks_resolve_through_the_embedded_server() {
        let mut c = Container::default();
        assert_eq!(
            resolv_conf_internal(&c, "nameserver 10.0.0.1\nsearch lan\n"),
            "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n"
        );
        c.host_config.dns_options = vec!["ndots:2".into(), "timeout:1".into()];
        c.host_config.dns_search = vec![".".into()];
        assert_eq!(
            resolv_conf_internal(&c, "search lan\n"),
            "nameserver 127.0.0.11\noptions ndots:2 timeout:1\n"
        );
    }

    #[test]
    fn dns_flags_override_the_host() {
        let mut c = Container::default();
        c.host_config.dns = vec!["1.1.1.1".into()];
        c.host_config.dns_search = vec!["example.com".into()];
        c.host_config.dns_options = vec!["ndots:2".into()];
        let out = resolv_conf(&c, false, "nameserver 10.0.0.1\nsearch lan\n");
        assert_eq!(
            out,
            "nameserver 1.1.1.1\nsearch example.com\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_has_defaults_own_name_and_extra_hosts() {
        let mut c = Container::default();
        c.config.hostname = "abc".into();
        c.host_config.extra_hosts = vec!["db:10.0.0.5".into()];
        let out = hosts(
            &c,
            false,
            Some("172.17.0.2"),
            "172.17.0.3\tdb 0123abcd\n",
            "",
        );
        assert!(out.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(out.contains("10.0.0.5\tdb\n172.17.0.3\tdb 0123abcd\n172.17.0.2\tabc\n"));
        assert!(out.ends_with("172.17.0.2\tabc\n"));
    }
}
