//! `-H tcp://...` with dockerd's TLS flags: only clients with a certificate from the CA get in.

use berth_tests::{free_port, require_root, TestDaemon};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker's docs make them.
fn make_certs(dir: &Path) {
    openssl(dir, &["genrsa", "-out", "ca-key.pem", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-key",
            "ca-key.pem",
            "-sha256",
            "-subj",
            "/CN=berth test CA",
            "-out",
            "ca.pem",
        ],
    );
    openssl(dir, &["genrsa", "-out", "server-key.pem", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-sha256",
            "-new",
            "-key",
            "server-key.pem",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-sha256",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "server-cert.pem",
            "-extfile",
            "server.ext",
        ],
    );
    openssl(dir, &["genrsa", "-out", "key.pem", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-subj",
            "/CN=client",
            "-new",
            "-key",
            "key.pem",
            "-out",
            "client.csr",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage = clientAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-sha256",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-extfile",
            "client.ext",
        ],
    );
    // A client certificate from another CA must be refused.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=stranger",
            "-keyout",
            "other-key.pem",
            "-out",
            "other-cert.pem",
        ],
    );
}

#[test]
fn docker_cli_with_tlsverify_gets_in_and_strangers_do_not() {
    if !require_root() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = TestDaemon::start_with(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &c("ca.pem"),
        "--tlscert",
        &c("server-cert.pem"),
        "--tlskey",
        &c("server-key.pem"),
    ]);
    d.berth(&[
        "run", "-d", "--name", "over-tls", "busybox", "sleep", "1000",
    ])
    .ok();
    for cli in [berth_tests::docker_cli(), berth_tests::bin("berth")] {
        let out = Command::new(&cli)
            .args([
                "--tlsverify",
                "--tlscacert",
                &c("ca.pem"),
                "--tlscert",
                &c("cert.pem"),
                "--tlskey",
                &c("key.pem"),
                "-H",
                &tcp,
                "ps",
                "--format",
                "{{.Names}}",
            ])
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            cli.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over-tls");
        let out = Command::new(&cli)
            .args([
                "--tlsverify",
                "--tlscacert",
                &c("ca.pem"),
                "--tlscert",
                &c("other-cert.pem"),
                "--tlskey",
                &c("other-key.pem"),
                "-H",
                &tcp,
                "ps",
            ])
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{}: a stranger's certificate was accepted",
            cli.display()
        );
    }
    // exec and attach streams work through TLS too
    let out = Command::new(berth_tests::docker_cli())
        .args([
            "--tlsverify",
            "--tlscacert",
            &c("ca.pem"),
            "--tlscert",
            &c("cert.pem"),
            "--tlskey",
            &c("key.pem"),
            "-H",
            &tcp,
            "exec",
            "over-tls",
            "echo",
            "via-tls",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "via-tls",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/_ping"),
        ])
        .output()
        .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "200",
        "plain HTTP must not work on the TLS port"
    );
}
