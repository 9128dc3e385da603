//! `bind --gcp-sa`: GKE Workload Identity. The GSA's IAM policy grants
//! `roles/iam.workloadIdentityUser` to `serviceAccount:PROJECT.svc.id.goog[NS/KSA]` (PROJECT
//! being the cluster's project, whose workload pool the cluster uses), and the KSA gets the
//! `iam.gke.io/gcp-service-account` annotation the GKE metadata server reads.
//!
//! No pod needs recreating: there is no webhook; the GKE metadata server looks the KSA's
//! annotation up when a pod asks for a token, so running pods get the GSA on their next token
//! request.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use kube::api::ListParams;

use super::gcp_iam_policy::{self, GcpIamOperation, GcpOperator};
use super::plan::{Change, ChangeStatus, Operation, System};
use super::{BindRequest, CloudPlan, Operator};
use crate::cloud::gcp as gke;
use crate::error::{Error, Result};
use crate::exchange::CloudError;
use crate::exchange::{gcp_adc, gcp_iam, gcp_sts};

/// What the user asked for with `--gcp-sa`.
#[derive(Debug, Clone)]
pub struct GsaRequest {
    pub email: String,
    /// `--gcp-project`: the project whose workload pool the cluster uses.
    pub project: Option<String>,
    /// `--allow-no-gke-metadata-server`: bind although no node runs the GKE metadata server.
    pub allow_no_metadata_server: bool,
}

/// Where the IAM API is (the same override style as verify's `--gcs-endpoint-url`).
#[derive(Debug, Clone, Default)]
pub struct GcpIamTarget {
    /// `--gcp-iam-endpoint-url`; else `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM`; else Google.
    pub iam_endpoint_url: Option<String>,
    pub timeout: Option<Duration>,
}

/// A GKE cluster as its issuer names it:
/// `https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeCluster {
    pub project: String,
    pub location: String,
    pub name: String,
}

