//! A stand-in for amazon-eks-pod-identity-webhook: an HTTPS mutating admission webhook that
//! patches pods as upstream's `pkg/handler/handler.go` does ([`super::eks_mutation`]), and
//! the `pod-identity-webhook` MutatingWebhookConfiguration EKS installs to call it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use tokio::net::TcpListener;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use super::admission::{AdmissionResponse, AdmissionReviewIn, AdmissionReviewOut};
use super::eks_mutation::{
    Jitter, Method, MutationSettings, SKIP_POD_LABEL, mutation_patch, service_account_name,
};
use super::tls::serving_tls;
use crate::https_server::serve_https;

/// Name of the MutatingWebhookConfiguration EKS installs.
pub const CONFIGURATION_NAME: &str = "pod-identity-webhook";
/// Name of its single webhook.
pub const WEBHOOK_NAME: &str = "iam-for-pods.amazonaws.com";
/// Path the webhook serves.
pub const MUTATE_PATH: &str = "/mutate";
/// Field manager used when applying the configuration.
const FIELD_MANAGER: &str = "podiam-e2e";
/// How long one ServiceAccount read may take (upstream: 1 s per try, with retries).
const SA_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the stand-in asks whether `(namespace, service account)` has a Pod Identity
/// association: EKS fills the real webhook's container-credentials configuration from its
/// association API, so the harness points this at the emulated EKS's store.
pub type AssociationLookup = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How the stand-in runs: the upstream flags that matter, and where it listens.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Listen address. The apiserver calls it, so it must be reachable from the apiserver's
    /// host; the default `127.0.0.1:0` picks a free port on loopback.
    pub bind: SocketAddr,
    /// `--aws-default-region`: when set, `AWS_DEFAULT_REGION` and `AWS_REGION` are injected.
    pub region: Option<String>,
    /// `--sts-regional-endpoint` (upstream default `false`; the SA annotation overrides it).
    pub regional_sts_default: bool,
    /// EKS Pod Identity associations as `(namespace, service account)`.
    pub pod_identity_associations: Vec<(String, String)>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            region: None,
            regional_sts_default: false,
            pod_identity_associations: Vec::new(),
        }
    }
}

/// What happened to one admission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionOutcome {
    /// Allowed with a patch that adds credentials.
    Mutated(Method),
    /// Allowed with upstream's patch, which adds nothing new (all already present).
    Unchanged(Method),
    /// Allowed without a patch (no role, ServiceAccount unreadable, …).
    NotMutated,
    /// Not allowed: the review or the pod could not be decoded (upstream's answer too).
    Rejected,
}

/// One line of the webhook's request log. Holds no token: admission requests carry none.
#[derive(Clone, Debug)]
pub struct AdmissionLogEntry {
    pub uid: String,
    pub namespace: String,
    /// The pod's name, or its `generateName` when it has none yet.
    pub pod: String,
    pub service_account: String,
    pub operation: String,
    pub dry_run: bool,
    pub outcome: AdmissionOutcome,
    pub reason: String,
    pub warnings: Vec<String>,
    /// Number of JSON Patch operations sent.
    pub patch_operations: usize,
}

impl AdmissionLogEntry {
    pub fn mutated(&self) -> bool {
        matches!(self.outcome, AdmissionOutcome::Mutated(_))
    }
}

struct WebhookState {
    client: kube::Client,
    settings: RwLock<MutationSettings>,
    /// Namespace → the emulated EKS that holds its associations (parallel workers each have
    /// their own, as the Pod Identity Agent routes them).
    association_routes: RwLock<HashMap<String, AssociationLookup>>,
    log: Mutex<Vec<AdmissionLogEntry>>,
}

/// A running stand-in for amazon-eks-pod-identity-webhook. Stops serving when dropped.
pub struct EksPodIdentityWebhook {
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    state: Arc<WebhookState>,
    server: JoinHandle<()>,
    // Only for `start_in_background`: the runtime it owns. Shut down on drop.
    runtime: Option<Runtime>,
    probes: std::sync::atomic::AtomicU32,
}

