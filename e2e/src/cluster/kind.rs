//! The `kind` provider: a one-node kind cluster made from `kind-config.yaml` (see
//! [`kind_config`](super::kind_config)) with the node image built here by `setup --kind` or a
//! public `kindest/node`, signing service-account tokens with the emulated OIDC issuer's key,
//! with the harness's images loaded (no registry is needed: pods use `imagePullPolicy: Never`).
//!
//! Where things run: the cluster is a container on Docker's `kind` network; the emulators,
//! the webhook stand-ins, the agent, the cloud front and the plugin run on the host. The host
//! is reachable from the node at the `kind` network's gateway, the host side of its bridge,
//! which [`KindCluster::host_gateway_ip`] returns. A host service the apiserver or a pod must
//! call binds that address (the webhooks also name it in their certificates). How pods see
//! those services as on the local provider — the CNI config without masquerade, the host route
//! to the pods, DNAT of the link-local addresses in the node, CoreDNS — is
//! [`kind_network`](super::kind_network); `up` does the route, [`KindCluster::forward_link_local`]
//! and [`KindCluster::configure_dns`] the rest once the emulators listen.
//!
//! ```no_run
//! # async fn demo(issuer: &str, key_pem: String) -> Result<(), podiam_e2e::cluster::ClusterError> {
//! use podiam_e2e::cluster::{KindCluster, KindClusterOptions};
//! let cluster = KindCluster::up(KindClusterOptions::new(issuer, key_pem)).await?;
//! println!("{} (host at {})", cluster.kubeconfig_path().display(), cluster.host_gateway_ip());
//! cluster.down()?;
//! # Ok(()) }
//! ```

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rcgen::{KeyPair, PKCS_RSA_SHA256};

use super::error::{ClusterError, IoContext, Result};
use super::host;
use super::images;
use super::kind_config::{
    KindConfig, KindConfigVars, NODE_CNI_DIR, NODE_PKI_DIR, PUBLIC_KEY_FILE, SIGNING_KEY_FILE,
    default_kind_config_path,
};
use super::kind_network::{self, CNI_CONFLIST_FILE, KIND_POD_CIDR, LinkLocalForward};
use super::{KUBERNETES_VERSION, cache_dir};

/// The cluster's name (`kind create cluster --name`); its node container is
/// `podiam-control-plane`. A cluster of this name is the harness's: `up` deletes a leftover.
pub const KIND_CLUSTER_NAME: &str = "podiam";
/// The Docker network kind puts every cluster on.
pub const KIND_NETWORK: &str = "kind";
/// The node image `podiam-e2e setup --kind` builds on this machine (no registry).
pub const DEFAULT_KIND_NODE_IMAGE: &str = "podiam.local/kind-node:v1.34.4";
/// Overrides where the `kind` binary is taken from (else `kind` on PATH).
pub const KIND_BINARY_ENV: &str = "PODIAM_KIND";

#[derive(Debug, Clone)]
pub struct KindClusterOptions {
    /// `--name`. Default [`KIND_CLUSTER_NAME`].
    pub name: String,
    /// The template. Default [`default_kind_config_path`] (`<repo>/kind-config.yaml`).
    pub config_template: PathBuf,
    /// Rendered config, key pair, image archive, kubeconfig, logs (removed by `down`).
    /// Default `~/.cache/podiam/kind`.
    pub state_dir: PathBuf,
    /// `${PODIAM_ISSUER}`: the emulated issuer's URL.
    pub service_account_issuer: String,
    /// The issuer's RSA private key (PEM): the apiserver signs service-account tokens with
    /// it, so the emulated clouds can verify them against the issuer's JWKS.
    pub service_account_signing_key_pem: String,
    /// A statically linked busybox, the images' only binary. Default `/usr/bin/busybox`
    /// (Debian/Ubuntu `busybox-static`).
    pub busybox: PathBuf,
    /// `kind create cluster --image`. Default [`DEFAULT_KIND_NODE_IMAGE`]; GitHub's workflow
    /// passes the public `kindest/node` image.
    pub node_image: String,
    /// `kind create cluster --wait`: for the control plane to be Ready.
    pub ready_timeout: Duration,
    /// Leave the cluster when the `KindCluster` is dropped without `down` (debugging).
    pub keep_running_on_drop: bool,
}

