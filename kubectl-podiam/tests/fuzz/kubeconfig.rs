//! Kubeconfig files (`kube::client::connect` with `--kubeconfig`): mutated valid files, hostile
//! text and raw bytes. `connect` builds the client without calling the server, so every case
//! ends with a client or `Error::Kubeconfig` naming the file or the cause — never a panic, and
//! never a hang (a per-case timeout guards the async path).

use std::time::Duration;

use proptest::prelude::*;

use podiam::error::Error;
use podiam::kube::client::{ConnectionFlags, connect};

use super::support::{hostile_text, raw_bytes, runner};

const CI_CASES: u32 = 200;
const BOUND: Duration = Duration::from_secs(5);

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "apiVersion: v1", "kind: Config", "current-context: c", "current-context: missing",
            "clusters:", "- name: k", "  cluster:", "    server: https://127.0.0.1:1",
            "    server: not a url", "    server: ''", "    insecure-skip-tls-verify: true",
            "    certificate-authority-data: bm90LWEtY2VydA==", "    certificate-authority-data: '!!'",
            "    certificate-authority: /nonexistent/ca.crt", "    proxy-url: socks5://127.0.0.1:1",
            "    tls-server-name: x", "contexts:", "- name: c", "  context:", "    cluster: k",
            "    user: u", "    namespace: ns", "users:", "- name: u", "  user:", "    token: t",
            "    tokenFile: /nonexistent/token", "    username: a", "    password: b",
            "    client-certificate-data: bm90LWEtY2VydA==", "    client-key-data: bm90LWEta2V5",
            "    exec:", "      apiVersion: client.authentication.k8s.io/v1", "      command: /nonexistent/cmd",
            "      interactiveMode: Never", "    auth-provider:", "      name: oidc",
            "preferences: {}", "extensions: [{name: e, extension: {}}]", "- name: k", "- name: c",
        ])
        .prop_map(str::to_string),
        1 => "[ -~]{0,20}",
    ]
}

fn check(rt: &tokio::runtime::Runtime, path: &std::path::Path) -> Result<(), TestCaseError> {
    let flags = ConnectionFlags {
        kubeconfig: Some(path.to_path_buf()),
        request_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let outcome = rt.block_on(async { tokio::time::timeout(BOUND, connect(&flags)).await });
    let Ok(result) = outcome else {
        return Err(TestCaseError::fail("connect hung past its bound"));
    };
    if let Err(e) = result {
        prop_assert!(
            matches!(e, Error::Kubeconfig(_)),
            "not the typed kubeconfig error: {e:?}"
        );
        let shown = e.to_string();
        prop_assert!(
            shown.starts_with("kubeconfig: ") && shown.len() > 14,
            "{}",
            shown
        );
        prop_assert!(
            !shown.contains("bm90LWEta2V5"),
            "the key is quoted: {}",
            shown
        );
    }
    Ok(())
}

#[test]
fn generated_kubeconfigs() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let text = prop_oneof![
        4 => prop::collection::vec(line(), 0..40).prop_map(|v| v.join("\n")),
        1 => hostile_text(),
    ];
    runner(CI_CASES)
        .run(&text, |text| {
            std::fs::write(&path, text).unwrap();
            check(&rt, &path)
        })
        .expect("every kubeconfig builds a client or is refused with Error::Kubeconfig");
    runner(CI_CASES / 4)
        .run(&raw_bytes(1024), |bytes| {
            std::fs::write(&path, bytes).unwrap();
            check(&rt, &path)
        })
        .expect("raw bytes are refused with Error::Kubeconfig");
}

/// Found by `generated_kubeconfigs`: a YAML error quoted the file's lines (the parser's
/// snippet), client keys and tokens included. Fixed in `kube/client.rs`: no snippet.
#[test]
fn regression_a_yaml_error_quotes_no_line_of_the_file() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "    client-key-data: bm90LWEta2V5\napiVersion: v1\napiVersion: v1",
    )
    .unwrap();
    let flags = ConnectionFlags {
        kubeconfig: Some(path.clone()),
        ..Default::default()
    };
    let err = rt
        .block_on(connect(&flags))
        .err()
        .expect("not a kubeconfig");
    let shown = err.to_string();
    assert!(
        shown.contains(&path.display().to_string()) && shown.contains("line 2"),
        "{shown}"
    );
    assert!(
        !shown.contains("bm90LWEta2V5") && !shown.contains("client-key-data"),
        "{shown}"
    );
}
