//! Pod network: a Linux bridge with the host's address (the pods' gateway; `pod_network.rs`
//! says which bridge and CIDR), created before any component starts so the node (and
//! emulators) can bind to it from the start; the bridge +
//! host-local + portmap + loopback CNI configuration; and removal of what CNI left behind
//! when pods are killed without a CNI DEL (their masquerade rules).

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::error::{ClusterError, IoContext, Result};
use super::iptables;
use super::pod_network::{POD_CIDR_ENV, PodNetwork, pod_network};

/// The CNI network name; CNI tags its iptables rules with it.
pub const NETWORK_NAME: &str = "podiam";
/// Services (no kube-proxy runs; the range only has to exist for the apiserver).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// Creates the bridge (if absent) with the host address and a fixed MAC, up. A Linux bridge
/// whose MAC was not set takes the lowest MAC of its ports, so every pod created or deleted
/// could change it: pods that cached the old one lose their gateway — and with it the agent,
/// the metadata service, the cloud front and DNS — until their ARP entry is renewed (the
/// `bind-aws-pod-identity` flake). Docker fixes docker0's MAC the same way. Refuses a pod
/// CIDR that overlaps an address or route of another interface.
pub fn ensure_bridge() -> Result<()> {
    let network = pod_network();
    let bridge = network.bridge();
    let exists = Path::new("/sys/class/net").join(bridge).exists();
    if !exists {
        require_unused_cidr(network)?;
        ip(&["link", "add", bridge, "type", "bridge"])?;
    }
    ip(&["link", "set", bridge, "address", &network.bridge_mac()])?;
    ip(&[
        "addr",
        "replace",
        &format!("{}/{}", network.host_ip(), network.prefix()),
        "dev",
        bridge,
    ])?;
    ip(&["link", "set", bridge, "up"])
}

/// Fails naming the interface or route that already uses part of the pod CIDR.
fn require_unused_cidr(network: &PodNetwork) -> Result<()> {
    let clash = |what: String| ClusterError::MissingPrerequisite {
        what: format!(
            "a pod CIDR no other network on this host uses: {} overlaps {what}",
            network.cidr()
        ),
        fix: format!(
            "choose another with --pod-cidr (or {POD_CIDR_ENV}), e.g. 10.214.0.0/16, or remove that network"
        ),
    };
    for (dev, address, prefix) in ipv4_addresses()? {
        if network.overlaps(address, prefix) {
            return Err(clash(format!("address {address}/{prefix} of {dev}")));
        }
    }
    for (dev, destination, prefix) in ipv4_routes()? {
        // A default route covers everything and says nothing about this range.
        if prefix > 0 && network.overlaps(destination, prefix) {
            return Err(clash(format!("route {destination}/{prefix} via {dev}")));
        }
    }
    Ok(())
}

/// `(interface, address, prefix)` of every IPv4 address on the host.
pub fn ipv4_addresses() -> Result<Vec<(String, Ipv4Addr, u8)>> {
    let listing: serde_json::Value = ip_json(&["-4", "addr", "show"])?;
    let mut out = Vec::new();
    for link in listing.as_array().into_iter().flatten() {
        let dev = link["ifname"].as_str().unwrap_or_default().to_owned();
        for info in link["addr_info"].as_array().into_iter().flatten() {
            if let (Some(local), Some(prefix)) =
                (info["local"].as_str(), info["prefixlen"].as_u64())
                && let Ok(address) = local.parse()
            {
                out.push((dev.clone(), address, prefix as u8));
            }
        }
    }
    Ok(out)
}

/// `(interface, destination, prefix)` of every IPv4 route of the main table.
pub fn ipv4_routes() -> Result<Vec<(String, Ipv4Addr, u8)>> {
    let listing: serde_json::Value = ip_json(&["-4", "route", "show"])?;
    let mut out = Vec::new();
    for route in listing.as_array().into_iter().flatten() {
        let dev = route["dev"].as_str().unwrap_or_default().to_owned();
        let dst = route["dst"].as_str().unwrap_or_default();
        let (address, prefix) = match dst.split_once('/') {
            _ if dst == "default" => (Ipv4Addr::UNSPECIFIED, 0),
            Some((a, p)) => match (a.parse(), p.parse()) {
                (Ok(a), Ok(p)) => (a, p),
                _ => continue,
            },
            None => match dst.parse() {
                Ok(a) => (a, 32),
                Err(_) => continue,
            },
        };
        out.push((dev, address, prefix));
    }
    Ok(out)
}