impl KindClusterOptions {
    pub fn new(
        service_account_issuer: impl Into<String>,
        service_account_signing_key_pem: impl Into<String>,
    ) -> Self {
        Self {
            name: KIND_CLUSTER_NAME.to_owned(),
            config_template: default_kind_config_path(),
            state_dir: cache_dir().join("kind"),
            service_account_issuer: service_account_issuer.into(),
            service_account_signing_key_pem: service_account_signing_key_pem.into(),
            busybox: PathBuf::from("/usr/bin/busybox"),
            node_image: DEFAULT_KIND_NODE_IMAGE.to_owned(),
            ready_timeout: Duration::from_secs(180),
            keep_running_on_drop: false,
        }
    }
}

/// How long each phase of `up` took.
#[derive(Debug, Clone, Default)]
pub struct KindUpTimings {
    pub create: Duration,
    pub load_images: Duration,
    pub total: Duration,
}

/// A running kind cluster. Dropping it without [`Self::down`] deletes it too.
#[derive(Debug)]
pub struct KindCluster {
    options: KindClusterOptions,
    tools: KindTools,
    config: KindConfig,
    kubeconfig: PathBuf,
    gateway: IpAddr,
    /// The node's address on the `kind` network: the host routes [`KIND_POD_CIDR`] there.
    node_ip: Option<Ipv4Addr>,
    timings: KindUpTimings,
    down: bool,
    /// The machine's cluster lock, released after `Drop` has deleted the cluster.
    _lock: super::MachineLock,
}

/// The `kind` and `docker` executables, found on PATH.
#[derive(Debug, Clone)]
pub struct KindTools {
    pub kind: PathBuf,
    pub docker: PathBuf,
}

