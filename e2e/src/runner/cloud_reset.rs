//! Between scenarios the emulated AWS account is emptied (roles, OIDC providers, buckets), and
//! the emulated GCP project too (service accounts, pools, buckets, issued tokens), so each
//! scenario's `setup` is the whole cloud-side truth it runs against.

use anyhow::{Context, Result};

use crate::emulators::AdminCredentials;
use crate::emulators::gcp::GcpEmulators;
use crate::setup::CloudSetup;

/// `${NAMESPACE}` in a scenario's setup becomes the scenario's namespace.
pub fn with_namespace(setup: &CloudSetup, namespace: &str) -> Result<CloudSetup> {
    let text = serde_json::to_string(setup)?.replace("${NAMESPACE}", namespace);
    Ok(serde_json::from_str(&text)?)
}

pub async fn reset_aws(endpoint: &str, admin: &AdminCredentials) -> Result<()> {
    let iam = admin.iam_client(endpoint);
    let roles = iam.list_roles().send().await.context("listing roles")?;
    for role in roles.roles() {
        let name = role.role_name();
        let inline = iam.list_role_policies().role_name(name).send().await?;
        for policy in inline.policy_names() {
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await?;
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await?;
        for policy in attached.attached_policies() {
            if let Some(arn) = policy.policy_arn() {
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await?;
            }
        }
        iam.delete_role().role_name(name).send().await?;
    }
    let providers = iam.list_open_id_connect_providers().send().await?;
    for p in providers.open_id_connect_provider_list() {
        if let Some(arn) = p.arn() {
            iam.delete_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await?;
        }
    }
    let s3 = admin.s3_client(endpoint);
    let buckets = s3.list_buckets().send().await.context("listing buckets")?;
    for bucket in buckets.buckets() {
        let Some(name) = bucket.name() else { continue };
        let objects = s3.list_objects_v2().bucket(name).send().await?;
        for o in objects.contents() {
            if let Some(key) = o.key() {
                s3.delete_object().bucket(name).key(key).send().await?;
            }
        }
        s3.delete_bucket().bucket(name).send().await?;
    }
    Ok(())
}

pub fn reset_gcp(gcp: &GcpEmulators) {
    gcp.reset();
}
