//! The `local` cluster provider end to end: a real single-node Kubernetes comes up, a pod with
//! a projected service-account token (audience sts.amazonaws.com) runs, the token read by
//! exec carries the right subject, and `down` leaves no process behind.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`; without them it fails naming what is
//! missing (never skips). Tokens are decoded, never printed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::{AttachParams, PostParams};
use podiam_e2e::cluster::{BUSYBOX_IMAGE, DISTROLESS_IMAGE, LocalCluster, LocalClusterOptions};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "podiam-local";
const SERVICE_ACCOUNT: &str = "app";
const ISSUER: &str = "https://oidc.podiam.test/local";
const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_runs_a_pod_with_a_projected_token_and_down_stops_everything() {
    let mut options = LocalClusterOptions::new(ISSUER);
    options.state_dir = podiam_e2e::cluster::cache_dir().join("cluster-test");
    let started = Instant::now();
    let cluster = match LocalCluster::up(options).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the local cluster did not come up:\n{e}"),
    };
    let up_time = started.elapsed();
    eprintln!("up: {up_time:?} ({:?})", cluster.up_timings());
    assert!(cluster.status().all_running(), "{:?}", cluster.status());

    let client = cluster.client().await.expect("admin client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": NAMESPACE}})),
        )
        .await
        .expect("create namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    accounts
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": SERVICE_ACCOUNT}})),
        )
        .await
        .expect("create service account");

    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    pods.create(
        &PostParams::default(),
        &token_pod("busybox", BUSYBOX_IMAGE, Some(&["sleep", "3600"])),
    )
    .await
    .expect("create busybox pod");
    pods.create(
        &PostParams::default(),
        &token_pod("distroless", DISTROLESS_IMAGE, None),
    )
    .await
    .expect("create distroless pod");
    wait_running(&pods, "busybox").await;
    wait_running(&pods, "distroless").await;
    // Pods joined the bridge: its MAC is still the one set, not the lowest of its ports (a
    // changing gateway MAC cut running pods off the host's services until ARP renewed).
    let bridge = Path::new("/sys/class/net").join(podiam_e2e::cluster::pod_network().bridge());
    let read = |file: &str| {
        std::fs::read_to_string(bridge.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("address"),
        podiam_e2e::cluster::pod_network().bridge_mac()
    );
    assert_eq!(
        read("addr_assign_type"),
        "3",
        "the bridge's MAC must be set explicitly (NET_ADDR_SET)"
    );

    let token_path = format!("{TOKEN_DIR}/token");
    let (stdout, ok) = exec(&pods, "busybox", &["cat", &token_path]).await;
    assert!(ok, "cat {token_path} failed in the busybox pod");
    let claims = claims_of(&stdout);
    drop(stdout);
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"),
        "claims: {claims}"
    );
    assert_eq!(claims["iss"], ISSUER, "claims: {claims}");
    assert!(
        claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("sts.amazonaws.com"))),
        "claims: {claims}"
    );
    assert_eq!(
        claims["kubernetes.io"]["pod"]["name"], "busybox",
        "claims: {claims}"
    );

    // No shell and no cat in the distroless image: exec fails, the container keeps running.
    let (_, ok) = exec(&pods, "distroless", &["cat", &token_path]).await;
    assert!(!ok, "cat must not exist in {DISTROLESS_IMAGE}");

    let status = cluster.status();
    let pids = status.all_pids();
    assert!(
        status.container_pids.len() >= 4,
        "two pods: two sandboxes, two containers, shims: {status:?}"
    );
    let state_dir = cluster.state_dir().to_path_buf();
    let started = Instant::now();
    cluster.down().expect("down");
    eprintln!("down: {:?}", started.elapsed());

    let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        alive.is_empty(),
        "still alive after down: {alive:?} (of {pids:?})"
    );
    assert!(!state_dir.exists(), "{} still exists", state_dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(state_dir.to_str().unwrap()),
        "mounts left under {}",
        state_dir.display()
    );
    assert!(
        !Path::new("/sys/class/net/podiam0").exists(),
        "bridge podiam0 left behind"
    );
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

/// A pod with the IRSA-shaped projected token volume.
fn token_pod(name: &str, image: &str, command: Option<&[&str]>) -> Pod {
    let mut container = json!({
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true}],
    });
    if let Some(command) = command {
        container["command"] = json!(command);
    }
    from_json(json!({
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            "volumes": [{
                "name": "aws-iam-token",
                "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token",
                }}]},
            }],
        },
    }))
}

async fn wait_running(pods: &Api<Pod>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pod = pods.get(name).await.expect("get pod");
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .container_statuses
            .as_ref()
            .is_some_and(|s| s.iter().all(|c| c.ready));
        if status.phase.as_deref() == Some("Running") && ready {
            return;
        }
        if Instant::now() >= deadline {
            panic!("pod {name} not running after 60 s: {:?}", status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `command`; returns stdout (kept in memory only) and whether it exited 0.
async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> (Vec<u8>, bool) {
    let params = AttachParams::default()
        .container("main")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let run = async {
        let mut attached = match pods.exec(pod, command.iter().copied(), &params).await {
            Ok(a) => a,
            Err(_) => return (Vec::new(), false),
        };
        let mut out = Vec::new();
        if let Some(mut stdout) = attached.stdout() {
            let _ = stdout.read_to_end(&mut out).await;
        }
        let status = match attached.take_status() {
            Some(s) => s.await,
            None => None,
        };
        let ok = status.is_some_and(|s| s.status.as_deref() == Some("Success"));
        (out, ok)
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("exec timed out")
}

/// The JWT's payload claims (the signature and the token itself are never shown).
fn claims_of(token: &[u8]) -> Value {
    let token = String::from_utf8_lossy(token);
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "the token file does not hold a JWT");
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url payload");
    let claims: BTreeMap<String, Value> = serde_json::from_slice(&payload).expect("JSON claims");
    serde_json::to_value(claims).unwrap()
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}
