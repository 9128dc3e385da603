//! `bind` killed (SIGKILL, no chance to clean up) after each of its steps, then run again:
//! the re-run finishes and nothing is lost or done twice. The built plugin binds an IRSA role
//! against the strict AWS emulators (IAM through the gate) and a fake API server (plain HTTP)
//! that keeps the ServiceAccount's state and can hold one kind of request without answering:
//! the process is killed while that request is held, i.e. right after the previous step.
//!
//! bind's steps for `bind web --aws-role web-role --create-role`: (1) create the role with the
//! trust statement (IAM), (2) annotate the ServiceAccount (Kubernetes), then (3) list the pods
//! predating the binding.
//!
//! And killed inside a cloud write: a proxy in front of the gate lets IAM apply `CreateRole`
//! and never passes its answer back, so bind dies not knowing whether the role was made.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podiam_e2e::emulators::AwsEmulators;
use serde_json::{Value, json};

#[path = "support/fake_api_server.rs"]
mod fake_api_server;
use fake_api_server::{Reply, Routes};
#[path = "support/gate_proxy.rs"]
mod gate_proxy;

const ROLE: &str = "arn:aws:iam::123456789012:role/web-role";

#[derive(Default)]
struct FakeApi {
    issuer: String,
    /// The ServiceAccount's annotations; None while it does not exist.
    annotations: Mutex<Option<serde_json::Map<String, Value>>>,
    /// A request starting with this ("PATCH /api/v1/…") is held, never answered.
    hold: Mutex<Option<String>>,
    /// Requests held so far.
    held: Mutex<Vec<String>>,
}