impl KindCluster {
    /// Renders `kind-config.yaml`, writes the key pair where its `extraMounts` expects it,
    /// creates the cluster (waiting for a Ready control plane), loads the harness's images
    /// and finds the host's address on the `kind` network. A leftover cluster of the same
    /// name is deleted first. Fails naming `kind` or `docker` when either is missing.
    pub async fn up(options: KindClusterOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::up_blocking(options))
            .await
            .map_err(|e| ClusterError::other(format!("kind up panicked: {e}")))?
    }

    fn up_blocking(options: KindClusterOptions) -> Result<Self> {
        let lock = super::MachineLock::acquire()
            .io_context(|| format!("taking {}", super::MACHINE_LOCK_PATH))?;
        let started = Instant::now();
        let tools = require_kind_and_docker()?;
        if !host::is_static_elf(&options.busybox) {
            return Err(ClusterError::MissingPrerequisite {
                what: format!(
                    "a statically linked busybox at {} (the images' only binary)",
                    options.busybox.display()
                ),
                fix: "apt-get install -y busybox-static".into(),
            });
        }

        let state = &options.state_dir;
        let kubeconfig = state.join("kubeconfig");
        if list_clusters(&tools)?.contains(&options.name) {
            delete_cluster(&tools, &options.name, &kubeconfig)?;
        }
        if state.exists() {
            fs::remove_dir_all(state).io_context(|| format!("removing {}", state.display()))?;
        }
        require_node_image(&tools, &options.node_image)?;
        let pki_dir = state.join("pki");
        let cni_dir = state.join("cni");
        for dir in [
            state.clone(),
            pki_dir.clone(),
            cni_dir.clone(),
            state.join("images"),
        ] {
            fs::create_dir_all(&dir).io_context(|| format!("creating {}", dir.display()))?;
        }
        let pki_dir =
            fs::canonicalize(&pki_dir).io_context(|| format!("resolving {}", pki_dir.display()))?;
        let cni_dir =
            fs::canonicalize(&cni_dir).io_context(|| format!("resolving {}", cni_dir.display()))?;
        write_key_pair(&pki_dir, &options.service_account_signing_key_pem)?;
        let conflist = cni_dir.join(CNI_CONFLIST_FILE);
        fs::write(&conflist, kind_network::cni_conflist())
            .io_context(|| format!("writing {}", conflist.display()))?;

        let vars = KindConfigVars::new(options.service_account_issuer.clone())
            .with_host_pki_dir(&pki_dir)
            .with_host_cni_dir(&cni_dir);
        let config = KindConfig::load(&options.config_template, &vars)?;
        check_config(&config, &options, &pki_dir)?;
        check_network_config(&config, &options, &cni_dir)?;
        let rendered = state.join("kind-config.yaml");
        config.write(&rendered)?;

        // The same images as the local provider's (kind pods do not reach the cloud front).
        let harness_ca = super::harness_ca::HarnessCa::load_or_generate(
            &super::harness_ca::HarnessCa::default_dir(),
        )?;
        let inputs = images::ImageInputs {
            busybox: options.busybox.clone(),
            curl: PathBuf::from("/usr/bin/curl"),
            public_ca_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            harness_ca_pem: harness_ca.cert_pem().to_owned(),
        };
        let archive = images::build_archive(&state.join("images"), &inputs)?;
        // The probe trusts what the pods' images trust (the public roots and the harness CA).
        let mut bundle = fs::read(&inputs.public_ca_bundle).unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(harness_ca.cert_pem().as_bytes());
        let probe_archive = match super::probe_image::probe_binary() {
            Ok(probe) => Some(super::probe_image::build_archive(
                &state.join("images"),
                &probe,
                Some(&bundle),
            )?),
            Err(e) => {
                tracing::warn!(error = %e, "no podiam-probe image: --probe=ephemeral scenarios will fail");
                None
            }
        };

        let phase = Instant::now();
        let create_log = state.join("kind-create.log");
        let created = run_logged(
            kind_command(&tools)
                .args(["create", "cluster", "--name", &options.name, "--config"])
                .arg(&rendered)
                .args(["--image", &options.node_image])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg(format!("--wait={}s", options.ready_timeout.as_secs())),
            &create_log,
        );
        if let Err(error) = created {
            // Keep what kind knows about the failure, then remove the half-made cluster.
            let logs = state.join("kind-logs");
            let _ = kind_command(&tools)
                .args(["export", "logs", "--name", &options.name])
                .arg(&logs)
                .output();
            let _ = delete_cluster(&tools, &options.name, &kubeconfig);
            return Err(error);
        }
        let create = phase.elapsed();

        // From here on, dropping `cluster` on an error deletes it.
        let mut cluster = Self {
            options,
            tools,
            config,
            kubeconfig,
            gateway: IpAddr::from([0, 0, 0, 0]),
            node_ip: None,
            timings: KindUpTimings {
                create,
                ..KindUpTimings::default()
            },
            down: false,
            _lock: lock,
        };
        let phase = Instant::now();
        for (i, archive) in std::iter::once(&archive)
            .chain(probe_archive.as_ref())
            .enumerate()
        {
            run_logged(
                kind_command(&cluster.tools)
                    .args(["load", "image-archive", "--name", &cluster.options.name])
                    .arg(archive),
                &cluster.options.state_dir.join(format!("kind-load-{i}.log")),
            )?;
        }
        cluster.timings.load_images = phase.elapsed();
        cluster.gateway = host_gateway(&cluster.tools, &cluster.node_name())?;
        let node_ip = node_ipv4(&cluster.tools, &cluster.node_name())?;
        ip(&kind_network::host_route(true, node_ip))?;
        cluster.node_ip = Some(node_ip);
        cluster.timings.total = started.elapsed();
        Ok(cluster)
    }

    /// The node's address on the `kind` network.
    pub fn node_ip(&self) -> Option<Ipv4Addr> {
        self.node_ip
    }

    /// Serves each link-local `service` address to the node's pods (and hostNetwork pods) at
    /// its `target` on this host: DNAT rules in the node's nat table (module
    /// [`kind_network`]). Replaces any earlier forwards.
    pub fn forward_link_local(&self, forwards: &[LinkLocalForward]) -> Result<()> {
        let node = self.node_name();
        for rule in kind_network::remove_link_local_rules() {
            let _ = self.node_iptables(&node, &rule);
        }
        for rule in kind_network::link_local_rules(forwards) {
            self.node_iptables(&node, &rule)?;
        }
        Ok(())
    }

    /// Creates the node's `block` chain ([`kind_network::FAULTS_CHAIN`]), empty.
    pub fn install_faults(&self) -> Result<()> {
        let node = self.node_name();
        for rule in kind_network::faults_chain_rules() {
            self.node_iptables(&node, &rule)?;
        }
        Ok(())
    }

    /// Blocks TCP from a pod to what it dials (`rule.destination:rule.port`, before DNAT) in
    /// the node, until [`Self::remove_fault`].
    pub fn add_fault(&self, rule: &super::EgressRule) -> Result<()> {
        self.fault("-A", rule)
    }

    pub fn remove_fault(&self, rule: &super::EgressRule) -> Result<()> {
        self.fault("-D", rule)
    }

    fn fault(&self, verb: &str, rule: &super::EgressRule) -> Result<()> {
        let mut args = vec![
            "-t".to_owned(),
            "filter".to_owned(),
            verb.to_owned(),
            kind_network::FAULTS_CHAIN.to_owned(),
        ];
        args.extend(kind_network::fault_spec(
            rule.source,
            rule.destination,
            rule.port,
            rule.action == super::EgressAction::Reject,
            &rule.tag,
        ));
        self.node_iptables(&self.node_name(), &args)
    }

    fn node_iptables(&self, node: &str, rule: &[String]) -> Result<()> {
        capture(
            Command::new(&self.tools.docker)
                .args(["exec", node, "iptables"])
                .args(rule),
        )
        .map(drop)
    }

    /// Points kind's CoreDNS at [`kind_network::corefile`] (the clouds' names answer with the
    /// gateway) and waits until a pod's lookup through the `kube-dns` Service gets the gateway
    /// ([`kind_dns`](super::kind_dns)).
    pub async fn configure_dns(&self, client: &kube::Client, timeout: Duration) -> Result<()> {
        let IpAddr::V4(gateway) = self.gateway else {
            return Err(ClusterError::other(
                "the kind network's gateway is not IPv4",
            ));
        };
        super::kind_dns::configure(client, gateway, timeout).await
    }

    /// The kubeconfig kind wrote (only this file: `~/.kube/config` is left alone).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client for [`Self::kubeconfig_path`].
    pub async fn client(&self) -> Result<kube::Client> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).map_err(|e| {
            ClusterError::other(format!("reading {}: {e}", self.kubeconfig.display()))
        })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    ClusterError::other(format!("kubeconfig {}: {e}", self.kubeconfig.display()))
                })?;
        kube::Client::try_from(config)
            .map_err(|e| ClusterError::other(format!("building a client: {e}")))
    }

    /// The host's address on the `kind` network: bind host services the cluster calls here
    /// (and name it in their serving certificates).
    pub fn host_gateway_ip(&self) -> IpAddr {
        self.gateway
    }

    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// The node (and its container): `<name>-control-plane`.
    pub fn node_name(&self) -> String {
        format!("{}-control-plane", self.options.name)
    }

    pub fn service_account_issuer(&self) -> &str {
        &self.options.service_account_issuer
    }

    /// The rendered `kind-config.yaml` the cluster was made from.
    pub fn config(&self) -> &KindConfig {
        &self.config
    }

    pub fn state_dir(&self) -> &Path {
        &self.options.state_dir
    }

    /// The kind node image's Kubernetes version may differ from the local provider's
    /// [`KUBERNETES_VERSION`]; this is the node image as configured.
    pub fn node_image(&self) -> Option<&str> {
        self.config.node_image()
    }

    /// The version the local provider pins, for comparison in reports.
    pub fn pinned_kubernetes_version(&self) -> &'static str {
        KUBERNETES_VERSION
    }

    pub fn up_timings(&self) -> &KindUpTimings {
        &self.timings
    }

    /// `kind export logs` into `dir` (node journal, component and container logs).
    pub fn export_logs(&self, dir: &Path) -> Result<()> {
        run_logged(
            kind_command(&self.tools)
                .args(["export", "logs", "--name", &self.options.name])
                .arg(dir),
            &self.options.state_dir.join("kind-export-logs.log"),
        )
    }

    /// `kind delete cluster`, then removes the state directory.
    pub fn down(mut self) -> Result<()> {
        self.down = true;
        self.remove_host_route();
        delete_cluster(&self.tools, &self.options.name, &self.kubeconfig)?;
        let state = &self.options.state_dir;
        if state.exists() {
            fs::remove_dir_all(state).io_context(|| format!("removing {}", state.display()))?;
        }
        Ok(())
    }
}

