//! The fixed questions asked about every ServiceAccount: the access that turns a pod
//! compromise into a cluster compromise. Answered by access reviews (live) or by evaluating
//! the manifests' rules (offline), so both paths report the same facts.

use super::rules::{Grant, Request};

/// What a positive answer means, so checks can group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    ClusterAdmin,
    SecretsClusterWide,
    SecretsInNamespace,
    Escalation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub risk: Risk,
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    /// False: cluster-wide; true: in the pod's namespace.
    pub namespaced: bool,
}

const fn q(
    risk: Risk,
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    namespaced: bool,
) -> Question {
    Question {
        risk,
        verb,
        group,
        resource,
        subresource,
        namespaced,
    }
}

pub const QUESTIONS: &[Question] = &[
    // `*` verb/group/resource matches only rules that say `*` for all three: cluster-admin.
    q(Risk::ClusterAdmin, "*", "*", "*", "", false),
    q(Risk::SecretsClusterWide, "get", "", "secrets", "", false),
    q(Risk::SecretsClusterWide, "list", "", "secrets", "", false),
    q(Risk::SecretsInNamespace, "get", "", "secrets", "", true),
    q(Risk::SecretsInNamespace, "list", "", "secrets", "", true),
    q(Risk::Escalation, "create", "", "pods", "exec", true),
    q(
        Risk::Escalation,
        "create",
        "",
        "serviceaccounts",
        "token",
        true,
    ),
    q(Risk::Escalation, "impersonate", "", "users", "", false),
    q(
        Risk::Escalation,
        "escalate",
        "rbac.authorization.k8s.io",
        "clusterroles",
        "",
        false,
    ),
    q(
        Risk::Escalation,
        "bind",
        "rbac.authorization.k8s.io",
        "clusterroles",
        "",
        false,
    ),
];

impl Question {
    pub fn request<'a>(&self, namespace: &'a str) -> Request<'a> {
        Request {
            verb: self.verb,
            group: self.group,
            resource: self.resource,
            subresource: self.subresource,
            namespace: self.namespaced.then_some(namespace),
        }
    }

    /// e.g. `create pods/exec in namespace ns`, `get secrets cluster-wide`.
    pub fn describe(&self, namespace: &str) -> String {
        let what = if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let group = if self.group.is_empty() || self.group == "*" {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        let where_ = if self.namespaced {
            format!("in namespace {namespace}")
        } else {
            "cluster-wide".to_string()
        };
        format!("{} {what}{group} {where_}", self.verb)
    }
}

/// A question and the answer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub question: Question,
    pub allowed: bool,
}

/// Answers every question from rules alone (offline, or to cross-check a rules review).
pub fn answer_from_grants(grants: &[Grant], namespace: &str) -> Vec<Answer> {
    QUESTIONS
        .iter()
        .map(|q| Answer {
            question: *q,
            allowed: grants.iter().any(|g| g.allows(&q.request(namespace))),
        })
        .collect()
}
