//! Asks the API server what a ServiceAccount may do: a SelfSubjectRulesReview and
//! SelfSubjectAccessReviews sent while impersonating it (needs the operator's `impersonate`
//! on serviceaccounts), or SubjectAccessReviews naming it (needs `create` on
//! subjectaccessreviews). Impersonation is set per request, so the operator's own client (and
//! its `--as`, if any) is never changed.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rbac::rules::{Request, Rule};

const GROUP_PATH: &str = "/apis/authorization.k8s.io/v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Failed(String),
}

/// The rules a subject has in one namespace (cluster-wide and namespaced grants, merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesReview {
    pub rules: Vec<Rule>,
    /// Set when the authorizer could not list every rule (e.g. a webhook authorizer).
    pub incomplete: Option<String>,
}

/// The identity to review, as the API server authenticates a ServiceAccount token.
#[derive(Debug, Clone)]
pub struct ServiceAccountUser {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccountUser {
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    pub fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".into(),
        ]
    }
}

async fn post<B: Serialize, T: DeserializeOwned>(
    client: &kube::Client,
    resource: &str,
    body: &B,
    impersonate: Option<&ServiceAccountUser>,
    timeout: Duration,
) -> Result<T, ReviewError> {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{GROUP_PATH}/{resource}"))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(sa) = impersonate {
        // Only the user: the API server adds a ServiceAccount's groups itself when none are
        // given, so only `impersonate` on serviceaccounts is needed (not on groups).
        builder = builder.header("impersonate-user", sa.username());
    }
    let body = serde_json::to_vec(body).map_err(|e| ReviewError::Failed(e.to_string()))?;
    let request = builder
        .body(body)
        .map_err(|e| ReviewError::Failed(e.to_string()))?;
    match tokio::time::timeout(timeout, client.request::<T>(request)).await {
        Err(_) => Err(ReviewError::Failed(format!(
            "{resource} timed out after {timeout:?}"
        ))),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(kube::Error::Api(status))) if status.code == 403 || status.code == 401 => {
            Err(ReviewError::Forbidden(status.message.clone()))
        }
        Ok(Err(e)) => Err(ReviewError::Failed(format!("{resource}: {e}"))),
    }
}

fn attributes(req: &Request<'_>) -> ResourceAttributes {
    ResourceAttributes {
        verb: Some(req.verb.into()),
        group: Some(req.group.into()),
        resource: Some(req.resource.into()),
        subresource: (!req.subresource.is_empty()).then(|| req.subresource.into()),
        namespace: req.namespace.map(Into::into),
        ..Default::default()
    }
}

/// SelfSubjectRulesReview in `sa.namespace`, impersonating the ServiceAccount.
pub async fn rules_as(
    client: &kube::Client,
    sa: &ServiceAccountUser,
    timeout: Duration,
) -> Result<RulesReview, ReviewError> {
    let body = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(sa.namespace.clone()),
        },
        ..Default::default()
    };
    let answer: SelfSubjectRulesReview =
        post(client, "selfsubjectrulesreviews", &body, Some(sa), timeout).await?;
    let status = answer
        .status
        .ok_or_else(|| ReviewError::Failed("the rules review has no status".into()))?;
    let mut rules: Vec<Rule> = status.resource_rules.iter().map(Rule::from).collect();
    rules.extend(status.non_resource_rules.iter().map(Rule::from));
    let incomplete = status.incomplete.then(|| {
        status
            .evaluation_error
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "the authorizer could not list every rule".into())
    });
    Ok(RulesReview { rules, incomplete })
}

/// SelfSubjectAccessReview, impersonating the ServiceAccount.
pub async fn allowed_as(
    client: &kube::Client,
    sa: &ServiceAccountUser,
    req: &Request<'_>,
    timeout: Duration,
) -> Result<bool, ReviewError> {
    let body = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(attributes(req)),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer: SelfSubjectAccessReview =
        post(client, "selfsubjectaccessreviews", &body, Some(sa), timeout).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// SubjectAccessReview for the ServiceAccount, asked as the operator.
pub async fn allowed_for(
    client: &kube::Client,
    sa: &ServiceAccountUser,
    req: &Request<'_>,
    timeout: Duration,
) -> Result<bool, ReviewError> {
    let body = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(sa.username()),
            groups: Some(sa.groups()),
            resource_attributes: Some(attributes(req)),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer: SubjectAccessReview =
        post(client, "subjectaccessreviews", &body, None, timeout).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}