impl KindCluster {
    fn remove_host_route(&mut self) {
        if let Some(node_ip) = self.node_ip.take() {
            let _ = ip(&kind_network::host_route(false, node_ip));
        }
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        if !self.down && !self.options.keep_running_on_drop {
            self.down = true;
            self.remove_host_route();
            let _ = delete_cluster(&self.tools, &self.options.name, &self.kubeconfig);
        }
    }
}

/// Finds `kind` and `docker` on PATH and checks the Docker engine answers; fails naming
/// whichever is missing. Never a reason to skip: the kind provider cannot run without them.
pub fn require_kind_and_docker() -> Result<KindTools> {
    let kind = find_kind();
    let docker = host::which("docker");
    let missing: Vec<&str> = [("kind", &kind), ("docker", &docker)]
        .into_iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| name)
        .collect();
    let (Some(kind), Some(docker)) = (kind, docker) else {
        return Err(ClusterError::MissingPrerequisite {
            what: format!(
                "{} on PATH (the kind provider runs the cluster in Docker)",
                missing.join(" and ")
            ),
            fix: "podiam-e2e setup --kind (Docker engine, kind and the node image), or install \
                  Docker and kind (`go install sigs.k8s.io/kind@v0.30.0`), or use --provider local"
                .into(),
        });
    };
    let info = Command::new(&docker)
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output();
    match info {
        Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {}
        Ok(out) => {
            return Err(ClusterError::MissingPrerequisite {
                what: format!(
                    "a running Docker engine for kind (`docker info` failed: {})",
                    last_line(&out.stderr)
                ),
                fix: "start dockerd (or point DOCKER_HOST at one), or use --provider local".into(),
            });
        }
        Err(e) => {
            return Err(ClusterError::MissingPrerequisite {
                what: format!("a working docker CLI ({}: {e})", docker.display()),
                fix: "reinstall the Docker CLI".into(),
            });
        }
    }
    Ok(KindTools { kind, docker })
}

