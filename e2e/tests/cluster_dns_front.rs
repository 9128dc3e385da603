//! Pods see the clouds as in a real cluster: the environment the scenarios run in (local
//! cluster with CoreDNS as its DNS, emulators, cloud front) gives a busybox pod and a curl pod
//! (the clouds' CLI images map to it) resolution of the clouds' real names to the front, and
//! TLS to the front through the harness CA in the images' CA bundle:
//! - busybox `nslookup` and curl resolve `sts.amazonaws.com`, `sts.us-east-1.amazonaws.com`
//!   and `login.microsoftonline.com` to the front; an unknown name is NXDOMAIN;
//! - busybox `wget` (static glibc: getaddrinfo through the pod's resolv.conf) resolves the
//!   names and connects to the front, and cannot resolve an unknown name (busybox 1.35's TLS
//!   then fails the handshake: it sends no signature_algorithms extension, which the front's
//!   rustls requires);
//! - curl with the default bundle gets the AWS gate's own answer to an unsigned
//!   GetCallerIdentity; with the public roots only (`/etc/ssl/public-only.pem`) it fails on
//!   the certificate;
//! - the front logged the calls with the pod's namespace once a token routed it.
//!
//! Needs root, the cluster binaries and the Python venv, like `podiam-e2e run`. Cluster tests
//! share one machine-wide cluster: each takes the machine's cluster lock itself, so never wrap
//! the test in `flock` on it (it would wait for itself).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use podiam_e2e::cluster::pod_host_ip;
use podiam_e2e::runner::environment::Environment;
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "podiam-dns";

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: busybox
spec:
  containers:
    - name: app
      image: busybox
      command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: curl
spec:
  containers:
    - name: app
      image: amazonlinux
      command: ["sleep", "3600"]
"#;

/// Runs `script` with `sh -c` in `pod`; returns its combined output and exit code.
async fn sh(pods: &Api<Pod>, pod: &str, script: &str) -> (String, i32) {
    let wrapped = format!("{script} 2>&1; echo \"exit=$?\"");
    let params = AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(false);
    let run = async {
        let mut attached = pods
            .exec(pod, ["sh", "-c", wrapped.as_str()], &params)
            .await
            .expect("exec");
        let mut out = Vec::new();
        if let Some(mut stdout) = attached.stdout() {
            let _ = stdout.read_to_end(&mut out).await;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("exec timed out");
    let (body, code) = out
        .trim_end()
        .rsplit_once("exit=")
        .unwrap_or_else(|| panic!("no exit code from {pod}: {out}"));
    (body.to_owned(), code.trim().parse().expect("exit code"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_resolve_the_clouds_names_to_the_front_and_trust_it() {
    let state = tempfile::tempdir().expect("state dir");
    let env = Environment::start_local(state.path())
        .await
        .unwrap_or_else(|e| panic!("environment: {e:#}"));
    let front = env
        .cloud_front
        .as_ref()
        .expect("the local provider runs the cloud front");
    assert_eq!(front.address(), (pod_host_ip(), 443).into());

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .expect("namespace");
    env.create_pods(NAMESPACE, MANIFESTS, &["busybox", "curl"])
        .await
        .unwrap_or_else(|e| panic!("pods: {e:#}"));
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NAMESPACE);
    let failures = checks(&pods).await;

    let log = front.request_log();
    let env_down = env.down().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    env_down.expect("down");
    // Each HTTPS request that got through TLS was logged on arrival and on answer, with the
    // status the emulator gave (the gate's 403 for the unsigned calls).
    for host in ["sts.amazonaws.com", "sts.us-east-1.amazonaws.com"] {
        let seen: Vec<Option<u16>> = log
            .iter()
            .filter(|e| e.host == host)
            .map(|e| e.status)
            .collect();
        assert_eq!(seen, [None, Some(403)], "{host}: {log:?}");
    }
    assert!(
        log.iter()
            .any(|e| e.host == "login.microsoftonline.com" && e.status.is_some()),
        "{log:?}"
    );
}

/// Every in-pod check; returns what failed.
async fn checks(pods: &Api<Pod>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool, output: &str| {
        if !ok {
            failures.push(format!("{what}:\n{output}"));
        }
    };
    let front = pod_host_ip().to_string();

    // The kubelet points pods at CoreDNS on the gateway, with the cluster domain.
    let (resolv, _) = sh(pods, "busybox", "cat /etc/resolv.conf").await;
    expect(
        "resolv.conf names the cluster DNS",
        resolv.contains(&format!("nameserver {front}")) && resolv.contains("cluster.local"),
        &resolv,
    );

    for name in [
        "sts.amazonaws.com",
        "sts.us-east-1.amazonaws.com",
        "login.microsoftonline.com",
    ] {
        let (out, code) = sh(pods, "busybox", &format!("nslookup {name}")).await;
        expect(
            &format!("busybox nslookup {name}"),
            code == 0 && out.contains(&format!("Address: {front}")),
            &out,
        );
    }
    let (out, code) = sh(pods, "busybox", "nslookup no-such-host.example").await;
    expect(
        "busybox nslookup of an unknown name is NXDOMAIN",
        code != 0 && out.contains("NXDOMAIN"),
        &out,
    );

    // busybox-static's getaddrinfo (static glibc) through the pod's resolv.conf: the name
    // resolves and the front answers the TLS handshake (which busybox 1.35 cannot complete).
    let (out, code) = sh(
        pods,
        "busybox",
        "wget -q -O - 'https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15'",
    )
    .await;
    expect(
        "busybox wget resolves sts.amazonaws.com and reaches the front",
        code != 0 && out.contains("TLS error from peer") && !out.contains("bad address"),
        &out,
    );
    let (out, code) = sh(
        pods,
        "busybox",
        "wget -q -O - https://no-such-host.example/",
    )
    .await;
    expect(
        "busybox wget cannot resolve an unknown name",
        code != 0 && out.contains("bad address 'no-such-host.example'"),
        &out,
    );

    // curl: the CA bundle of the image trusts the front; the gate answers as AWS does.
    for name in ["sts.amazonaws.com", "sts.us-east-1.amazonaws.com"] {
        let (out, code) = sh(
            pods,
            "curl",
            &format!(
                "curl -sS -w '\\nstatus=%{{http_code}} ip=%{{remote_ip}}' \
                 'https://{name}/?Action=GetCallerIdentity&Version=2011-06-15'"
            ),
        )
        .await;
        expect(
            &format!("curl https://{name}/ (unsigned GetCallerIdentity)"),
            code == 0
                && out.contains("<ErrorResponse")
                && out.contains("<Code>")
                && out.contains(&format!("status=403 ip={front}")),
            &out,
        );
    }
    let (out, code) = sh(
        pods,
        "curl",
        "curl -sS -o /dev/null -w '%{remote_ip}' https://login.microsoftonline.com/",
    )
    .await;
    expect(
        "curl resolves login.microsoftonline.com to the front",
        code == 0 && out == front,
        &out,
    );
    let (out, code) = sh(
        pods,
        "curl",
        "curl -sS --cacert /etc/ssl/public-only.pem https://sts.amazonaws.com/",
    )
    .await;
    expect(
        "curl with the public roots only fails on the certificate (exit 60)",
        code == 60 && out.contains("SSL certificate problem"),
        &out,
    );
    let (out, code) = sh(pods, "curl", "curl -sS https://no-such-host.example/").await;
    expect(
        "curl cannot resolve an unknown name (exit 6)",
        code == 6 && out.contains("Could not resolve host"),
        &out,
    );
    failures
}