impl EksPodIdentityWebhook {
    /// Starts serving on the current tokio runtime, reading ServiceAccounts with `client`.
    ///
    /// That runtime must keep running while pods are created: if the thread creating pods
    /// blocks a current-thread runtime, admission calls time out and, `failurePolicy` being
    /// `Ignore`, pods are admitted unmutated. Use [`Self::start_in_background`] then.
    pub fn start(client: kube::Client, options: WebhookOptions) -> Result<Self> {
        let handle =
            Handle::try_current().context("EksPodIdentityWebhook::start needs a tokio runtime")?;
        Self::start_on(&handle, client, options, None)
    }

    /// Starts serving on a runtime of its own, with a client built from `config` inside it,
    /// so it keeps answering whatever the caller's threads do.
    pub fn start_in_background(config: kube::Config, options: WebhookOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("podiam-eks-webhook")
            .enable_all()
            .build()
            .context("starting the webhook's runtime")?;
        let handle = runtime.handle().clone();
        let client = {
            // kube's client spawns its buffer worker on the runtime it is built in.
            let _entered = handle.enter();
            kube::Client::try_from(config).context("building the webhook's Kubernetes client")?
        };
        Self::start_on(&handle, client, options, Some(runtime))
    }

    fn start_on(
        handle: &Handle,
        client: kube::Client,
        options: WebhookOptions,
        runtime: Option<Runtime>,
    ) -> Result<Self> {
        let listener = StdTcpListener::bind(options.bind)
            .with_context(|| format!("binding the webhook to {}", options.bind))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let url_ip = match addr.ip() {
            ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let url = format!(
            "https://{}{MUTATE_PATH}",
            SocketAddr::new(url_ip, addr.port())
        );
        let tls = serving_tls("pod-identity-webhook (podiam-e2e stand-in)", &[addr.ip()])?;

        let settings = MutationSettings {
            region: options.region,
            regional_sts_default: options.regional_sts_default,
            pod_identity_associations: options.pod_identity_associations.into_iter().collect(),
            pod_identity_jitter: Jitter::Random,
            ..MutationSettings::default()
        };
        let state = Arc::new(WebhookState {
            client,
            settings: RwLock::new(settings),
            association_routes: RwLock::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route(MUTATE_PATH, post(mutate))
            .with_state(state.clone());
        let config = tls.config;
        let server = handle.spawn(async move {
            // Registered with this runtime's reactor, hence converted inside it.
            if let Ok(listener) = TcpListener::from_std(listener) {
                serve_https(listener, config, router).await;
            }
        });
        Ok(Self {
            addr,
            url,
            ca_pem: tls.ca_pem,
            state,
            server,
            runtime,
            probes: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// `https://127.0.0.1:PORT/mutate`: the configuration's `clientConfig.url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the serving certificate: the configuration's `caBundle`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every admission request answered so far, oldest first.
    pub fn requests(&self) -> Vec<AdmissionLogEntry> {
        lock(&self.state.log).clone()
    }

    /// Adds an EKS Pod Identity association for `namespace`/`service_account`, as EKS does
    /// when one is created (only pods created afterwards are affected).
    pub fn associate_pod_identity(&self, namespace: &str, service_account: &str) {
        write(&self.state.settings)
            .pod_identity_associations
            .insert((namespace.to_owned(), service_account.to_owned()));
    }

    /// Removes an association added by [`Self::associate_pod_identity`] or the options.
    pub fn disassociate_pod_identity(&self, namespace: &str, service_account: &str) {
        write(&self.state.settings)
            .pod_identity_associations
            .remove(&(namespace.to_owned(), service_account.to_owned()));
    }

    /// Reads `namespace`'s associations from `lookup` (an emulated EKS's store) at every
    /// admission, so an association created through the EKS API affects the next pod.
    pub fn route_namespace(&self, namespace: &str, lookup: AssociationLookup) {
        write(&self.state.association_routes).insert(namespace.to_owned(), lookup);
    }

    pub fn unroute_namespace(&self, namespace: &str) {
        write(&self.state.association_routes).remove(namespace);
    }

    /// The MutatingWebhookConfiguration EKS installs, pointed at this server.
    pub fn configuration(&self) -> MutatingWebhookConfiguration {
        webhook_configuration(&self.url, &self.ca_pem)
    }

    /// Creates or updates the `pod-identity-webhook` MutatingWebhookConfiguration (server-side
    /// apply). The apiserver picks it up asynchronously: see [`Self::wait_until_called`].
    pub async fn register(&self, client: &kube::Client) -> Result<()> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        api.patch(
            CONFIGURATION_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&self.configuration()),
        )
        .await
        .with_context(|| format!("applying MutatingWebhookConfiguration {CONFIGURATION_NAME}"))?;
        Ok(())
    }

    /// Deletes the configuration; a missing one is fine.
    pub async fn unregister(client: &kube::Client) -> Result<()> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        match api
            .delete(CONFIGURATION_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e).context("deleting the pod-identity-webhook configuration"),
        }
    }

    /// Dry-run creates a probe pod in `namespace` until the apiserver calls this webhook for
    /// it, proving the registered configuration is in force.
    pub async fn wait_until_called(
        &self,
        client: &kube::Client,
        namespace: &str,
        timeout: Duration,
    ) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("no request reached the webhook");
        loop {
            let n = self
                .probes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("podiam-webhook-probe-{}-{n}", self.addr.port());
            if let Err(e) = api.create(&params, &probe_pod(&name)).await {
                last_error = format!("dry-run pod create: {e}");
            }
            if self
                .requests()
                .iter()
                .any(|r| r.pod == name && r.namespace == namespace)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the apiserver did not call the webhook at {} within {timeout:?}: {last_error}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for EksPodIdentityWebhook {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn probe_pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "probe".to_owned(),
                image: Some("registry.k8s.io/pause:3.10".to_owned()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// The `pod-identity-webhook` MutatingWebhookConfiguration as EKS configures it, with
/// `clientConfig.url` instead of EKS's in-control-plane endpoint.
pub fn webhook_configuration(url: &str, ca_pem: &str) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(CONFIGURATION_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: WEBHOOK_NAME.to_owned(),
            // As upstream's deploy manifest: its answer carries no apiVersion/kind, which the
            // API server accepts for v1beta1 reviews only.
            admission_review_versions: vec!["v1beta1".to_owned()],
            client_config: WebhookClientConfig {
                url: Some(url.to_owned()),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                service: None,
            },
            failure_policy: Some("Ignore".to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(LabelSelector::default()),
            object_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: SKIP_POD_LABEL.to_owned(),
                    operator: "DoesNotExist".to_owned(),
                    values: None,
                }]),
                match_labels: None,
            }),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: Some("*".to_owned()),
            }]),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(10),
            match_conditions: None,
        }]),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn mutate(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Upstream insists on exactly this content type.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/json" {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid Content-Type, expected `application/json`",
        )
            .into_response();
    }
    let response = match serde_json::from_slice::<AdmissionReviewIn>(&body) {
        Ok(review) => review_pod(&state, &review).await,
        Err(e) => AdmissionResponse::reject(e.to_string()),
    };
    // Upstream v0.6.17 answers a fresh `v1beta1.AdmissionReview{}` holding only the response:
    // no apiVersion/kind, whatever the request's version (hence the v1beta1-only registration).
    let out = AdmissionReviewOut {
        api_version: None,
        kind: None,
        response,
    };
    axum::Json(out).into_response()
}