/// Removes the link-local addresses earlier versions of the harness added to the bridge
/// (they now reach pods by DNAT only). Best effort.
pub fn remove_legacy_link_local_addresses(bridge: &str) {
    if Path::new("/sys/class/net").join(bridge).exists() {
        for address in super::link_local::LEGACY_BRIDGE_ADDRESSES {
            let _ = ip(&["addr", "del", address, "dev", bridge]);
        }
    }
}

/// Deletes `bridge` (its veths are gone once the pods' network namespaces are).
pub fn delete_bridge(bridge: &str) {
    if Path::new("/sys/class/net").join(bridge).exists() {
        let _ = ip(&["link", "del", bridge]);
    }
}

/// Writes the CNI conflist into `conf_dir`; host-local keeps its leases in `ipam_dir`.
pub fn write_cni_config(conf_dir: &Path, ipam_dir: &Path) -> Result<()> {
    fs::create_dir_all(conf_dir).io_context(|| format!("creating {}", conf_dir.display()))?;
    fs::create_dir_all(ipam_dir).io_context(|| format!("creating {}", ipam_dir.display()))?;
    let network = pod_network();
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge(),
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.cidr(), "gateway": network.host_ip().to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"},
        ],
    });
    let path = conf_dir.join("10-podiam.conflist");
    let text = serde_json::to_string_pretty(&conf).expect("a JSON value serializes");
    fs::write(&path, text).io_context(|| format!("writing {}", path.display()))
}

/// Removes the NAT rules and chains the bridge plugin added for our pods (tagged
/// `name: "podiam"`), and the kubelet's empty canary and hint chains (IPv4 and IPv6).
/// Best effort.
///
/// The bridge plugin creates a pod's `CNI-…` chain before it adds the POSTROUTING jump to it,
/// and on DEL removes the jump before the chain: a plugin killed in between (containerd
/// stopping, a sandbox torn down without CNI DEL) leaves a chain no jump leads to. So the
/// chains are found by the comment on their own rules, not through POSTROUTING.
pub fn remove_iptables_rules(iptables_path: &Path) {
    let tag = cni_rule_tag(NETWORK_NAME);
    let listing = iptables::run(iptables_path, &["-t", "nat", "-S"]).unwrap_or_default();
    let chains = cni_chains(&listing, NETWORK_NAME);
    // Every jump first: a chain something still jumps to cannot be deleted.
    iptables::delete_matching(iptables_path, "nat", "POSTROUTING", |line| {
        line.contains(&tag) || listed_target(line).is_some_and(|t| chains.iter().any(|c| c == t))
    });
    for chain in &chains {
        let _ = iptables::run(iptables_path, &["-t", "nat", "-F", chain]);
        let _ = iptables::run(iptables_path, &["-t", "nat", "-X", chain]);
    }
    let ip6tables = iptables_path.with_file_name("ip6tables");
    for program in [iptables_path, ip6tables.as_path()] {
        for table in ["nat", "filter", "mangle"] {
            let _ = iptables::run(program, &["-t", table, "-X", "KUBE-KUBELET-CANARY"]);
        }
        let _ = iptables::run(program, &["-t", "mangle", "-X", "KUBE-IPTABLES-HINT"]);
    }
}

/// How the bridge plugin's comment starts for `network`, as `-L -n` prints it
/// (`/* name: "podiam" id: "…" */`).
fn cni_rule_tag(network: &str) -> String {
    format!("name: \"{network}\" ")
}

/// The `CNI-…` chains of `network` in an `iptables -t nat -S` listing: those holding a rule
/// commented `name: "<network>"` (which `-S` prints with escaped quotes).
fn cni_chains(listing: &str, network: &str) -> Vec<String> {
    let tag = format!("--comment \"name: \\\"{network}\\\" ");
    let mut chains: Vec<String> = Vec::new();
    for line in listing.lines().filter(|l| l.contains(&tag)) {
        if let Some(chain) = line
            .strip_prefix("-A ")
            .and_then(|rest| rest.split_whitespace().next())
            && chain.starts_with("CNI-")
            && !chains.iter().any(|c| c == chain)
        {
            chains.push(chain.to_owned());
        }
    }
    chains
}

