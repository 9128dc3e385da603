//! The local provider's pod network: the bridge's name and the pods' IPv4 CIDR, whose first
//! address is the host's on the bridge (the pods' gateway, the node's InternalIP, the cluster
//! DNS, the cloud front, every serving certificate's SAN). One value per process, set once
//! from `--pod-cidr`/`--bridge` (or `PODIAM_POD_CIDR`/`PODIAM_BRIDGE`), read everywhere
//! through [`pod_network`]. The default CIDR, 10.213.0.0/16, is neither podman's
//! (10.88.0.0/16) nor Docker's (172.17.0.0/16 and the 172.18+ / 192.168 pools).

use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// Default bridge name.
pub const DEFAULT_BRIDGE: &str = "podiam0";
/// Default pod CIDR.
pub const DEFAULT_POD_CIDR: &str = "10.213.0.0/16";
/// Environment variables read when no value was configured.
pub const POD_CIDR_ENV: &str = "PODIAM_POD_CIDR";
pub const BRIDGE_ENV: &str = "PODIAM_BRIDGE";
/// In scenario files: replaced by the host's address on the pod bridge.
pub const POD_HOST_VAR: &str = "${POD_HOST}";

/// A bad `--pod-cidr`/`--bridge`, or a second, different configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodNetworkError {
    #[error(
        "pod CIDR {0:?} is not an IPv4 network A.B.C.D/N with N between 8 and 28 and no host bits set"
    )]
    BadCidr(String),
    #[error("bridge name {0:?} must be 1-15 characters of letters, digits, '-', '_' or '.'")]
    BadBridge(String),
    #[error("the pod network is already {0}; it cannot change within one process")]
    AlreadyConfigured(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    bridge: String,
    network: Ipv4Addr,
    prefix: u8,
}

impl PodNetwork {
    pub fn new(cidr: &str, bridge: &str) -> Result<Self, PodNetworkError> {
        let bad = || PodNetworkError::BadCidr(cidr.to_owned());
        let (address, prefix) = cidr.trim().split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=28).contains(&prefix) || u32::from(network) & !mask(prefix) != 0 {
            return Err(bad());
        }
        let bridge_ok = !bridge.is_empty()
            && bridge.len() <= 15
            && bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !bridge_ok {
            return Err(PodNetworkError::BadBridge(bridge.to_owned()));
        }
        Ok(Self {
            bridge: bridge.to_owned(),
            network,
            prefix,
        })
    }

    /// From `PODIAM_POD_CIDR` and `PODIAM_BRIDGE`, each defaulting when unset or empty.
    pub fn from_env() -> Result<Self, PodNetworkError> {
        let read = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self::new(
            &read(POD_CIDR_ENV, DEFAULT_POD_CIDR),
            &read(BRIDGE_ENV, DEFAULT_BRIDGE),
        )
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// `A.B.C.D/N`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The first address: the host's on the bridge.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The bridge's MAC, set explicitly (see `network::ensure_bridge`): locally administered,
    /// `02:42` followed by the host address, as Docker derives its containers' MACs.
    pub fn bridge_mac(&self) -> String {
        let [a, b, c, d] = self.host_ip().octets();
        format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether `network/prefix` shares any address with the pod CIDR.
    pub fn overlaps(&self, network: Ipv4Addr, prefix: u8) -> bool {
        let common = mask(self.prefix.min(prefix));
        u32::from(network) & common == u32::from(self.network) & common
    }
}

impl std::fmt::Display for PodNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on bridge {}", self.cidr(), self.bridge)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

static CONFIGURED: OnceLock<PodNetwork> = OnceLock::new();

/// Sets this process's pod network (from the command line), before anything reads it.
/// Setting the same value again is fine; a different one is an error.
pub fn configure_pod_network(network: PodNetwork) -> Result<(), PodNetworkError> {
    let current = CONFIGURED.get_or_init(|| network.clone());
    if *current != network {
        return Err(PodNetworkError::AlreadyConfigured(current.to_string()));
    }
    Ok(())
}

/// This process's pod network: as configured, else from the environment, else the defaults.
///
/// # Panics
/// When `PODIAM_POD_CIDR` or `PODIAM_BRIDGE` is invalid and nothing was configured (the
/// command line validates them first and reports the error instead).
pub fn pod_network() -> &'static PodNetwork {
    CONFIGURED.get_or_init(|| {
        PodNetwork::from_env().unwrap_or_else(|e| panic!("{POD_CIDR_ENV}/{BRIDGE_ENV}: {e}"))
    })
}

/// The host's address on the pod bridge (see [`PodNetwork::host_ip`]).
pub fn pod_host_ip() -> Ipv4Addr {
    pod_network().host_ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_neither_podman_nor_docker() {
        let n = PodNetwork::new(DEFAULT_POD_CIDR, DEFAULT_BRIDGE).unwrap();
        assert_eq!(n.host_ip(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(n.bridge_mac(), "02:42:0a:d5:00:01");
        assert!(!n.overlaps(Ipv4Addr::new(10, 88, 0, 0), 16), "podman");
        assert!(!n.overlaps(Ipv4Addr::new(172, 17, 0, 0), 16), "docker0");
        assert!(n.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(n.overlaps(Ipv4Addr::new(10, 213, 5, 0), 24));
        assert!(n.contains(Ipv4Addr::new(10, 213, 255, 254)));
        assert!(!n.contains(Ipv4Addr::new(10, 214, 0, 1)));
    }

    #[test]
    fn bad_values_are_refused() {
        for cidr in [
            "10.213.0.1/16",
            "10.213.0.0",
            "10.213.0.0/30",
            "fd00::/64",
            "x/16",
        ] {
            assert!(
                matches!(
                    PodNetwork::new(cidr, "podiam0"),
                    Err(PodNetworkError::BadCidr(_))
                ),
                "{cidr}"
            );
        }
        for bridge in ["", "a-name-longer-than-15", "bad name"] {
            assert!(
                matches!(
                    PodNetwork::new(DEFAULT_POD_CIDR, bridge),
                    Err(PodNetworkError::BadBridge(_))
                ),
                "{bridge:?}"
            );
        }
        let n = PodNetwork::new("192.168.240.0/24", "e2e-br").unwrap();
        assert_eq!(n.host_ip(), Ipv4Addr::new(192, 168, 240, 1));
        assert_eq!(n.cidr(), "192.168.240.0/24");
    }
}