/// `$PODIAM_KIND`, else the kind `podiam-e2e setup --kind` builds
/// (`~/.cache/podiam/kind-node-<Kubernetes version>/bin/kind`, kind v0.30.0), else `kind` on
/// PATH (GitHub's workflow installs it with `go install`).
pub fn find_kind() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KIND_BINARY_ENV) {
        return Some(PathBuf::from(path));
    }
    let built = cache_dir()
        .join(format!("kind-node-{KUBERNETES_VERSION}"))
        .join("bin")
        .join("kind");
    if built.is_file() {
        return Some(built);
    }
    host::which("kind")
}

/// A `podiam.local/` node image must have been built here (`podiam-e2e setup --kind`);
/// any other image kind pulls itself.
fn require_node_image(tools: &KindTools, image: &str) -> Result<()> {
    if !image.starts_with("podiam.local/") {
        return Ok(());
    }
    let present = Command::new(&tools.docker)
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        Ok(())
    } else {
        Err(ClusterError::MissingPrerequisite {
            what: format!("the kind node image {image} (built on this machine, never pulled)"),
            fix: "podiam-e2e setup --kind, or pass --kind-node-image kindest/node:v1.34.0".into(),
        })
    }
}

/// The node container's IPv4 address on the `kind` network.
fn node_ipv4(tools: &KindTools, node: &str) -> Result<Ipv4Addr> {
    let text = capture(
        Command::new(&tools.docker)
            .args(["inspect", node, "--format"])
            .arg(format!(
                "{{{{with index .NetworkSettings.Networks \"{KIND_NETWORK}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}"
            )),
    )?;
    text.trim().parse().map_err(|_| {
        ClusterError::other(format!(
            "no IPv4 address of {node} on the {KIND_NETWORK} network: {:?}",
            text.trim()
        ))
    })
}

/// `ip ARGS` on this host.
fn ip(args: &[String]) -> Result<()> {
    capture(Command::new("ip").args(args)).map(drop)
}