/// The target column of an `iptables -L -n --line-numbers` rule line.
fn listed_target(line: &str) -> Option<&str> {
    line.split_whitespace().nth(1)
}

fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| ClusterError::other(format!("running ip {}: {e}", args.join(" "))))?;
    if !output.status.success() {
        return Err(ClusterError::other(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

fn ip_json(args: &[&str]) -> Result<serde_json::Value> {
    let output = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| ClusterError::other(format!("running ip -j {}: {e}", args.join(" "))))?;
    if !output.status.success() {
        return Err(ClusterError::other(format!(
            "ip -j {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| ClusterError::other(format!("ip -j {}: {e}", args.join(" "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_overlapping_a_host_address_is_refused_naming_it() {
        // Every host has 127.0.0.1/8 on lo.
        let clash = PodNetwork::new("127.0.0.0/16", "podiam-t").unwrap();
        let error = require_unused_cidr(&clash).unwrap_err().to_string();
        assert!(
            error.contains("127.0.0.0/16 overlaps address 127.0.0.1/8 of lo"),
            "{error}"
        );
        assert!(error.contains("--pod-cidr"), "{error}");
        let free = PodNetwork::new("10.251.0.0/16", "podiam-t").unwrap();
        let in_use = ipv4_addresses()
            .unwrap()
            .into_iter()
            .chain(ipv4_routes().unwrap())
            .any(|(_, a, p)| p > 0 && free.overlaps(a, p));
        assert_eq!(require_unused_cidr(&free).is_ok(), !in_use);
    }

    /// `iptables -t nat -S` on a host with two podiam pods (one whose POSTROUTING jump is
    /// gone), a podman pod and a pod of a network whose name only starts with ours.
    const NAT_LISTING: &str = r#"-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-N CNI-2756f815c140baba13e1e710
-N CNI-aaaa
-N CNI-bbbb
-N CNI-cccc
-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \"podiam\" id: \"b1\"" -j CNI-aaaa
-A POSTROUTING -s 10.88.0.2/32 -m comment --comment "name: \"podman\" id: \"c1\"" -j CNI-bbbb
-A POSTROUTING -s 10.90.0.2/32 -m comment --comment "name: \"podiam2\" id: \"d1\"" -j CNI-cccc
-A CNI-2756f815c140baba13e1e710 -d 10.244.0.0/16 -m comment --comment "name: \"podiam\" id: \"a7527b9d\"" -j ACCEPT
-A CNI-2756f815c140baba13e1e710 ! -d 224.0.0.0/4 -m comment --comment "name: \"podiam\" id: \"a7527b9d\"" -j MASQUERADE
-A CNI-aaaa -d 10.244.0.0/16 -m comment --comment "name: \"podiam\" id: \"b1\"" -j ACCEPT
-A CNI-aaaa ! -d 224.0.0.0/4 -m comment --comment "name: \"podiam\" id: \"b1\"" -j MASQUERADE
-A CNI-bbbb -d 10.88.0.0/16 -m comment --comment "name: \"podman\" id: \"c1\"" -j ACCEPT
-A CNI-cccc -d 10.90.0.0/16 -m comment --comment "name: \"podiam2\" id: \"d1\"" -j ACCEPT
"#;

    #[test]
    fn our_cni_chains_are_found_by_their_own_rules_with_or_without_a_jump() {
        assert_eq!(
            cni_chains(NAT_LISTING, NETWORK_NAME),
            ["CNI-2756f815c140baba13e1e710", "CNI-aaaa"]
        );
        assert_eq!(cni_chains(NAT_LISTING, "podman"), ["CNI-bbbb"]);
        assert!(cni_chains("-P POSTROUTING ACCEPT\n", NETWORK_NAME).is_empty());
    }

    #[test]
    fn a_postrouting_jump_is_ours_by_its_comment() {
        let tag = cni_rule_tag(NETWORK_NAME);
        // As `iptables -t nat -L POSTROUTING -n --line-numbers` prints them.
        let ours =
            r#"1    CNI-aaaa  all  --  10.244.0.5  0.0.0.0/0  /* name: "podiam" id: "b1" */"#;
        let other =
            r#"2    CNI-cccc  all  --  10.90.0.2  0.0.0.0/0  /* name: "podiam2" id: "d1" */"#;
        assert!(ours.contains(&tag));
        assert!(!other.contains(&tag));
        assert_eq!(listed_target(ours), Some("CNI-aaaa"));
    }
}
