//! The kubelet: a KubeletConfiguration for this VM (cgroup v1 with cgroupfs, no swap
//! accounting, images never garbage-collected because they cannot be pulled back, relaxed
//! eviction, everything it writes under the state directory) and its process.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::error::{IoContext, Result};
use super::pki::Pki;
use super::pod_network::pod_host_ip;
use super::process::{ManagedProcess, ProcessFiles};

pub const KUBELET_PORT: u16 = 10250;
pub const KUBELET_HEALTHZ_PORT: u16 = 10248;

/// The kubelet's directories under the state directory.
#[derive(Debug, Clone)]
pub struct KubeletPaths {
    pub root_dir: PathBuf,
    pub config: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub volume_plugin_dir: PathBuf,
}

impl KubeletPaths {
    pub fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join("kubelet");
        Self {
            config: state_dir.join("kubelet-config.json"),
            pod_logs_dir: state_dir.join("pod-logs"),
            volume_plugin_dir: dir.join("volume-plugins"),
            root_dir: dir,
        }
    }
}

/// Writes the KubeletConfiguration (JSON, which the kubelet reads as YAML).
pub fn write_config(paths: &KubeletPaths, pki: &Pki, runtime_endpoint: &str) -> Result<()> {
    for dir in [
        &paths.root_dir,
        &paths.pod_logs_dir,
        &paths.volume_plugin_dir,
    ] {
        fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
    }
    let config = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        // Only where the apiserver reaches it (the node's InternalIP, `--node-ip`): never on
        // the host's other interfaces.
        "address": pod_host_ip().to_string(),
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": pki.ca.cert},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": pki.kubelet_serving.cert,
        "tlsPrivateKeyFile": pki.kubelet_serving.key,
        "containerRuntimeEndpoint": runtime_endpoint,
        // cgroup v1 (with a unified mount) and no systemd: cgroupfs, and keep v1 allowed.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": false,
        "failSwapOn": false,
        // Local images cannot be pulled again: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": false,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "podLogsDir": paths.pod_logs_dir,
        "volumePluginDir": paths.volume_plugin_dir,
        "resolvConf": "/etc/resolv.conf",
        // CoreDNS on the bridge gateway (no kube-proxy, so no Service IP): see cluster_dns.rs.
        "clusterDNS": [pod_host_ip().to_string()],
        "clusterDomain": super::cluster_dns::CLUSTER_DOMAIN,
        // No iptables chains of the kubelet's own on the host.
        "makeIPTablesUtilChains": false,
        "registerNode": true,
        // Room for `bench fleet` (200 pods) plus the system's; the pod CIDR is a /16.
        "maxPods": 250,
        // Quick pod status after exec-driven tests; defaults are tuned for large clusters.
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "nodeStatusUpdateFrequency": "5s",
        "nodeStatusReportFrequency": "30s",
    });
    let text = serde_json::to_string_pretty(&config).expect("a JSON value serializes");
    fs::write(&paths.config, text).io_context(|| format!("writing {}", paths.config.display()))
}

pub fn spawn(
    binaries: &Path,
    paths: &KubeletPaths,
    kubeconfig: &Path,
    node_name: &str,
    files: ProcessFiles,
) -> Result<ManagedProcess> {
    let args = vec![
        format!("--config={}", paths.config.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--root-dir={}", paths.root_dir.display()),
        format!("--cert-dir={}", paths.root_dir.join("pki").display()),
        format!("--hostname-override={node_name}"),
        format!("--node-ip={}", pod_host_ip()),
        "--v=1".to_owned(),
    ];
    ManagedProcess::spawn("kubelet", &binaries.join("kubelet"), &args, files)
}
