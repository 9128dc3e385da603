//! The `local` provider: brings every piece up in order, waits for a Ready node, and takes it
//! all down again (processes by pid, container processes by their shims, mounts, cgroups,
//! NAT rules, the bridge, the state directory). A run that crashed is cleaned up by the next
//! `up` from its pid files.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node, ServiceAccount};
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::cluster_dns::{self, ClusterDnsConfig};
use super::containerd::{self, ContainerdPaths};
use super::control_plane::{
    self, APISERVER_PORT, CONTROLLER_MANAGER_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT,
    SCHEDULER_PORT, ServiceAccountIssuer,
};
use super::error::{ClusterError, IoContext, Result};
use super::harness_ca::HarnessCa;
use super::host::{self, HostPackages};
use super::images;
use super::kubeconfig;
use super::kubelet::{self, KUBELET_HEALTHZ_PORT, KUBELET_PORT, KubeletPaths};
use super::leftovers;
use super::network::{self, KUBERNETES_SERVICE_IP};
use super::pki::{Pki, PkiSubjects};
use super::pod_network::{PodNetwork, pod_host_ip, pod_network};
use super::process::{self, ManagedProcess, ProcessFiles};
use super::{KUBERNETES_BINARIES, KUBERNETES_VERSION, default_binaries_dir, default_state_dir};

/// Grace before SIGKILL when stopping a component.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// For CNI plugins containerd left running to finish (each takes milliseconds).
const CNI_PLUGIN_GRACE: Duration = Duration::from_secs(5);
/// For containerd, etcd and the apiserver to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    /// Everything the cluster writes (removed by `down`). Default `~/.cache/podiam/cluster`.
    pub state_dir: PathBuf,
    /// etcd and the Kubernetes binaries. Default [`default_binaries_dir`].
    pub binaries_dir: PathBuf,
    /// `--service-account-issuer`: the `iss` of every service-account token.
    pub service_account_issuer: String,
    /// `--service-account-jwks-uri`, when discovery should point elsewhere.
    pub service_account_jwks_uri: Option<String>,
    /// RSA private key (PEM) to sign service-account tokens with; generated when `None`.
    pub service_account_signing_key_pem: Option<String>,
    /// The node's name. Default `podiam-node`.
    pub node_name: String,
    /// How long to wait for the node to be Ready (after the apiserver answers).
    pub ready_timeout: Duration,
    /// Appended to kube-apiserver's flags.
    pub extra_apiserver_args: Vec<String>,
    /// Run apt-get when containerd, runc, the CNI plugins, iptables or busybox are missing.
    pub install_host_packages: bool,
    /// Leave everything running when the `LocalCluster` is dropped without `down` (debugging).
    pub keep_running_on_drop: bool,
    /// The harness CA (pods trust it through the images' CA bundle). Default
    /// [`HarnessCa::default_dir`], kept across `down`.
    pub harness_ca_dir: PathBuf,
}

impl LocalClusterOptions {
    pub fn new(service_account_issuer: impl Into<String>) -> Self {
        Self {
            state_dir: default_state_dir(),
            binaries_dir: default_binaries_dir(),
            service_account_issuer: service_account_issuer.into(),
            service_account_jwks_uri: None,
            service_account_signing_key_pem: None,
            node_name: "podiam-node".to_owned(),
            ready_timeout: Duration::from_secs(90),
            extra_apiserver_args: Vec::new(),
            install_host_packages: true,
            keep_running_on_drop: false,
            harness_ca_dir: HarnessCa::default_dir(),
        }
    }
}

/// One component's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    pub pid: u32,
    pub running: bool,
    pub log: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// In start order: containerd, etcd, kube-apiserver, coredns, kube-controller-manager,
    /// kube-scheduler, kubelet.
    pub components: Vec<ComponentStatus>,
    /// containerd's runc shims and the container processes under them.
    pub container_pids: Vec<u32>,
}

impl ClusterStatus {
    pub fn all_running(&self) -> bool {
        !self.components.is_empty() && self.components.iter().all(|c| c.running)
    }