impl GkeCluster {
    pub fn from_issuer(issuer: &str) -> Option<Self> {
        let rest = issuer
            .trim_end_matches('/')
            .strip_prefix("https://container.googleapis.com/v1/projects/")?;
        let (project, rest) = rest.split_once('/')?;
        let rest = rest
            .strip_prefix("locations/")
            .or_else(|| rest.strip_prefix("zones/"))?;
        let (location, name) = rest.split_once("/clusters/")?;
        let valid = |s: &str| !s.is_empty() && !s.contains('/');
        (valid(project) && valid(location) && valid(name)).then(|| Self {
            project: project.to_owned(),
            location: location.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// `(account name, project)` of a user-managed GSA email.
pub fn parse_email(email: &str) -> Result<(String, String)> {
    if gke::NODE_SA_SUFFIXES.iter().any(|s| email.ends_with(s)) {
        return Err(Error::Refused(format!(
            "{email} is a default (node) service account: pods bound to it get the node's powers, \
             which Workload Identity exists to avoid. Create a dedicated one: \
             gcloud iam service-accounts create NAME --project=PROJECT"
        )));
    }
    let pattern = regex::Regex::new(gke::GSA_PATTERN).expect("GSA pattern compiles");
    let captures = pattern.captures(email).ok_or_else(|| {
        Error::Usage(format!(
            "--gcp-sa {email:?} is not a Google service account email (NAME@PROJECT.iam.gserviceaccount.com)"
        ))
    })?;
    Ok((captures[1].to_owned(), captures[2].to_owned()))
}

/// Project ids: 6–30 lowercase letters, digits and dashes, starting with a letter.
fn valid_project_id(project: &str) -> bool {
    let bytes = project.as_bytes();
    (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && !project.ends_with('-')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn enable_commands(cluster: Option<&GkeCluster>, project: &str) -> String {
    let (name, location) = cluster
        .map(|c| (c.name.as_str(), c.location.as_str()))
        .unwrap_or(("CLUSTER", "LOCATION"));
    format!(
        "  gcloud container clusters update {name} --location={location} --workload-pool={project}{pool}\n  \
         gcloud container node-pools update NODEPOOL --cluster={name} --location={location} --workload-metadata=GKE_METADATA",
        pool = gke::POOL_SUFFIX
    )
}

/// Refuses when no node runs the GKE metadata server (Workload Identity off for the cluster
/// or every node pool); warns when only some do.
async fn check_nodes(
    client: &kube::Client,
    cluster: Option<&GkeCluster>,
    project: &str,
    allow: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let nodes = match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            warnings.push(format!(
                "could not list nodes to check for the GKE metadata server ({}); make sure the node pools run with --workload-metadata=GKE_METADATA",
                Error::from_kube("list nodes", e)
            ));
            return Ok(());
        }
    };
    let enabled = nodes.iter().filter(|n| runs_metadata_server(n)).count();
    node_verdict(enabled, nodes.len(), allow, cluster, project, warnings)
}

/// Does the node carry the label GKE sets on node pools with `GKE_METADATA`?
fn runs_metadata_server(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(gke::NODE_LABEL))
        .is_some_and(|v| v == "true")
}

/// Refuse (none of `total` nodes runs the metadata server), warn (some don't), or pass.
fn node_verdict(
    enabled: usize,
    total: usize,
    allow: bool,
    cluster: Option<&GkeCluster>,
    project: &str,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if total == 0 {
        warnings.push(
            "the cluster has no nodes yet: new node pools need --workload-metadata=GKE_METADATA"
                .into(),
        );
        return Ok(());
    }
    if enabled == 0 && !allow {
        return Err(Error::Refused(format!(
            "no node of this cluster runs the GKE metadata server (none has the label {}=true), so no pod can act as a Google service account: Workload Identity is not enabled for the cluster or its node pools.\n\
             Enable it first:\n{}\n\
             (pass --allow-no-gke-metadata-server if the pods get this identity another way, e.g. fleet Workload Identity with a credential configuration file)",
            gke::NODE_LABEL,
            enable_commands(cluster, project)
        )));
    }
    if enabled < total {
        warnings.push(format!(
            "{} of {total} nodes lack {}=true: pods scheduled there get the node's identity, not this binding",
            total - enabled,
            gke::NODE_LABEL
        ));
    }
    Ok(())
}

pub async fn plan(
    client: &kube::Client,
    target: &GcpIamTarget,
    gsa: &GsaRequest,
    issuer: &str,
    request: &BindRequest,
) -> Result<(Operator, CloudPlan)> {
    if request.wildcard() {
        return Err(Error::Refused(format!(
            "{} is a wildcard subject, and IAM has no wildcard for GKE ServiceAccounts: bind each ServiceAccount by name",
            request.subject()
        )));
    }
    let (name, email_project) = parse_email(&gsa.email)?;
    let cluster = GkeCluster::from_issuer(issuer);
    let mut warnings = Vec::new();
    let project = match (&gsa.project, &cluster) {
        (Some(project), _) => {
            if !valid_project_id(project) {
                return Err(Error::Usage(format!(
                    "--gcp-project {project:?} is not a project id (6-30 lowercase letters, digits, dashes)"
                )));
            }
            if let Some(c) = cluster.as_ref().filter(|c| &c.project != project) {
                warnings.push(format!(
                    "the cluster's issuer names project {}; its pods are members of {}{} unless fleet Workload Identity says otherwise",
                    c.project,
                    c.project,
                    gke::POOL_SUFFIX
                ));
            }
            project.clone()
        }
        (None, Some(c)) => c.project.clone(),
        (None, None) => email_project,
    };
    check_nodes(
        client,
        cluster.as_ref(),
        &project,
        gsa.allow_no_metadata_server,
        &mut warnings,
    )
    .await?;

    let timeout = target.timeout.unwrap_or(Duration::from_secs(30));
    let token = gcp_adc::operator_token(timeout)
        .await
        .map_err(|e| Error::Cloud(format!("Google credentials: {e}")))?;
    let operator = GcpOperator {
        http: gcp_sts::http_client(timeout),
        iam_endpoint: gcp_iam::endpoint(target.iam_endpoint_url.as_deref()),
        token,
    };
    let member = gke::binding_member(&project, &request.namespace, &request.service_account);
    let role = gke::ROLE_WORKLOAD_IDENTITY_USER;
    let before = match gcp_iam::get_iam_policy(
        &operator.http,
        &operator.iam_endpoint,
        &operator.token,
        &gsa.email,
    )
    .await
    {
        Ok(policy) => policy,
        Err(CloudError::Rejected { code, .. }) if code == "NOT_FOUND" => {
            return Err(Error::Refused(format!(
                "the Google service account {} does not exist: create it first:\n  gcloud iam service-accounts create {name} --project={}",
                gsa.email,
                gsa.email
                    .split_once('@')
                    .and_then(|(_, d)| d.split_once('.'))
                    .map_or("PROJECT", |(p, _)| p)
            )));
        }
        Err(e) => {
            return Err(gcp_iam_policy::cloud_error(
                &format!("getIamPolicy {}", gsa.email),
                e,
            ));
        }
    };
    let mut changes = Vec::new();
    if let Some(after) = gcp_iam_policy::with_member(&before, role, &member) {
        changes.push(Change {
            system: System::Gcp,
            action: "update",
            resource: format!("GCP service account {}", gsa.email),
            detail: format!("IAM policy: grant {role} to {member}; other bindings kept"),
            before: Some(gcp_iam_policy::for_display(&before)),
            after: Some(gcp_iam_policy::for_display(&after)),
            status: ChangeStatus::Planned,
            operation: Operation::GcpIam(GcpIamOperation::AddPolicyMember {
                email: gsa.email.clone(),
                role: role.to_owned(),
                member: member.clone(),
            }),
        });
        warnings.push(
            "IAM changes usually take effect within 2 minutes (7 or more at times); until then the metadata server may still refuse tokens for this ServiceAccount".into(),
        );
    }
    let annotated = Api::<ServiceAccount>::namespaced(client.clone(), &request.namespace)
        .get_opt(&request.service_account)
        .await
        .ok()
        .flatten()
        .and_then(|sa| sa.metadata.annotations)
        .and_then(|a| a.get(gke::GSA).cloned());
    if !changes.is_empty() || annotated.as_deref() != Some(gsa.email.as_str()) {
        let running =
            super::stale_pods::find(client, &request.namespace, &request.service_account, |_| {
                false
            })
            .await
            .map(|pods| pods.len())
            .unwrap_or(0);
        if running > 0 {
            warnings.push(format!(
                "{running} pod(s) already use this ServiceAccount and need no restart: the GKE metadata server reads the annotation on each token request (a client library keeps a token it already holds until it expires, up to an hour)"
            ));
        }
    }
    let annotations = BTreeMap::from([(gke::GSA.to_owned(), gsa.email.clone())]);
    let plan = CloudPlan {
        mechanism: "gcp-workload-identity",
        identity: gsa.email.clone(),
        changes,
        annotations,
        warnings,
        // The GKE metadata server reads the annotation per token request: no pod is stale.
        // (A client library keeps a token it already has until it expires, up to an hour.)
        is_bound: Box::new(|_| true),
    };
    Ok((
        Operator {
            gcp: Some(operator),
            ..Operator::default()
        },
        plan,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gke_issuers_name_their_cluster() {
        assert_eq!(
            GkeCluster::from_issuer(
                "https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/prod"
            ),
            Some(GkeCluster {
                project: "my-project".into(),
                location: "us-central1".into(),
                name: "prod".into()
            })
        );
        assert_eq!(
            GkeCluster::from_issuer(
                "https://container.googleapis.com/v1/projects/p-123456/zones/europe-west1-b/clusters/c"
            )
            .map(|c| c.location),
            Some("europe-west1-b".into())
        );
        assert!(GkeCluster::from_issuer("https://oidc.eks.us-east-1.amazonaws.com/id/X").is_none());
    }

    #[test]
    fn nodes_without_the_metadata_server_refuse_or_warn() {
        let node = |labels: serde_json::Value| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n", "labels": labels}}))
                .unwrap()
        };
        assert!(runs_metadata_server(&node(
            serde_json::json!({gke::NODE_LABEL: "true"})
        )));
        assert!(!runs_metadata_server(&node(
            serde_json::json!({gke::NODE_LABEL: "false"})
        )));
        assert!(!runs_metadata_server(&node(serde_json::json!({}))));

        let cluster = GkeCluster::from_issuer(
            "https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/prod",
        );
        let mut warnings = Vec::new();
        let refused = node_verdict(0, 3, false, cluster.as_ref(), "my-project", &mut warnings)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("gcloud container clusters update prod --location=us-central1 --workload-pool=my-project.svc.id.goog"),
            "{refused}"
        );
        assert!(
            refused.contains("--workload-metadata=GKE_METADATA"),
            "{refused}"
        );
        assert!(node_verdict(0, 3, true, None, "my-project", &mut warnings).is_ok());
        assert!(
            warnings.iter().any(|w| w.starts_with("3 of 3 nodes lack")),
            "{warnings:?}"
        );
        warnings.clear();
        assert!(node_verdict(2, 3, false, None, "my-project", &mut warnings).is_ok());
        assert!(warnings[0].starts_with("1 of 3 nodes lack"), "{warnings:?}");
        warnings.clear();
        assert!(node_verdict(3, 3, false, None, "my-project", &mut warnings).is_ok());
        assert!(warnings.is_empty());
    }

    #[test]
    fn emails_and_projects() {
        assert_eq!(
            parse_email("gke-service-account@my-project.iam.gserviceaccount.com").unwrap(),
            ("gke-service-account".into(), "my-project".into())
        );
        assert!(matches!(
            parse_email("1234567890-compute@developer.gserviceaccount.com"),
            Err(Error::Refused(_))
        ));
        assert!(matches!(
            parse_email("someone@example.com"),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            parse_email("Gsa@my-project.iam.gserviceaccount.com"),
            Err(Error::Usage(_))
        ));
        assert!(valid_project_id("my-project"));
        assert!(!valid_project_id("My-Project"));
        assert!(!valid_project_id("short"));
    }
}