async fn review_pod(state: &WebhookState, review: &AdmissionReviewIn) -> AdmissionResponse {
    let Some(request) = &review.request else {
        return AdmissionResponse::reject("bad content");
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let mut entry = AdmissionLogEntry {
        uid: request.uid.clone(),
        namespace: namespace.clone(),
        pod: request.name.clone().unwrap_or_default(),
        service_account: String::new(),
        operation: request.operation.clone().unwrap_or_default(),
        dry_run: request.dry_run.unwrap_or(false),
        outcome: AdmissionOutcome::Rejected,
        reason: String::new(),
        warnings: Vec::new(),
        patch_operations: 0,
    };
    let response = decide(state, request, &namespace, &mut entry).await;
    let mut response = response.unwrap_or_else(|message| {
        entry.outcome = AdmissionOutcome::Rejected;
        entry.reason = message.clone();
        AdmissionResponse::reject(message)
    });
    response.uid = request.uid.clone();
    tracing::debug!(
        namespace = %entry.namespace,
        pod = %entry.pod,
        outcome = ?entry.outcome,
        reason = %entry.reason,
        "pod-identity-webhook stand-in answered"
    );
    lock(&state.log).push(entry);
    response
}

async fn decide(
    state: &WebhookState,
    request: &super::admission::AdmissionRequest,
    namespace: &str,
    entry: &mut AdmissionLogEntry,
) -> std::result::Result<AdmissionResponse, String> {
    let object = request.object.clone().ok_or("bad content: no object")?;
    let mut pod: Pod = serde_json::from_value(object).map_err(|e| e.to_string())?;
    pod.metadata.namespace = Some(namespace.to_owned());
    if entry.pod.is_empty() {
        entry.pod = pod
            .metadata
            .name
            .clone()
            .or_else(|| pod.metadata.generate_name.clone())
            .unwrap_or_default();
    }
    let sa_name = service_account_name(&pod);
    entry.service_account = sa_name.clone();

    let api: Api<ServiceAccount> = Api::namespaced(state.client.clone(), namespace);
    let sa = match tokio::time::timeout(SA_LOOKUP_TIMEOUT, async {
        // Upstream's cache holds no ServiceAccount named "": nothing to ask the API.
        match sa_name.as_str() {
            "" => Ok(None),
            name => api.get_opt(name).await,
        }
    })
    .await
    {
        Ok(Ok(sa)) => sa,
        Ok(Err(e)) => {
            entry
                .warnings
                .push(format!("reading ServiceAccount {namespace}/{sa_name}: {e}"));
            None
        }
        Err(_) => {
            entry.warnings.push(format!(
                "reading ServiceAccount {namespace}/{sa_name}: timed out"
            ));
            None
        }
    };
    let mut settings = state
        .settings
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let routed = state
        .association_routes
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(namespace)
        .cloned();
    if routed.is_some_and(|associated| associated(namespace, &sa_name)) {
        settings
            .pod_identity_associations
            .insert((namespace.to_owned(), sa_name.clone()));
    }
    let mutation = mutation_patch(&pod, sa.as_ref(), &settings);
    entry.reason = mutation.reason;
    entry.warnings.extend(mutation.warnings);
    entry.patch_operations = mutation.patch.len();
    entry.outcome = match mutation.method {
        None => AdmissionOutcome::NotMutated,
        Some(method) if mutation.changed => AdmissionOutcome::Mutated(method),
        Some(method) => AdmissionOutcome::Unchanged(method),
    };
    if mutation.method.is_none() {
        return Ok(AdmissionResponse::allow());
    }
    AdmissionResponse::allow_with_patch(&mutation.patch).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::{Value, json};

    use super::*;

    /// A webhook whose apiserver does not exist: every ServiceAccount read fails.
    fn webhook_without_apiserver(options: WebhookOptions) -> EksPodIdentityWebhook {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        EksPodIdentityWebhook::start_in_background(config, options).unwrap()
    }

    fn https_client(webhook: &EksPodIdentityWebhook) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(webhook.ca_pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .unwrap()
    }

    fn review(api_version: &str) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": "AdmissionReview",
            "request": {
                "uid": "0b1c-uid",
                "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "resource": { "group": "", "version": "v1", "resource": "pods" },
                "namespace": "ns",
                "operation": "CREATE",
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": { "generateName": "job-" },
                    "spec": {
                        "serviceAccountName": "app",
                        "containers": [{ "name": "app", "image": "amazonlinux" }]
                    }
                }
            }
        })
    }

    #[tokio::test]
    async fn serves_admission_reviews_over_https() {
        let webhook = webhook_without_apiserver(WebhookOptions {
            pod_identity_associations: vec![("ns".to_owned(), "app".to_owned())],
            ..WebhookOptions::default()
        });
        assert!(webhook.url().starts_with("https://127.0.0.1:"));
        assert!(webhook.url().ends_with("/mutate"));
        let client = https_client(&webhook);

        for api_version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
            let answer: Value = client
                .post(webhook.url())
                .json(&review(api_version))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // As upstream v0.6.17: no apiVersion/kind in the answer, for either version.
            assert!(answer.get("apiVersion").is_none(), "{answer}");
            assert!(answer.get("kind").is_none(), "{answer}");
            let response = &answer["response"];
            assert_eq!(response["uid"], "0b1c-uid");
            assert_eq!(response["allowed"], true);
            assert_eq!(response["patchType"], "JSONPatch");
            let patch = base64::engine::general_purpose::STANDARD
                .decode(response["patch"].as_str().unwrap())
                .unwrap();
            let patch: Value = serde_json::from_slice(&patch).unwrap();
            assert_eq!(patch[0]["path"], "/metadata/labels");
        }
        let log = webhook.requests();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].pod, "job-");
        assert_eq!(log[0].namespace, "ns");
        assert_eq!(log[0].service_account, "app");
        assert_eq!(
            log[0].outcome,
            AdmissionOutcome::Mutated(Method::ContainerCredentials)
        );
        // The unreachable apiserver shows up as a warning.
        assert!(log[0].warnings[0].contains("reading ServiceAccount ns/app"));

        // Without the association the unreadable ServiceAccount means no mutation.
        webhook.disassociate_pod_identity("ns", "app");
        let answer: Value = client
            .post(webhook.url())
            .json(&review("admission.k8s.io/v1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patch"], Value::Null);
        assert_eq!(webhook.requests()[2].outcome, AdmissionOutcome::NotMutated);
    }

    #[tokio::test]
    async fn a_routed_namespace_is_asked_at_each_admission() {
        let webhook = webhook_without_apiserver(WebhookOptions::default());
        let client = https_client(&webhook);
        let associated = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = associated.clone();
        webhook.route_namespace(
            "ns",
            Arc::new(move |namespace: &str, sa: &str| {
                namespace == "ns" && sa == "app" && flag.load(std::sync::atomic::Ordering::SeqCst)
            }),
        );
        let outcome = |i: usize| webhook.requests()[i].outcome;
        let admit = || async {
            client
                .post(webhook.url())
                .json(&review("admission.k8s.io/v1"))
                .send()
                .await
                .unwrap()
        };
        admit().await;
        assert_eq!(outcome(0), AdmissionOutcome::NotMutated);
        // The association appears in the emulated EKS: the next pod is mutated.
        associated.store(true, std::sync::atomic::Ordering::SeqCst);
        admit().await;
        assert_eq!(
            outcome(1),
            AdmissionOutcome::Mutated(Method::ContainerCredentials)
        );
        webhook.unroute_namespace("ns");
        admit().await;
        assert_eq!(outcome(2), AdmissionOutcome::NotMutated);
    }

    #[tokio::test]
    async fn rejects_other_content_types_and_undecodable_pods() {
        let webhook = webhook_without_apiserver(WebhookOptions::default());
        let client = https_client(&webhook);
        let status = client
            .post(webhook.url())
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let mut bad = review("admission.k8s.io/v1");
        bad["request"]["object"]["spec"]["containers"] = json!("not a list");
        let answer: Value = client
            .post(webhook.url())
            .json(&bad)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["uid"], "0b1c-uid");
        assert!(answer["response"]["status"]["message"].is_string());
        assert_eq!(webhook.requests()[0].outcome, AdmissionOutcome::Rejected);
    }
}
