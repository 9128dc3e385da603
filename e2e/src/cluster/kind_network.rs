//! How pods in the kind node see the emulators on this host as pods on the local provider do:
//!
//! - **CNI**: `kind-config.yaml` disables kind's default CNI (kindnetd) and mounts the
//!   directory holding [`cni_conflist`] at `/etc/cni/net.d`: ptp + host-local + portmap with no
//!   masquerade, the same on the locally built node image and the public one. Pods keep their
//!   own source address when they reach the host, which the GKE metadata emulator needs (it
//!   identifies the calling pod by source address, as gke-metadata-server does).
//! - **Host route**: [`KIND_POD_CIDR`] via the node's address on the `kind` network, so this
//!   host's answers find the pods (added by `up`, removed by `down`).
//! - **Link-local services**: `169.254.169.254:80` (metadata) and `169.254.170.23:80` (the
//!   Pod Identity agent) are DNAT rules inside the node container (PREROUTING for pods,
//!   OUTPUT for hostNetwork pods) to the emulators on the network's gateway. The addresses are
//!   never put on a host interface nor routed for the host.
//! - **Faults** (`block` steps): a filter chain [`FAULTS_CHAIN`] in the node, jumped to
//!   first from FORWARD, matching a pod's address and the connection's original destination
//!   (`conntrack --ctorigdst`, so a block of `169.254.170.23:80` holds after the DNAT).
//! - **DNS**: kind's own CoreDNS gets [`corefile`]: the clouds' names answer with the gateway
//!   (where the cloud front listens on 443), `cluster.local` from the apiserver, every other
//!   name NXDOMAIN (nothing is forwarded), as the local provider's CoreDNS answers.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde_json::json;

use crate::cloud_hosts::{FIXED_HOSTS, dns_patterns};

/// The pods' addresses in the kind cluster (kind's default `podSubnet`, set explicitly in
/// `kind-config.yaml`).
pub const KIND_POD_CIDR: &str = "10.244.0.0/16";
/// The CNI config's file name in the node's `/etc/cni/net.d` (the directory is ours).
pub const CNI_CONFLIST_FILE: &str = "10-podiam-kind.conflist";
/// The harness's nat chain in the node, jumped to from PREROUTING and OUTPUT.
pub const LINK_LOCAL_CHAIN: &str = "PODIAM-LINK-LOCAL";
/// The harness's filter chain in the node for `block` steps, jumped to first from FORWARD.
pub const FAULTS_CHAIN: &str = "PODIAM-FAULTS";

/// `iptables` argument lists creating [`FAULTS_CHAIN`] (empty) and its jump from FORWARD.
pub fn faults_chain_rules() -> Vec<Vec<String>> {
    vec![
        args(&["-t", "filter", "-N", FAULTS_CHAIN]),
        args(&["-t", "filter", "-I", "FORWARD", "1", "-j", FAULTS_CHAIN]),
    ]
}

/// The rule specification (after `-A`/`-D FAULTS_CHAIN`) blocking TCP from `source` to what
/// the pod dialled, `destination:port` (before any DNAT in the node).
pub fn fault_spec(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    port: u16,
    reject: bool,
    tag: &str,
) -> Vec<String> {
    let source = format!("{source}/32");
    let destination = format!("{destination}/32");
    let port = port.to_string();
    let comment = format!("podiam-e2e {tag}");
    let mut spec = args(&[
        "-s",
        &source,
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctorigdst",
        &destination,
        "--ctorigdstport",
        &port,
        "-m",
        "comment",
        "--comment",
        &comment,
        "-j",
    ]);
    if reject {
        spec.extend(args(&["REJECT", "--reject-with", "tcp-reset"]));
    } else {
        spec.push("DROP".to_owned());
    }
    spec
}

