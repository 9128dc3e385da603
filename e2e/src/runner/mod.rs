//! Runs scenarios against a cluster and the emulators: a fresh namespace each, cloud setup,
//! steps in order, diagnostics on failure, cleanup.

pub mod apply;
pub mod catch;
pub mod cloud_reset;
pub mod environment;
pub mod images;
pub mod plugin_command;
pub mod podiam_step;
pub mod suite;
pub mod wait;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};

use crate::emulators::AwsEmulators;
use crate::emulators::azure::AzureEmulators;
use crate::scenario::{Cloud, Scenario, Step};
use crate::setup::SetupVariables;

/// What every scenario runs against.
pub struct RunContext<'a> {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    /// The built `kubectl-podiam` binary.
    pub plugin: PathBuf,
    pub aws: &'a AwsEmulators,
    /// Shared by all workers; only scenarios with `cloud: azure` apply and reset it (and the
    /// suite runs them all on one worker).
    pub azure: &'a AzureEmulators,
    /// The cluster's service-account issuer: `${ISSUER}` in every scenario's setup.
    pub issuer: String,
    /// Keep namespaces and cloud objects after the run (`--keep`).
    pub keep: bool,
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
}

impl ScenarioOutcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

pub async fn run(scenario: &Scenario, ctx: &RunContext<'_>) -> ScenarioOutcome {
    let start = Instant::now();
    let namespace = scenario.namespace();
    let failure = run_steps(scenario, ctx, &namespace)
        .await
        .err()
        .map(|e| format!("{e:#}"));
    let diagnostics = if failure.is_some() {
        catch::collect(&scenario.spec.catch, ctx, &namespace).await
    } else {
        String::new()
    };
    if !ctx.keep {
        let _ = Api::<Namespace>::all(ctx.client.clone())
            .delete(&namespace, &DeleteParams::background())
            .await;
        let _ = cloud_reset::reset_aws(ctx.aws.gate_url(), ctx.aws.admin()).await;
        ctx.aws.forget_iam_cache();
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
    }
}

async fn run_steps(scenario: &Scenario, ctx: &RunContext<'_>, namespace: &str) -> Result<()> {
    create_namespace(&ctx.client, namespace).await?;
    let setup = cloud_reset::with_namespace(&scenario.spec.setup, namespace)?;
    ctx.aws
        .apply_for_issuer(&setup, &ctx.issuer)
        .await
        .context("cloud setup in the emulators")?;
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
    let base = scenario
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    for (i, step) in scenario.spec.steps.iter().enumerate() {
        let what = || format!("step {} ({})", i + 1, step_name(step));
        match step {
            Step::Apply(a) => apply::apply(&ctx.client, namespace, &base, a).await,
            Step::Wait(w) => wait::wait(&ctx.client, namespace, w).await,
            Step::Delete(d) => apply::delete(&ctx.client, namespace, d).await,
            Step::Podiam(p) => podiam_step::run(ctx, namespace, p).await,
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
