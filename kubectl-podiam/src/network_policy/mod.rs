//! Static evaluation of `networking.k8s.io/v1` NetworkPolicy egress for a pod: is its
//! connection to STS, Entra, Google, the Pod Identity agent, the node metadata service or the
//! cluster DNS blocked, and by which policy? Plugins that enforce NetworkPolicy drop the
//! packets silently (a timeout in the pod), so this judgement names the cause.
//!
//! Inputs: the policies of the pod's namespace, read live ([`list_policies`]) or from the
//! `-f` input ([`ManifestNetworkPolicies`]); a [`SourcePod`]; a [`Destination`].
//! Output: an [`EgressVerdict`], turned into a check by [`egress_check`] / [`dns_check`].
//!
//! Two limits of any static judgement, said in docs/checks.md: traffic to the pod's own
//! node is always allowed whatever the policies, and whether `ipBlock` sees a Service IP
//! before or after translation is up to the network plugin.

pub mod check;
pub mod cidr;
pub mod destination;
pub mod dns;
pub mod evaluate;
pub mod live;
pub mod manifests;
pub mod selector;
pub mod verdict;

pub use check::{DNS_CHECK, EGRESS_CHECK, dns_check, egress_check};
pub use destination::{Destination, NamedPort, PeerPod, Protocol};
pub use dns::{DnsEgress, dns_destinations, evaluate_dns, judge_dns, kube_dns_pod};
pub use evaluate::{SourcePod, evaluate_egress, isolating};
pub use live::{PolicyRead, PolicyReadError, judge_egress, list_policies, namespace_labels};
pub use manifests::ManifestNetworkPolicies;
pub use verdict::{EgressVerdict, PolicyRef, RuleRef, UndecidedRule};

#[cfg(test)]
mod tests;
