//! The evaluator on NetworkPolicy fixtures written as users write them (YAML).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::*;
use crate::manifest::documents;
use crate::model::Status;

/// Every NetworkPolicy of a multi-document YAML (namespace `app` unless it names one).
fn policies(yaml: &str) -> Vec<NetworkPolicy> {
    let docs = documents::parse(Path::new("policies.yaml"), yaml).unwrap();
    let values: Vec<serde_json::Value> = docs.into_iter().map(|d| d.value).collect();
    values
        .into_iter()
        .map(|mut v| {
            if v.pointer("/metadata/namespace").is_none() {
                v["metadata"]["namespace"] = "app".into();
            }
            serde_json::from_value(v).unwrap()
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The judged pod: namespace `app`, labels `app: web`.
fn web() -> SourcePod {
    SourcePod {
        namespace: "app".into(),
        labels: labels(&[("app", "web")]),
        host_network: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn to_ip(s: &str, port: u16) -> Destination {
    Destination::address(ip(s), port)
}

fn peer(namespace: &str, ns_labels: &[(&str, &str)], pod_labels: &[(&str, &str)]) -> PeerPod {
    PeerPod {
        namespace: namespace.into(),
        namespace_labels: Some(labels(ns_labels)),
        labels: labels(pod_labels),
        named_ports: Vec::new(),
    }
}

fn policy(namespace: &str, name: &str) -> PolicyRef {
    PolicyRef {
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn rule(name: &str, index: usize) -> RuleRef {
    RuleRef {
        policy: policy("app", name),
        index,
    }
}

fn allowed_by(verdict: &EgressVerdict) -> Vec<RuleRef> {
    match verdict {
        EgressVerdict::Allowed { by } => by.clone(),
        other => panic!("expected allowed, got {other:?}"),
    }
}

const DEFAULT_DENY: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress}
spec:
  podSelector: {}
  policyTypes: [Egress]
";

const ALLOW_DNS: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
";

#[test]
fn default_deny_egress_blocks_every_destination_and_names_the_policy() {
    let set = policies(DEFAULT_DENY);
    let deny = vec![policy("app", "default-deny-egress")];
    for dest in [
        Destination::host("sts.amazonaws.com", 443),
        to_ip("169.254.170.23", 80),
        to_ip("169.254.169.254", 80),
        Destination::host("login.microsoftonline.com", 443).with_pod(peer("x", &[], &[])),
    ] {
        assert_eq!(
            evaluate_egress(&web(), &set, &dest),
            EgressVerdict::Blocked {
                isolating: deny.clone()
            },
            "{dest:?}"
        );
    }
    let dns = evaluate_dns(
        &web(),
        &set,
        Some(ip("10.96.0.10")),
        Some(kube_dns_pod(None)),
    );
    assert!(dns.udp.is_blocked() && dns.tcp.is_blocked());
    let check = dns_check(&dns);
    assert_eq!((check.id, check.status), (DNS_CHECK, Status::Fail));
    assert!(
        check.message.contains("app/default-deny-egress"),
        "{check:?}"
    );

    let dest = Destination::host("sts.us-east-1.amazonaws.com", 443);
    let verdict = evaluate_egress(&web(), &set, &dest);
    let check = egress_check("STS (sts.us-east-1.amazonaws.com:443)", &dest, &verdict);
    assert_eq!((check.id, check.status), (EGRESS_CHECK, Status::Fail));
    assert!(
        check
            .message
            .starts_with("STS (sts.us-east-1.amazonaws.com:443): egress blocked")
    );
    assert!(
        check.message.contains("app/default-deny-egress"),
        "{check:?}"
    );
    let fix = check.remediation.unwrap();
    assert!(
        fix.contains("ipBlock") && fix.contains("port: 443"),
        "{fix}"
    );
    assert!(fix.contains("UDP and TCP 53"), "{fix}");
    // A known address gets its own /32 in the fix.
    let agent = to_ip("169.254.170.23", 80);
    let check = egress_check(
        "EKS Pod Identity agent",
        &agent,
        &evaluate_egress(&web(), &set, &agent),
    );
    assert!(
        check
            .remediation
            .unwrap()
            .contains("cidr: 169.254.170.23/32")
    );
}

#[test]
fn allowing_dns_only_keeps_name_resolution_and_blocks_the_rest() {
    let set = policies(&format!("{DEFAULT_DENY}---{ALLOW_DNS}"));
    let dns = evaluate_dns(
        &web(),
        &set,
        Some(ip("10.96.0.10")),
        Some(kube_dns_pod(None)),
    );
    assert_eq!(allowed_by(&dns.udp), vec![rule("allow-dns", 0)]);
    assert_eq!(allowed_by(&dns.tcp), vec![rule("allow-dns", 0)]);
    let check = dns_check(&dns);
    assert_eq!(check.status, Status::Pass, "{check:?}");
    assert!(
        check
            .message
            .contains("egress rule 1 of NetworkPolicy app/allow-dns")
    );

    // The DNS rule selects pods: an address alone (no pod) is not one of them.
    let by_ip_only = evaluate_dns(&web(), &set, Some(ip("10.96.0.10")), None);
    assert!(by_ip_only.udp.is_blocked());
    // Nor does it allow anything else, nor DNS pods elsewhere.
    let sts = evaluate_egress(&web(), &set, &Destination::host("sts.amazonaws.com", 443));
    assert_eq!(
        sts,
        EgressVerdict::Blocked {
            isolating: vec![
                policy("app", "default-deny-egress"),
                policy("app", "allow-dns")
            ]
        }
    );
    let rogue = Destination::host("x", 53)
        .with_protocol(Protocol::Udp)
        .with_pod(peer("tools", &[], &[("k8s-app", "kube-dns")]));
    assert!(evaluate_egress(&web(), &set, &rogue).is_blocked());
}

#[test]
fn dns_over_udp_only_warns() {
    let udp_only = ALLOW_DNS.replace("    - {protocol: TCP, port: 53}\n", "");
    let set = policies(&udp_only);
    let dns = evaluate_dns(&web(), &set, None, Some(kube_dns_pod(None)));
    assert!(dns.udp.is_allowed() && dns.tcp.is_blocked());
    assert_eq!(dns_check(&dns).status, Status::Warn);
}

#[test]
fn ip_block_except_carves_out_the_metadata_service() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet-not-imds}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32, 10.0.0.0/8]}
",
    );
    assert!(evaluate_egress(&web(), &set, &to_ip("169.254.169.254", 80)).is_blocked());
    assert!(evaluate_egress(&web(), &set, &to_ip("10.20.30.40", 443)).is_blocked());
    assert_eq!(
        allowed_by(&evaluate_egress(&web(), &set, &to_ip("52.94.0.1", 443))),
        vec![rule("internet-not-imds", 0)]
    );
    assert!(evaluate_egress(&web(), &set, &to_ip("169.254.170.23", 80)).is_allowed());
    // An IPv4 block holds no IPv6 address.
    assert!(evaluate_egress(&web(), &set, &to_ip("2600:1f00::1", 443)).is_blocked());
}

#[test]
fn ports_with_end_port_ranges_and_protocols() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ports}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {port: 8000, endPort: 9000}
    - {protocol: UDP, port: 53}
    - {protocol: SCTP}
