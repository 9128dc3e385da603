//! RBAC rules and where they apply, with the API server's matching semantics (rbac/v1
//! `VerbMatches`, `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`).

use std::fmt;

use crate::model::Permission;

/// One policy rule, from a Role/ClusterRole or from a SelfSubjectRulesReview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// Where a rule applies: everywhere (ClusterRoleBinding) or in one namespace (RoleBinding, or a
/// rules review, which cannot tell the two apart).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Cluster,
    Namespace(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub rule: Rule,
}

/// One resource request, as an access review asks it. `namespace: None` means cluster-wide
/// (every namespace, or a cluster-scoped resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: Option<&'a str>,
}

const ALL: &str = "*";

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == ALL || v == wanted)
}

impl Rule {
    pub fn is_resource_rule(&self) -> bool {
        self.non_resource_urls.is_empty()
    }

    /// Whether this rule allows `req` (ignoring scope).
    pub fn allows(&self, req: &Request<'_>) -> bool {
        if !self.is_resource_rule() || !has(&self.verbs, req.verb) {
            return false;
        }
        if !has(&self.api_groups, req.group) {
            return false;
        }
        let combined = if req.subresource.is_empty() {
            req.resource.to_string()
        } else {
            format!("{}/{}", req.resource, req.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == ALL
                || *r == combined
                || (!req.subresource.is_empty() && r.strip_prefix("*/") == Some(req.subresource))
        });
        // A rule limited to resourceNames never matches a request without a name (list, or
        // "any object").
        resource_ok && self.resource_names.is_empty()
    }

    /// Wildcards that grant more than the author may have meant: `*` verbs, groups or
    /// resources (including `*/sub`), or a non-resource rule for every URL or verb.
    pub fn wildcards(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        if self.verbs.iter().any(|v| v == ALL) {
            found.push("verbs");
        }
        if self.is_resource_rule() {
            if self.api_groups.iter().any(|g| g == ALL) {
                found.push("apiGroups");
            }
            if self
                .resources
                .iter()
                .any(|r| r == ALL || r.starts_with("*/"))
            {
                found.push("resources");
            }
        } else if self.non_resource_urls.iter().any(|u| u == ALL) {
            // `/api/*` style paths are how discovery is granted to everyone: not flagged.
            found.push("nonResourceURLs");
        }
        found
    }
}

impl Scope {
    pub fn covers(&self, namespace: Option<&str>) -> bool {
        match (self, namespace) {
            (Scope::Cluster, _) => true,
            (Scope::Namespace(ns), Some(wanted)) => ns == wanted,
            (Scope::Namespace(_), None) => false,
        }
    }
}

impl Grant {
    pub fn allows(&self, req: &Request<'_>) -> bool {
        self.scope.covers(req.namespace) && self.rule.allows(req)
    }

    pub fn permission(&self) -> Permission {
        let (namespace, cluster) = match &self.scope {
            Scope::Cluster => (None, true),
            Scope::Namespace(ns) => (Some(ns.clone()), false),
        };
        Permission {
            verbs: self.rule.verbs.clone(),
            api_groups: self.rule.api_groups.clone(),
            resources: self.rule.resources.clone(),
            resource_names: self.rule.resource_names.clone(),
            non_resource_urls: self.rule.non_resource_urls.clone(),
            namespace,
            cluster,
        }
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| {
            if i.is_empty() {
                "\"\"".to_string()
            } else {
                i.clone()
            }
        })
        .collect();
    format!("[{}]", quoted.join(","))
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verbs={}", list(&self.verbs))?;
        if self.is_resource_rule() {
            write!(
                f,
                " apiGroups={} resources={}",
                list(&self.api_groups),
                list(&self.resources)
            )?;
            if !self.resource_names.is_empty() {
                write!(f, " resourceNames={}", list(&self.resource_names))?;
            }
            Ok(())
        } else {
            write!(f, " nonResourceURLs={}", list(&self.non_resource_urls))
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster-wide"),
            Scope::Namespace(ns) => write!(f, "in namespace {ns}"),
        }
    }
}

impl From<&k8s_openapi::api::rbac::v1::PolicyRule> for Rule {
    fn from(r: &k8s_openapi::api::rbac::v1::PolicyRule) -> Self {
        Rule {
            verbs: r.verbs.clone(),
            api_groups: r.api_groups.clone().unwrap_or_default(),
            resources: r.resources.clone().unwrap_or_default(),
            resource_names: r.resource_names.clone().unwrap_or_default(),
            non_resource_urls: r.non_resource_urls.clone().unwrap_or_default(),
        }
    }
}

impl From<&k8s_openapi::api::authorization::v1::ResourceRule> for Rule {
    fn from(r: &k8s_openapi::api::authorization::v1::ResourceRule) -> Self {
        Rule {
            verbs: r.verbs.clone(),
            api_groups: r.api_groups.clone().unwrap_or_default(),
            resources: r.resources.clone().unwrap_or_default(),
            resource_names: r.resource_names.clone().unwrap_or_default(),
            non_resource_urls: Vec::new(),
        }
    }
}

impl From<&k8s_openapi::api::authorization::v1::NonResourceRule> for Rule {
    fn from(r: &k8s_openapi::api::authorization::v1::NonResourceRule) -> Self {
        Rule {
            verbs: r.verbs.clone(),
            non_resource_urls: r.non_resource_urls.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}
