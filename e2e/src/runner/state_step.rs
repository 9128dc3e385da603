//! `state` step: read what a command left behind — a Kubernetes object, or an emulator's own
//! record — without going through the plugin, and assert on it as JSON. This is how a scenario
//! proves that `bind` changed exactly what its plan said, and that a dry run changed nothing.
//!
//! Emulator records (`emulator: {cloud, record}`):
//! - aws `role/NAME`: `{name, arn, trustPolicy, attachedPolicies: [arn…]}`, `null` when absent.
//! - aws `pod-identity-associations`: `[{clusterName, namespace, serviceAccount, roleArn, associationId}]`.
//! - gcp `service-account/EMAIL`: `{email, iamPolicy: {bindings}, etag}`, `null` when absent.

use anyhow::{Context, Result, bail};
use aws_sdk_iam::error::ProvideErrorMetadata;
use kube::api::{Api, DynamicObject};
use kube::discovery::pinned_kind;
use serde_json::{Value, json};

use super::RunContext;
use crate::emulators::iam_directory::decode_policy_document;
use crate::scenario::Cloud;
use crate::scenario::assertion::Captures;
use crate::scenario::schema::{EmulatorRecord, ObjectRef, StateStep};

pub async fn run(
    ctx: &RunContext<'_>,
    namespace: &str,
    step: &StateStep,
    captures: &Captures,
) -> Result<()> {
    let (what, document) = match (&step.kubernetes, &step.emulator) {
        (Some(object), _) => (
            format!("{} {namespace}/{}", object.kind, object.name),
            kubernetes_object(&ctx.client, namespace, object).await?,
        ),
        (None, Some(record)) => {
            let name = record.record.replace("${NAMESPACE}", namespace);
            (
                format!("{:?} record {name}", record.cloud),
                emulator_record(ctx, record, &name).await?,
            )
        }
        (None, None) => bail!("state step names nothing to read"),
    };
    let failures: Vec<String> = step
        .assertions
        .iter()
        .filter_map(|a| a.check_with(&document, captures).err())
        .collect();
    if !failures.is_empty() {
        bail!(
            "{what}: {}\nread:\n{}",
            failures.join("\n"),
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    }
    Ok(())
}

async fn kubernetes_object(
    client: &kube::Client,
    namespace: &str,
    object: &ObjectRef,
) -> Result<Value> {
    let gvk = super::apply::namespaced_kind(&object.kind)?;
    let (resource, _) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let found = api
        .get_opt(&object.name)
        .await
        .with_context(|| format!("reading {} {}", object.kind, object.name))?;
    Ok(serde_json::to_value(found)?)
}

async fn emulator_record(
    ctx: &RunContext<'_>,
    record: &EmulatorRecord,
    name: &str,
) -> Result<Value> {
    match record.cloud {
        Cloud::Aws => aws_record(ctx, name).await,
        Cloud::Gcp => ctx
            .gcp
            .context("this worker has no GCP emulators")?
            .record(name),
        Cloud::Azure => ctx.azure.record(name),
    }
}

async fn aws_record(ctx: &RunContext<'_>, name: &str) -> Result<Value> {
    if name == "pod-identity-associations" {
        return Ok(Value::Array(
            ctx.aws
                .pod_identity_associations()
                .into_iter()
                .map(|a| {
                    json!({
                        "clusterName": a.cluster_name,
                        "namespace": a.namespace,
                        "serviceAccount": a.service_account,
                        "roleArn": a.role_arn,
                        "associationId": a.association_id,
                    })
                })
                .collect(),
        ));
    }
    let Some(role) = name.strip_prefix("role/") else {
        bail!("unknown AWS record {name:?} (role/NAME, pod-identity-associations)");
    };
    let iam = ctx.aws.admin().iam_client(ctx.aws.moto_url());
    let output = match iam.get_role().role_name(role).send().await {
        Ok(output) => output,
        Err(err) if err.code() == Some("NoSuchEntity") => return Ok(Value::Null),
        Err(err) => return Err(err).context(format!("IAM GetRole {role}")),
    };
    let role_record = output.role().context("GetRole without a role")?;
    let trust: Value = serde_json::from_str(&decode_policy_document(
        role_record
            .assume_role_policy_document()
            .unwrap_or_default(),
    ))
    .context("trust policy is not JSON")?;
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .with_context(|| format!("IAM ListAttachedRolePolicies {role}"))?;
    Ok(json!({
        "name": role_record.role_name(),
        "arn": role_record.arn(),
        "trustPolicy": trust,
        "attachedPolicies": attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect::<Vec<_>>(),
    }))
}
