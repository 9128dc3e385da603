//! The Kubernetes half of the pod's identity: what its ServiceAccount may do in the cluster
//! (`k8s.rbac.*`) and whether it carries an API token it does not need (`k8s.token.automount`).
//! Cross-cutting, like static credentials: run for every pod whatever its cloud mechanism.
//! A review that cannot be made is a `skip` with the reason, never a failure, and does not make
//! the run "unreachable": verify is about the cloud identity.

pub mod automount;
pub mod checks;
pub mod evidence;
pub mod manifests;
pub mod rules;
pub mod sensitive;

use crate::answer_cache::AnswerCache;
use crate::evidence::Probe;
use crate::kube::access_review::ServiceAccountUser;
use crate::model::{Check, Permission};
use crate::subject::PodSubject;

pub use manifests::ManifestRbac;

/// Answer-cache kind of a live review of one ServiceAccount.
pub const RBAC_REVIEW: &str = "k8s-rbac-review";

/// How RBAC can be reviewed in this run.
#[derive(Debug, Clone, Default)]
pub struct RbacOptions {
    /// The operator runs with `--as`/`--as-group`: the ServiceAccount cannot be impersonated
    /// on top, so only SubjectAccessReviews (asked as that user) are tried.
    pub operator_impersonates: bool,
    /// Offline: the Roles, ClusterRoles and bindings in the `-f` input.
    pub manifests: ManifestRbac,
}

/// The checks and the report's `kubernetes.permissions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesAccess {
    pub checks: Vec<Check>,
    pub permissions: Option<Vec<Permission>>,
    pub permissions_source: Option<String>,
}

/// The review is the API server's answer for the ServiceAccount (its user name and groups),
/// whatever the pod: pods of one ServiceAccount share one review (`answers`), so `verify -A`
/// asks once per ServiceAccount, not once per pod.
pub async fn review(
    pod: &PodSubject,
    probe: &Probe,
    options: &RbacOptions,
    answers: &AnswerCache,
) -> KubernetesAccess {
    let sa = ServiceAccountUser {
        namespace: pod.namespace.clone(),
        name: pod.service_account_name().to_string(),
    };
    let review = match probe {
        Probe::Live { client, timeout } => {
            let how = if options.operator_impersonates {
                "access-reviews"
            } else {
                "impersonation"
            };
            answers
                .get_or_compute(RBAC_REVIEW, &[&sa.namespace, &sa.name, how], || {
                    evidence::live(client, &sa, *timeout, options.operator_impersonates)
                })
                .await
        }
        Probe::Offline { .. } => evidence::offline(&options.manifests, &sa),
    };
    if let Err(reason) = &review {
        tracing::debug!(%reason, "no RBAC review");
    }
    from_review(pod, &review)
}

/// Checks and permissions from a review (live or offline); separate for tests.
pub fn from_review(pod: &PodSubject, review: &evidence::Review) -> KubernetesAccess {
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    let mut checks = checks::checks(review, &sa, &pod.namespace);
    let rbac_use = match review {
        Ok(e) if e.has_own_grants() => automount::RbacUse::Granted,
        Ok(_) => automount::RbacUse::DefaultsOnly,
        Err(_) => automount::RbacUse::Unknown,
    };
    checks.push(automount::check(pod, &rbac_use));
    let (permissions, permissions_source) = match review {
        Ok(e) => (Some(e.permissions(&pod.namespace)), Some(e.source.clone())),
        Err(_) => (None, None),
    };
    KubernetesAccess {
        checks,
        permissions,
        permissions_source,
    }
}