",
    );
    let judge = |port: u16, protocol: Protocol| {
        evaluate_egress(
            &web(),
            &set,
            &to_ip("52.94.0.1", port).with_protocol(protocol),
        )
        .is_allowed()
    };
    assert!(!judge(443, Protocol::Tcp));
    assert!(!judge(7999, Protocol::Tcp));
    assert!(judge(8000, Protocol::Tcp));
    assert!(judge(8443, Protocol::Tcp));
    assert!(judge(9000, Protocol::Tcp));
    assert!(!judge(9001, Protocol::Tcp));
    // The range is TCP (the default protocol): UDP 8443 is not in it.
    assert!(!judge(8443, Protocol::Udp));
    assert!(judge(53, Protocol::Udp));
    assert!(!judge(53, Protocol::Tcp));
    // A protocol without a port: every port of it.
    assert!(judge(9999, Protocol::Sctp));
}

#[test]
fn named_ports_match_only_a_pod_port_never_an_external_address() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: https}]
",
    );
    assert!(evaluate_egress(&web(), &set, &to_ip("52.94.0.1", 443)).is_blocked());
    assert!(
        evaluate_egress(&web(), &set, &Destination::host("sts.amazonaws.com", 443)).is_blocked()
    );
    let mut proxy = peer("app", &[], &[("app", "proxy")]);
    proxy.named_ports.push(NamedPort {
        name: "https".into(),
        port: 8443,
        protocol: Protocol::Tcp,
    });
    let at = |port: u16| to_ip("10.244.0.7", port).with_pod(proxy.clone());
    assert_eq!(
        allowed_by(&evaluate_egress(&web(), &set, &at(8443))),
        vec![rule("named", 0)]
    );
    assert!(evaluate_egress(&web(), &set, &at(443)).is_blocked());
    // The name's protocol is part of it.
    assert!(evaluate_egress(&web(), &set, &at(8443).with_protocol(Protocol::Udp)).is_blocked());
}

