//! What is known about a ServiceAccount's RBAC and how: a live review (rules review plus
//! access reviews by impersonation, or access reviews only), or the manifests only.

use std::time::Duration;

use super::manifests::ManifestRbac;
use super::rules::{Grant, Rule, Scope};
use super::sensitive::{Answer, QUESTIONS, answer_from_grants};
use crate::kube::access_review::{self, ReviewError, ServiceAccountUser};
use crate::model::Permission;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// SelfSubjectRulesReview + SelfSubjectAccessReviews impersonating the ServiceAccount.
    Impersonation,
    /// SubjectAccessReviews only: yes/no answers, no rules.
    AccessReviews,
    /// The Roles and bindings in `verify -f` input.
    Manifests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacEvidence {
    pub method: Method,
    /// Human description of the source, for the report.
    pub source: String,
    /// The rules, when they are visible (rules review, manifests).
    pub grants: Option<Vec<Grant>>,
    pub answers: Vec<Answer>,
    /// Incomplete reviews, unresolved role references, why impersonation was not used.
    pub notes: Vec<String>,
}

/// Either evidence, or why there is none (a `skip`, never a failure).
pub type Review = Result<RbacEvidence, String>;

const DISCOVERY_URLS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
    // system:service-account-issuer-discovery, bound to every ServiceAccount by default.
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/",
    "/openid/v1/jwks",
    "/openid/v1/jwks/",
];
const SELF_REVIEW_GROUPS: &[&str] = &["authorization.k8s.io", "authentication.k8s.io"];
const SELF_REVIEWS: &[&str] = &[
    "selfsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "selfsubjectreviews",
];

/// The rules every authenticated user (or every ServiceAccount) has by default
/// (system:basic-user, system:discovery, system:public-info-viewer,
/// system:service-account-issuer-discovery): not the ServiceAccount's own grants.
pub fn is_default(rule: &Rule) -> bool {
    if rule.is_resource_rule() {
        rule.verbs.iter().all(|v| v == "create")
            && rule
                .api_groups
                .iter()
                .all(|g| SELF_REVIEW_GROUPS.contains(&g.as_str()))
            && rule
                .resources
                .iter()
                .all(|r| SELF_REVIEWS.contains(&r.as_str()))
            && rule.resource_names.is_empty()
    } else {
        rule.verbs.iter().all(|v| v == "get")
            && rule
                .non_resource_urls
                .iter()
                .all(|u| DISCOVERY_URLS.contains(&u.as_str()))
    }
}

impl RbacEvidence {
    /// The grants beyond the defaults, as rules (when visible).
    pub fn own_grants(&self) -> Option<Vec<&Grant>> {
        self.grants
            .as_ref()
            .map(|g| g.iter().filter(|g| !is_default(&g.rule)).collect())
    }

    /// Whether the ServiceAccount has any grant beyond the defaults; with access reviews only,
    /// whether any sensitive question was answered yes.
    pub fn has_own_grants(&self) -> bool {
        match self.own_grants() {
            Some(g) => !g.is_empty(),
            None => self.answers.iter().any(|a| a.allowed),
        }
    }

    /// For the report: visible rules beyond the defaults, plus the allowed answers the rules
    /// cannot show (cluster-wide answers when the rules came from a one-namespace review).
    pub fn permissions(&self, namespace: &str) -> Vec<Permission> {
        let mut out: Vec<Permission> = self
            .own_grants()
            .unwrap_or_default()
            .iter()
            .map(|g| g.permission())
            .collect();
        for a in self.answers.iter().filter(|a| a.allowed) {
            let cluster_wide = !a.question.namespaced;
            let shown_by_rules = match self.method {
                Method::Manifests => true,
                Method::Impersonation => !cluster_wide,
                Method::AccessReviews => false,
            };
            if shown_by_rules {
                continue;
            }
            let q = a.question;
            let resource = if q.subresource.is_empty() {
                q.resource.to_string()
            } else {
                format!("{}/{}", q.resource, q.subresource)
            };
            let permission = Grant {
                scope: if cluster_wide {
                    Scope::Cluster
                } else {
                    Scope::Namespace(namespace.to_string())
                },
                rule: Rule {
                    verbs: vec![q.verb.into()],
                    api_groups: vec![q.group.into()],
                    resources: vec![resource],
                    ..Default::default()
                },
            }
            .permission();
            if !out.contains(&permission) {
                out.push(permission);
            }
        }
        out
    }
}