    /// Every pid the cluster started, directly or through containerd.
    pub fn all_pids(&self) -> Vec<u32> {
        self.components
            .iter()
            .map(|c| c.pid)
            .chain(self.container_pids.iter().copied())
            .collect()
    }
}

/// How long each phase of `up` took.
#[derive(Debug, Clone, Default)]
pub struct UpTimings {
    pub host_packages: Duration,
    pub pki: Duration,
    pub containerd_and_images: Duration,
    pub apiserver_ready: Duration,
    pub node_ready: Duration,
    pub total: Duration,
    /// apt-get ran during this `up`.
    pub installed_packages: bool,
}

#[derive(Debug)]
pub struct LocalCluster {
    options: LocalClusterOptions,
    host: HostPackages,
    pki: Pki,
    admin_kubeconfig: PathBuf,
    containerd: ContainerdPaths,
    kubelet: KubeletPaths,
    /// In start order.
    processes: Vec<ManagedProcess>,
    timings: UpTimings,
    down: bool,
    /// The machine's cluster lock, released after `Drop` has torn the cluster down.
    _lock: super::MachineLock,
}

impl LocalCluster {
    /// Starts containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
    /// the kubelet, and returns once the node is Ready and the `default` namespace has its
    /// ServiceAccount and `kube-root-ca.crt` (pods can start). Leftovers of an earlier run in
    /// the same state directory are cleaned up first. On error, everything started is stopped.
    pub async fn up(options: LocalClusterOptions) -> Result<Self> {
        let started = Instant::now();
        let mut timings = UpTimings::default();
        host::require_root()?;
        let lock = super::MachineLock::acquire()
            .io_context(|| format!("taking {}", super::MACHINE_LOCK_PATH))?;
        require_binaries(&options.binaries_dir)?;
        let host = if options.install_host_packages {
            host::ensure_host_packages()?
        } else {
            host::require_host_packages()?
        };
        timings.installed_packages = host.installed_now;
        timings.host_packages = started.elapsed();

        let state_dir = options.state_dir.clone();
        clean_leftovers(&state_dir, &options.binaries_dir, &host)?;
        host::require_free_udp_port(pod_host_ip(), 53, "the cluster DNS (CoreDNS)")?;
        host::require_free_ports(&[
            (ETCD_CLIENT_PORT, "etcd"),
            (ETCD_PEER_PORT, "etcd peer"),
            (APISERVER_PORT, "kube-apiserver"),
            (CONTROLLER_MANAGER_PORT, "kube-controller-manager"),
            (SCHEDULER_PORT, "kube-scheduler"),
            (KUBELET_PORT, "kubelet"),
            (KUBELET_HEALTHZ_PORT, "kubelet healthz"),
        ])?;

        for dir in ["logs", "run", "pki", "etcd", "images", "kubeconfig", "dns"] {
            let dir = state_dir.join(dir);
            fs::create_dir_all(&dir).io_context(|| format!("creating {}", dir.display()))?;
        }
        set_mode(&state_dir.join("etcd"), 0o700)?;
        record_pod_network(&state_dir)?;
        set_mode(&state_dir.join("pki"), 0o700)?;

        let phase = Instant::now();
        let pki = Pki::generate(
            &state_dir.join("pki"),
            &PkiSubjects {
                node_name: options.node_name.clone(),
                ips: vec![pod_host_ip().into()],
                service_ip: KUBERNETES_SERVICE_IP.into(),
            },
            options.service_account_signing_key_pem.as_deref(),
        )?;
        let server = format!("https://127.0.0.1:{APISERVER_PORT}");
        let kc_dir = state_dir.join("kubeconfig");
        let admin_kubeconfig = kc_dir.join("admin.kubeconfig");
        kubeconfig::write(
            &admin_kubeconfig,
            &server,
            &pki.ca.cert,
            "admin",
            &pki.admin,
        )?;
        let cm_kubeconfig = kc_dir.join("controller-manager.kubeconfig");
        kubeconfig::write(
            &cm_kubeconfig,
            &server,
            &pki.ca.cert,
            "kube-controller-manager",
            &pki.controller_manager,
        )?;
        let scheduler_kubeconfig = kc_dir.join("scheduler.kubeconfig");
        kubeconfig::write(
            &scheduler_kubeconfig,
            &server,
            &pki.ca.cert,
            "kube-scheduler",
            &pki.scheduler,
        )?;
        let kubelet_kubeconfig = kc_dir.join("kubelet.kubeconfig");
        kubeconfig::write(
            &kubelet_kubeconfig,
            &server,
            &pki.ca.cert,
            "kubelet",
            &pki.kubelet,
        )?;
        timings.pki = phase.elapsed();

        let containerd_paths = ContainerdPaths::new(&state_dir);
        let kubelet_paths = KubeletPaths::new(&state_dir);
        let mut cluster = Self {
            options,
            host,
            pki,
            admin_kubeconfig,
            containerd: containerd_paths,
            kubelet: kubelet_paths,
            processes: Vec::new(),
            timings,
            down: false,
            _lock: lock,
        };
        // From here on, a failure tears down whatever was started, keeping the logs.
        if let Err(error) = cluster
            .start(&cm_kubeconfig, &scheduler_kubeconfig, &kubelet_kubeconfig)
            .await
        {
            return Err(cluster.fail(error));
        }
        cluster.timings.total = started.elapsed();
        Ok(cluster)
    }

