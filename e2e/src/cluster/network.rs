//! Pod network: a Linux bridge with the pods' gateway address, created before any component
//! starts so the node (and emulators) can bind to the gateway from the start; the bridge +
//! host-local + portmap + loopback CNI configuration; and removal of what CNI left behind
//! when pods are killed without a CNI DEL (their masquerade rules).

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::error::{ClusterError, IoContext, Result};

/// The bridge pods attach to.
pub const BRIDGE_NAME: &str = "podiam0";
/// Pod addresses (local to this machine).
pub const POD_CIDR: &str = "10.88.0.0/16";
/// The bridge's address: the pods' gateway, the node's InternalIP, and the address on which
/// host services (emulators, webhooks) are reachable from pods and from the host alike.
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
const GATEWAY_PREFIX: u8 = 16;
/// The CNI network name; CNI tags its iptables rules with it.
pub const NETWORK_NAME: &str = "podiam";
/// Services (no kube-proxy runs; the range only has to exist for the apiserver).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// The bridge's own MAC, set explicitly (locally administered, after the gateway address). A
/// Linux bridge whose MAC was not set takes the lowest MAC of its ports, so every pod created
/// or deleted could change it: pods that cached the old one lose their gateway — and with it
/// the agent, the metadata service, the cloud front and DNS — until their ARP entry is renewed
/// (the `bind-aws-pod-identity` flake: the pod's request to the agent never reached the host
/// after a pod of a parallel scenario went away). Docker fixes docker0's MAC the same way.
pub const BRIDGE_MAC: &str = "02:42:0a:58:00:01";

/// Creates the bridge (if absent) with the gateway address and a fixed MAC, up.
pub fn ensure_bridge() -> Result<()> {
    let exists = Path::new("/sys/class/net").join(BRIDGE_NAME).exists();
    if !exists {
        ip(&["link", "add", BRIDGE_NAME, "type", "bridge"])?;
    }
    ip(&["link", "set", BRIDGE_NAME, "address", BRIDGE_MAC])?;
    ip(&[
        "addr",
        "replace",
        &format!("{GATEWAY_IP}/{GATEWAY_PREFIX}"),
        "dev",
        BRIDGE_NAME,
    ])?;
    ip(&["link", "set", BRIDGE_NAME, "up"])
}

/// Removes the link-local addresses earlier versions of the harness added to the bridge
/// (they now reach pods by DNAT only). Best effort.
pub fn remove_legacy_link_local_addresses() {
    if Path::new("/sys/class/net").join(BRIDGE_NAME).exists() {
        for address in super::link_local::LEGACY_BRIDGE_ADDRESSES {
            let _ = ip(&["addr", "del", address, "dev", BRIDGE_NAME]);
        }
    }
}

/// Deletes the bridge (its veths are gone once the pods' network namespaces are).
pub fn delete_bridge() {
    if Path::new("/sys/class/net").join(BRIDGE_NAME).exists() {
        let _ = ip(&["link", "del", BRIDGE_NAME]);
    }
}

/// Writes the CNI conflist into `conf_dir`; host-local keeps its leases in `ipam_dir`.
pub fn write_cni_config(conf_dir: &Path, ipam_dir: &Path) -> Result<()> {
    fs::create_dir_all(conf_dir).io_context(|| format!("creating {}", conf_dir.display()))?;
    fs::create_dir_all(ipam_dir).io_context(|| format!("creating {}", ipam_dir.display()))?;
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE_NAME,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY_IP.to_string()}]],
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
pub fn remove_iptables_rules(iptables: &Path) {
    let comment = format!("name: \"{NETWORK_NAME}\"");
    let listing = run_output(
        iptables,
        &["-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers"],
    );
    let mut numbers: Vec<u32> = Vec::new();
    let mut chains: Vec<String> = Vec::new();
    for line in listing.lines().filter(|l| l.contains(&comment)) {
        let mut fields = line.split_whitespace();
        if let (Some(n), Some(chain)) = (fields.next(), fields.next())
            && let Ok(n) = n.parse()
        {
            numbers.push(n);
            if chain.starts_with("CNI-") {
                chains.push(chain.to_owned());
            }
        }
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    for n in numbers {
        let _ = run_output(
            iptables,
            &["-t", "nat", "-D", "POSTROUTING", &n.to_string()],
        );
    }
    for chain in chains {
        let _ = run_output(iptables, &["-t", "nat", "-F", &chain]);
        let _ = run_output(iptables, &["-t", "nat", "-X", &chain]);
    }
    let ip6tables = iptables.with_file_name("ip6tables");
    for program in [iptables, ip6tables.as_path()] {
        for table in ["nat", "filter", "mangle"] {
            let _ = run_output(program, &["-t", table, "-X", "KUBE-KUBELET-CANARY"]);
        }
        let _ = run_output(program, &["-t", "mangle", "-X", "KUBE-IPTABLES-HINT"]);
    }
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

fn run_output(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