impl FakeApi {
    fn service_account(&self) -> Option<Value> {
        let annotations = self.annotations.lock().unwrap().clone()?;
        Some(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"namespace": "team", "name": "web", "uid": "uid-web",
                                 "resourceVersion": "1", "annotations": annotations}}))
    }

    fn answer(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let route = path.split('?').next().unwrap_or(path);
        let not_found = || {
            (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": format!("{route} not found"), "reason": "NotFound", "code": 404}),
            )
        };
        match (method, route) {
            ("GET", "/.well-known/openid-configuration") => (
                200,
                json!({"issuer": self.issuer, "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
                       "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                       "id_token_signing_alg_values_supported": ["RS256"]}),
            ),
            ("GET", "/api/v1/namespaces/team/serviceaccounts/web") => {
                match self.service_account() {
                    Some(sa) => (200, sa),
                    None => not_found(),
                }
            }
            ("POST", "/api/v1/namespaces/team/serviceaccounts") => {
                let posted: Value = serde_json::from_slice(body).unwrap_or_default();
                let annotations = posted["metadata"]["annotations"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                *self.annotations.lock().unwrap() = Some(annotations);
                (201, self.service_account().unwrap())
            }
            ("PATCH", "/api/v1/namespaces/team/serviceaccounts/web") => {
                let patch: Value = serde_json::from_slice(body).unwrap_or_default();
                let mut state = self.annotations.lock().unwrap();
                let Some(annotations) = state.as_mut() else {
                    drop(state);
                    return not_found();
                };
                if let Some(new) = patch["metadata"]["annotations"].as_object() {
                    for (k, v) in new {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
                drop(state);
                (200, self.service_account().unwrap())
            }
            ("GET", "/api/v1/namespaces/team/pods") => (
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": []}),
            ),
            _ => not_found(),
        }
    }
}

impl Routes for FakeApi {
    fn reply(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let line = format!("{method} {path}");
        let held = self
            .hold
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|h| line.starts_with(h.as_str()));
        if held {
            // Never answered: the client is killed meanwhile.
            self.held.lock().unwrap().push(line);
            return Reply::Hold;
        }
        let (code, body) = self.answer(method, path, body);
        Reply::Json(code, body)
    }
}

fn bind_command(emulators: &AwsEmulators, kubeconfig: &std::path::Path) -> std::process::Command {
    bind_command_through(emulators, emulators.gate_url(), kubeconfig)
}

/// bind with every AWS call sent to `endpoint` (the gate, or a proxy in front of it).
fn bind_command_through(
    emulators: &AwsEmulators,
    endpoint: &str,
    kubeconfig: &std::path::Path,
) -> std::process::Command {
    let (key, secret) = emulators.admin_credentials();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("kubectl-podiam"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(["bind", "web", "--aws-role", "web-role", "--create-role"])
        .args(["-o", "json", "--request-timeout", "10s", "--kubeconfig"])
        .arg(kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Runs bind until the fake API server holds a request starting with `hold`, then kills it.
async fn bind_killed_at(
    emulators: &AwsEmulators,
    api: &FakeApi,
    kubeconfig: &std::path::Path,
    hold: &str,
) {
    *api.hold.lock().unwrap() = Some(hold.to_string());
    api.held.lock().unwrap().clear();
    let child = bind_command(emulators, kubeconfig).spawn().unwrap();
    kill_once(child, hold, || !api.held.lock().unwrap().is_empty()).await;
    *api.hold.lock().unwrap() = None;
}

/// Kills `child` (SIGKILL) as soon as `reached` is true; fails if it ends first or `reached`
/// never comes within a minute.
async fn kill_once(mut child: std::process::Child, step: &str, reached: impl Fn() -> bool) {
    let started = Instant::now();
    while !reached() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "bind ended ({status}) before {step}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "bind never reached {step}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed");
}

/// A whole bind run: exit code and its JSON report.
fn bind(emulators: &AwsEmulators, kubeconfig: &std::path::Path) -> (Option<i32>, Value) {
    let out = bind_command(emulators, kubeconfig).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn annotation(api: &FakeApi) -> Option<String> {
    api.annotations
        .lock()
        .unwrap()
        .as_ref()?
        .get("eks.amazonaws.com/role-arn")?
        .as_str()
        .map(str::to_string)
}

/// The role's trust policy as IAM holds it (read through the gate), if the role exists.
async fn trust_policy(emulators: &AwsEmulators) -> Option<String> {
    let (key, secret) = emulators.admin_credentials();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(emulators.gate_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            key, secret, None, None, "test",
        ))
        .load()
        .await;
    let role = aws_sdk_iam::Client::new(&config)
        .get_role()
        .role_name("web-role")
        .send()
        .await
        .ok()?;
    let document = role.role()?.assume_role_policy_document()?.to_string();
    Some(
        percent_encoding::percent_decode_str(&document)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn actions(report: &Value) -> Vec<String> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["action"].as_str().unwrap_or("?"),
                c["resource"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The seeded AWS emulators and a fake API server whose ServiceAccount exists unannotated;
/// its kubeconfig lives in the returned directory.
async fn started() -> (
    AwsEmulators,
    Arc<FakeApi>,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(FakeApi {
        issuer: emulators.issuer_url().to_string(),
        annotations: Mutex::new(Some(serde_json::Map::new())),
        ..FakeApi::default()
    });
    let kubeconfig = fake_api_server::start(api.clone(), None, "team", dir.path()).await;
    (emulators, api, kubeconfig, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_killed_after_each_step_finishes_on_the_next_run() {
    let (emulators, api, kubeconfig, _dir) = started().await;

    // Killed after step 1: the role exists, the ServiceAccount is not annotated yet.
    bind_killed_at(
        &emulators,
        &api,
        &kubeconfig,
        "PATCH /api/v1/namespaces/team/serviceaccounts/web",
    )
    .await;
    assert_eq!(
        annotation(&api),
        None,
        "the annotation waits for the re-run"
    );
    let trust = trust_policy(&emulators)
        .await
        .expect("step 1 (the role) was done before the kill");
    assert!(trust.contains("system:serviceaccount:team:web"), "{trust}");

    // Killed after step 2: annotated, the stale-pod listing never answered.
    bind_killed_at(
        &emulators,
        &api,
        &kubeconfig,
        "GET /api/v1/namespaces/team/pods",
    )
    .await;
    assert_eq!(annotation(&api).as_deref(), Some(ROLE));

    // The re-run finishes: nothing left to change, nothing done twice.
    let (code, report) = bind(&emulators, &kubeconfig);
    let actions = actions(&report);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(
        !actions.iter().any(|a| a.ends_with(" applied")),
        "the re-run found everything done: {actions:?}"
    );
    assert_eq!(annotation(&api).as_deref(), Some(ROLE));
    let trust = trust_policy(&emulators).await.unwrap();
    assert_eq!(
        trust.matches("system:serviceaccount:team:web").count(),
        1,
        "the trust statement is not added twice: {trust}"
    );
    assert!(
        report["identity"]
            .as_str()
            .unwrap_or_default()
            .contains("web-role")
            || serde_json::to_string(&report).unwrap().contains(ROLE),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_killed_while_iam_answers_create_role_finishes_on_the_next_run() {
    let (emulators, api, kubeconfig, _dir) = started().await;
    let (proxy, applied) = gate_proxy::start(
        emulators.gate_url(),
        gate_proxy::Rule {
            matching: "Action=CreateRole",
            fault: gate_proxy::Fault::SwallowAnswer,
            delay: Duration::ZERO,
        },
    )
    .await;

    // IAM has made the role; bind is killed before its answer arrives.
    let child = bind_command_through(&emulators, &proxy, &kubeconfig)
        .spawn()
        .unwrap();
    kill_once(child, "CreateRole's answer", || {
        applied.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    let trust = trust_policy(&emulators)
        .await
        .expect("IAM made the role before the kill");
    assert!(trust.contains("system:serviceaccount:team:web"), "{trust}");
    assert_eq!(annotation(&api), None, "bind died before annotating");

    // The re-run finds the role it never heard of, adds nothing twice, and annotates.
    let (code, report) = bind(&emulators, &kubeconfig);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(annotation(&api).as_deref(), Some(ROLE));
    let trust = trust_policy(&emulators).await.unwrap();
    assert_eq!(
        trust.matches("system:serviceaccount:team:web").count(),
        1,
        "the trust statement is not added twice: {trust}"
    );
    let actions = actions(&report);
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("annotate ServiceAccount team/web") && a.ends_with(" applied")),
        "the re-run annotated the ServiceAccount: {actions:?}"
    );
}