    /// Tears down after a failed `up`, moving the logs to [`failed_logs_dir`] first; the
    /// error then names the log where it now is.
    fn fail(mut self, mut error: ClusterError) -> ClusterError {
        self.down = true;
        for p in &mut self.processes {
            p.stop(Duration::ZERO);
        }
        let logs = self.options.state_dir.join("logs");
        let kept = failed_logs_dir(&self.options.state_dir);
        let _ = fs::remove_dir_all(&kept);
        let moved = fs::rename(&logs, &kept).is_ok();
        let _ = self.teardown();
        if let ClusterError::Component { log, .. } = &mut error
            && moved
            && let Ok(rest) = log.strip_prefix(&logs)
        {
            *log = kept.join(rest);
        }
        error
    }

    async fn start(
        &mut self,
        cm_kubeconfig: &Path,
        scheduler_kubeconfig: &Path,
        kubelet_kubeconfig: &Path,
    ) -> Result<()> {
        let state_dir = self.options.state_dir.clone();
        let binaries = self.options.binaries_dir.clone();
        let files =
            |name: &str| ProcessFiles::new(&state_dir.join("logs"), &state_dir.join("run"), name);

        let phase = Instant::now();
        network::ensure_bridge()?;
        super::forward::allow_bridge(&self.host.iptables, pod_network().bridge())?;
        network::write_cni_config(&self.containerd.cni_conf_dir, &self.containerd.cni_ipam_dir)?;
        containerd::write_config(&self.containerd, &self.host)?;
        self.processes.push(containerd::spawn(
            &self.containerd,
            &self.host,
            files("containerd"),
        )?);
        self.processes.push(control_plane::spawn_etcd(
            &binaries,
            &state_dir.join("etcd"),
            files("etcd"),
        )?);
        let harness_ca = HarnessCa::load_or_generate(&self.options.harness_ca_dir)?;
        let archive = images::build_archive(
            &state_dir.join("images"),
            &images::ImageInputs::from_host(&self.host, harness_ca.cert_pem()),
        )?;
        containerd::wait_ready(
            &mut self.processes[0],
            &self.host.ctr,
            &self.containerd.socket,
            START_TIMEOUT,
        )
        .await?;
        images::import(&self.host.ctr, &self.containerd.socket, &archive)?;
        let mut bundle = std::fs::read(&self.host.ca_bundle).unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(harness_ca.cert_pem().as_bytes());
        super::probe_image::import(
            &self.host.ctr,
            &self.containerd.socket,
            &state_dir.join("images"),
            &bundle,
        )?;
        self.timings.containerd_and_images = phase.elapsed();

        let phase = Instant::now();
        control_plane::wait_listening(&mut self.processes[1], ETCD_CLIENT_PORT, START_TIMEOUT)
            .await?;
        let issuer = ServiceAccountIssuer {
            issuer: self.options.service_account_issuer.clone(),
            jwks_uri: self.options.service_account_jwks_uri.clone(),
        };
        self.processes.push(control_plane::spawn_apiserver(
            &binaries,
            &self.pki,
            &issuer,
            &self.options.extra_apiserver_args,
            files("kube-apiserver"),
        )?);
        self.wait_apiserver_ready().await?;
        self.timings.apiserver_ready = phase.elapsed();

        // The cluster's DNS, before the kubelet writes its address into pods' resolv.conf.
        let dns = ClusterDnsConfig {
            listen: (pod_host_ip(), 53).into(),
            cloud_front: pod_host_ip(),
            kubeconfig: Some(self.admin_kubeconfig.clone()),
        };
        self.processes.push(cluster_dns::spawn(
            &binaries,
            &state_dir.join("dns"),
            &dns,
            files("coredns"),
        )?);
        let coredns = self.processes.len() - 1;
        cluster_dns::wait_answering(&mut self.processes[coredns], &dns, START_TIMEOUT).await?;

        let phase = Instant::now();
        self.processes.push(control_plane::spawn_controller_manager(
            &binaries,
            &self.pki,
            cm_kubeconfig,
            files("kube-controller-manager"),
        )?);
        self.processes.push(control_plane::spawn_scheduler(
            &binaries,
            &self.pki,
            scheduler_kubeconfig,
            files("kube-scheduler"),
        )?);
        kubelet::write_config(&self.kubelet, &self.pki, &self.containerd.endpoint())?;
        self.processes.push(kubelet::spawn(
            &binaries,
            &self.kubelet,
            kubelet_kubeconfig,
            &self.options.node_name,
            files("kubelet"),
        )?);
        self.wait_node_ready().await?;
        self.timings.node_ready = phase.elapsed();
        Ok(())
    }