/// The single-node CNI config: a point-to-point veth per pod, addresses from
/// [`KIND_POD_CIDR`], `hostPort` through portmap, no masquerade (see the module docs).
pub fn cni_conflist() -> String {
    let conf = json!({
        "cniVersion": "0.4.0",
        "name": "podiam-kind",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": false,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": KIND_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": "/run/cni-ipam-state",
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    serde_json::to_string_pretty(&conf).expect("a JSON value serializes")
}

/// A link-local service address pods call, and where on the host it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLocalForward {
    /// e.g. `169.254.169.254:80`.
    pub service: SocketAddrV4,
    /// The emulator's listener on the gateway.
    pub target: SocketAddrV4,
}

/// `iptables` argument lists, run in order inside the node, that create [`LINK_LOCAL_CHAIN`]
/// in the nat table with one DNAT rule per forward, jumped to first from PREROUTING (pods) and
/// OUTPUT (hostNetwork pods and the node itself), and the same chain in the filter table
/// (from FORWARD and OUTPUT, after DNAT) resetting TCP to any other port of those addresses.
/// Run after [`remove_link_local_rules`].
pub fn link_local_rules(forwards: &[LinkLocalForward]) -> Vec<Vec<String>> {
    let mut rules: Vec<Vec<String>> = vec![
        args(&["-t", "nat", "-N", LINK_LOCAL_CHAIN]),
        args(&["-t", "filter", "-N", LINK_LOCAL_CHAIN]),
    ];
    for forward in forwards {
        let service = format!("{}/32", forward.service.ip());
        let port = forward.service.port().to_string();
        let target = forward.target.to_string();
        rules.push(args(&[
            "-t",
            "nat",
            "-A",
            LINK_LOCAL_CHAIN,
            "-d",
            &service,
            "-p",
            "tcp",
            "--dport",
            &port,
            "-j",
            "DNAT",
            "--to-destination",
            &target,
        ]));
    }
    let mut addresses: Vec<Ipv4Addr> = forwards.iter().map(|f| *f.service.ip()).collect();
    addresses.dedup();
    for address in addresses {
        let address = format!("{address}/32");
        rules.push(args(&[
            "-t",
            "filter",
            "-A",
            LINK_LOCAL_CHAIN,
            "-d",
            &address,
            "-p",
            "tcp",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ]));
    }
    for (table, hook) in [
        ("nat", "PREROUTING"),
        ("nat", "OUTPUT"),
        ("filter", "FORWARD"),
        ("filter", "OUTPUT"),
    ] {
        rules.push(args(&[
            "-t",
            table,
            "-I",
            hook,
            "1",
            "-j",
            LINK_LOCAL_CHAIN,
        ]));
    }
    rules
}

/// The argument lists that undo [`link_local_rules`] (each may fail when absent).
pub fn remove_link_local_rules() -> Vec<Vec<String>> {
    let mut rules = Vec::new();
    for (table, hooks) in [
        ("nat", ["PREROUTING", "OUTPUT"]),
        ("filter", ["FORWARD", "OUTPUT"]),
    ] {
        for hook in hooks {
            rules.push(args(&["-t", table, "-D", hook, "-j", LINK_LOCAL_CHAIN]));
        }
        rules.push(args(&["-t", table, "-F", LINK_LOCAL_CHAIN]));
        rules.push(args(&["-t", table, "-X", LINK_LOCAL_CHAIN]));
    }
    rules
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `ip route` arguments for the host route to the pods (`add` = `replace`, else `del`).
pub fn host_route(add: bool, node_ip: Ipv4Addr) -> Vec<String> {
    let verb = if add { "replace" } else { "del" };
    args(&["route", verb, KIND_POD_CIDR, "via", &node_ip.to_string()])
}

/// The Corefile for kind's CoreDNS (ConfigMap `kube-system/coredns`, key `Corefile`).
/// `cluster.local` has its own server block: in one block `template` runs before `kubernetes`,
/// and the last template answers NXDOMAIN for every name no earlier one matched.
pub fn corefile(gateway: Ipv4Addr) -> String {
    let mut out = String::from(
        "# Generated by podiam-e2e (cluster/kind_network.rs): the clouds' names answer with\n\
         # the kind network's gateway (the cloud front); every other name is NXDOMAIN.\n\
         cluster.local:53 {\n    errors\n    kubernetes cluster.local {\n        pods insecure\n        ttl 30\n    }\n    cache 30\n}\n\
         .:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n    log\n    prometheus :9153\n",
    );
    let fixed = FIXED_HOSTS
        .iter()
        .map(|(name, _)| format!("^{}\\.$", name.replace('.', "\\.")));
    for pattern in dns_patterns().into_iter().chain(fixed) {
        // A and AAAA of a matched name: the gateway, and NODATA (the front has no IPv6).
        let _ = write!(
            out,
            "    template IN A {{\n        match \"{pattern}\"\n        answer \"{{{{ .Name }}}} 60 IN A {gateway}\"\n        fallthrough\n    }}\n\
             \x20   template IN AAAA {{\n        match \"{pattern}\"\n        rcode NOERROR\n        fallthrough\n    }}\n"
        );
    }
    out.push_str(
        "    template ANY ANY {\n        rcode NXDOMAIN\n    }\n    loop\n    reload\n}\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cni_config_is_ptp_without_masquerade_on_the_pod_cidr() {
        let conf: serde_json::Value = serde_json::from_str(&cni_conflist()).unwrap();
        let ptp = &conf["plugins"][0];
        assert_eq!(ptp["type"], "ptp");
        assert_eq!(ptp["ipMasq"], false);
        assert_eq!(ptp["ipam"]["ranges"][0][0]["subnet"], KIND_POD_CIDR);
        assert_eq!(conf["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn link_local_addresses_are_dnat_rules_in_one_chain() {
        let forwards = [
            LinkLocalForward {
                service: "169.254.169.254:80".parse().unwrap(),
                target: "172.18.0.1:41234".parse().unwrap(),
            },
            LinkLocalForward {
                service: "169.254.170.23:80".parse().unwrap(),
                target: "172.18.0.1:41235".parse().unwrap(),
            },
        ];
        let rules: Vec<String> = link_local_rules(&forwards)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert!(
            rules.contains(
                &"-t nat -A PODIAM-LINK-LOCAL -d 169.254.169.254/32 -p tcp --dport 80 -j DNAT \
              --to-destination 172.18.0.1:41234"
                    .to_owned()
            )
        );
        assert!(
            rules.contains(
                &"-t nat -A PODIAM-LINK-LOCAL -d 169.254.170.23/32 -p tcp --dport 80 -j DNAT \
              --to-destination 172.18.0.1:41235"
                    .to_owned()
            )
        );
        // Pods (PREROUTING) and hostNetwork pods (OUTPUT) both jump to it, first.
        assert!(rules.contains(&"-t nat -I PREROUTING 1 -j PODIAM-LINK-LOCAL".to_owned()));
        assert!(rules.contains(&"-t nat -I OUTPUT 1 -j PODIAM-LINK-LOCAL".to_owned()));
        // Other ports of those addresses are refused, after DNAT (filter FORWARD and OUTPUT).
        assert!(
            rules.contains(
                &"-t filter -A PODIAM-LINK-LOCAL -d 169.254.170.23/32 -p tcp -j REJECT \
              --reject-with tcp-reset"
                    .to_owned()
            )
        );
        assert!(rules.contains(&"-t filter -I FORWARD 1 -j PODIAM-LINK-LOCAL".to_owned()));
        let dnat = rules.iter().position(|r| r.contains("DNAT")).unwrap();
        let reject = rules.iter().position(|r| r.contains("REJECT")).unwrap();
        let hooks = rules.iter().position(|r| r.contains(" -I ")).unwrap();
        assert!(
            dnat < hooks && reject < hooks,
            "chains are filled before any jump"
        );
        // Nothing routes or masquerades: DNAT only.
        assert!(
            rules
                .iter()
                .all(|r| !r.contains("MASQUERADE") && !r.contains("SNAT"))
        );
        let undo: Vec<String> = remove_link_local_rules()
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert_eq!(undo.last().unwrap(), "-t filter -X PODIAM-LINK-LOCAL");
        assert!(undo.contains(&"-t nat -X PODIAM-LINK-LOCAL".to_owned()));
        assert!(undo.contains(&"-t nat -D OUTPUT -j PODIAM-LINK-LOCAL".to_owned()));
    }

    #[test]
    fn faults_match_the_pod_and_the_original_destination() {
        let spec = fault_spec(
            Ipv4Addr::new(10, 244, 0, 7),
            Ipv4Addr::new(169, 254, 170, 23),
            80,
            false,
            "ns",
        )
        .join(" ");
        assert_eq!(
            spec,
            "-s 10.244.0.7/32 -p tcp -m conntrack --ctorigdst 169.254.170.23/32 \
             --ctorigdstport 80 -m comment --comment podiam-e2e ns -j DROP"
        );
        let reject = fault_spec(
            Ipv4Addr::new(10, 244, 0, 7),
            Ipv4Addr::new(172, 18, 0, 1),
            443,
            true,
            "ns",
        );
        assert!(
            reject
                .join(" ")
                .ends_with("-j REJECT --reject-with tcp-reset")
        );
        let chain: Vec<String> = faults_chain_rules().iter().map(|r| r.join(" ")).collect();
        assert_eq!(chain[1], "-t filter -I FORWARD 1 -j PODIAM-FAULTS");
    }

    #[test]
    fn the_host_route_points_the_pod_cidr_at_the_node() {
        let node = Ipv4Addr::new(172, 18, 0, 2);
        assert_eq!(
            host_route(true, node).join(" "),
            "route replace 10.244.0.0/16 via 172.18.0.2"
        );
        assert_eq!(
            host_route(false, node).join(" "),
            "route del 10.244.0.0/16 via 172.18.0.2"
        );
    }

    #[test]
    fn the_corefile_answers_cloud_names_with_the_gateway_and_nothing_else() {
        let text = corefile(Ipv4Addr::new(172, 18, 0, 1));
        assert!(text.contains("cluster.local:53 {\n    errors\n    kubernetes cluster.local"));
        assert!(
            text.contains(r#"match "^sts\.amazonaws\.com\.$""#),
            "{text}"
        );
        assert!(text.contains(r#"match "^login\.microsoftonline\.com\.$""#));
        assert!(text.contains("answer \"{{ .Name }} 60 IN A 172.18.0.1\""));
        // The catch-all comes after every name it must not shadow, and nothing is forwarded.
        let catch_all = text.find("template ANY ANY").unwrap();
        assert!(text.rfind("match ").unwrap() < catch_all);
        assert!(!text.contains("forward"));
        // kind's Deployment probes these.
        assert!(text.contains("health {") && text.contains("    ready\n"));
        for pattern in dns_patterns() {
            assert!(text.contains(&format!("match \"{pattern}\"")), "{pattern}");
        }
    }
}
