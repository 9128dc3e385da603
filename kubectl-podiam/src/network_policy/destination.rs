//! Where the pod wants to connect: an address (or only a host name, offline), a port and a
//! protocol, and — when the destination is itself a pod — what NetworkPolicy peers select it by.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// The protocols a NetworkPolicy port can name (`protocol`, default TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The API spelling (`TCP`, `UDP`, `SCTP`); anything else is no protocol at all.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named container port of a destination pod (`ports[].name` in its spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A destination that is a pod in the cluster: what pod and namespace selectors see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPod {
    pub namespace: String,
    /// The namespace's labels; None when they could not be read (offline without a Namespace
    /// document). `kubernetes.io/metadata.name` is known either way: the API server sets it
    /// on every namespace.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
    pub named_ports: Vec<NamedPort>,
}

/// One connection the pod would open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The address the policy sees; None when not known (offline, a host name only).
    pub ip: Option<IpAddr>,
    /// The host name, for messages and when the address is unknown.
    pub host: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    /// Set when the destination is a pod (pod and namespace selectors can select it);
    /// None for a cluster-external address.
    pub pod: Option<PeerPod>,
}

impl Destination {
    /// A TCP connection to a cluster-external host whose address is not known (offline).
    pub fn host(host: &str, port: u16) -> Self {
        Destination {
            ip: None,
            host: Some(host.to_string()),
            port,
            protocol: Protocol::Tcp,
            pod: None,
        }
    }

    /// A TCP connection to a cluster-external address (e.g. 169.254.170.23:80).
    pub fn address(ip: IpAddr, port: u16) -> Self {
        Destination {
            ip: Some(ip),
            host: None,
            port,
            protocol: Protocol::Tcp,
            pod: None,
        }
    }

    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn with_pod(mut self, pod: PeerPod) -> Self {
        self.pod = Some(pod);
        self
    }

    /// e.g. `sts.amazonaws.com (52.94.0.1) port 443/TCP`, `169.254.170.23 port 80/TCP`.
    pub fn describe(&self) -> String {
        let at = match (&self.host, self.ip, &self.pod) {
            (Some(h), Some(ip), _) => format!("{h} ({ip})"),
            (Some(h), None, _) => h.clone(),
            (None, Some(ip), _) => ip.to_string(),
            (None, None, Some(p)) => format!("a pod in namespace {}", p.namespace),
            (None, None, None) => "an unknown address".to_string(),
        };
        format!("{at} port {}/{}", self.port, self.protocol)
    }
}