    /// Restarts kube-apiserver as an upgrade or a crash-looping static pod would: SIGTERM
    /// (SIGKILL after `grace`), then the same command again, until `/readyz` answers. Clients
    /// see refused connections in between. Returns how long the port was closed for, from the
    /// signal to ready.
    pub async fn restart_apiserver(&mut self, grace: Duration) -> Result<Duration> {
        let index = self
            .processes
            .iter()
            .position(|p| p.name() == "kube-apiserver")
            .ok_or_else(|| ClusterError::other("kube-apiserver is not running"))?;
        let started = Instant::now();
        self.processes[index].stop(grace);
        let state_dir = self.options.state_dir.clone();
        let issuer = ServiceAccountIssuer {
            issuer: self.options.service_account_issuer.clone(),
            jwks_uri: self.options.service_account_jwks_uri.clone(),
        };
        self.processes[index] = control_plane::spawn_apiserver(
            &self.options.binaries_dir,
            &self.pki,
            &issuer,
            &self.options.extra_apiserver_args,
            ProcessFiles::new(
                &state_dir.join("logs"),
                &state_dir.join("run"),
                "kube-apiserver",
            ),
        )?;
        self.wait_apiserver_ready().await?;
        Ok(started.elapsed())
    }

    /// Polls `/readyz` (public to anonymous clients) with the cluster CA.
    async fn wait_apiserver_ready(&mut self) -> Result<()> {
        let ca = fs::read(&self.pki.ca.cert).io_context(|| "reading the cluster CA".into())?;
        let ca = reqwest::Certificate::from_pem(&ca)
            .map_err(|e| ClusterError::other(format!("cluster CA: {e}")))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ClusterError::other(format!("building an HTTP client: {e}")))?;
        let url = format!("{}/readyz", self.api_server_url());
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last: String;
        loop {
            self.ensure_all_running()?;
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    last = format!(
                        "{} {}",
                        r.status(),
                        r.text()
                            .await
                            .unwrap_or_default()
                            .lines()
                            .filter(|l| l.contains("[-]"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(self.component_failure(
                    "kube-apiserver",
                    format!("{url} not ready after {START_TIMEOUT:?}: {last}"),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the node's Ready condition, then for the controller-manager's work that
    /// pods need (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap).
    async fn wait_node_ready(&mut self) -> Result<()> {
        let client = self.client().await?;
        let nodes: Api<Node> = Api::all(client.clone());
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
        let deadline = Instant::now() + self.options.ready_timeout;
        let node_name = self.options.node_name.clone();
        let mut node_state = String::from("the node has not registered");
        loop {
            self.ensure_all_running()?;
            let node = nodes.get_opt(&node_name).await.ok().flatten();
            let ready = node.as_ref().and_then(|n| {
                let conditions = n.status.as_ref()?.conditions.as_ref()?;
                conditions.iter().find(|c| c.type_ == "Ready").cloned()
            });
            match &ready {
                Some(c) if c.status == "True" => {
                    let sa = accounts.get_opt("default").await.ok().flatten().is_some();
                    let ca = config_maps
                        .get_opt("kube-root-ca.crt")
                        .await
                        .ok()
                        .flatten()
                        .is_some();
                    if sa && ca {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(self.component_failure(
                            "kube-controller-manager",
                            format!(
                                "node Ready, but after {:?} the default namespace has no {}",
                                self.options.ready_timeout,
                                if sa {
                                    "kube-root-ca.crt ConfigMap"
                                } else {
                                    "default ServiceAccount"
                                }
                            ),
                        ));
                    }
                }
                Some(c) => {
                    node_state = format!(
                        "node {node_name} Ready={} ({}: {})",
                        c.status,
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    )
                }
                None if node.is_some() => {
                    node_state = format!("node {node_name} has no Ready condition yet")
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(self.component_failure(
                    "kubelet",
                    format!(
                        "node not Ready after {:?}: {node_state} (containerd log: {})",
                        self.options.ready_timeout,
                        self.options.state_dir.join("logs/containerd.log").display()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn ensure_all_running(&mut self) -> Result<()> {
        for p in &mut self.processes {
            p.ensure_running()?;
        }
        Ok(())
    }

    fn component_failure(&self, name: &str, message: String) -> ClusterError {
        match self.processes.iter().find(|p| p.name() == name) {
            Some(p) => p.failure(message),
            None => ClusterError::Component {
                component: name.to_owned(),
                message,
                log: self.log_path(name),
                tail: String::new(),
            },
        }
    }

    /// The admin kubeconfig (client certificate in group `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.admin_kubeconfig
    }

    pub fn api_server_url(&self) -> String {
        format!("https://127.0.0.1:{APISERVER_PORT}")
    }

    /// The cluster CA certificate (PEM file) that signed the apiserver's serving certificate.
    pub fn ca_cert_path(&self) -> &Path {
        &self.pki.ca.cert
    }

    /// Public half of the service-account signing key (PKIX PEM), for an OIDC issuer's JWKS.
    pub fn service_account_public_key_pem(&self) -> &str {
        &self.pki.service_account_public_key_pem
    }

    /// The service-account signing key (private PEM, mode 0600), for an emulated issuer.
    pub fn service_account_signing_key_path(&self) -> &Path {
        &self.pki.service_account_key
    }

    pub fn service_account_issuer(&self) -> &str {
        &self.options.service_account_issuer
    }

    /// The address pods reach the host at (the bridge gateway); also the node's InternalIP.
    /// Bound before any pod exists, so host services can listen on it right after `up`.
    /// The iptables binary the cluster's network uses (scenario `block` steps add rules with it).
    pub fn iptables(&self) -> &Path {
        &self.host.iptables
    }

    pub fn node_ip(&self) -> Ipv4Addr {
        pod_host_ip()
    }

    pub fn node_name(&self) -> &str {
        &self.options.node_name
    }

    pub fn state_dir(&self) -> &Path {
        &self.options.state_dir
    }

    pub fn kubernetes_version(&self) -> &'static str {
        KUBERNETES_VERSION
    }

    /// `<state>/logs/<component>.log`.
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.options
            .state_dir
            .join("logs")
            .join(format!("{component}.log"))
    }

    pub fn up_timings(&self) -> &UpTimings {
        &self.timings
    }

    /// A client for the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig = Kubeconfig::read_from(&self.admin_kubeconfig).map_err(|e| {
            ClusterError::other(format!("reading {}: {e}", self.admin_kubeconfig.display()))
        })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    ClusterError::other(format!(
                        "kubeconfig {}: {e}",
                        self.admin_kubeconfig.display()
                    ))
                })?;
        kube::Client::try_from(config)
            .map_err(|e| ClusterError::other(format!("building a client: {e}")))
    }

    /// Each component's pid and whether it still runs, plus the container processes.
    /// containerd's shims (each runs its containers' execs as reaped children).
    pub fn shim_pids(&self) -> Vec<u32> {
        containerd::shim_pids(&self.containerd.socket)
    }

    pub fn status(&self) -> ClusterStatus {
        let shims = containerd::shim_pids(&self.containerd.socket);
        let mut container_pids = containerd::descendants(&shims);
        container_pids.extend(shims);
        ClusterStatus {
            components: self
                .processes
                .iter()
                .map(|p| ComponentStatus {
                    name: p.name().to_owned(),
                    pid: p.pid(),
                    running: process::is_alive(p.pid()),
                    log: p.log().to_path_buf(),
                })
                .collect(),
            container_pids,
        }
    }

    /// Stops every process (kubelet, containers, control plane, containerd), unmounts what
    /// they mounted, removes the cgroups, NAT rules and bridge they made, then the state
    /// directory. Blocks for a few seconds at most.
    pub fn down(mut self) -> Result<()> {
        self.down = true;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        teardown(
            &mut self.processes,
            &self.options.state_dir,
            &self.options.binaries_dir,
            &self.host,
            &self.containerd,
        )
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if !self.down && !self.options.keep_running_on_drop {
            self.down = true;
            let _ = self.teardown();
        }
    }
}

fn teardown(
    processes: &mut [ManagedProcess],
    state_dir: &Path,
    binaries_dir: &Path,
    host: &HostPackages,
    containerd_paths: &ContainerdPaths,
) -> Result<()> {
    // The kubelet first, so it does not restart the containers killed next.
    if let Some(kubelet) = processes.iter_mut().find(|p| p.name() == "kubelet") {
        kubelet.stop(STOP_GRACE);
    }
    containerd::kill_shims(&containerd_paths.socket);
    // Clients of etcd before etcd, each stage gracefully (SIGTERM) within one grace period.
    for stage in [
        &[
            "coredns",
            "kube-scheduler",
            "kube-controller-manager",
            "kube-apiserver",
        ][..],
        &["etcd", "containerd"][..],
    ] {
        let deadline = Instant::now() + STOP_GRACE;
        for p in processes.iter_mut().filter(|p| stage.contains(&p.name())) {
            p.terminate();
        }
        for p in processes.iter_mut().filter(|p| stage.contains(&p.name())) {
            p.wait_or_kill(deadline);
        }
    }
    clean_leftovers(state_dir, binaries_dir, host)
}

/// Removes whatever an earlier run in `state_dir` left: processes named by its pid files,
/// shims of its containerd, mounts, cgroups, log links, NAT rules, the bridge, the directory.
fn clean_leftovers(state_dir: &Path, binaries_dir: &Path, host: &HostPackages) -> Result<()> {
    let run_dir = state_dir.join("run");
    let containerd_paths = ContainerdPaths::new(state_dir);
    let kubelet_paths = KubeletPaths::new(state_dir);
    let kubelet_pid = run_dir.join("kubelet.pid");
    process::kill_stale(&kubelet_pid, &binaries_dir.join("kubelet"));
    containerd::kill_shims(&containerd_paths.socket);
    for name in KUBERNETES_BINARIES {
        process::kill_stale(
            &run_dir.join(format!("{name}.pid")),
            &binaries_dir.join(name),
        );
    }
    process::kill_stale(&run_dir.join("containerd.pid"), &host.containerd);

    let still_mounted = leftovers::unmount_all_under(state_dir);
    leftovers::remove_kubepods_cgroups();
    leftovers::remove_container_log_links(&kubelet_paths.pod_logs_dir);
    leftovers::remove_kubelet_device_plugin_dir();
    leftovers::remove_cni_results(network::NETWORK_NAME);
    leftovers::remove_shim_socket_dir();
    leftovers::wait_for_cni_plugins(&host.cni_bin_dir, CNI_PLUGIN_GRACE);
    network::remove_iptables_rules(&host.iptables);
    super::egress_faults::remove_faults_chain(&host.iptables);
    super::link_local::remove_leftover_redirects(&host.iptables);
    super::forward::remove_leftover_rules(&host.iptables);
    for bridge in bridges_of(state_dir) {
        network::remove_legacy_link_local_addresses(&bridge);
        network::delete_bridge(&bridge);
    }
    if !still_mounted.is_empty() {
        return Err(ClusterError::other(format!(
            "could not unmount under {}: {}",
            state_dir.display(),
            still_mounted
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if state_dir.exists() {
        fs::remove_dir_all(state_dir).io_context(|| format!("removing {}", state_dir.display()))?;
    }
    Ok(())
}

/// `<state>/run/pod-network`: the CIDR and bridge this run uses, so the next run removes this
/// bridge even if it is configured with another.
fn record_pod_network(state_dir: &Path) -> Result<()> {
    let path = state_dir.join("run").join("pod-network");
    let network = pod_network();
    fs::write(&path, format!("{} {}\n", network.cidr(), network.bridge()))
        .io_context(|| format!("writing {}", path.display()))
}

/// The configured bridge and the one recorded in `state_dir` by an earlier run, if another.
fn bridges_of(state_dir: &Path) -> Vec<String> {
    let mut bridges = vec![pod_network().bridge().to_owned()];
    let recorded =
        fs::read_to_string(state_dir.join("run").join("pod-network")).unwrap_or_default();
    if let Some((cidr, bridge)) = recorded.trim().split_once(' ')
        && PodNetwork::new(cidr, bridge).is_ok()
        && !bridges.iter().any(|b| b == bridge)
    {
        bridges.push(bridge.to_owned());
    }
    bridges
}

/// Where the logs of a failed `up` are kept: `<state_dir>.failed-logs`.
pub fn failed_logs_dir(state_dir: &Path) -> PathBuf {
    let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".failed-logs");
    state_dir.with_file_name(name)
}

/// Fails naming every missing binary and how to build them.
fn require_binaries(dir: &Path) -> Result<()> {
    let missing: Vec<&str> = KUBERNETES_BINARIES
        .into_iter()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ClusterError::MissingPrerequisite {
        what: format!(
            "Kubernetes {KUBERNETES_VERSION} binaries {} in {}",
            missing.join(", "),
            dir.display()
        ),
        fix: "run e2e/k8s/build.sh (needs Go 1.26+ and the Go module proxy; \
              `nice -n 19 e2e/k8s/build.sh` on a small machine)"
            .into(),
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .io_context(|| format!("chmod {}", path.display()))
}

/// `podiam-e2e cluster down` from another process: stops what a detached `up` left running in
/// `state_dir` (by its pid files) and removes everything it made.
pub fn down_detached(state_dir: &Path) -> Result<()> {
    let host = host::require_host_packages()?;
    clean_leftovers(state_dir, &default_binaries_dir(), &host)
}

/// `podiam-e2e cluster status` from another process: each component's recorded pid and
/// whether it still runs. Empty when no cluster was started in `state_dir`.
pub fn status_detached(state_dir: &Path) -> Vec<(String, u32, bool)> {
    let run_dir = state_dir.join("run");
    let mut names: Vec<&str> = vec!["containerd"];
    names.extend(KUBERNETES_BINARIES);
    names
        .into_iter()
        .filter_map(|name| {
            let pid: u32 = fs::read_to_string(run_dir.join(format!("{name}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name.to_owned(), pid, process::is_alive(pid)))
        })
        .collect()
}