#[test]
fn namespace_and_pod_selector_in_one_peer_is_and_in_two_peers_is_or() {
    let and = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {team: infra}}
      podSelector: {matchLabels: {app: proxy}}
",
    );
    let or = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {team: infra}}
    - podSelector: {matchLabels: {app: proxy}}
",
    );
    let to = |p: PeerPod| to_ip("10.244.1.9", 3128).with_pod(p);
    let proxy_in_infra = to(peer("tools", &[("team", "infra")], &[("app", "proxy")]));
    let other_in_infra = to(peer("tools", &[("team", "infra")], &[("app", "other")]));
    let proxy_here = to(peer("app", &[], &[("app", "proxy")]));
    let proxy_elsewhere = to(peer("web2", &[], &[("app", "proxy")]));

    assert!(evaluate_egress(&web(), &and, &proxy_in_infra).is_allowed());
    assert!(evaluate_egress(&web(), &and, &other_in_infra).is_blocked());
    assert!(evaluate_egress(&web(), &and, &proxy_here).is_blocked());

    assert!(evaluate_egress(&web(), &or, &proxy_in_infra).is_allowed());
    assert!(evaluate_egress(&web(), &or, &other_in_infra).is_allowed());
    assert!(evaluate_egress(&web(), &or, &proxy_here).is_allowed());
    // podSelector alone: the policy's own namespace only.
    assert!(evaluate_egress(&web(), &or, &proxy_elsewhere).is_blocked());
    // Pod peers never select an external address.
    assert!(evaluate_egress(&web(), &or, &to_ip("10.244.1.9", 3128)).is_blocked());

    let every_namespace = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: any-ns}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}}]
",
    );
    assert!(evaluate_egress(&web(), &every_namespace, &proxy_elsewhere).is_allowed());
    assert!(evaluate_egress(&web(), &every_namespace, &to_ip("52.94.0.1", 443)).is_blocked());
}

#[test]
fn policy_types_default_like_the_api_server() {
    let egress_without_types = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: implicit-egress}
spec:
  podSelector: {}
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
",
    );
    assert_eq!(
        evaluate_egress(&web(), &egress_without_types, &to_ip("52.94.0.1", 443)),
        EgressVerdict::Blocked {
            isolating: vec![policy("app", "implicit-egress")]
        }
    );
    assert!(evaluate_egress(&web(), &egress_without_types, &to_ip("10.1.2.3", 443)).is_allowed());

    let not_egress = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-only}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-typed-with-egress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty-egress-list}
spec:
  podSelector: {}
  egress: []
",
    );
    assert_eq!(
        evaluate_egress(&web(), &not_egress, &to_ip("52.94.0.1", 443)),
        EgressVerdict::NotIsolated
    );
    let dest = to_ip("52.94.0.1", 443);
    let check = egress_check("STS", &dest, &evaluate_egress(&web(), &not_egress, &dest));
    assert_eq!(check.status, Status::Pass);
    assert!(
        check
            .message
            .contains("no NetworkPolicy selects the pod for egress")
    );
    let dns = evaluate_dns(&web(), &not_egress, Some(ip("10.96.0.10")), None);
    assert_eq!(dns.udp, EgressVerdict::NotIsolated);
    assert_eq!(dns_check(&dns).status, Status::Pass);
}

