//! Faults of the Kubernetes side, no cluster: the built plugin runs `verify -A` against a fake
//! API server (plain HTTP on 127.0.0.1) that lists three running IRSA pods (the seed's
//! `s3-reader`, strict AWS emulators behind), then misbehaves:
//! - it is restarting: the first reads after the list answer 503 with `Retry-After` (kube's
//!   client retries 429/503/504, honouring it),
//! - `hangs`' exec is accepted and never answered: the exec timeout is named, and the pod is
//!   still judged with an equivalent token (TokenRequest),
//! - `gone` was deleted after the list: every read of it is 404, and so is a TokenRequest
//!   bound to it,
//! - `steady`'s exec is refused (403): judged with an equivalent token.
//!
//! Every pod gets an item; only the one that could not be judged makes the run exit 3.
//!
//! Then a server that stops listening right after the list (connections refused, as while
//! kube-apiserver restarts): back after a second, every pod is judged as without the outage;
//! gone for good, the pods are `incomplete` once `--request-timeout` has passed, exit 3.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use serde_json::{Value, json};

#[path = "support/fake_api_server.rs"]
mod fake_api_server;
use fake_api_server::{Outage, Reply, Routes, status};

#[derive(Default)]
struct Api {
    /// The pods the list answers.
    pods: Vec<&'static str>,
    /// What TokenRequests answer: a token the emulators' issuer signed.
    token: String,
    /// Begun right after answering the list: a restarting kube-apiserver.
    outage_after_list: Option<Arc<Outage>>,
    /// Reads (after the list) still answered 503 "the server is restarting".
    restarting: AtomicUsize,
    /// Requests seen: method and path.
    seen: Mutex<Vec<String>>,
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "default", "name": name, "uid": format!("uid-{name}")},
        // As the EKS webhook mutates it.
        "spec": {"serviceAccountName": "s3-reader", "nodeName": "node-1",
                 "containers": [{"name": "app", "image": "busybox",
                     "env": [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                             {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
                             {"name": "AWS_REGION", "value": "us-east-1"},
                             {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/my-pod-role"},
                             {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}],
                     "volumeMounts": [{"name": "aws-iam-token", "readOnly": true,
                                       "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}]}],
                 "volumes": [{"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [
                     {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}]},
        "status": {"phase": "Running", "podIP": "10.213.0.9",
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                          "image": "busybox", "imageID": "", "state": {"running": {}}}]}
    })
}

impl Routes for Api {
    fn reply(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        answer(self, method, path, body)
    }
}

/// The answer to one request; `Hold` for a hung exec.
fn answer(api: &Api, method: &str, path: &str, body: &[u8]) -> Reply {
    let route = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    if route == "/api/v1/pods" {
        if let Some(outage) = &api.outage_after_list {
            outage.begin.notify_one();
        }
        let items: Vec<Value> = api.pods.iter().map(|name| pod(name)).collect();
        return Reply::Json(
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                   "items": items}),
        );
    }
    if api
        .restarting
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return status(503, "ServiceUnavailable", "the server is restarting");
    }
    let gone = || status(404, "NotFound", "pods \"gone\" not found");
    match parts.as_slice() {
        ["api", "v1", "namespaces", "default", "pods", "gone", ..] => gone(),
        [
            "api",
            "v1",
            "namespaces",
            "default",
            "pods",
            "hangs",
            "exec",
        ] => Reply::Hold,
        ["api", "v1", "namespaces", "default", "pods", _, "exec"] => {
            status(403, "Forbidden", "pods/exec is forbidden for this user")
        }
        ["api", "v1", "namespaces", "default", "pods", name] if method == "GET" => {
            Reply::Json(200, pod(name))
        }
        [
            "api",
            "v1",
            "namespaces",
            "default",
            "serviceaccounts",
            "s3-reader",
        ] if method == "GET" => Reply::Json(
            200,
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"namespace": "default", "name": "s3-reader",
                                    "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/my-pod-role"}}}),
        ),
        [
            "api",
            "v1",
            "namespaces",
            "default",
            "serviceaccounts",
            "s3-reader",
            "token",
        ] => {
            let request: Value = serde_json::from_slice(body).unwrap_or_default();
            if request["spec"]["boundObjectRef"]["name"] == "gone" {
                return gone();
            }
            Reply::Json(
                201,
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": request["spec"],
                       "status": {"token": api.token, "expirationTimestamp": "2099-01-01T00:00:00Z"}}),
            )
        }
        ["api", "v1", "nodes", name] => Reply::Json(
            200,
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}}}),
        ),
        _ => status(403, "Forbidden", "forbidden by the fake API server"),
    }
}

fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pod"]["name"] == name)
        .unwrap_or_else(|| panic!("no item for {name} in {report:#}"))
}

fn check<'a>(item: &'a Value, id: &str) -> Option<&'a Value> {
    item["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarting_server_a_hung_exec_and_a_deleted_pod_cost_only_those_pods() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(Api {
        pods: vec!["gone", "hangs", "steady"],
        token: emulators
            .mint_token(&TokenSpec::new("default", "s3-reader"))
            .unwrap(),
        ..Api::default()
    });
    api.restarting.store(2, Ordering::SeqCst);
    let kubeconfig = fake_api_server::start(api.clone(), None, "default", dir.path()).await;
    let (report, _stderr, code, elapsed) = verify_all(&emulators, kubeconfig, "2s").await;
    let seen = api.seen.lock().unwrap().clone();
    eprintln!("{} API requests, {elapsed:?}", seen.len());

    // The restart was ridden out: the 503s were retried, nothing was lost to them.
    assert_eq!(
        api.restarting.load(Ordering::SeqCst),
        0,
        "both 503s answered"
    );
    let sa_reads = seen
        .iter()
        .filter(|l| *l == "GET /api/v1/namespaces/default/serviceaccounts/s3-reader")
        .count();
    assert!(sa_reads >= 3, "the 503s were retried: {seen:?}");
    assert_eq!(report["items"].as_array().unwrap().len(), 3, "{report:#}");

    let steady = item(&report, "steady");
    assert_eq!(steady["verdict"], "pass", "{steady:#}");

    // The hung exec is named, bounded by --request-timeout, and the pod is still judged.
    let hangs = item(&report, "hangs");
    assert_eq!(hangs["verdict"], "pass", "{hangs:#}");
    let source = check(hangs, "aws.token.source").expect("the token's source is named");
    assert_eq!(source["status"], "warn");
    assert!(
        source["message"]
            .as_str()
            .unwrap()
            .contains("exec timed out after 2s"),
        "{source:#}"
    );
    assert_eq!(
        check(hangs, "aws.sts.assume-role").unwrap()["status"],
        "pass"
    );

    // The deleted pod cannot be judged: named, and the only reason for exit 3.
    let gone = item(&report, "gone");
    assert_eq!(gone["verdict"], "incomplete", "{gone:#}");
    assert!(gone["identity"].is_null());
    let source = check(gone, "aws.token.source").expect("why no token: named");
    assert!(
        source["message"]
            .as_str()
            .unwrap()
            .contains("pods \"gone\" not found"),
        "{source:#}"
    );
    assert_eq!(report["summary"]["passed"], 2, "{report:#}");
    assert_eq!(report["summary"]["unreachable"], 1, "{report:#}");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(code, Some(3), "{report:#}");
    assert!(
        elapsed < Duration::from_secs(60),
        "the hung exec is bounded: {elapsed:?}"
    );
}

