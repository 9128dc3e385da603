//! Egress to the cluster DNS. A default-deny egress policy breaks name resolution first, so
//! the pod fails with a DNS error before it ever reaches STS or Entra: judge UDP and TCP 53.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::destination::{Destination, NamedPort, PeerPod, Protocol};
use super::evaluate::{SourcePod, evaluate_egress};
use super::live::PolicyRead;
use super::verdict::EgressVerdict;

pub const DNS_PORT: u16 = 53;
/// The DNS Service's name on kubeadm, kind, EKS, GKE and AKS clusters (for messages).
pub const DNS_SERVICE: &str = "kube-dns.kube-system.svc";

/// The cluster DNS pods as every major distribution deploys them: CoreDNS (or kube-dns) in
/// kube-system, labelled `k8s-app: kube-dns`, ports `dns` 53/UDP and `dns-tcp` 53/TCP.
pub fn kube_dns_pod(namespace_labels: Option<BTreeMap<String, String>>) -> PeerPod {
    PeerPod {
        namespace: "kube-system".into(),
        namespace_labels,
        labels: BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())]),
        named_ports: vec![
            NamedPort {
                name: "dns".into(),
                port: DNS_PORT,
                protocol: Protocol::Udp,
            },
            NamedPort {
                name: "dns-tcp".into(),
                port: DNS_PORT,
                protocol: Protocol::Tcp,
            },
        ],
    }
}

/// The two connections a resolver opens: UDP 53, and TCP 53 for truncated answers.
/// `server` is the address the policy sees (the DNS pod's IP, or the Service IP when the
/// plugin judges before the Service is translated); `pod` the DNS pod, when known.
pub fn dns_destinations(server: Option<IpAddr>, pod: Option<PeerPod>) -> [Destination; 2] {
    let base = Destination {
        ip: server,
        host: Some(DNS_SERVICE.into()),
        port: DNS_PORT,
        protocol: Protocol::Udp,
        pod,
    };
    [base.clone(), base.with_protocol(Protocol::Tcp)]
}

/// What the policies say about the cluster DNS, per protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEgress {
    pub udp: EgressVerdict,
    pub tcp: EgressVerdict,
    /// The UDP destination judged (address, DNS pod), for messages and fixes.
    pub destination: Destination,
}

pub fn evaluate_dns(
    pod: &SourcePod,
    policies: &[NetworkPolicy],
    server: Option<IpAddr>,
    dns_pod: Option<PeerPod>,
) -> DnsEgress {
    let [udp, tcp] = dns_destinations(server, dns_pod);
    DnsEgress {
        udp: evaluate_egress(pod, policies, &udp),
        tcp: evaluate_egress(pod, policies, &tcp),
        destination: udp,
    }
}

/// [`evaluate_dns`] on policies as read: both verdicts are `Unreadable` when they could not be.
pub fn judge_dns(
    pod: &SourcePod,
    policies: &PolicyRead,
    server: Option<IpAddr>,
    dns_pod: Option<PeerPod>,
) -> DnsEgress {
    match policies {
        Ok(policies) => evaluate_dns(pod, policies, server, dns_pod),
        Err(e) => {
            let [udp, _] = dns_destinations(server, dns_pod);
            let verdict = EgressVerdict::Unreadable {
                reason: e.to_string(),
            };
            DnsEgress {
                udp: verdict.clone(),
                tcp: verdict,
                destination: udp,
            }
        }
    }
}
