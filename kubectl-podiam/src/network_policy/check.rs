//! Checks from egress verdicts: `k8s.network-policy.egress` for a cloud endpoint, and
//! `k8s.network-policy.dns` for the cluster DNS.

use super::cidr::Cidr;
use super::destination::Destination;
use super::dns::DnsEgress;
use super::verdict::{EgressVerdict, list};
use crate::model::Check;

pub const EGRESS_CHECK: &str = "k8s.network-policy.egress";
pub const DNS_CHECK: &str = "k8s.network-policy.dns";

/// The DNS part of every fix: without it the pod fails on name resolution first.
const ALLOW_DNS: &str = "egress to UDP and TCP 53 of `namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}` + `podSelector: {matchLabels: {k8s-app: kube-dns}}`";

/// `target` names the endpoint for the reader, e.g. `STS (sts.us-east-1.amazonaws.com:443)`.
pub fn egress_check(target: &str, dest: &Destination, verdict: &EgressVerdict) -> Check {
    match verdict {
        EgressVerdict::NotIsolated => Check::pass(
            EGRESS_CHECK,
            format!("{target}: no NetworkPolicy selects the pod for egress"),
        ),
        EgressVerdict::Allowed { by } => Check::pass(
            EGRESS_CHECK,
            format!("{target}: egress allowed by {}", list(by)),
        ),
        EgressVerdict::Blocked { isolating } => Check::fail(
            EGRESS_CHECK,
            format!(
                "{target}: egress blocked by NetworkPolicy: {} {} the pod for egress and no egress rule of a policy selecting it allows {}",
                list(isolating),
                if isolating.len() == 1 {
                    "isolates"
                } else {
                    "isolate"
                },
                dest.describe()
            ),
            egress_fix(dest),
        ),
        EgressVerdict::Undetermined { reason, .. } | EgressVerdict::Unreadable { reason } => {
            Check::skip(EGRESS_CHECK, format!("{target}: {reason}"))
        }
    }
}

/// An egress rule that would allow `dest`, plus DNS unless `dest` is DNS itself.
fn egress_fix(dest: &Destination) -> String {
    let to = match (&dest.pod, dest.ip) {
        (Some(pod), _) => {
            let labels: Vec<String> = pod
                .labels
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!(
                "`to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {}}}}}, podSelector: {{matchLabels: {{{}}}}}}}]`",
                pod.namespace,
                labels.join(", ")
            )
        }
        (None, Some(ip)) => format!("`to: [{{ipBlock: {{cidr: {}}}}}]`", Cidr::host(ip)),
        (None, None) => format!(
            "`to: [{{ipBlock: {{cidr: …}}}}]` holding every address of {}",
            dest.host.as_deref().unwrap_or("the endpoint")
        ),
    };
    let rule = format!(
        "add to a NetworkPolicy selecting the pod an egress rule {to} with `ports: [{{protocol: {}, port: {}}}]`",
        dest.protocol, dest.port
    );
    if dest.port == super::dns::DNS_PORT {
        rule
    } else {
        format!("{rule}, and {ALLOW_DNS}")
    }
}

/// Name resolution through the cluster DNS: UDP decides (fail), TCP only carries answers too
/// large for UDP (warn).
pub fn dns_check(dns: &DnsEgress) -> Check {
    let server = dns_server(&dns.destination);
    let fix = format!("add {ALLOW_DNS} to a NetworkPolicy selecting the pod");
    match (&dns.udp, &dns.tcp) {
        (EgressVerdict::Blocked { .. }, _) => Check::fail(
            DNS_CHECK,
            format!(
                "cluster DNS ({server}) UDP 53 {}: every name lookup fails (STS, Entra, Google), before any connection is tried",
                dns.udp.describe()
            ),
            fix,
        ),
        (EgressVerdict::Undetermined { reason, .. } | EgressVerdict::Unreadable { reason }, _) => {
            Check::skip(
                DNS_CHECK,
                format!("cluster DNS ({server}) UDP 53: {reason}"),
            )
        }
        (udp, EgressVerdict::Blocked { .. }) => Check::warn(
            DNS_CHECK,
            format!(
                "cluster DNS ({server}): UDP 53 {}, but TCP 53 {}: answers too large for UDP fail",
                allowed_by(udp),
                dns.tcp.describe()
            ),
            fix,
        ),
        (EgressVerdict::NotIsolated, EgressVerdict::NotIsolated) => Check::pass(
            DNS_CHECK,
            format!("cluster DNS ({server}): no NetworkPolicy selects the pod for egress"),
        ),
        (udp, tcp) => {
            let tcp = match tcp {
                EgressVerdict::Undetermined { reason, .. }
                | EgressVerdict::Unreadable { reason } => format!("TCP 53: {reason}"),
                tcp => format!("TCP 53 {}", allowed_by(tcp)),
            };
            Check::pass(
                DNS_CHECK,
                format!("cluster DNS ({server}): UDP 53 {}; {tcp}", allowed_by(udp)),
            )
        }
    }
}

fn allowed_by(verdict: &EgressVerdict) -> String {
    match verdict {
        EgressVerdict::NotIsolated => {
            "not restricted (no NetworkPolicy selects the pod for egress)".into()
        }
        other => other.describe(),
    }
}

fn dns_server(dest: &Destination) -> String {
    let host = dest.host.as_deref().unwrap_or("DNS");
    match dest.ip {
        Some(ip) => format!("{host}, {ip}"),
        None => host.to_string(),
    }
}
