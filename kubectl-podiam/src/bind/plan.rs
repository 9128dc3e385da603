//! What `bind` will change (or changed), as data: printed by `--dry-run=client`, then carried
//! out in order by `apply`. The plan and the result are the same list, so the plan shown is
//! exactly what is done.

use serde::Serialize;

/// Where a change lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Kubernetes,
    Aws,
    Gcp,
    Azure,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Kubernetes => "kubernetes",
            System::Aws => "aws",
            System::Gcp => "gcp",
            System::Azure => "azure",
        }
    }
}

/// Whether a change has been carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeStatus {
    /// Planned, not carried out (`--dry-run=client`, or before apply).
    Planned,
    /// Accepted by the API server's dry run; nothing persisted.
    ValidatedByServer,
    /// Not validated by a server dry run: the cloud API has none.
    NotValidated,
    Applied,
    Failed,
}

/// The concrete call behind a change; each system's module defines and carries out its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    ServiceAccount(super::service_account::ServiceAccountOperation),
    AwsIam(super::aws_role::IamOperation),
    AzureGraph(super::azure_graph::GraphOperation),
    Workload(super::workload_labels::WorkloadOperation),
    GcpIam(super::gcp_iam_policy::GcpIamOperation),
    AwsEks(super::aws_pod_identity::EksOperation),
}

impl Operation {
    /// How to undo this change by hand, for the message after a partial failure.
    pub fn undo_hint(&self) -> String {
        match self {
            Operation::ServiceAccount(op) => op.undo_hint(),
            Operation::AwsIam(op) => op.undo_hint(),
            Operation::AzureGraph(op) => op.undo_hint(),
            Operation::Workload(op) => op.undo_hint(),
            Operation::GcpIam(op) => op.undo_hint(),
            Operation::AwsEks(op) => op.undo_hint(),
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub system: System,
    /// `create`, `update`, `attach`, `annotate`, `label`.
    pub action: &'static str,
    /// e.g. `ServiceAccount default/s3-reader`, `IAM role my-pod-role`.
    pub resource: String,
    /// What the change does, in one line.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    pub status: ChangeStatus,
    #[serde(skip)]
    pub operation: Operation,
}

impl Change {
    pub fn undo_hint(&self) -> String {
        self.operation.undo_hint()
    }
}

/// A pod that still runs without the binding: webhooks mutate pods only when they are created.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StalePod {
    pub name: String,
    /// `Deployment/web`, or `None` for a bare pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What was (or would be) done: `restarted`, `run bind with --restart`, `delete and recreate it`.
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    None,
    Client,
    Server,
}

/// `kind: BindPlan` (dry run) or `BindResult`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub service_account: String,
    /// `aws-irsa`, `aws-pod-identity`, `gcp-workload-identity`, `azure-workload-identity`.
    pub mechanism: &'static str,
    /// The cloud identity bound: role ARN, GSA email or client id.
    pub identity: String,
    /// The cluster's service-account issuer the binding trusts.
    pub issuer: String,
    pub dry_run: DryRun,
    pub changes: Vec<Change>,
    pub stale_pods: Vec<StalePod>,
    pub warnings: Vec<String>,
}

impl BindReport {
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}
