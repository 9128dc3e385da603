//! `webhook` step: take an identity webhook stand-in out of service for the rest of the
//! scenario, as production loses it — its Deployment down (`down`: the configuration calls an
//! in-cluster Service with no ready endpoint; the API server then applies the failurePolicy)
//! or its configuration deleted (`unregistered`). [`restore`] registers it again when the
//! scenario ends, pass or fail, and waits until the API server calls it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ServiceReference};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::RunContext;
use crate::scenario::{WebhookName, WebhookState, WebhookStep};
use crate::webhooks::{
    AZURE_CONFIGURATION_NAME, AzureWorkloadIdentityWebhook, CONFIGURATION_NAME,
    EksPodIdentityWebhook,
};

const FIELD_MANAGER: &str = "podiam-e2e";
const SETTLE: Duration = Duration::from_secs(30);

pub async fn run(
    ctx: &RunContext<'_>,
    namespace: &str,
    step: &WebhookStep,
    down: &mut Vec<WebhookName>,
) -> Result<()> {
    let (name, mut configuration) = match step.name {
        WebhookName::Eks => (
            CONFIGURATION_NAME,
            ctx.webhook
                .context("this run has no EKS webhook stand-in")?
                .configuration(),
        ),
        WebhookName::Azure => (
            AZURE_CONFIGURATION_NAME,
            ctx.azure_webhook
                .context("this run has no Azure webhook stand-in")?
                .configuration(),
        ),
    };
    down.push(step.name);
    let api: Api<MutatingWebhookConfiguration> = Api::all(ctx.client.clone());
    match step.state {
        WebhookState::Unregistered => match step.name {
            WebhookName::Eks => EksPodIdentityWebhook::unregister(&ctx.client).await?,
            WebhookName::Azure => AzureWorkloadIdentityWebhook::unregister(&ctx.client).await?,
        },
        WebhookState::Down => {
            let service = step.service.clone().context("down needs a service")?;
            for webhook in configuration.webhooks.iter_mut().flatten() {
                webhook.client_config.url = None;
                webhook.client_config.service = Some(ServiceReference {
                    namespace: namespace.to_owned(),
                    name: service.clone(),
                    path: Some("/mutate".to_owned()),
                    port: Some(443),
                });
            }
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&configuration),
            )
            .await
            .with_context(|| format!("pointing {name} at Service {namespace}/{service}"))?;
        }
    }
    wait_until_not_called(ctx, namespace, step.name).await
}

/// Registers every webhook taken down again (errors are printed: the scenario is over).
pub async fn restore(ctx: &RunContext<'_>, down: &[WebhookName]) {
    for name in down {
        let result = match name {
            WebhookName::Eks => match ctx.webhook {
                Some(w) => restore_eks(ctx, w).await,
                None => Ok(()),
            },
            WebhookName::Azure => match ctx.azure_webhook {
                Some(w) => restore_azure(ctx, w).await,
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            eprintln!("podiam-e2e: restoring the {name:?} webhook: {e:#}");
        }
    }
}

async fn restore_eks(ctx: &RunContext<'_>, w: &EksPodIdentityWebhook) -> Result<()> {
    w.register(&ctx.client).await?;
    w.wait_until_called(&ctx.client, "default", SETTLE).await
}

async fn restore_azure(ctx: &RunContext<'_>, w: &AzureWorkloadIdentityWebhook) -> Result<()> {
    w.register(&ctx.client).await?;
    w.wait_until_called(&ctx.client, "default", SETTLE).await
}

/// Dry-run creates a pod the webhook would be called for until the stand-in is not called for
/// it: the API server has picked up the change.
async fn wait_until_not_called(
    ctx: &RunContext<'_>,
    namespace: &str,
    name: WebhookName,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = Instant::now() + SETTLE;
    for n in 0.. {
        let probe = format!("podiam-webhook-down-probe-{n}");
        // With failurePolicy Fail the create is refused: fine, the question is who was called.
        let _ = api.create(&params, &probe_pod(&probe, name)).await;
        let called = match name {
            WebhookName::Eks => ctx.webhook.is_some_and(|w| {
                w.requests()
                    .iter()
                    .any(|r| r.pod == probe && r.namespace == namespace)
            }),
            WebhookName::Azure => ctx.azure_webhook.is_some_and(|w| {
                w.requests()
                    .iter()
                    .any(|r| r.pod == probe && r.namespace == namespace)
            }),
        };
        if !called {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the API server still calls the {name:?} webhook after {SETTLE:?}")
}

fn probe_pod(name: &str, webhook: WebhookName) -> Pod {
    let labels = match webhook {
        WebhookName::Eks => None,
        WebhookName::Azure => Some(BTreeMap::from([(
            "azure.workload.identity/use".to_owned(),
            "true".to_owned(),
        )])),
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels,
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