/// Live: rules review + access reviews impersonating the ServiceAccount; when impersonation is
/// forbidden (or the operator already impersonates), SubjectAccessReviews as the operator;
/// when neither is possible, or the API fails or times out, the reason.
pub async fn live(
    client: &kube::Client,
    sa: &ServiceAccountUser,
    timeout: Duration,
    operator_impersonates: bool,
) -> Review {
    let why_not = if operator_impersonates {
        "the operator already impersonates (--as/--as-group) and Kubernetes does not nest impersonation".to_string()
    } else {
        match impersonated(client, sa, timeout).await {
            Ok(evidence) => return Ok(evidence),
            Err(ReviewError::Forbidden(m)) => format!(
                "impersonating {} is forbidden (needs `impersonate` on serviceaccounts in namespace {}): {m}",
                sa.username(),
                sa.namespace
            ),
            // Not a permission problem (timeout, API error): access reviews would fare no
            // better, and each would wait out the timeout again.
            Err(ReviewError::Failed(m)) => {
                return Err(format!(
                    "the review impersonating {} failed: {m}",
                    sa.username()
                ));
            }
        }
    };
    // The questions are independent: asked at once, judged in their fixed order.
    let asked = futures::future::join_all(QUESTIONS.iter().map(|q| async move {
        let request = q.request(&sa.namespace);
        access_review::allowed_for(client, sa, &request, timeout).await
    }))
    .await;
    let mut answers = Vec::new();
    for (q, result) in QUESTIONS.iter().zip(asked) {
        match result {
            Ok(allowed) => answers.push(Answer {
                question: *q,
                allowed,
            }),
            Err(ReviewError::Forbidden(m)) => {
                return Err(format!(
                    "{why_not}; and SubjectAccessReview is forbidden (needs `create` on subjectaccessreviews.authorization.k8s.io): {m}"
                ));
            }
            Err(ReviewError::Failed(m)) => {
                return Err(format!("{why_not}; and SubjectAccessReview failed: {m}"));
            }
        }
    }
    Ok(RbacEvidence {
        method: Method::AccessReviews,
        source: format!(
            "SubjectAccessReviews for {} (fixed sensitive questions only; rules not visible)",
            sa.username()
        ),
        grants: None,
        answers,
        notes: vec![why_not],
    })
}

async fn impersonated(
    client: &kube::Client,
    sa: &ServiceAccountUser,
    timeout: Duration,
) -> Result<RbacEvidence, ReviewError> {
    // The rules review first: when impersonation is forbidden, one refusal says so.
    let review = access_review::rules_as(client, sa, timeout).await?;
    let allowed = futures::future::try_join_all(QUESTIONS.iter().map(|q| async move {
        let request = q.request(&sa.namespace);
        access_review::allowed_as(client, sa, &request, timeout).await
    }))
    .await?;
    let answers = QUESTIONS
        .iter()
        .zip(allowed)
        .map(|(q, allowed)| Answer {
            question: *q,
            allowed,
        })
        .collect();
    let scope = Scope::Namespace(sa.namespace.clone());
    Ok(RbacEvidence {
        method: Method::Impersonation,
        source: format!(
            "SelfSubjectRulesReview in namespace {} and SelfSubjectAccessReviews, impersonating {}",
            sa.namespace,
            sa.username()
        ),
        grants: Some(
            review
                .rules
                .into_iter()
                .map(|rule| Grant {
                    scope: scope.clone(),
                    rule,
                })
                .collect(),
        ),
        answers,
        notes: review
            .incomplete
            .map(|e| format!("the rules review is incomplete: {e}"))
            .into_iter()
            .collect(),
    })
}

/// Offline: the manifests' bindings for this ServiceAccount, or why there is nothing to say.
pub fn offline(manifests: &ManifestRbac, sa: &ServiceAccountUser) -> Review {
    if manifests.is_empty() {
        return Err(
            "offline: RBAC lives in the cluster and the manifests hold no RoleBinding or ClusterRoleBinding".into(),
        );
    }
    let Some(found) = manifests.grants_for(&sa.namespace, &sa.name) else {
        return Err(format!(
            "offline: no RoleBinding or ClusterRoleBinding in the manifests names serviceaccount {}/{} or its groups; RBAC in the cluster is not seen",
            sa.namespace, sa.name
        ));
    };
    let answers = answer_from_grants(&found.grants, &sa.namespace);
    Ok(RbacEvidence {
        method: Method::Manifests,
        source: format!(
            "the manifests only ({}); RBAC already in the cluster is not seen",
            found.bindings.join(", ")
        ),
        grants: Some(found.grants),
        answers,
        notes: found
            .unresolved
            .iter()
            .map(|b| format!("not evaluated, the role is not in the manifests: {b}"))
            .collect(),
    })
}
