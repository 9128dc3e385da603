//! `kubectl podiam bind`: wire a ServiceAccount to a cloud identity the way the cloud's own
//! tool does (eksctl for IRSA), with the plan first. Planning only reads; `apply` carries the
//! plan out in order, cloud first (a ServiceAccount annotated before its identity trusts it
//! would hand pods an identity they cannot use), and stops at the first failure saying what was
//! done.
//!
//! Each mechanism's module plans its cloud half as a [`CloudPlan`]; the ServiceAccount half,
//! the apply loop, the partial-failure message and the stale pods are shared here.

pub mod aws_irsa;
pub mod aws_pod_identity;
pub mod aws_role;
pub mod azure_graph;
pub mod azure_wi;
pub mod gcp_iam_policy;
pub mod gcp_workload_identity;
pub mod plan;
pub mod service_account;
pub mod stale_pods;
pub mod text;
pub mod workload_labels;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use self::aws_pod_identity::PodIdentityRequest;
use self::aws_role::RoleRequest;
use self::azure_graph::{AzureBindTarget, GraphSession};
use self::azure_wi::AzureRequest;
use self::gcp_workload_identity::{GcpIamTarget, GsaRequest};
use self::plan::{BindReport, Change, ChangeStatus, DryRun, Operation, System};
use crate::error::{Error, Result};
use crate::exchange::aws_config::AwsTarget;

/// The cloud identity to bind.
#[derive(Debug, Clone)]
pub enum BindTarget {
    AwsIrsa(RoleRequest),
    AzureWorkloadIdentity(AzureRequest),
    GcpWorkloadIdentity(GsaRequest),
    AwsPodIdentity(PodIdentityRequest),
}

/// Where each cloud's APIs are (the same overrides as verify, so the emulators serve tests).
#[derive(Debug, Clone)]
pub struct CloudEndpoints {
    pub aws: AwsTarget,
    pub azure: AzureBindTarget,
    pub gcp_iam: GcpIamTarget,
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

    pub fn wildcard(&self) -> bool {
        self.service_account.contains('*') || self.namespace.contains('*')
    }
}

/// The operator's cloud sessions, from each cloud's standard credential chain; only the one the
/// target needs is set.
#[derive(Default)]
pub struct Operator {
    pub aws: Option<aws_config::SdkConfig>,
    pub azure: Option<GraphSession>,
    pub gcp: Option<gcp_iam_policy::GcpOperator>,
}

/// The cloud half of a binding, planned by the mechanism's module.
pub struct CloudPlan {
    /// `aws-irsa`, `aws-pod-identity`, `gcp-workload-identity`, `azure-workload-identity`.
    pub mechanism: &'static str,
    /// The cloud identity bound: role ARN, GSA email or client id.
    pub identity: String,
    /// Cloud changes, carried out before the ServiceAccount's.
    pub changes: Vec<Change>,
    /// Annotations the ServiceAccount must carry (none for Pod Identity).
    pub annotations: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Whether a pod already runs with the binding; pods for which this is false predate it.
    pub is_bound: Box<dyn Fn(&Pod) -> bool + Send + Sync>,
}

/// Plans, and unless `--dry-run=client`, applies.
pub async fn run(
    client: &kube::Client,
    clouds: &CloudEndpoints,
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
    let (operator, cloud) = match &request.target {
        BindTarget::AwsIrsa(role) => aws_irsa::plan(&clouds.aws, role, &issuer, request).await?,
        BindTarget::AzureWorkloadIdentity(azure) => {
            azure_wi::plan(client, &clouds.azure, azure, &issuer, request).await?
        }
        BindTarget::GcpWorkloadIdentity(gsa) => {
            gcp_workload_identity::plan(client, &clouds.gcp_iam, gsa, &issuer, request).await?
        }
        BindTarget::AwsPodIdentity(pod_identity) => {
            aws_pod_identity::plan(client, &clouds.aws, pod_identity, request).await?
        }
    };
    let CloudPlan {
        mechanism,
        identity,
        mut changes,
        annotations,
        mut warnings,
        is_bound,
    } = cloud;
    if request.wildcard() {
        if !annotations.is_empty() {
            warnings.push(format!(
                "the binding allows every ServiceAccount matching {}; annotate each of them with {} yourself",
                request.subject(),
                describe(&annotations)
            ));
        }
    } else {
        // Created when missing even without annotations (Pod Identity needs none).
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
    // Workload templates change last: pods they roll must see the annotated ServiceAccount.
    changes.sort_by_key(|c| matches!(c.operation, Operation::Workload(_)));
    let mut report = BindReport {
        api_version: crate::report::API_VERSION,
        kind: if request.dry_run == DryRun::Client {
            "BindPlan"
        } else {
            "BindResult"
        },
        service_account: format!("{}/{}", request.namespace, request.service_account),
        mechanism,
        identity,
        issuer,
        dry_run: request.dry_run,
        changes,
        stale_pods: Vec::new(),
        warnings,
    };
    if request.dry_run != DryRun::Client {
        apply(client, &operator, &mut report).await?;
    }
    if !request.wildcard() {
        let stale = stale_pods::find(
            client,
            &request.namespace,
            &request.service_account,
            is_bound.as_ref(),
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
        workload_labels::note_rolled(&report.changes, &mut report.stale_pods);
    }
    Ok(report)
}

fn describe(annotations: &BTreeMap<String, String>) -> String {
    annotations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operator session a change needs, or a clear error when the plan named a cloud whose
/// credentials were not loaded (a bug in the mechanism's planner).
fn session<'a, T>(session: &'a Option<T>, cloud: &str) -> Result<&'a T> {
    session
        .as_ref()
        .ok_or_else(|| Error::Cloud(format!("no {cloud} operator credentials were loaded")))
}

/// Carries out the plan in order; on failure, says what was changed and how to finish or undo.
async fn apply(client: &kube::Client, operator: &Operator, report: &mut BindReport) -> Result<()> {
    let server_dry_run = report.dry_run == DryRun::Server;
    for i in 0..report.changes.len() {
        let change = &report.changes[i];
        // Cloud APIs have no dry run: a server dry run validates the Kubernetes side only.
        if server_dry_run && change.system != System::Kubernetes {
            report.changes[i].status = ChangeStatus::NotValidated;
            continue;
        }
        let result = match &change.operation {
            Operation::ServiceAccount(op) => {
                service_account::apply(client, op, server_dry_run).await
            }
            Operation::AwsIam(op) => match session(&operator.aws, "AWS") {
                Ok(config) => aws_role::apply(config, op).await,
                Err(e) => Err(e),
            },
            Operation::AzureGraph(op) => match session(&operator.azure, "Azure") {
                Ok(graph) => graph.apply(op).await,
                Err(e) => Err(e),
            },
            Operation::Workload(op) => workload_labels::apply(client, op, server_dry_run).await,
            Operation::GcpIam(op) => match session(&operator.gcp, "Google") {
                Ok(gcp) => gcp_iam_policy::apply(gcp, op).await,
                Err(e) => Err(e),
            },
            Operation::AwsEks(op) => match session(&operator.aws, "AWS") {
                Ok(config) => aws_pod_identity::apply(config, op).await,
                Err(e) => Err(e),
            },
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
