//! Runs scenarios against a cluster and the emulators: a fresh namespace each, cloud setup,
//! steps in order, diagnostics on failure, cleanup.

pub mod apply;
pub mod block_step;
pub mod catch;
pub mod cloud_reset;
pub mod environment;
pub mod images;
pub mod node_identity;
pub mod plugin_command;
pub mod podiam_step;
pub mod provider_support;
pub mod schedule;
pub mod state_step;
pub mod suite;
pub mod wait;
pub mod webhook_step;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};

use crate::emulators::azure::AzureEmulators;
use crate::emulators::gcp::GcpEmulators;
use crate::emulators::pod_identity_agent::AgentRoute;
use crate::emulators::{AwsEmulators, CloudFront, PodIdentityAgent};
use crate::scenario::{Cloud, Scenario, Step};
use crate::setup::SetupVariables;
use crate::webhooks::{AzureWorkloadIdentityWebhook, EksPodIdentityWebhook};

/// What every scenario runs against.
pub struct RunContext<'a> {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    /// The built `kubectl-podiam` binary.
    pub plugin: PathBuf,
    /// Global flags before every plugin run's own (e.g. `--context`).
    pub plugin_args: Vec<String>,
    pub aws: &'a AwsEmulators,
    /// The one set of GCP emulators (its metadata server has a fixed address), given to one
    /// worker only: GCP scenarios run there.
    pub gcp: Option<&'a GcpEmulators>,
    /// Shared by all workers; only scenarios with `cloud: azure` apply and reset it (and the
    /// suite runs them all on one worker).
    pub azure: &'a AzureEmulators,
    /// The cluster's service-account issuer: `${ISSUER}` in every scenario's setup.
    pub issuer: String,
    /// Keep namespaces and cloud objects after the run (`--keep`).
    pub keep: bool,
    /// The webhook stand-in, routed to this worker's EKS associations for the scenario's namespace.
    pub webhook: Option<&'a EksPodIdentityWebhook>,
    /// The Azure workload identity webhook stand-in (for `webhook` steps).
    pub azure_webhook: Option<&'a AzureWorkloadIdentityWebhook>,
    /// The Pod Identity Agent, routing this scenario's namespace to `aws`.
    pub pod_identity_agent: Option<&'a PodIdentityAgent>,
    /// The node's metadata services (EC2/Azure IMDS, GCE node mode), routing this scenario's
    /// namespace to its declared node identity.
    pub node_metadata: Option<std::sync::Arc<crate::emulators::node_metadata::NodeMetadata>>,
    /// The clouds' real names for pods (local provider), routing this namespace's AWS calls
    /// to `aws`.
    pub cloud_front: Option<&'a CloudFront>,
    /// The harness's iptables chain on the pod bridge (local provider), for `block` steps.
    pub egress_faults: Option<&'a crate::cluster::EgressFaults>,
    /// The kind cluster (kind provider): `block` steps are rules in its node.
    pub kind: Option<&'a crate::cluster::KindCluster>,
}

#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    pub name: String,
    pub file: PathBuf,
    pub duration: Duration,
    /// `None` when every step passed.
    pub failure: Option<String>,
    /// Diagnostics collected by `catch` (only on failure).
    pub diagnostics: String,
    /// Not run: why this provider cannot run it (`provider_support`).
    pub skipped: Option<String>,
}

impl ScenarioOutcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

pub async fn run(scenario: &Scenario, ctx: &RunContext<'_>) -> ScenarioOutcome {
    let start = Instant::now();
    let namespace = scenario.namespace();
    let mut cluster_scoped = Vec::new();
    let mut blocks = Vec::new();
    let mut webhooks_down = Vec::new();
    let failure = run_steps(
        scenario,
        ctx,
        &namespace,
        &mut cluster_scoped,
        &mut blocks,
        &mut webhooks_down,
    )
    .await
    .err()
    .map(|e| format!("{e:#}"));
    let diagnostics = if failure.is_some() {
        catch::collect(&scenario.spec.catch, ctx, &namespace).await
    } else {
        String::new()
    };
    // Always, even with --keep: a block must not outlive its scenario.
    block_step::release(ctx, blocks);
    // Always: a webhook out of service would break every later scenario.
    webhook_step::restore(ctx, &webhooks_down).await;
    if let Some(agent) = ctx.pod_identity_agent {
        agent.unroute_namespace(&namespace);
    }
    if let Some(webhook) = ctx.webhook {
        webhook.unroute_namespace(&namespace);
    }
    node_identity::unregister(ctx, &namespace);
    if let Some(front) = ctx.cloud_front {
        front.unroute_namespace(&namespace);
    }
    if !ctx.keep {
        ctx.aws.clear_pod_identity_associations();
        let _ = Api::<Namespace>::all(ctx.client.clone())
            .delete(&namespace, &DeleteParams::background())
            .await;
        // Deleting the namespace leaves cluster-scoped objects (ClusterRoleBindings…) behind.
        for object in &cluster_scoped {
            if let Err(e) = object.delete(&ctx.client).await {
                eprintln!("podiam-e2e: cleanup: {e:#}");
            }
        }
        let _ = cloud_reset::reset_aws(ctx.aws.gate_url(), ctx.aws.admin()).await;
        ctx.aws.forget_iam_cache();
        if let Some(gcp) = ctx.gcp {
            cloud_reset::reset_gcp(gcp);
        }
        if scenario.spec.cloud == Cloud::Azure {
            ctx.azure.reset();
        }
    }
    ScenarioOutcome {
        name: scenario.metadata.name.clone(),
        file: scenario.path.clone(),
        duration: start.elapsed(),
        failure,
        diagnostics,
        skipped: None,
    }
}

