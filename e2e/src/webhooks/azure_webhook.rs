//! A stand-in for the Azure Workload Identity mutating webhook (v1.6.0): an HTTPS admission
//! server applying [`super::azure_mutation`], and the MutatingWebhookConfiguration its
//! manifest installs (`failurePolicy: Fail`, objectSelector `azure.workload.identity/use:
//! "true"`, CREATE pods), pointed at this server by URL.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex};
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
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use super::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReviewIn, AdmissionReviewOut,
};
use super::azure_mutation::{
    AzureMutationSettings, ProxySidecarPlacement, USE_LABEL, azure_mutation, hashed_pod_name,
};
use super::tls::serving_tls;
use crate::https_server::serve_https;

/// Name of the configuration upstream's manifest installs.
pub const AZURE_CONFIGURATION_NAME: &str = "azure-wi-webhook-mutating-webhook-configuration";
/// Its single webhook.
pub const AZURE_WEBHOOK_NAME: &str = "mutation.azure-workload-identity.io";
/// Path upstream serves.
pub const AZURE_MUTATE_PATH: &str = "/mutate-v1-pod";
const FIELD_MANAGER: &str = "podiam-e2e";
const SA_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the stand-in listens and what it injects.
#[derive(Clone, Debug)]
pub struct AzureWebhookOptions {
    /// Must be reachable from the apiserver; `127.0.0.1:0` picks a free loopback port.
    pub bind: SocketAddr,
    pub settings: AzureMutationSettings,
}

impl Default for AzureWebhookOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            settings: AzureMutationSettings::default(),
        }
    }
}

/// One admission request answered. No tokens: admission requests carry none.
#[derive(Clone, Debug)]
pub struct AzureAdmissionLogEntry {
    pub uid: String,
    pub namespace: String,
    /// The pod's name, or `"<generateName> (prefix)"`.
    pub pod: String,
    pub service_account: String,
    pub dry_run: bool,
    /// `None` when allowed; else upstream's error message (the pod was refused).
    pub denied: Option<String>,
    pub patch_operations: usize,
    pub volume_name: String,
}

struct WebhookState {
    client: kube::Client,
    settings: AzureMutationSettings,
    log: Mutex<Vec<AzureAdmissionLogEntry>>,
}

/// A running Azure Workload Identity webhook stand-in. Stops serving when dropped.
pub struct AzureWorkloadIdentityWebhook {
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    state: Arc<WebhookState>,
    server: JoinHandle<()>,
    runtime: Option<Runtime>,
    probes: std::sync::atomic::AtomicU32,
}

impl AzureWorkloadIdentityWebhook {
    /// Serves on the current tokio runtime (which must keep running while pods are created:
    /// with `failurePolicy: Fail` a blocked runtime refuses labelled pods).
    pub fn start(client: kube::Client, options: AzureWebhookOptions) -> Result<Self> {
        let handle = Handle::try_current()
            .context("AzureWorkloadIdentityWebhook::start needs a tokio runtime")?;
        Self::start_on(&handle, client, options, None)
    }

    /// Serves on a runtime of its own, with a client built from `config` inside it.
    pub fn start_in_background(config: kube::Config, options: AzureWebhookOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("podiam-azure-webhook")
            .enable_all()
            .build()
            .context("starting the Azure webhook's runtime")?;
        let handle = runtime.handle().clone();
        let client = {
            let _entered = handle.enter();
            kube::Client::try_from(config).context("building the webhook's Kubernetes client")?
        };
        Self::start_on(&handle, client, options, Some(runtime))
    }

    fn start_on(
        handle: &Handle,
        client: kube::Client,
        options: AzureWebhookOptions,
        runtime: Option<Runtime>,
    ) -> Result<Self> {
        let listener = StdTcpListener::bind(options.bind)
            .with_context(|| format!("binding the Azure webhook to {}", options.bind))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let url_ip = match addr.ip() {
            ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let url = format!(
            "https://{}{AZURE_MUTATE_PATH}",
            SocketAddr::new(url_ip, addr.port())
        );
        let tls = serving_tls("azure-wi-webhook (podiam-e2e stand-in)", &[addr.ip()])?;
        let state = Arc::new(WebhookState {
            client,
            settings: options.settings,
            log: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route(AZURE_MUTATE_PATH, post(mutate))
            .with_state(state.clone());
        let config = tls.config;
        let server = handle.spawn(async move {
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

    /// `https://127.0.0.1:PORT/mutate-v1-pod`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every admission request answered so far, oldest first.
    pub fn requests(&self) -> Vec<AzureAdmissionLogEntry> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn configuration(&self) -> MutatingWebhookConfiguration {
        azure_webhook_configuration(&self.url, &self.ca_pem)
    }

    /// Creates or updates the configuration (server-side apply).
    pub async fn register(&self, client: &kube::Client) -> Result<()> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        api.patch(
            AZURE_CONFIGURATION_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&self.configuration()),
        )
        .await
        .with_context(|| {
            format!("applying MutatingWebhookConfiguration {AZURE_CONFIGURATION_NAME}")
        })?;
        Ok(())
    }

    /// Deletes the configuration; a missing one is fine. With `failurePolicy: Fail`, a
    /// configuration left behind by a stopped webhook refuses every labelled pod.
    pub async fn unregister(client: &kube::Client) -> Result<()> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        match api
            .delete(AZURE_CONFIGURATION_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e).context("deleting the Azure webhook configuration"),
        }
    }

    /// Dry-run creates a labelled probe pod in `namespace` until this webhook is called.
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
            let name = format!("podiam-azure-webhook-probe-{}-{n}", self.addr.port());
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
                    "the apiserver did not call the Azure webhook at {} within {timeout:?}: {last_error}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for AzureWorkloadIdentityWebhook {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where upstream would put the proxy sidecar in this cluster: it asks the API server's
/// version once, at start (`AzureMutationSettings::proxy_placement`).
pub async fn proxy_placement_of(client: &kube::Client) -> Result<ProxySidecarPlacement> {
    let info = client
        .apiserver_version()
        .await
        .context("reading the API server version for the Azure webhook")?;
    Ok(ProxySidecarPlacement::for_server_version(
        &info.git_version,
    )?)
}

fn probe_pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(USE_LABEL.to_owned(), "true".to_owned())])),
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

