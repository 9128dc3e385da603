//! Link-local services for pods only. Pods reach the GKE metadata server (and the EC2/Azure
//! IMDS served with it) at 169.254.169.254:80 and the EKS Pod Identity Agent at
//! 169.254.170.23:80 as on the clouds, but these addresses are never added to a host
//! interface nor routed for the host: on a cloud VM (GitHub's runners are) that would hijack
//! the VM's own metadata service. Instead a nat PREROUTING rule, for packets arriving on the
//! pod bridge only, rewrites the destination to the emulator's socket on the bridge's host
//! address. DNAT keeps the pod's source address, which is how the emulators identify the pod;
//! egress faults match the original destination (`--ctorigdst`), so blocking
//! 169.254.170.23:80 still blocks what the pod asked for. `fd00:ec2::23` (the agent's IPv6
//! address) is not served: pods here have IPv4 only.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use super::error::Result;
use super::iptables::{self, RULE_COMMENT};

/// The GCE/GKE metadata address (also EC2's and Azure's IMDS).
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The EKS Pod Identity Agent's IPv4 address.
pub const POD_IDENTITY_AGENT_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// Addresses earlier versions of the harness added to the `podiam0` bridge (removed by
/// leftover cleanup).
pub const LEGACY_BRIDGE_ADDRESSES: [&str; 2] = ["169.254.169.254/32", "169.254.170.23/32"];

/// One link-local address:port served to pods by a host socket; the rule goes with the value.
#[derive(Debug)]
pub struct LinkLocalRedirect {
    iptables: PathBuf,
    spec: Vec<String>,
}

impl LinkLocalRedirect {
    /// Makes TCP from pods on `bridge` to `service` reach `target` (a socket already bound
    /// on the bridge's host address, so no port is released before it is used).
    pub fn install(
        iptables: &Path,
        bridge: &str,
        service: SocketAddrV4,
        target: SocketAddrV4,
    ) -> Result<Self> {
        let redirect = Self {
            iptables: iptables.to_path_buf(),
            spec: spec(bridge, service, target),
        };
        iptables::insert_once(iptables, "nat", "PREROUTING", &redirect.spec_refs())?;
        Ok(redirect)
    }

    fn spec_refs(&self) -> Vec<&str> {
        self.spec.iter().map(String::as_str).collect()
    }
}

impl Drop for LinkLocalRedirect {
    fn drop(&mut self) {
        iptables::delete_all(&self.iptables, "nat", "PREROUTING", &self.spec_refs());
    }
}

fn spec(bridge: &str, service: SocketAddrV4, target: SocketAddrV4) -> Vec<String> {
    [
        "-i",
        bridge,
        "-d",
        &format!("{}/32", service.ip()),
        "-p",
        "tcp",
        "--dport",
        &service.port().to_string(),
        "-m",
        "comment",
        "--comment",
        &format!("{RULE_COMMENT} link-local"),
        "-j",
        "DNAT",
        "--to-destination",
        &target.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Removes every nat PREROUTING rule the harness left (any bridge). Best effort.
pub fn remove_leftover_redirects(iptables: &Path) -> usize {
    iptables::delete_matching(iptables, "nat", "PREROUTING", iptables::has_rule_comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_matches_only_pod_traffic_to_the_service() {
        let spec = spec(
            "podiam0",
            SocketAddrV4::new(METADATA_IP, 80),
            SocketAddrV4::new(Ipv4Addr::new(10, 213, 0, 1), 40123),
        )
        .join(" ");
        assert_eq!(
            spec,
            "-i podiam0 -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment podiam-e2e link-local -j DNAT --to-destination 10.213.0.1:40123"
        );
    }
}
