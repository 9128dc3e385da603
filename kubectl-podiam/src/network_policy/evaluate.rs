//! The evaluator: does any NetworkPolicy isolate the pod for egress, and does one of their
//! egress rules allow this destination? Semantics of `networking.k8s.io/v1`:
//! - a policy selects the pod when it is in the pod's namespace and its `podSelector`
//!   (absent or `{}`: every pod) matches the pod's labels;
//! - `policyTypes`, when unset or empty, is `Ingress`, plus `Egress` when `spec.egress` has at
//!   least one rule (the API server's defaulting: `egress: []` alone does not isolate);
//! - the pod is isolated for egress iff a selecting policy has `Egress`; then a connection is
//!   allowed iff some egress rule of some such policy matches it (rules add up, none denies).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cidr::Cidr;
use super::destination::{Destination, Protocol};
use super::selector;
use super::verdict::{EgressVerdict, PolicyRef, RuleRef, UndecidedRule, list};
use crate::subject::PodSubject;

/// The pod whose egress is judged: what a policy's `podSelector` sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePod {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// NetworkPolicy behaviour for host-network pods is undefined (most plugins skip them).
    pub host_network: bool,
}

impl SourcePod {
    /// The pod (or workload template) being judged, with its template's labels.
    pub fn of(subject: &PodSubject) -> Self {
        SourcePod {
            namespace: subject.namespace.clone(),
            labels: subject.meta.labels.clone().unwrap_or_default(),
            host_network: subject.spec.host_network == Some(true),
        }
    }
}

/// Whether `policy` selects `pod` (its namespace and `podSelector`).
pub fn selects(policy: &NetworkPolicy, pod: &SourcePod) -> bool {
    if policy.metadata.namespace.as_deref() != Some(pod.namespace.as_str()) {
        return false;
    }
    let spec = policy.spec.as_ref();
    match spec.and_then(|s| s.pod_selector.as_ref()) {
        Some(s) => selector::matches(s, &pod.labels),
        None => true,
    }
}

/// Whether the policy's (defaulted) policyTypes include Egress.
pub fn has_egress_type(policy: &NetworkPolicy) -> bool {
    let Some(spec) = &policy.spec else {
        return false;
    };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == "Egress"),
        _ => spec.egress.as_ref().is_some_and(|rules| !rules.is_empty()),
    }
}

pub fn policy_ref(policy: &NetworkPolicy) -> PolicyRef {
    PolicyRef {
        namespace: policy.metadata.namespace.clone().unwrap_or_default(),
        name: policy.metadata.name.clone().unwrap_or_default(),
    }
}

/// The policies that isolate `pod` for egress.
pub fn isolating<'a>(pod: &SourcePod, policies: &'a [NetworkPolicy]) -> Vec<&'a NetworkPolicy> {
    policies
        .iter()
        .filter(|p| selects(p, pod) && has_egress_type(p))
        .collect()
}

/// Judges one connection of `pod` against the NetworkPolicies of its namespace (policies of
/// other namespaces in `policies` are ignored: they cannot select it).
pub fn evaluate_egress(
    pod: &SourcePod,
    policies: &[NetworkPolicy],
    dest: &Destination,
) -> EgressVerdict {
    let isolating = isolating(pod, policies);
    if isolating.is_empty() {
        return EgressVerdict::NotIsolated;
    }
    let isolating_refs: Vec<PolicyRef> = isolating.iter().map(|p| policy_ref(p)).collect();
    if pod.host_network {
        return EgressVerdict::Undetermined {
            reason: format!(
                "the pod uses hostNetwork: whether NetworkPolicy {} applies to it is up to the network plugin (the API leaves it undefined; most plugins ignore host-network pods)",
                list(&isolating_refs)
            ),
            isolating: isolating_refs,
            rules: Vec::new(),
        };
    }
    let mut allowed = Vec::new();
    let mut undecided = Vec::new();
    for policy in &isolating {
        let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
        let rules = policy.spec.iter().flat_map(|s| s.egress.iter().flatten());
        for (index, rule) in rules.enumerate() {
            let rule_ref = RuleRef {
                policy: policy_ref(policy),
                index,
            };
            match rule_decision(rule, namespace, dest) {
                Decision::Yes => allowed.push(rule_ref),
                Decision::No => {}
                Decision::Needs(needs) => undecided.push(UndecidedRule {
                    rule: rule_ref,
                    needs,
                }),
            }
        }
    }
    if !allowed.is_empty() {
        return EgressVerdict::Allowed { by: allowed };
    }
    if undecided.is_empty() {
        return EgressVerdict::Blocked {
            isolating: isolating_refs,
        };
    }
    EgressVerdict::Undetermined {
        reason: undetermined_reason(dest, &isolating_refs, &undecided),
        isolating: isolating_refs,
        rules: undecided,
    }
}

