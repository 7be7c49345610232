//! --nats-ca, --nats-cert and --nats-key against a nats-server that
//! requires TLS and client certificates (certificates made by openssl for
//! this test only).

use std::path::Path;
use std::process::Command;

use crate::support::{Nats, Server, TempDir, ctl};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dynkey test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "subjectAltName=DNS:operator\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let mut req = vec!["req"];
        req.extend_from_slice(&ec);
        req.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", "/CN=dynkey test"]);
        openssl(dir, &req);
        let pem = format!("{name}.pem");
        let ext_file = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_the_shared_options() {
    let certs = TempDir::new("tls");
    let d = certs.path();
    certificates(d);
    let p = |f: &str| d.join(f).display().to_string();
    let nats = Nats::start_with(
        Server::Current,
        &format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n}}\n",
            p("server.pem"),
            p("server-key.pem"),
            p("ca.pem")
        ),
    );
    let url = nats.url();
    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client-key.pem"));
    let ok = ctl(
        &url,
        &[
            "--nats-ca",
            &ca,
            "--nats-cert",
            &cert,
            "--nats-key",
            &key,
            "init",
        ],
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    let applied = ctl(
        &url,
        &[
            "--nats-ca",
            &ca,
            "--nats-cert",
            &cert,
            "--nats-key",
            &key,
            "apply",
            "--scope",
            "all",
            "--query",
            "module a +p",
        ],
    );
    assert_eq!(applied.code, 0, "{applied:?}");
    // Without a client certificate, or without trusting the server's CA:
    // no connection (exit 4); a missing file is bad input (exit 2).
    for args in [
        &["--nats-ca", ca.as_str(), "show"][..],
        &[
            "--nats-cert",
            cert.as_str(),
            "--nats-key",
            key.as_str(),
            "show",
        ],
        &["show"],
    ] {
        let r = ctl(&url, args);
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
    }
    let missing = ctl(&url, &["--nats-ca", "/nonexistent/ca.pem", "show"]);
    assert_eq!(missing.code, 2, "{missing:?}");
}
