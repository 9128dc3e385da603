//! `kubectl podiam bind`: wire a ServiceAccount to a cloud identity the way the cloud's own
//! tool does (eksctl for IRSA), with the plan first. Planning only reads; `apply` carries the
//! plan out in order, cloud first (a ServiceAccount annotated before its role trusts it would
//! hand pods a role they cannot assume), and stops at the first failure saying what was done.

pub mod aws_role;
pub mod plan;
pub mod service_account;
pub mod stale_pods;
pub mod text;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use self::aws_role::RoleRequest;
use self::plan::{BindReport, ChangeStatus, DryRun, System};
use crate::error::{Error, Result};
use crate::exchange::aws_config::AwsTarget;
use crate::mechanisms::aws_irsa::annotations as irsa;

/// The cloud identity to bind.
#[derive(Debug, Clone)]
pub enum BindTarget {
    AwsIrsa(RoleRequest),
}

#[derive(Debug, Clone)]
pub struct BindRequest {
    pub namespace: String,
    pub service_account: String,
    pub target: BindTarget,
    pub dry_run: DryRun,
    pub overwrite: bool,
    pub restart: bool,
    pub allow_wildcard_subject: bool,
}

impl BindRequest {
    pub fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    fn wildcard(&self) -> bool {
        self.service_account.contains('*') || self.namespace.contains('*')
    }
}

/// Plans, and unless `--dry-run=client`, applies.
pub async fn run(
    client: &kube::Client,
    aws: &AwsTarget,
    request: &BindRequest,
) -> Result<BindReport> {
    if request.wildcard() && !request.allow_wildcard_subject {
        return Err(Error::Refused(format!(
            "{} is a wildcard subject: every matching ServiceAccount would get this identity. \
             Bind one ServiceAccount, or pass --allow-wildcard-subject if that is really meant",
            request.subject()
        )));
    }
    if !request.wildcard() {
        validate_name(&request.service_account)?;
    }
    let issuer = crate::kube::issuer::service_account_issuer(client).await?;
    let BindTarget::AwsIrsa(role_request) = &request.target;
    let config = aws.operator().await.ok_or_else(|| {
        Error::Cloud(
            "no AWS credentials in the standard chain (environment, profile, SSO): bind needs them to read and change IAM"
                .into(),
        )
    })?;
    let (role, mut changes) =
        aws_role::plan(&config, role_request, &issuer, &request.subject()).await?;
    let mut warnings = Vec::new();
    if request.wildcard() {
        warnings.push(format!(
            "the trust policy allows every ServiceAccount matching {}; annotate each of them with {}={} yourself",
            request.subject(),
            irsa::ROLE_ARN,
            role.arn
        ));
    } else {
        let mut annotations = BTreeMap::from([(irsa::ROLE_ARN.to_owned(), role.arn.clone())]);
        if role_request.audience != irsa::DEFAULT_AUDIENCE {
            annotations.insert(irsa::AUDIENCE.to_owned(), role_request.audience.clone());
        }
        changes.extend(
            service_account::plan(
                client,
                &request.namespace,
                &request.service_account,
                &annotations,
                request.overwrite,
            )
            .await?,
        );
    }
    let mut report = BindReport {
        api_version: crate::report::API_VERSION,
        kind: if request.dry_run == DryRun::Client {
            "BindPlan"
        } else {
            "BindResult"
        },
        service_account: format!("{}/{}", request.namespace, request.service_account),
        mechanism: "aws-irsa",
        identity: role.arn.clone(),
        issuer,
        dry_run: request.dry_run,
        changes,
        stale_pods: Vec::new(),
        warnings,
    };
    if request.dry_run != DryRun::Client {
        apply(client, &config, &mut report).await?;
    }
    if !request.wildcard() {
        let role_arn = role.arn.clone();
        let stale = stale_pods::find(
            client,
            &request.namespace,
            &request.service_account,
            |pod| runs_with_role(pod, &role_arn),
        )
        .await?;
        let restart = request.restart && request.dry_run != DryRun::Client;
        report.stale_pods = stale_pods::handle(
            client,
            &request.namespace,
            &stale,
            restart,
            request.dry_run == DryRun::Server,
        )
        .await?;
    }
    Ok(report)
}

/// Carries out the plan in order; on failure, says what was changed and how to finish or undo.
async fn apply(
    client: &kube::Client,
    config: &aws_config::SdkConfig,
    report: &mut BindReport,
) -> Result<()> {
    let server_dry_run = report.dry_run == DryRun::Server;
    for i in 0..report.changes.len() {
        let change = &report.changes[i];
        let result = match (change.system, server_dry_run) {
            // Cloud APIs have no dry run: a server dry run validates the Kubernetes side only.
            (System::Aws | System::Gcp | System::Azure, true) => {
                report.changes[i].status = ChangeStatus::NotValidated;
                continue;
            }
            (System::Aws, false) => aws_role::apply(config, &change.operation).await,
            (System::Kubernetes, _) => {
                service_account::apply(client, &change.operation, server_dry_run).await
            }
            (System::Gcp | System::Azure, false) => Err(Error::Usage(format!(
                "no {} client in this build",
                change.system.as_str()
            ))),
        };
        match result {
            Ok(()) => {
                report.changes[i].status = if server_dry_run {
                    ChangeStatus::ValidatedByServer
                } else {
                    ChangeStatus::Applied
                };
            }
            Err(error) => {
                report.changes[i].status = ChangeStatus::Failed;
                return Err(partial_failure(report, i, &error));
            }
        }
    }
    Ok(())
}

fn partial_failure(report: &BindReport, failed: usize, error: &Error) -> Error {
    let done: Vec<String> = report.changes[..failed]
        .iter()
        .filter(|c| c.status == ChangeStatus::Applied)
        .map(|c| {
            format!(
                "{} {}: {} (undo: {})",
                c.action,
                c.resource,
                c.detail,
                c.undo_hint()
            )
        })
        .collect();
    let remaining: Vec<String> = report.changes[failed + 1..]
        .iter()
        .map(|c| format!("{} {}: {}", c.action, c.resource, c.detail))
        .collect();
    let failed = &report.changes[failed];
    Error::PartialBind {
        failed: format!("{} {}: {error}", failed.action, failed.resource),
        done,
        remaining,
    }
}

/// Does a container of `pod` already run with this role (the webhook mutated it after the
/// annotation, or it presets the same role)?
fn runs_with_role(pod: &Pod, role_arn: &str) -> bool {
    pod.spec.iter().any(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.env.as_ref())
            .flatten()
            .any(|e| e.name == irsa::ENV_ROLE_ARN && e.value.as_deref() == Some(role_arn))
    })
}

/// ServiceAccount names are DNS-1123 subdomains.
fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{name:?} is not a valid ServiceAccount name (lowercase letters, digits, '-' and '.')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_follow_kubernetes() {
        assert!(validate_name("s3-reader").is_ok());
        assert!(validate_name("a.b").is_ok());
        assert!(validate_name("S3").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("").is_err());
    }
}