fn undetermined_reason(
    dest: &Destination,
    isolating: &[PolicyRef],
    undecided: &[UndecidedRule],
) -> String {
    let (noun, verb) = if isolating.len() == 1 {
        ("NetworkPolicy", "isolates")
    } else {
        ("NetworkPolicies", "isolate")
    };
    let rules: Vec<String> = undecided
        .iter()
        .map(|u| format!("{} ({})", u.rule, u.needs.join(", ")))
        .collect();
    let unknown = match (dest.ip, &dest.pod) {
        (None, None) => "its address, not known here",
        (None, Some(_)) => "the pod's address or its namespace's labels, not known here",
        (Some(_), _) => "its namespace's labels, not known here",
    };
    format!(
        "{noun} {} {verb} the pod for egress; whether {} is allowed depends on {unknown}: {}",
        list(isolating),
        dest.describe(),
        rules.join("; ")
    )
}

/// A three-way answer: decided, or what would decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Yes,
    No,
    Needs(Vec<String>),
}

fn rule_decision(rule: &NetworkPolicyEgressRule, namespace: &str, dest: &Destination) -> Decision {
    let ports = rule.ports.as_deref().unwrap_or_default();
    if !ports.is_empty() && !ports.iter().any(|p| port_matches(p, dest)) {
        return Decision::No;
    }
    let peers = rule.to.as_deref().unwrap_or_default();
    if peers.is_empty() {
        return Decision::Yes;
    }
    let mut needs = Vec::new();
    for peer in peers {
        match peer_decision(peer, namespace, dest) {
            Decision::Yes => return Decision::Yes,
            Decision::No => {}
            Decision::Needs(n) => needs.extend(n),
        }
    }
    if needs.is_empty() {
        Decision::No
    } else if dest.ip.is_none() && covers_every_address(peers) {
        // 0.0.0.0/0 and ::/0 without exceptions hold any address the host may have.
        Decision::Yes
    } else {
        Decision::Needs(needs)
    }
}

fn covers_every_address(peers: &[NetworkPolicyPeer]) -> bool {
    let whole: Vec<Cidr> = peers
        .iter()
        .filter_map(|p| p.ip_block.as_ref())
        .filter(|b| b.except.as_deref().unwrap_or_default().is_empty())
        .filter_map(|b| Cidr::parse(&b.cidr))
        .filter(Cidr::is_whole_family)
        .collect();
    whole.iter().any(Cidr::is_ipv4) && whole.iter().any(|c| !c.is_ipv4())
}

fn port_matches(port: &NetworkPolicyPort, dest: &Destination) -> bool {
    let protocol = match port.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(p) => match Protocol::parse(p) {
            Some(p) => p,
            None => return false,
        },
    };
    if protocol != dest.protocol {
        return false;
    }
    let wanted = i32::from(dest.port);
    match &port.port {
        None => true,
        Some(IntOrString::Int(first)) => match port.end_port {
            Some(last) => (*first..=last).contains(&wanted),
            None => *first == wanted,
        },
        // A named port is looked up on the destination pod: an external address has none.
        Some(IntOrString::String(name)) => dest.pod.as_ref().is_some_and(|pod| {
            pod.named_ports
                .iter()
                .any(|n| n.name == *name && n.protocol == protocol && n.port == dest.port)
        }),
    }
}

fn peer_decision(peer: &NetworkPolicyPeer, namespace: &str, dest: &Destination) -> Decision {
    if let Some(block) = &peer.ip_block {
        return ip_block_decision(block, dest);
    }
    if peer.namespace_selector.is_none() && peer.pod_selector.is_none() {
        // The API rejects a peer with no field set; it selects nothing.
        return Decision::No;
    }
    // Pod and namespace selectors select pods, never a cluster-external address.
    let Some(pod) = &dest.pod else {
        return Decision::No;
    };
    if let Some(s) = &peer.pod_selector
        && !selector::matches(s, &pod.labels)
    {
        return Decision::No;
    }
    match &peer.namespace_selector {
        None if pod.namespace == namespace => Decision::Yes,
        None => Decision::No,
        Some(s) => {
            match selector::matches_namespace(s, &pod.namespace, pod.namespace_labels.as_ref()) {
                Some(true) => Decision::Yes,
                Some(false) => Decision::No,
                None => Decision::Needs(vec![format!("the labels of namespace {}", pod.namespace)]),
            }
        }
    }
}

fn ip_block_decision(block: &IPBlock, dest: &Destination) -> Decision {
    let Some(cidr) = Cidr::parse(&block.cidr) else {
        // The API rejects an invalid CIDR; such a block holds nothing.
        return Decision::No;
    };
    let Some(ip) = dest.ip else {
        return Decision::Needs(vec![describe_block(block)]);
    };
    let excepted = block
        .except
        .iter()
        .flatten()
        .filter_map(|e| Cidr::parse(e))
        .any(|e| e.contains(ip));
    if cidr.contains(ip) && !excepted {
        Decision::Yes
    } else {
        Decision::No
    }
}

/// `ipBlock 0.0.0.0/0 except 169.254.169.254/32`.
pub fn describe_block(block: &IPBlock) -> String {
    let except = block.except.as_deref().unwrap_or_default();
    if except.is_empty() {
        format!("ipBlock {}", block.cidr)
    } else {
        format!("ipBlock {} except {}", block.cidr, except.join(", "))
    }
}
