//! Plain data shared by mechanisms, commands and renderers. Nothing here computes.

use serde::Serialize;

/// Outcome of one check, in the order checks are listed (fail first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Fail,
    Warn,
    Pass,
    /// A fact worth knowing that asks for nothing: never affects the verdict or the exit code;
    /// hidden in text output unless `-v`.
    Info,
    Skip,
}

/// One line of the checklist: a stable id (docs/checks.md), what was found, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

impl Check {
    pub fn pass(id: &'static str, message: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Pass,
            message: message.into(),
            remediation: None,
        }
    }

    pub fn skip(id: &'static str, message: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Skip,
            message: message.into(),
            remediation: None,
        }
    }

    /// A fact with a suggestion: never affects the verdict (see [`Status::Info`]).
    pub fn info(
        id: &'static str,
        message: impl Into<String>,
        suggestion: impl Into<String>,
    ) -> Self {
        Check {
            id,
            status: Status::Info,
            message: message.into(),
            remediation: Some(suggestion.into()),
        }
    }

    pub fn warn(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Warn,
            message: message.into(),
            remediation: Some(fix.into()),
        }
    }

    pub fn fail(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Fail,
            message: message.into(),
            remediation: Some(fix.into()),
        }
    }
}

/// How a pod is wired to a cloud identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismId {
    AwsIrsa,
    AwsPodIdentity,
    GcpWorkloadIdentity,
    AzureWorkloadIdentity,
    StaticCredentials,
    None,
}

impl MechanismId {
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismId::AwsIrsa => "aws-irsa",
            MechanismId::AwsPodIdentity => "aws-pod-identity",
            MechanismId::GcpWorkloadIdentity => "gcp-workload-identity",
            MechanismId::AzureWorkloadIdentity => "azure-workload-identity",
            MechanismId::StaticCredentials => "static-credentials",
            MechanismId::None => "none",
        }
    }
}

/// The principal a cloud actually returned (or, when no exchange ran, the configured one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub provider: &'static str,
    pub principal: String,
    /// Where the evidence came from, e.g. "token read by exec from /var/run/…".
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub container: String,
    /// `Pod`, or the workload kind whose template was judged.
    pub kind: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// No check failed, but the pod's cloud identity could not be established, or an
    /// expectation the user gave could not be judged (unless `--allow-skip`). Exit code 4.
    Incomplete,
}

/// The Kubernetes half of the pod's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesIdentity {
    pub username: String,
    pub groups: Vec<String>,
    pub automount_token: bool,
    /// What the ServiceAccount may do in the cluster beyond what every authenticated user may
    /// (discovery, self reviews); absent when no review could be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    /// Where `permissions` came from (rules review by impersonation, access review probes, or
    /// the manifests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_source: Option<String>,
}

/// One RBAC grant, summarised: a rule and where it applies (`namespace` or `cluster: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub verbs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cluster: bool,
}

/// Everything known about one pod (or workload template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportItem {
    pub pod: PodRef,
    pub service_account: String,
    pub kubernetes: KubernetesIdentity,
    pub mechanism: MechanismId,
    pub identity: Option<Identity>,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
    /// True when a cloud or cluster call could not be made (exit code 3 when nothing failed).
    #[serde(skip)]
    pub unreachable: bool,
}

impl ReportItem {
    /// The verdict of a judged pod: `fail` when a check failed; else `incomplete` when no
    /// identity was established, or when an expectation the user gave was skipped and
    /// `allow_skip` is off; else `pass`. `info` and `warn` never change it.
    pub fn verdict_of(checks: &[Check], identity: Option<&Identity>, allow_skip: bool) -> Verdict {
        if checks.iter().any(|c| c.status == Status::Fail) {
            Verdict::Fail
        } else if identity.is_none()
            || (!allow_skip
                && checks
                    .iter()
                    .any(|c| c.status == Status::Skip && crate::expectations::is_expectation(c.id)))
        {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        }
    }
}