#[test]
fn several_policies_add_up() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: private}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 443}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: aws}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.168.0.0/16}}]
  - to: [{ipBlock: {cidr: 52.94.0.0/16}}]
    ports: [{port: 443}]
",
    );
    assert_eq!(
        allowed_by(&evaluate_egress(&web(), &set, &to_ip("52.94.1.1", 443))),
        vec![rule("aws", 1)]
    );
    assert_eq!(
        allowed_by(&evaluate_egress(&web(), &set, &to_ip("10.0.0.1", 443))),
        vec![rule("private", 0)]
    );
    let verdict = evaluate_egress(&web(), &set, &to_ip("8.8.8.8", 443));
    assert_eq!(
        verdict,
        EgressVerdict::Blocked {
            isolating: vec![policy("app", "private"), policy("app", "aws")]
        }
    );
    assert!(
        verdict.describe().contains("app/private and app/aws"),
        "{}",
        verdict.describe()
    );
    let dest = to_ip("52.94.1.1", 443);
    let check = egress_check("STS", &dest, &evaluate_egress(&web(), &set, &dest));
    assert_eq!(check.status, Status::Pass);
    assert!(
        check
            .message
            .contains("egress rule 2 of NetworkPolicy app/aws"),
        "{check:?}"
    );
}

#[test]
fn a_policy_selects_only_pods_of_its_namespace_matching_its_selector() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: other}
spec: {podSelector: {}, policyTypes: [Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-db}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-unlabelled}
spec:
  podSelector: {matchExpressions: [{key: app, operator: DoesNotExist}]}
  policyTypes: [Egress]
",
    );
    assert_eq!(
        evaluate_egress(&web(), &set, &to_ip("52.94.0.1", 443)),
        EgressVerdict::NotIsolated
    );
    let mut unlabelled = web();
    unlabelled.labels.clear();
    assert_eq!(
        evaluate_egress(&unlabelled, &set, &to_ip("52.94.0.1", 443)),
        EgressVerdict::Blocked {
            isolating: vec![policy("app", "deny-unlabelled")]
        }
    );
}

#[test]
fn ipv6_blocks() {
    let set = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v6}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: '2600:1f00::/24', except: ['2600:1f00:1::/48']}}]
",
    );
    assert!(evaluate_egress(&web(), &set, &to_ip("2600:1f00::1", 443)).is_allowed());
    assert!(evaluate_egress(&web(), &set, &to_ip("2600:1fff::1", 443)).is_allowed());
    assert!(evaluate_egress(&web(), &set, &to_ip("2600:1f00:1::5", 443)).is_blocked());
    assert!(evaluate_egress(&web(), &set, &to_ip("2600:2000::1", 443)).is_blocked());
    assert!(evaluate_egress(&web(), &set, &to_ip("fd00:ec2::23", 80)).is_blocked());
    assert!(evaluate_egress(&web(), &set, &to_ip("52.94.0.1", 443)).is_blocked());
}

const ALLOW_INTERNET: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-internet}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
    ports: [{port: 443}]
";

#[test]
fn unknown_address_offline_decides_what_it_can() {
    let sts = Destination::host("sts.amazonaws.com", 443);
    // Default deny: blocked whatever the address.
    assert!(evaluate_egress(&web(), &policies(DEFAULT_DENY), &sts).is_blocked());
    // A rule with no `to` on the port: allowed whatever the address.
    let any_443 = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: any-443}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: 443}]}]