/// Runs `verify -A -o json -v` against the fake API server; returns the report, stderr, the
/// exit code and how long it took.
async fn verify_all(
    emulators: &AwsEmulators,
    kubeconfig: std::path::PathBuf,
    request_timeout: &str,
) -> (Value, String, Option<i32>, Duration) {
    let gate = emulators.gate_url().to_string();
    let request_timeout = request_timeout.to_owned();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("kubectl-podiam")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", gate)
            .env("AWS_REGION", "us-east-1")
            .args(["verify", "-A", "-o", "json", "-v", "--request-timeout"])
            .arg(request_timeout)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
    (report, stderr, out.status.code(), started.elapsed())
}

async fn restarting_api(
    emulators: &AwsEmulators,
    outage: Option<Duration>,
    dir: &tempfile::TempDir,
) -> (Arc<Api>, std::path::PathBuf) {
    let api = Arc::new(Api {
        pods: vec!["first", "second"],
        token: emulators
            .mint_token(&TokenSpec::new("default", "s3-reader"))
            .unwrap(),
        outage_after_list: Some(Outage::new(outage)),
        ..Api::default()
    });
    let kubeconfig = fake_api_server::start(
        api.clone(),
        api.outage_after_list.clone(),
        "default",
        dir.path(),
    )
    .await;
    (api, kubeconfig)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_refused_after_the_list_are_retried_until_the_server_is_back() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let dir = tempfile::tempdir().unwrap();
    let outage = Duration::from_secs(1);
    let (api, kubeconfig) = restarting_api(&emulators, Some(outage), &dir).await;
    let (report, stderr, code, elapsed) = verify_all(&emulators, kubeconfig, "5s").await;
    let seen = api.seen.lock().unwrap().clone();

    // Every pod judged as without the outage: nothing lost to it.
    for name in ["first", "second"] {
        let item = item(&report, name);
        assert_eq!(item["verdict"], "pass", "{item:#}\n{stderr}");
    }
    assert_eq!(report["summary"]["unreachable"], 0, "{report:#}");
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    // It did wait for the server, and said why at -v.
    assert!(elapsed >= outage, "{elapsed:?}");
    assert!(
        stderr.contains("probably restarting: retry 1 in 250ms"),
        "the retries are logged: {stderr}"
    );
    assert!(
        seen.iter()
            .any(|l| l == "GET /api/v1/namespaces/default/serviceaccounts/s3-reader"),
        "the pods' reads reached the server after the outage: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stays_down_leaves_its_pods_unjudged_and_exits_3_after_the_timeout() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let dir = tempfile::tempdir().unwrap();
    let (_api, kubeconfig) = restarting_api(&emulators, None, &dir).await;
    let (report, stderr, code, elapsed) = verify_all(&emulators, kubeconfig, "2s").await;

    // Each read retried for the request timeout (250 + 500 + 1000 ms fit in 2 s), then given
    // up; the pod's own budget (4 × the request timeout) ends first: no verdict, named.
    for name in ["first", "second"] {
        let item = item(&report, name);
        assert_eq!(item["verdict"], "incomplete", "{item:#}\n{stderr}");
        assert!(item["identity"].is_null(), "{item:#}");
        let reachable = check(item, "k8s.pod.reachable").expect("why no verdict: named");
        assert!(
            reachable["message"].as_str().unwrap().contains(&format!(
                "pod default/{name} could not be verified: no verdict within 8s"
            )),
            "{reachable:#}"
        );
    }
    assert_eq!(report["summary"]["passed"], 0, "{report:#}");
    assert_eq!(report["summary"]["unreachable"], 2, "{report:#}");
    assert_eq!(code, Some(3), "never a pass: {report:#}");
    assert!(
        stderr.contains("the API server refused the connection of GET"),
        "{stderr}"
    );
    assert!(stderr.contains("retry 3 in 1s"), "{stderr}");
    assert!(!stderr.contains("retry 4 "), "{stderr}");
    assert!(
        elapsed >= Duration::from_millis(1750) && elapsed < Duration::from_secs(60),
        "{elapsed:?}"
    );
}
