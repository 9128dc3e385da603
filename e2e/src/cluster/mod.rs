//! Cluster providers. `local` runs a real single-node Kubernetes on this machine: etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet built from the pinned
//! Go modules in `e2e/k8s` (see `e2e/k8s/build.sh`), over Debian's containerd, runc and bridge
//! CNI, with busybox- and curl-based images built locally (no registry, no Docker), and CoreDNS
//! as the cluster's DNS answering the clouds' real names with the cloud front's address. `kind` makes the
//! same cluster shape in Docker from `kind-config.yaml` (CI machines with a Docker engine);
//! `existing` uses the current kubeconfig and creates nothing it does not own. The
//! service-account issuer flags of `local` and `kind` both come from `kind-config.yaml`
//! ([`KindConfig`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), podiam_e2e::cluster::ClusterError> {
//! use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};
//! let cluster = LocalCluster::up(LocalClusterOptions::new("https://issuer.example")).await?;
//! println!("{}", cluster.kubeconfig_path().display());
//! cluster.down()?;
//! # Ok(()) }
//! ```

pub mod cluster_dns;
mod containerd;
mod control_plane;
pub mod egress_faults;
mod error;
mod existing;
mod forward;
mod harness_ca;
mod host;
mod images;
mod iptables;
mod kind;
mod kind_config;
mod kind_dns;
pub mod kind_network;
mod kubeconfig;
mod kubelet;
mod leftovers;
pub mod link_local;
mod local;
mod machine_lock;
mod network;
mod pki;
pub mod pod_network;
mod probe_image;
pub mod process;

use std::path::PathBuf;

pub use control_plane::APISERVER_PORT;
pub use egress_faults::{EgressAction, EgressFaults, EgressRule, FAULTS_CHAIN};
pub use error::ClusterError;
pub use existing::ExistingCluster;
pub use harness_ca::{HarnessCa, IssuedCertificate};
pub use host::{HostPackages, ensure_host_packages, require_host_packages};
pub use images::{
    BUSYBOX_IMAGE, CURL_IMAGE, DISTROLESS_IMAGE, DISTROLESS_SLEEP, PAUSE_IMAGE, PUBLIC_ONLY_BUNDLE,
};
pub use iptables::RULE_COMMENT;
pub use kind::{
    DEFAULT_KIND_NODE_IMAGE, KIND_BINARY_ENV, KIND_CLUSTER_NAME, KIND_NETWORK, KindCluster,
    KindClusterOptions, KindTools, KindUpTimings, find_kind, pick_ipv4_gateway,
    require_kind_and_docker,
};
pub use kind_config::{
    CNI_DIR_VAR, ExtraMount, ISSUER_VAR, KIND_CONFIG_FILE, KindConfig, KindConfigVars,
    LOCAL_PROVIDER_APISERVER_FLAGS, LocalApiServerFlags, NODE_CNI_DIR, NODE_PKI_DIR, PKI_DIR_VAR,
    PUBLIC_KEY_FILE, SIGNING_KEY_FILE, default_kind_config_path,
};
pub use link_local::{LinkLocalRedirect, METADATA_IP, POD_IDENTITY_AGENT_IP};
pub use local::{
    ClusterStatus, ComponentStatus, LocalCluster, LocalClusterOptions, UpTimings, down_detached,
    failed_logs_dir, status_detached,
};
pub use machine_lock::{MACHINE_LOCK_PATH, MachineLock};
pub use pod_network::{
    BRIDGE_ENV, DEFAULT_BRIDGE, DEFAULT_POD_CIDR, POD_CIDR_ENV, POD_HOST_VAR, PodNetwork,
    PodNetworkError, configure_pod_network, pod_host_ip, pod_network,
};
pub use probe_image::PROBE_IMAGE;

/// The Kubernetes release `e2e/k8s` pins and `e2e/k8s/build.sh` builds.
pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// The binaries every local cluster needs, as `e2e/k8s/build.sh` names them (CoreDNS is the
/// cluster's DNS).
pub const KUBERNETES_BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "coredns",
];

/// `${PODIAM_CACHE:-$HOME/.cache/podiam}`: where `build.sh` caches binaries.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("PODIAM_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache").join("podiam")
        }
    }
}

/// Where `e2e/k8s/build.sh` puts the binaries of [`KUBERNETES_VERSION`].
pub fn default_binaries_dir() -> PathBuf {
    cache_dir()
        .join(format!("k8s-{KUBERNETES_VERSION}"))
        .join("bin")
}

/// Default state directory for the local cluster (removed by `down`).
pub fn default_state_dir() -> PathBuf {
    cache_dir().join("cluster")
}
