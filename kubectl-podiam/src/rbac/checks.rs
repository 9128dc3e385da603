//! The `k8s.rbac.*` checks, from whatever RBAC evidence could be had. All are warnings: they
//! describe the blast radius of the pod's Kubernetes identity, not whether its cloud identity
//! works.

use super::evidence::{Method, RbacEvidence, Review};
use super::sensitive::Risk;
use crate::model::Check;

/// At most this many rules are named in one message.
const NAMED_RULES: usize = 3;

pub fn checks(review: &Review, sa: &str, namespace: &str) -> Vec<Check> {
    let evidence = match review {
        Err(reason) => return vec![Check::skip("k8s.rbac.review", reason.clone())],
        Ok(e) => e,
    };
    let mut review_message = format!("RBAC of serviceaccount {sa} from {}", evidence.source);
    for note in &evidence.notes {
        review_message.push_str("; ");
        review_message.push_str(note);
    }
    vec![
        Check::pass("k8s.rbac.review", review_message),
        cluster_admin(evidence, sa),
        secrets_read(evidence, sa, namespace),
        wildcards(evidence, sa),
        escalation(evidence, sa, namespace),
    ]
}

/// " (from the manifests only)" when the evidence is the input files.
fn qualifier(e: &RbacEvidence) -> &'static str {
    if e.method == Method::Manifests {
        " (from the manifests only)"
    } else {
        ""
    }
}

fn allowed(e: &RbacEvidence, risk: Risk) -> impl Iterator<Item = &super::sensitive::Question> {
    e.answers
        .iter()
        .filter(move |a| a.allowed && a.question.risk == risk)
        .map(|a| &a.question)
}

const FIND_BINDINGS: &str = "kubectl get clusterrolebindings,rolebindings -A -o wide";

fn cluster_admin(e: &RbacEvidence, sa: &str) -> Check {
    if allowed(e, Risk::ClusterAdmin).next().is_some() {
        Check::warn(
            "k8s.rbac.cluster-admin",
            format!(
                "serviceaccount {sa} may do anything cluster-wide (`*` verbs on `*` resources in `*` API groups): cluster-admin equivalent; a compromised pod owns the cluster{}",
                qualifier(e)
            ),
            format!(
                "bind it to a Role with only the verbs and resources the workload needs (find the binding: {FIND_BINDINGS} | grep {sa})"
            ),
        )
    } else {
        Check::pass(
            "k8s.rbac.cluster-admin",
            format!(
                "serviceaccount {sa} is not cluster-admin equivalent{}",
                qualifier(e)
            ),
        )
    }
}

fn secrets_read(e: &RbacEvidence, sa: &str, namespace: &str) -> Check {
    let cluster: Vec<&str> = allowed(e, Risk::SecretsClusterWide)
        .map(|q| q.verb)
        .collect();
    if !cluster.is_empty() {
        return Check::warn(
            "k8s.rbac.secrets-read",
            format!(
                "serviceaccount {sa} may {} secrets in every namespace{}",
                cluster.join("/"),
                qualifier(e)
            ),
            format!(
                "grant secrets access with a RoleBinding in the namespace that needs it, limited by resourceNames (find the binding: {FIND_BINDINGS} | grep {sa})"
            ),
        );
    }
    let local: Vec<&str> = allowed(e, Risk::SecretsInNamespace)
        .map(|q| q.verb)
        .collect();
    let message = if local.is_empty() {
        format!("serviceaccount {sa} may not read secrets cluster-wide or in namespace {namespace}")
    } else {
        format!(
            "serviceaccount {sa} may {} secrets in namespace {namespace} only, not cluster-wide",
            local.join("/")
        )
    };
    Check::pass(
        "k8s.rbac.secrets-read",
        format!("{message}{}", qualifier(e)),
    )
}

fn wildcards(e: &RbacEvidence, sa: &str) -> Check {
    let Some(grants) = e.own_grants() else {
        return Check::skip(
            "k8s.rbac.wildcard",
            "rules are not visible without impersonation (access reviews only answer yes or no)",
        );
    };
    let flagged: Vec<String> = grants
        .iter()
        .filter_map(|g| {
            let w = g.rule.wildcards();
            (!w.is_empty()).then(|| format!("{} {} (`*` in {})", g.rule, g.scope, w.join(", ")))
        })
        .collect();
    if flagged.is_empty() {
        return Check::pass(
            "k8s.rbac.wildcard",
            format!(
                "no rule granted to serviceaccount {sa} uses wildcards{}",
                qualifier(e)
            ),
        );
    }
    let mut named = flagged
        .iter()
        .take(NAMED_RULES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if flagged.len() > NAMED_RULES {
        named.push_str(&format!("; and {} more", flagged.len() - NAMED_RULES));
    }
    Check::warn(
        "k8s.rbac.wildcard",
        format!(
            "{} rule(s) granted to serviceaccount {sa} use wildcards, which also grant every verb or resource added later: {named}{}",
            flagged.len(),
            qualifier(e)
        ),
        "list the verbs, apiGroups and resources explicitly",
    )
}

fn escalation(e: &RbacEvidence, sa: &str, namespace: &str) -> Check {
    let found: Vec<String> = allowed(e, Risk::Escalation)
        .map(|q| q.describe(namespace))
        .collect();
    if found.is_empty() {
        Check::pass(
            "k8s.rbac.escalation",
            format!(
                "serviceaccount {sa} may not exec into pods, mint tokens, impersonate, or escalate/bind cluster roles{}",
                qualifier(e)
            ),
        )
    } else {
        Check::warn(
            "k8s.rbac.escalation",
            format!(
                "serviceaccount {sa} may {}: each lets a compromised pod act as another identity{}",
                found.join(", "),
                qualifier(e)
            ),
            format!(
                "drop these verbs from its roles unless the workload needs them (find the binding: {FIND_BINDINGS} | grep {sa})"
            ),
        )
    }
}
