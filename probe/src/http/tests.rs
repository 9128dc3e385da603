use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;
use crate::dns::Resolver;
use crate::target::Target;

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn resolver() -> Resolver {
    Resolver::from_files("127.0.0.1 good.test other.test\n", "")
}

fn target(vars: &[(&str, &str)]) -> Target {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Target::from_vars(vars, "own")
}

fn no_roots() -> Roots {
    Roots {
        store: Arc::new(rustls::RootCertStore::empty()),
        origin: "none".into(),
    }
}

/// Serves `answer` to each of `n` connections after reading the request head.
fn server(n: usize, answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let mut stream = stream.unwrap();
            read_head(&mut stream);
            let _ = stream.write_all(answer);
        }
    });
    port
}

fn read_head(stream: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    head
}

fn call(t: &Target, url: &str, roots: &Roots, timeout: Duration) -> Result<Response, Failure> {
    let r = resolver();
    let client = Client {
        target: t,
        resolver: &r,
    };
    client.send(&Request::get(url, timeout), roots).1
}

#[test]
fn plain_http_answers_and_connection_failures_are_named() {
    let t = target(&[]);
    let port = server(1, ANSWER);
    let ok = call(
        &t,
        &format!("http://good.test:{port}/x"),
        &no_roots(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"hello"[..]));

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = call(
        &t,
        &format!("http://good.test:{port}/"),
        &no_roots(),
        Duration::from_secs(5),
    );
    assert_eq!(refused.unwrap_err().cause(), "refused");

    let dns = call(
        &t,
        "http://missing.test/",
        &no_roots(),
        Duration::from_secs(1),
    );
    assert_eq!(dns.unwrap_err().cause(), "dns");

    // Accepts, never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeout = call(
        &t,
        &format!("http://good.test:{port}/"),
        &no_roots(),
        Duration::from_millis(300),
    );
    assert_eq!(timeout.unwrap_err().cause(), "timeout");
    drop(silent);
}

#[test]
fn chunked_and_close_framed_answers() {
    let t = target(&[]);
    let port = server(1, b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    let r = call(
        &t,
        &format!("http://good.test:{port}/"),
        &no_roots(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (403, &b"abcde"[..]));
    let port = server(1, b"HTTP/1.0 200 OK\r\n\r\ntoken-by-close");
    let r = call(
        &t,
        &format!("http://good.test:{port}/"),
        &no_roots(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.body, b"token-by-close");
}

/// A CA, and a TLS server for `good.test` signed by it.
fn tls_server() -> (u16, Roots) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["good.test".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(3) {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream.unwrap());
                read_head(&mut tls);
                let _ = tls.write_all(ANSWER);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    let mut store = rustls::RootCertStore::empty();
    store.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    (
        port,
        Roots {
            store: Arc::new(store),
            origin: "test CA".into(),
        },
    )
}

#[test]
fn tls_trust_and_names_are_told_apart() {
    let t = target(&[]);
    let (port, roots) = tls_server();
    let ok = call(
        &t,
        &format!("https://good.test:{port}/"),
        &roots,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    let untrusted = call(
        &t,
        &format!("https://good.test:{port}/"),
        &no_roots(),
        Duration::from_secs(5),
    );
    assert_eq!(untrusted.unwrap_err().cause(), "tls-untrusted");
    let name = call(
        &t,
        &format!("https://other.test:{port}/"),
        &roots,
        Duration::from_secs(5),
    );
    assert_eq!(name.unwrap_err().cause(), "tls-name");
}

#[test]
fn a_proxy_refusing_connect_is_the_proxy() {
    let proxy = server(1, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let t = target(&[("HTTPS_PROXY", &format!("http://user:pw@good.test:{proxy}"))]);
    let r = resolver();
    let client = Client {
        target: &t,
        resolver: &r,
    };
    let (route, result) = client.send(
        &Request::get("https://sts.test/", Duration::from_secs(5)),
        &no_roots(),
    );
    let failure = result.unwrap_err();
    assert_eq!(failure.cause(), "proxy", "{failure}");
    assert!(failure.detail().contains("403"), "{failure}");
    let via = route.proxy.unwrap();
    assert!(!via.contains("pw"), "proxy credentials shown: {via}");

    // NO_PROXY names the host: direct, so the unresolvable name is a DNS failure.
    let t = target(&[
        ("HTTPS_PROXY", &format!("http://good.test:{proxy}")),
        ("NO_PROXY", "sts.test"),
    ]);
    let client = Client {
        target: &t,
        resolver: &r,
    };
    let (route, result) = client.send(
        &Request::get("https://sts.test/", Duration::from_secs(1)),
        &no_roots(),
    );
    assert!(route.proxy.is_none());
    assert_eq!(result.unwrap_err().cause(), "dns");
}