/// Upstream's MutatingWebhookConfiguration (deploy/azure-wi-webhook.yaml, v1.6.0) with
/// `clientConfig.url` instead of the in-cluster Service.
pub fn azure_webhook_configuration(url: &str, ca_pem: &str) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(AZURE_CONFIGURATION_NAME.to_owned()),
            labels: Some(BTreeMap::from([(
                "azure-workload-identity.io/system".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: AZURE_WEBHOOK_NAME.to_owned(),
            admission_review_versions: vec!["v1".to_owned(), "v1beta1".to_owned()],
            client_config: WebhookClientConfig {
                url: Some(url.to_owned()),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                service: None,
            },
            failure_policy: Some("Fail".to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: None,
            object_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(USE_LABEL.to_owned(), "true".to_owned())])),
                match_expressions: None,
            }),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: None,
            }]),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(10),
            match_conditions: None,
        }]),
    }
}

async fn mutate(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "contentType=application/json expected",
        )
            .into_response();
    }
    let (review, response) = match serde_json::from_slice::<AdmissionReviewIn>(&body) {
        Ok(review) => {
            let response = match &review.request {
                Some(request) => review_pod(&state, request).await,
                None => errored("admission review has no request"),
            };
            (Some(review), response)
        }
        Err(e) => (None, errored(&e.to_string())),
    };
    axum::Json(AdmissionReviewOut {
        api_version: review.as_ref().and_then(|r| r.api_version.clone()),
        kind: review.as_ref().and_then(|r| r.kind.clone()),
        response,
    })
    .into_response()
}

/// controller-runtime's `admission.Errored(http.StatusBadRequest, err)`.
fn errored(message: &str) -> AdmissionResponse {
    AdmissionResponse {
        allowed: false,
        status: Some(json!({ "code": 400, "message": message })),
        ..AdmissionResponse::default()
    }
}

async fn review_pod(state: &WebhookState, request: &AdmissionRequest) -> AdmissionResponse {
    let namespace = request.namespace.clone().unwrap_or_default();
    let mut entry = AzureAdmissionLogEntry {
        uid: request.uid.clone(),
        namespace: namespace.clone(),
        pod: request.name.clone().unwrap_or_default(),
        service_account: String::new(),
        dry_run: request.dry_run.unwrap_or(false),
        denied: None,
        patch_operations: 0,
        volume_name: String::new(),
    };
    let mut response = match decide(state, request, &namespace, &mut entry).await {
        Ok(response) => response,
        Err(message) => {
            entry.denied = Some(message.clone());
            errored(&message)
        }
    };
    response.uid = request.uid.clone();
    state
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(entry);
    response
}

async fn decide(
    state: &WebhookState,
    request: &AdmissionRequest,
    namespace: &str,
    entry: &mut AzureAdmissionLogEntry,
) -> std::result::Result<AdmissionResponse, String> {
    let object = request.object.clone().ok_or("no object in the request")?;
    let pod: Pod = serde_json::from_value(object).map_err(|e| e.to_string())?;
    entry.pod = hashed_pod_name(&pod);
    let sa_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    entry.service_account = sa_name.clone();
    let api: Api<ServiceAccount> = Api::namespaced(state.client.clone(), namespace);
    let sa = match tokio::time::timeout(SA_LOOKUP_TIMEOUT, api.get(&sa_name)).await {
        Ok(Ok(sa)) => sa,
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
            return Err(format!("serviceaccounts \"{sa_name}\" not found"));
        }
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "timed out reading ServiceAccount {namespace}/{sa_name}"
            ));
        }
    };
    let mutation = azure_mutation(&pod, namespace, &sa, &state.settings)?;
    entry.patch_operations = mutation.patch.len();
    entry.volume_name = mutation.volume_name.clone();
    AdmissionResponse::allow_with_patch(&mutation.patch).map_err(|e| e.to_string())
}