async fn run_steps(
    scenario: &Scenario,
    ctx: &RunContext<'_>,
    namespace: &str,
    cluster_scoped: &mut Vec<apply::ClusterScoped>,
    blocks: &mut Vec<block_step::Block>,
    webhooks_down: &mut Vec<crate::scenario::WebhookName>,
) -> Result<()> {
    create_namespace(&ctx.client, namespace).await?;
    let setup = cloud_reset::with_namespace(&scenario.spec.setup, namespace)?;
    ctx.aws
        .apply_for_issuer(&setup, &ctx.issuer)
        .await
        .context("cloud setup in the emulators")?;
    match ctx.gcp {
        Some(gcp) => gcp
            .apply(
                &setup.gcp,
                &SetupVariables {
                    issuer: ctx.issuer.clone(),
                    account_id: ctx.aws.account_id().to_owned(),
                },
            )
            .context("GCP setup in the emulators")?,
        None if scenario.spec.cloud == Cloud::Gcp || !setup.gcp.is_empty() => {
            anyhow::bail!("this worker has no GCP emulators; GCP scenarios run on worker 1")
        }
        None => {}
    }
    if scenario.spec.cloud == Cloud::Azure {
        ctx.azure
            .apply(
                &setup.azure,
                &SetupVariables {
                    issuer: ctx.issuer.clone(),
                    account_id: crate::emulators::ACCOUNT_ID.to_owned(),
                },
            )
            .context("Azure setup in the emulators")?;
    }
    node_identity::register(ctx, namespace, &setup.node)?;
    // Pod Identity: the webhook mutates pods of ServiceAccounts associated in this worker's
    // EKS (by the setup, or later through the EKS API, e.g. by `bind`), and the agent sends
    // this namespace's tokens to this worker's EKS Auth.
    if let Some(webhook) = ctx.webhook {
        let store = ctx.aws.eks_associations();
        webhook.route_namespace(
            namespace,
            std::sync::Arc::new(move |namespace: &str, service_account: &str| {
                store.is_associated(
                    crate::emulators::DEFAULT_CLUSTER_NAME,
                    namespace,
                    service_account,
                )
            }),
        );
    }
    if let Some(agent) = ctx.pod_identity_agent {
        agent.route_namespace(
            namespace,
            AgentRoute {
                endpoint: ctx.aws.gate_url().to_owned(),
                credentials: ctx.aws.admin().clone(),
            },
        );
    }
    if let Some(front) = ctx.cloud_front {
        front.route_namespace(namespace, ctx.aws.gate_url());
    }
    let base = scenario
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut captures = crate::scenario::assertion::Captures::new();
    for (i, step) in scenario.spec.steps.iter().enumerate() {
        let what = || format!("step {} ({})", i + 1, step_name(step));
        match step {
            Step::Apply(a) => apply::apply(&ctx.client, namespace, &base, a)
                .await
                .map(|applied| cluster_scoped.extend(applied)),
            Step::Wait(w) => wait::wait(&ctx.client, namespace, w).await,
            Step::Delete(d) => apply::delete(&ctx.client, namespace, d).await,
            Step::Podiam(p) => podiam_step::run(ctx, namespace, p, &mut captures).await,
            Step::State(st) => state_step::run(ctx, namespace, st, &captures).await,
            Step::Block(b) => block_step::run(ctx, namespace, b, blocks).await,
            Step::Webhook(w) => webhook_step::run(ctx, namespace, w, webhooks_down).await,
        }
        .with_context(what)?;
    }
    Ok(())
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Apply(_) => "apply",
        Step::Wait(_) => "wait",
        Step::Delete(_) => "delete",
        Step::Podiam(_) => "podiam",
        Step::State(_) => "state",
        Step::Block(_) => "block",
        Step::Webhook(_) => "webhook",
    }
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    // A namespace left terminating by an earlier run must be gone before it is reused.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            anyhow::bail!("namespace {name} from an earlier run is still terminating");
        }
        let _ = api.delete(name, &DeleteParams::background()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"podiam.dev/scenario": "true"}}
    }))?;
    api.create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    // The ServiceAccount controller creates `default` asynchronously; pods need it.
    let sas = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sas.get_opt("default").await?.is_none() {
        if Instant::now() > deadline {
            anyhow::bail!(
                "the default ServiceAccount never appeared in {name}: is kube-controller-manager running?"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
