//! Offline: what the given Roles, ClusterRoles and their bindings grant a ServiceAccount.
//! A small evaluator of the manifests only — RBAC already in the cluster is not seen, and a
//! binding to a ClusterRole that is not in the input is reported as unresolved (except the
//! bootstrap `cluster-admin`, whose rules are fixed).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::rules::{Grant, Rule, Scope};
use crate::error::{Error, Result};
use crate::manifest::documents::Document;

#[derive(Debug, Clone, Default)]
pub struct ManifestRbac {
    roles: BTreeMap<(String, String), Role>,
    cluster_roles: BTreeMap<String, ClusterRole>,
    role_bindings: Vec<(String, RoleBinding)>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// What the manifests grant one ServiceAccount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestGrants {
    pub grants: Vec<Grant>,
    /// e.g. `RoleBinding ns/reader → ClusterRole view`.
    pub bindings: Vec<String>,
    /// Roles a binding refers to that the manifests do not contain.
    pub unresolved: Vec<String>,
}

fn typed<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    serde_json::from_value(doc.value.clone()).map_err(|e| Error::Input {
        path: doc.file.clone(),
        message: format!("line {}: invalid {}: {e}", doc.line, doc.kind()),
    })
}

/// The bootstrap `cluster-admin` ClusterRole (every API server has it, with these rules).
fn bootstrap_cluster_admin() -> Vec<Rule> {
    let all = || vec!["*".to_string()];
    vec![
        Rule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        Rule {
            verbs: all(),
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    // An empty selector selects nothing in aggregation (the controller skips it).
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty());
    !empty && by_labels && by_expressions
}

impl ManifestRbac {
    /// Collects the RBAC objects; `namespace` is `-n`, for objects that name none.
    pub fn from_documents(docs: &[Document], namespace: &str) -> Result<Self> {
        let ns_of = |v: &Value| {
            v.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(namespace)
                .to_string()
        };
        let mut rbac = ManifestRbac::default();
        for doc in docs {
            let api = doc
                .value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !api.starts_with("rbac.authorization.k8s.io/") {
                continue;
            }
            match doc.kind() {
                "Role" => {
                    let role: Role = typed(doc)?;
                    let name = role.metadata.name.clone().unwrap_or_default();
                    rbac.roles.insert((ns_of(&doc.value), name), role);
                }
                "ClusterRole" => {
                    let role: ClusterRole = typed(doc)?;
                    let name = role.metadata.name.clone().unwrap_or_default();
                    rbac.cluster_roles.insert(name, role);
                }
                "RoleBinding" => {
                    let binding: RoleBinding = typed(doc)?;
                    rbac.role_bindings.push((ns_of(&doc.value), binding));
                }
                "ClusterRoleBinding" => rbac.cluster_role_bindings.push(typed(doc)?),
                _ => {}
            }
        }
        Ok(rbac)
    }

    pub fn is_empty(&self) -> bool {
        self.role_bindings.is_empty() && self.cluster_role_bindings.is_empty()
    }

    /// Rules of a ClusterRole, with aggregated roles folded in (as the aggregation controller
    /// would). `None` when the manifests lack it.
    fn cluster_role_rules(&self, name: &str, seen: &mut BTreeSet<String>) -> Option<Vec<Rule>> {
        if !seen.insert(name.to_string()) {
            return Some(Vec::new());
        }
        let Some(role) = self.cluster_roles.get(name) else {
            return (name == "cluster-admin").then(bootstrap_cluster_admin);
        };
        let mut rules: Vec<Rule> = role.rules.iter().flatten().map(Rule::from).collect();
        if let Some(aggregation) = &role.aggregation_rule {
            for selector in aggregation.cluster_role_selectors.iter().flatten() {
                let members: Vec<String> = self
                    .cluster_roles
                    .iter()
                    .filter(|(n, _)| n.as_str() != name)
                    .filter(|(_, r)| {
                        selector_matches(
                            selector,
                            r.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                    })
                    .map(|(n, _)| n.clone())
                    .collect();
                for member in members {
                    rules.extend(self.cluster_role_rules(&member, seen).unwrap_or_default());
                }
            }
        }
        Some(rules)
    }

    /// What the bindings in the manifests grant `system:serviceaccount:NS:SA`; `None` when no
    /// binding names it (directly, or by its groups).
    pub fn grants_for(&self, namespace: &str, service_account: &str) -> Option<ManifestGrants> {
        let mut out = ManifestGrants::default();
        let mut bound = false;
        for (binding_ns, binding) in &self.role_bindings {
            let subjects = binding.subjects.iter().flatten();
            if binding_ns != namespace
                || !subjects
                    .into_iter()
                    .any(|s| names_service_account(s, Some(binding_ns), namespace, service_account))
            {
                continue;
            }
            bound = true;
            let reference = &binding.role_ref;
            let what = format!(
                "RoleBinding {binding_ns}/{} → {} {}",
                binding.metadata.name.as_deref().unwrap_or(""),
                reference.kind,
                reference.name
            );
            let rules = match reference.kind.as_str() {
                "Role" => self
                    .roles
                    .get(&(binding_ns.clone(), reference.name.clone()))
                    .map(|r| r.rules.iter().flatten().map(Rule::from).collect()),
                "ClusterRole" => self.cluster_role_rules(&reference.name, &mut BTreeSet::new()),
                _ => None,
            };
            match rules {
                Some(rules) => out.grants.extend(rules.into_iter().map(|rule| Grant {
                    scope: Scope::Namespace(binding_ns.clone()),
                    rule,
                })),
                None => out.unresolved.push(what.clone()),
            }
            out.bindings.push(what);
        }
        for binding in &self.cluster_role_bindings {
            let subjects = binding.subjects.iter().flatten();
            if !subjects
                .into_iter()
                .any(|s| names_service_account(s, None, namespace, service_account))
            {
                continue;
            }
            bound = true;
            let reference = &binding.role_ref;
            let what = format!(
                "ClusterRoleBinding {} → ClusterRole {}",
                binding.metadata.name.as_deref().unwrap_or(""),
                reference.name
            );
            match self.cluster_role_rules(&reference.name, &mut BTreeSet::new()) {
                Some(rules) => out.grants.extend(rules.into_iter().map(|rule| Grant {
                    scope: Scope::Cluster,
                    rule,
                })),
                None => out.unresolved.push(what.clone()),
            }
            out.bindings.push(what);
        }
        bound.then_some(out)
    }
}

/// Whether a binding subject names the ServiceAccount, its user name, or one of its groups.
/// A ServiceAccount subject without a namespace means the RoleBinding's own namespace (the
/// authorizer's rule); in a ClusterRoleBinding it names nothing.
fn names_service_account(
    subject: &Subject,
    binding_namespace: Option<&str>,
    namespace: &str,
    service_account: &str,
) -> bool {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .or(binding_namespace);
            subject.name == service_account && ns == Some(namespace)
        }
        "User" => subject.name == format!("system:serviceaccount:{namespace}:{service_account}"),
        "Group" => {
            subject.name == "system:serviceaccounts"
                || subject.name == format!("system:serviceaccounts:{namespace}")
                || subject.name == "system:authenticated"
        }
        _ => false,
    }
}