",
    );
    assert_eq!(
        allowed_by(&evaluate_egress(&web(), &any_443, &sts)),
        vec![rule("any-443", 0)]
    );
    // An ipBlock decides: undetermined, naming the rule and its block.
    let set = policies(&format!("{DEFAULT_DENY}---{ALLOW_INTERNET}"));
    let verdict = evaluate_egress(&web(), &set, &sts);
    let EgressVerdict::Undetermined {
        reason,
        isolating,
        rules,
    } = &verdict
    else {
        panic!("expected undetermined, got {verdict:?}");
    };
    assert_eq!(isolating.len(), 2);
    assert_eq!(
        rules,
        &vec![UndecidedRule {
            rule: rule("allow-internet", 0),
            needs: vec!["ipBlock 0.0.0.0/0 except 169.254.169.254/32".into()],
        }]
    );
    assert!(
        reason.contains("sts.amazonaws.com port 443/TCP"),
        "{reason}"
    );
    assert!(
        reason.contains("egress rule 1 of NetworkPolicy app/allow-internet"),
        "{reason}"
    );
    let check = egress_check("STS (sts.amazonaws.com:443)", &sts, &verdict);
    assert_eq!(check.status, Status::Skip);
    assert!(
        check
            .message
            .contains("ipBlock 0.0.0.0/0 except 169.254.169.254/32")
    );
    // The same rule does not decide another port: blocked.
    assert!(
        evaluate_egress(&web(), &set, &Destination::host("sts.amazonaws.com", 80)).is_blocked()
    );
    // Both whole address families without exceptions hold any address.
    let everything = policies(
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: everything}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: '::/0'}}]}]
",
    );
    assert!(evaluate_egress(&web(), &everything, &sts).is_allowed());
    // Once the address is known, the block decides.
    assert!(evaluate_egress(&web(), &set, &sts.clone().with_ip(ip("52.94.0.1"))).is_allowed());
}

#[test]
fn unknown_namespace_labels_are_undetermined_unless_the_name_decides() {
    let set = policies(&format!(
        "{DEFAULT_DENY}---{}",
        ALLOW_DNS.replace("kubernetes.io/metadata.name: kube-system", "team: platform")
    ));
    let dns = evaluate_dns(&web(), &set, None, Some(kube_dns_pod(None)));
    assert!(
        matches!(&dns.udp, EgressVerdict::Undetermined { rules, .. }
            if rules[0].needs == vec!["the labels of namespace kube-system".to_string()]),
        "{:?}",
        dns.udp
    );
    assert_eq!(dns_check(&dns).status, Status::Skip);
    let known = kube_dns_pod(Some(labels(&[("team", "platform")])));
    assert!(
        evaluate_dns(&web(), &set, None, Some(known))
            .udp
            .is_allowed()
    );
}

#[test]
fn host_network_pods_are_not_judged() {
    let mut pod = web();
    pod.host_network = true;
    let verdict = evaluate_egress(&pod, &policies(DEFAULT_DENY), &to_ip("52.94.0.1", 443));
    assert!(
        matches!(verdict, EgressVerdict::Undetermined { .. }),
        "{verdict:?}"
    );
    assert!(verdict.describe().contains("hostNetwork"));
}

#[test]
fn manifests_keep_policies_and_namespaces_of_the_input() {
    let text = format!(
        "{DEFAULT_DENY}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: elsewhere, namespace: other}}
spec: {{podSelector: {{}}, policyTypes: [Egress]}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: kube-system, labels: {{team: platform}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec: {{containers: [{{name: c, image: busybox}}]}}
"
    );
    let docs = documents::parse(Path::new("all.yaml"), &text).unwrap();
    let found = ManifestNetworkPolicies::from_documents(&docs, "app").unwrap();
    let names = |ns: &str| -> Vec<String> {
        found
            .policies_in(ns)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    };
    assert_eq!(names("app"), vec!["default-deny-egress"]);
    assert_eq!(names("other"), vec!["elsewhere"]);
    assert!(names("default").is_empty());
    assert_eq!(
        found.namespace_labels("kube-system"),
        Some(labels(&[("team", "platform")]))
    );
    assert_eq!(found.namespace_labels("app"), None);
    let verdict = judge_egress(&web(), &found.read("app"), &to_ip("52.94.0.1", 443));
    assert!(verdict.is_blocked());

    let bad = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec: {egress: [{ports: [{endPort: many}]}]}\n";
    let docs = documents::parse(Path::new("bad.yaml"), bad).unwrap();
    let err = ManifestNetworkPolicies::from_documents(&docs, "app")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.yaml: line 1: invalid NetworkPolicy"),
        "{err}"
    );
}