/// The CNI directory must be mounted at the node's `/etc/cni/net.d`, kind's own CNI disabled,
/// and the pod subnet the one the host routes to the node, or pods would be masqueraded (the
/// metadata emulator would see the node, not the pod) or unreachable from this host.
fn check_network_config(
    config: &KindConfig,
    options: &KindClusterOptions,
    cni_dir: &Path,
) -> Result<()> {
    let template = options.config_template.display();
    match config.host_path_for(NODE_CNI_DIR) {
        Some(host) if Path::new(&host) == cni_dir => {}
        other => {
            return Err(ClusterError::other(format!(
                "{template}: the control-plane node must mount ${{PODIAM_CNI_DIR}} at \
                 {NODE_CNI_DIR} (extraMounts), found {other:?}"
            )));
        }
    }
    if !config.disables_default_cni() {
        return Err(ClusterError::other(format!(
            "{template}: networking.disableDefaultCNI must be true (the harness's CNI config \
             replaces kindnetd)"
        )));
    }
    if config.pod_subnet() != Some(KIND_POD_CIDR) {
        return Err(ClusterError::other(format!(
            "{template}: networking.podSubnet must be {KIND_POD_CIDR}, found {:?}",
            config.pod_subnet()
        )));
    }
    Ok(())
}

/// The IPv4 gateway of the `kind` network, falling back to the node container's gateway.
fn host_gateway(tools: &KindTools, node: &str) -> Result<IpAddr> {
    let network = capture(
        Command::new(&tools.docker)
            .args(["network", "inspect", KIND_NETWORK, "--format"])
            .arg("{{range .IPAM.Config}}{{.Gateway}} {{end}}"),
    );
    if let Some(ip) = network.as_deref().ok().and_then(pick_ipv4_gateway) {
        return Ok(ip);
    }
    let container = capture(
        Command::new(&tools.docker)
            .args(["inspect", node, "--format"])
            .arg("{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}"),
    );
    if let Some(ip) = container.as_deref().ok().and_then(pick_ipv4_gateway) {
        return Ok(ip);
    }
    Err(ClusterError::other(format!(
        "no IPv4 gateway for the {KIND_NETWORK} network: `docker network inspect {KIND_NETWORK}` \
         gave {network:?}, `docker inspect {node}` gave {container:?}"
    )))
}

/// The first IPv4 address in whitespace-separated `text` (kind's network is dual-stack).
pub fn pick_ipv4_gateway(text: &str) -> Option<IpAddr> {
    text.split_whitespace()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_unspecified())
}

/// Writes `sa.key` (0600) and `sa.pub` (PKIX PEM) into `dir`.
fn write_key_pair(dir: &Path, private_pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = KeyPair::from_pem_and_sign_algo(private_pem, &PKCS_RSA_SHA256).map_err(|e| {
        ClusterError::other(format!(
            "service_account_signing_key_pem is not an RSA private key PEM: {e}"
        ))
    })?;
    let private = dir.join(SIGNING_KEY_FILE);
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut f| f.write_all(private_pem.as_bytes()))
        .io_context(|| format!("writing {}", private.display()))?;
    let public = dir.join(PUBLIC_KEY_FILE);
    fs::write(&public, key.public_key_pem()).io_context(|| format!("writing {}", public.display()))
}

/// The template must mount the key pair's directory where its key-file flags point, or the
/// apiserver would sign with kubeadm's own key and every emulated cloud would reject tokens.
fn check_config(config: &KindConfig, options: &KindClusterOptions, pki_dir: &Path) -> Result<()> {
    let template = options.config_template.display();
    match config.host_path_for(NODE_PKI_DIR) {
        Some(host) if Path::new(&host) == pki_dir => {}
        other => {
            return Err(ClusterError::other(format!(
                "{template}: the control-plane node must mount ${{PODIAM_PKI_DIR}} at \
                 {NODE_PKI_DIR} (extraMounts), found {other:?}"
            )));
        }
    }
    for (flag, file) in [
        ("service-account-signing-key-file", SIGNING_KEY_FILE),
        ("service-account-key-file", PUBLIC_KEY_FILE),
    ] {
        let want = format!("{NODE_PKI_DIR}/{file}");
        if config.apiserver_arg(flag)? != Some(want.as_str()) {
            return Err(ClusterError::other(format!(
                "{template}: apiServer.extraArgs {flag} must be {want}"
            )));
        }
    }
    let issuer = config.service_account_issuer()?;
    if issuer != options.service_account_issuer {
        return Err(ClusterError::other(format!(
            "{template}: service-account-issuer is {issuer}, not ${{PODIAM_ISSUER}} ({})",
            options.service_account_issuer
        )));
    }
    Ok(())
}

