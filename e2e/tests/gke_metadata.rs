//! The GKE metadata emulator in the real local cluster: pods reach it at 169.254.169.254:80
//! and are told apart by source IP through the cluster's API — annotated KSA → its GSA (token
//! only with the Workload Identity binding), unannotated KSA → the pool itself, hostNetwork →
//! the node's service account, and so are pods on a node without GKE's label; the header is
//! required; the node carries GKE's label; the metadata address leaves with the environment.
//!
//! Needs root, the binaries of `e2e/k8s/build.sh` and the harness venv, like `local_cluster`.
//! The cluster takes the machine's cluster lock itself: never wrap the test in `flock` on it
//! (it would wait for itself).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, AttachParams, DeleteParams, Patch, PatchParams, PostParams};
use podiam_e2e::cluster::cache_dir;
use podiam_e2e::emulators::gcp::{DEFAULT_NODE_SERVICE_ACCOUNT, GKE_METADATA_NODE_LABEL};
use podiam_e2e::runner::environment::Environment;
use podiam_e2e::setup::{CloudSetup, SetupVariables};
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "podiam-gke-metadata";
const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
const UNBOUND_GSA: &str = "unbound@my-project.iam.gserviceaccount.com";
const METADATA: &str =
    "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default";

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: gke-service-account
  annotations:
    iam.gke.io/gcp-service-account: gke-service-account@my-project.iam.gserviceaccount.com
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: unbound-ksa
  annotations:
    iam.gke.io/gcp-service-account: unbound@my-project.iam.gserviceaccount.com
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: plain-ksa
---
apiVersion: v1
kind: Pod
metadata:
  name: annotated
spec:
  serviceAccountName: gke-service-account
  containers: [{name: app, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: unbound
spec:
  serviceAccountName: unbound-ksa
  containers: [{name: app, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: unannotated
spec:
  serviceAccountName: plain-ksa
  containers: [{name: app, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  serviceAccountName: gke-service-account
  hostNetwork: true
  containers: [{name: app, image: busybox, command: ["sleep", "3600"]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_their_gke_identity_from_the_metadata_emulator() {
    let state_root = cache_dir().join("gke-metadata-test");
    let env = match Environment::start_local(&state_root).await {
        Ok(env) => env,
        Err(e) => panic!("the environment did not come up:\n{e:#}"),
    };
    // Served on the bridge's host address; pods reach it at 169.254.169.254:80 by DNAT.
    assert_eq!(
        env.gcp.metadata_address().ip(),
        std::net::IpAddr::from(podiam_e2e::cluster::pod_host_ip())
    );
    assert_eq!(env.link_local.len(), 2, "metadata and agent redirects");
    let nodes: Api<Node> = Api::all(env.client.clone());
    for node in nodes.list(&Default::default()).await.expect("nodes").items {
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get(GKE_METADATA_NODE_LABEL).map(String::as_str),
            Some("true")
        );
    }

    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let mut setup = CloudSetup::seed_gcp().gcp;
    setup.service_accounts[0].iam_policy.bindings[0].members = vec![format!(
        "serviceAccount:my-project.svc.id.goog[{NAMESPACE}/gke-service-account]"
    )];
    setup
        .service_accounts
        .push(serde_json::from_value(serde_json::json!({"email": UNBOUND_GSA})).unwrap());
    env.gcp
        .apply(
            &setup,
            &SetupVariables {
                issuer: env.aws.issuer_url().to_owned(),
                account_id: env.aws.account_id().to_owned(),
            },
        )
        .expect("GCP setup");
    // The ServiceAccount controller creates `default` asynchronously; wait for the namespace.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.create_pods(
        NAMESPACE,
        MANIFESTS,
        &["annotated", "unbound", "unannotated", "hostnet"],
    )
    .await
    .expect("pods run");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NAMESPACE);

    let flavored = |item: &str| {
        vec![
            "wget".to_owned(),
            "-q".to_owned(),
            "-O".to_owned(),
            "-".to_owned(),
            "--header".to_owned(),
            "Metadata-Flavor: Google".to_owned(),
            format!("{METADATA}/{item}"),
        ]
    };
    let (email, ok) = exec(&pods, "annotated", &flavored("email")).await;
    assert!(ok, "annotated pod: email request failed");
    assert_eq!(email, GSA);
    let (token, ok) = exec(&pods, "annotated", &flavored("token")).await;
    assert!(
        ok && token.contains("\"access_token\""),
        "annotated pod: no token"
    );

    let (_, ok) = exec(
        &pods,
        "annotated",
        &["wget", "-q", "-O", "-", &format!("{METADATA}/email")].map(str::to_owned),
    )
    .await;
    assert!(!ok, "a request without Metadata-Flavor must be refused");

    let (email, ok) = exec(&pods, "unbound", &flavored("email")).await;
    assert!(ok);
    assert_eq!(email, UNBOUND_GSA, "GKE answers the annotation's email");
    let (_, ok) = exec(&pods, "unbound", &flavored("token")).await;
    assert!(
        !ok,
        "no Workload Identity binding: the token must be refused"
    );

    let (email, ok) = exec(&pods, "unannotated", &flavored("email")).await;
    assert!(ok);
    assert_eq!(email, "my-project.svc.id.goog");

    // A hostNetwork pod is the host: 169.254.169.254 is served to the bridge's pods only (never
    // routed for the host, see cluster/link_local.rs), so it calls the emulator where it
    // listens, and is answered as the node.
    let mut direct = flavored("email");
    *direct.last_mut().unwrap() = format!(
        "http://{}/computeMetadata/v1/instance/service-accounts/default/email",
        env.gcp.metadata_address()
    );
    let (email, ok) = exec(&pods, "hostnet", &direct).await;
    assert!(ok);
    assert_eq!(email, DEFAULT_NODE_SERVICE_ACCOUNT);

    // A node without GKE's label (node pool without GKE_METADATA): its pods see the node.
    let node_name = nodes.list(&Default::default()).await.expect("nodes").items[0]
        .metadata
        .name
        .clone()
        .expect("node name");
    let set_label = |value: &'static str| {
        let nodes = nodes.clone();
        let node_name = node_name.clone();
        async move {
            let patch =
                serde_json::json!({"metadata": {"labels": {GKE_METADATA_NODE_LABEL: value}}});
            nodes
                .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("label node");
        }
    };
    set_label("false").await;
    let (email, ok) = exec(&pods, "annotated", &flavored("email")).await;
    set_label("true").await;
    assert!(ok);
    assert_eq!(email, DEFAULT_NODE_SERVICE_ACCOUNT);

    let log = env.gcp.request_log();
    assert!(
        log.iter().any(|e| e
            .action
            .contains(&format!("({NAMESPACE}/annotated as gke-service-account)"))),
        "{log:?}"
    );
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    env.down().await.expect("down");
    let addresses = std::process::Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip addr");
    assert!(
        !String::from_utf8_lossy(&addresses.stdout).contains("169.254.169.254"),
        "the metadata address must be gone after down"
    );
}

/// Runs `command` in container `app`; returns stdout (trimmed) and whether it exited 0.
async fn exec(pods: &Api<Pod>, pod: &str, command: &[String]) -> (String, bool) {
    let params = AttachParams::default()
        .container("app")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let run = async {
        let mut attached = match pods.exec(pod, command.iter().cloned(), &params).await {
            Ok(a) => a,
            Err(_) => return (String::new(), false),
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
        (String::from_utf8_lossy(&out).trim().to_owned(), ok)
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("exec timed out")
}