/// `kind`, forced onto Docker (kind would otherwise pick podman when it finds it).
fn kind_command(tools: &KindTools) -> Command {
    let mut command = Command::new(&tools.kind);
    command
        .env("KIND_EXPERIMENTAL_PROVIDER", "docker")
        .stdin(Stdio::null());
    command
}

fn list_clusters(tools: &KindTools) -> Result<Vec<String>> {
    let out = capture(kind_command(tools).args(["get", "clusters"]))?;
    Ok(out.lines().map(str::trim).map(String::from).collect())
}

fn delete_cluster(tools: &KindTools, name: &str, kubeconfig: &Path) -> Result<()> {
    // `--kubeconfig` so kind edits only our file, never ~/.kube/config.
    capture(
        kind_command(tools)
            .args(["delete", "cluster", "--name", name, "--kubeconfig"])
            .arg(kubeconfig),
    )
    .map(drop)
}

/// Runs `command`, returning stdout; an error carries its stderr.
fn capture(command: &mut Command) -> Result<String> {
    let out = output_of(command)?;
    if !out.status.success() {
        return Err(ClusterError::other(format!(
            "{} failed ({}): {}",
            describe(command),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` with stdout and stderr in `log`; an error names the log and its tail.
fn run_logged(command: &mut Command, log: &Path) -> Result<()> {
    let out = output_of(command)?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    fs::write(log, &text).io_context(|| format!("writing {}", log.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    Err(ClusterError::Component {
        component: "kind".into(),
        message: format!("{} failed ({})", describe(command), out.status),
        log: log.to_path_buf(),
        tail: lines[lines.len().saturating_sub(30)..].join("\n"),
    })
}

fn output_of(command: &mut Command) -> Result<Output> {
    command
        .output()
        .map_err(|e| ClusterError::other(format!("running {}: {e}", describe(command))))
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_ipv4_gateway_of_a_dual_stack_network() {
        assert_eq!(
            pick_ipv4_gateway("fc00:f853:ccd:e793::1 172.18.0.1 "),
            Some(IpAddr::from([172, 18, 0, 1]))
        );
        assert_eq!(pick_ipv4_gateway("fc00::1 "), None);
        assert_eq!(pick_ipv4_gateway(""), None);
        assert_eq!(pick_ipv4_gateway("<no value> 0.0.0.0"), None);
    }

    #[test]
    fn the_key_pair_is_written_as_the_config_expects() {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_key_pair(dir.path(), &key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let private = dir.path().join(SIGNING_KEY_FILE);
        assert_eq!(
            fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(PUBLIC_KEY_FILE)).unwrap(),
            key.public_key_pem()
        );
        assert!(write_key_pair(dir.path(), "not a key").is_err());
    }

    #[test]
    fn the_repository_config_passes_the_checks() {
        let dir = tempfile::tempdir().unwrap();
        let pki = fs::canonicalize(dir.path()).unwrap();
        let issuer = "https://127.0.0.1:1/id/X";
        let options = KindClusterOptions::new(issuer, String::new());
        let config = KindConfig::load(
            &options.config_template,
            &KindConfigVars::new(issuer)
                .with_host_pki_dir(&pki)
                .with_host_cni_dir(&pki),
        )
        .unwrap();
        check_config(&config, &options, &pki).unwrap();
        assert!(check_config(&config, &options, Path::new("/elsewhere")).is_err());
        check_network_config(&config, &options, &pki).unwrap();
        assert!(check_network_config(&config, &options, Path::new("/elsewhere")).is_err());
    }

    #[test]
    fn missing_tools_are_named() {
        // Whatever this machine has, the error (if any) names what is missing.
        if let Err(e) = require_kind_and_docker() {
            let text = e.to_string();
            assert!(
                text.contains("kind") || text.contains("docker") || text.contains("Docker"),
                "{text}"
            );
        }
    }
}
