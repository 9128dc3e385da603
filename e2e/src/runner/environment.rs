//! Everything scenarios run against, started in dependency order: the AWS emulators (whose
//! OIDC issuer is the cluster's `--service-account-issuer` and signs with the cluster's key, as
//! EKS publishes its issuer), the cluster, and the EKS pod-identity webhook stand-in registered
//! by URL; then the GCP emulators (their metadata server identifies pods through the cluster's
//! API, their STS trusts the cluster's issuer), the Azure emulators (trusting the cluster's
//! issuer) and the Azure Workload Identity webhook stand-in; last the Pod Identity agent and
//! the cloud front, where the cluster's DNS sends the clouds' real names (on kind, bound to the
//! `kind` network's gateway, with the node's DNAT and CoreDNS set up by `kind_wiring`). On
//! the `existing` provider nothing is created in the cluster but
//! namespaces: the cluster's own issuer is read from its discovery document, its own webhooks
//! mutate pods, and no node is labelled (pods there reach GKE's own metadata server).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use std::net::SocketAddr;

use crate::cluster::{
    EgressFaults, HarnessCa, LinkLocalRedirect, METADATA_IP, POD_IDENTITY_AGENT_IP, pod_host_ip,
    pod_network,
};
use crate::cluster::{
    ExistingCluster, KindCluster, KindClusterOptions, KindConfig, KindConfigVars, LocalCluster,
    LocalClusterOptions, default_kind_config_path,
};
use crate::emulators::azure::{AzureEmulatorOptions, AzureEmulators};
use crate::emulators::gcp::{
    GKE_METADATA_NODE_LABEL, GcpEmulatorOptions, GcpEmulators, PodResolver,
};
use crate::emulators::pod_identity_agent::AgentRoute;
use crate::emulators::{
    AwsBackend, AwsEmulatorOptions, AwsEmulators, CloudFront, CloudFrontOptions,
    CloudFrontUpstreams, DEFAULT_CLUSTER_NAME, GoogleUpstreams, PodIdentityAgent,
    SIGNING_KEY_FILE_NAME,
};
use crate::scenario::PodPhase;
use crate::scenario::schema::{ApplyStep, WaitStep};
use crate::webhooks::azure_mutation::AzureMutationSettings;
use crate::webhooks::{
    AzureWebhookOptions, AzureWorkloadIdentityWebhook, EksPodIdentityWebhook, WebhookOptions,
    proxy_placement_of,
};

/// Which Kubernetes the scenarios run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Real binaries on this machine (needs root).
    Local,
    /// kind (needs Docker): the emulators, webhooks, agent and cloud front listen on the kind
    /// network's gateway; pods reach them as on `local` (docs/architecture.md, "The kind
    /// provider").
    Kind,
    /// The cluster of the current kubeconfig (or `--kubeconfig`/`--context`): no webhook is
    /// installed and nothing cluster-scoped is created beyond what a scenario applies itself
    /// (deleted at its end); the emulators trust its issuer.
    Existing,
}

/// Which cluster to use, with what the `existing` provider needs.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    pub provider: Provider,
    /// `existing` only: the kubeconfig file and context (defaults as kubectl's).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// What the AWS gate fronts for IAM, STS and S3 (`--aws-backend`); every worker's set too.
    pub aws_backend: AwsBackend,
    /// `kind` only: the node image (`kind create cluster --image`); default
    /// [`crate::cluster::DEFAULT_KIND_NODE_IMAGE`].
    pub kind_node_image: Option<String>,
}

impl ProviderOptions {
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            kubeconfig: None,
            context: None,
            aws_backend: AwsBackend::default(),
            kind_node_image: None,
        }
    }
}

pub enum Cluster {
    Local(Box<LocalCluster>),
    Kind(Box<KindCluster>),
    /// Not ours: never stopped.
    Existing(Box<ExistingCluster>),
}

pub struct Environment {
    /// The link-local services' DNAT rules (local provider only): removed first.
    pub link_local: Vec<LinkLocalRedirect>,
    /// The clouds' real names on the pods' gateway, port 443 (local and kind; dropped before
    /// the cluster).
    pub cloud_front: Option<CloudFront>,
    /// The harness's iptables chain for `block` steps (local provider only).
    pub egress_faults: Option<EgressFaults>,
    // Field order is drop order: GCP emulators (their metadata address is on the cluster's
    // bridge), webhooks, agent, then cluster, then the other emulators.
    /// GKE Workload Identity: metadata server (pods reach it at 169.254.169.254:80 on the
    /// local provider),
    /// STS, IAM Credentials, Cloud Storage.
    pub gcp: GcpEmulators,
    /// `None` on the `existing` provider: the cluster's own webhooks mutate pods.
    pub webhook: Option<EksPodIdentityWebhook>,
    pub azure_webhook: Option<AzureWorkloadIdentityWebhook>,
    /// The EKS Pod Identity Agent: pods reach it at `169.254.170.23:80`, DNATed on the
    /// local bridge or in the kind node to where it listens.
    pub pod_identity_agent: Option<PodIdentityAgent>,
    pub cluster: Option<Cluster>,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    /// The cluster's service-account issuer: `${ISSUER}` in every scenario's setup.
    pub issuer: String,
    /// Global flags every plugin run gets (`--context` on the `existing` provider).
    pub plugin_args: Vec<String>,
    /// CAs the emulators trust to fetch the issuer's JWKS besides their own (`existing`).
    pub issuer_ca_files: Vec<PathBuf>,
    pub aws: AwsEmulators,
    /// Entra and Blob. One set for all workers: Azure scenarios run on the first worker.
    pub azure: AzureEmulators,
    /// More emulator sets for parallel scenarios (`run -j N`): each has its own moto and gate,
    /// trusts the cluster's issuer (the first set's) and shares its signing key.
    pub workers: Vec<AwsEmulators>,
    pub timings: Vec<(&'static str, Duration)>,
}

impl Environment {
    pub async fn start_local(state_root: &Path) -> Result<Self> {
        Self::start(&ProviderOptions::new(Provider::Local), state_root).await
    }

    pub async fn start(options: &ProviderOptions, state_root: &Path) -> Result<Self> {
        let provider = options.provider;
        if provider == Provider::Existing {
            return Self::start_existing(options, state_root).await;
        }
        let mut timings = Vec::new();
        let t = Instant::now();
        let aws = AwsEmulators::start(AwsEmulatorOptions {
            state_dir: Some(state_root.join("aws")),
            persist_signing_key: true,
            backend: options.aws_backend.clone(),
            ..AwsEmulatorOptions::default()
        })
        .await
        .context("starting the AWS emulators")?;
        timings.push(("emulators", t.elapsed()));

        let t = Instant::now();
        let key_file = aws.state_dir().join(SIGNING_KEY_FILE_NAME);
        let signing_key = std::fs::read_to_string(&key_file)
            .with_context(|| format!("reading {}", key_file.display()))?;
        let (cluster, webhook_bind, pod_facing_host) = match provider {
            Provider::Local => (
                Cluster::Local(Box::new(
                    local_cluster(&aws, state_root, signing_key).await?,
                )),
                SocketAddr::from(([127, 0, 0, 1], 0)),
                pod_host_ip().to_string(),
            ),
            Provider::Kind => {
                let mut kind_options = KindClusterOptions::new(aws.issuer_url(), signing_key);
                kind_options.state_dir = state_root.join("kind");
                if let Some(image) = &options.kind_node_image {
                    kind_options.node_image = image.clone();
                }
                let kind = KindCluster::up(kind_options)
                    .await
                    .context("starting the kind cluster")?;
                // The apiserver runs in a container: it reaches the host on the network's gateway.
                let bind = SocketAddr::new(kind.host_gateway_ip(), 0);
                let host = kind.host_gateway_ip().to_string();
                (Cluster::Kind(Box::new(kind)), bind, host)
            }
            Provider::Existing => unreachable!("handled by start_existing"),
        };
        timings.push(("cluster up (node Ready)", t.elapsed()));

        let t = Instant::now();
        let (client, kubeconfig) = match &cluster {
            Cluster::Local(c) => (c.client().await?, c.kubeconfig_path().to_path_buf()),
            Cluster::Kind(c) => (c.client().await?, c.kubeconfig_path().to_path_buf()),
            Cluster::Existing(c) => (c.client(), c.kubeconfig_path().to_path_buf()),
        };
        let webhook = EksPodIdentityWebhook::start(
            client.clone(),
            // As EKS runs it: the cluster's region injected (AWS_REGION, AWS_DEFAULT_REGION)
            // and regional STS endpoints by default since Kubernetes 1.22.
            WebhookOptions {
                bind: webhook_bind,
                region: Some(crate::emulators::REGION.to_owned()),
                regional_sts_default: true,
                ..WebhookOptions::default()
            },
        )?;
        webhook.register(&client).await?;
        webhook
            .wait_until_called(&client, "default", Duration::from_secs(30))
            .await
            .context("the apiserver never called the pod-identity webhook")?;
        timings.push(("webhook registered", t.elapsed()));

        let t = Instant::now();
        let gcp = start_gcp(&cluster, &client, &aws).await?;
        label_nodes_for_gke_metadata(&client).await?;
        timings.push(("GCP emulators", t.elapsed()));

        let t = Instant::now();
        // Pods reach Entra as on AKS, at login.microsoftonline.com through the cloud front
        // (local and kind alike: the cluster's DNS answers the name with the front's address).
        let azure = AzureEmulators::start(AzureEmulatorOptions {
            state_dir: Some(state_root.join("azure")),
            entra_bind_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            authority_hostname: pod_facing_host,
            trusted_ca_files: vec![aws.ca_file().to_path_buf()],
        })
        .await
        .context("starting the Azure emulators")?;
        let authority_host = AzureMutationSettings::default().authority_host;
        let azure_webhook = AzureWorkloadIdentityWebhook::start(
            client.clone(),
            AzureWebhookOptions {
                bind: webhook_bind,
                settings: AzureMutationSettings {
                    tenant_id: azure.tenant_id(),
                    authority_host,
                    proxy_placement: proxy_placement_of(&client).await?,
                    ..AzureMutationSettings::default()
                },
            },
        )?;
        azure_webhook.register(&client).await?;
        azure_webhook
            .wait_until_called(&client, "default", Duration::from_secs(30))
            .await
            .context("the apiserver never called the Azure workload identity webhook")?;
        timings.push(("Azure emulators and webhook", t.elapsed()));
        let (pod_identity_agent, cloud_front) = match &cluster {
            Cluster::Local(_) => (
                Some(start_pod_identity_agent(&aws)?),
                Some(start_cloud_front(
                    &aws,
                    &gcp,
                    &azure,
                    state_root,
                    SocketAddr::from((pod_host_ip(), 443)),
                )?),
            ),
            Cluster::Kind(kind) => {
                let t = Instant::now();
                let wiring = kind_wiring(kind, &client, &aws, &gcp, &azure, state_root).await?;
                timings.push((
                    "kind: agent, cloud front, link-local DNAT, DNS",
                    t.elapsed(),
                ));
                (Some(wiring.0), Some(wiring.1))
            }
            Cluster::Existing(_) => (None, None),
        };
        let egress_faults = match &cluster {
            Cluster::Local(c) => Some(
                EgressFaults::install(c.iptables())
                    .context("installing the egress-faults chain on the pod bridge")?,
            ),
            _ => None,
        };
        let link_local = match &cluster {
            Cluster::Local(c) => link_local_redirects(
                c.iptables(),
                gcp.metadata_address(),
                pod_identity_agent.as_ref().map(PodIdentityAgent::address),
            )?,
            _ => Vec::new(),
        };
        Ok(Environment {
            link_local,
            cloud_front,
            egress_faults,
            gcp,
            webhook: Some(webhook),
            azure_webhook: Some(azure_webhook),
            azure,
            pod_identity_agent,
            kubeconfig,
            issuer: aws.issuer_url().to_owned(),
            plugin_args: Vec::new(),
            issuer_ca_files: Vec::new(),
            cluster: Some(cluster),
            client,
            aws,
            workers: Vec::new(),
            timings,
        })
    }

    /// The `existing` provider: connect, read the cluster's issuer, and start emulators that
    /// trust it (its JWKS is fetched with the kubeconfig's CA besides the public roots). Only
    /// the emulators' own objects and the scenarios' namespaces are ever created.
    async fn start_existing(options: &ProviderOptions, state_root: &Path) -> Result<Self> {
        let mut timings = Vec::new();
        let t = Instant::now();
        let cluster = ExistingCluster::connect(options.kubeconfig.clone(), options.context.clone())
            .await
            .context("connecting to the existing cluster")?;
        let issuer = cluster
            .service_account_issuer()
            .await
            .context("reading the existing cluster's service-account issuer")?;
        let state_dir = state_root.join("existing");
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let mut extra_trusted_ca_files = Vec::new();
        if let Some(pem) = cluster.ca_pem() {
            // A CA certificate is public; the gate reads it to fetch the cluster's JWKS.
            let ca_file = state_dir.join("cluster-ca.pem");
            std::fs::write(&ca_file, pem)
                .with_context(|| format!("writing {}", ca_file.display()))?;
            extra_trusted_ca_files.push(ca_file);
        }
        timings.push(("existing cluster connected", t.elapsed()));
        let t = Instant::now();
        let aws = AwsEmulators::start(AwsEmulatorOptions {
            state_dir: Some(state_root.join("aws")),
            extra_trusted_ca_files: extra_trusted_ca_files.clone(),
            backend: options.aws_backend.clone(),
            ..AwsEmulatorOptions::default()
        })
        .await
        .context("starting the AWS emulators")?;
        let gcp = GcpEmulators::start(GcpEmulatorOptions {
            resolver: PodResolver::Kubernetes(cluster.client()),
            trusted_ca_files: extra_trusted_ca_files.clone(),
            ..GcpEmulatorOptions::default()
        })
        .await
        .context("starting the GCP emulators")?;
        let azure = AzureEmulators::start(AzureEmulatorOptions {
            state_dir: Some(state_root.join("azure")),
            trusted_ca_files: extra_trusted_ca_files.clone(),
            ..AzureEmulatorOptions::default()
        })
        .await
        .context("starting the Azure emulators")?;
        timings.push(("emulators", t.elapsed()));
        eprintln!(
            "podiam-e2e: existing cluster {} ({}), issuer {issuer}",
            cluster.context(),
            cluster.server_version()
        );
        // A local cluster driven as `--provider existing` (this host owns the pod bridge): its
        // pods resolve the clouds' names to the bridge's gateway, so serve them there. On a
        // remote cluster pods reach whatever their own DNS gives; nothing is started.
        let cloud_front = if std::path::Path::new("/sys/class/net")
            .join(pod_network().bridge())
            .exists()
        {
            Some(start_cloud_front(
                &aws,
                &gcp,
                &azure,
                state_root,
                SocketAddr::from((pod_host_ip(), 443)),
            )?)
        } else {
            None
        };
        Ok(Environment {
            link_local: Vec::new(),
            cloud_front,
            egress_faults: None,
            gcp,
            webhook: None,
            azure_webhook: None,
            azure,
            pod_identity_agent: None,
            client: cluster.client(),
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            issuer,
            plugin_args: vec!["--context".to_owned(), cluster.context().to_owned()],
            issuer_ca_files: extra_trusted_ca_files,
            cluster: Some(Cluster::Existing(Box::new(cluster))),
            aws,
            workers: Vec::new(),
            timings,
        })
    }

    /// Applies `manifests` into `namespace` (seed images mapped to local ones) and waits until
    /// each of `pods` runs.
    pub async fn create_pods(&self, namespace: &str, manifests: &str, pods: &[&str]) -> Result<()> {
        let step = ApplyStep {
            file: None,
            manifests: Some(manifests.to_owned()),
        };
        super::apply::apply(&self.client, namespace, Path::new("."), &step).await?;
        for pod in pods {
            let step = WaitStep {
                pod: Some((*pod).to_owned()),
                selector: None,
                count: None,
                phase: PodPhase::Running,
                timeout_seconds: 90,
            };
            super::wait::wait(&self.client, namespace, &step).await?;
        }
        Ok(())
    }

    /// Starts `count` more emulator sets for parallel scenarios.
    pub async fn add_workers(&mut self, count: usize, state_root: &Path) -> Result<()> {
        let key_file = self.aws.state_dir().join(SIGNING_KEY_FILE_NAME);
        let mut trusted = vec![self.aws.ca_file().to_path_buf()];
        trusted.extend(self.issuer_ca_files.iter().cloned());
        for i in 0..count {
            let worker = AwsEmulators::start(AwsEmulatorOptions {
                state_dir: Some(state_root.join(format!("aws-worker-{}", i + 1))),
                signing_key_file: key_file.exists().then(|| key_file.clone()),
                extra_trusted_ca_files: trusted.clone(),
                backend: self.aws.backend().clone(),
                ..AwsEmulatorOptions::default()
            })
            .await
            .with_context(|| format!("starting AWS emulator worker {}", i + 1))?;
            self.workers.push(worker);
        }
        Ok(())
    }

    /// Every emulator set; the first one's issuer is the cluster's.
    pub fn emulator_sets(&self) -> Vec<&AwsEmulators> {
        std::iter::once(&self.aws)
            .chain(self.workers.iter())
            .collect()
    }

    /// Stops the cluster (every process by pid, or `kind delete`) and then the emulators.
    pub async fn down(mut self) -> Result<()> {
        self.link_local.clear();
        drop(self.cloud_front.take());
        // The chain itself goes with the cluster's other rules (clean_leftovers).
        drop(self.egress_faults.take());
        drop(self.pod_identity_agent.take());
        match self.cluster.take() {
            Some(Cluster::Local(c)) => c.down()?,
            Some(Cluster::Kind(c)) => c.down()?,
            // Not ours to stop.
            Some(Cluster::Existing(_)) | None => {}
        }
        Ok(())
    }
}

/// On the local provider the metadata server and the Google APIs listen on the bridge's host
/// address (pods reach the metadata server at 169.254.169.254:80 by DNAT); on kind they
/// listen on the `kind` network's gateway (a free port: the node DNATs 169.254.169.254:80
/// to it).
async fn start_gcp(
    cluster: &Cluster,
    client: &kube::Client,
    aws: &AwsEmulators,
) -> Result<GcpEmulators> {
    let mut options = GcpEmulatorOptions {
        resolver: PodResolver::Kubernetes(client.clone()),
        trusted_ca_files: vec![aws.ca_file().to_path_buf()],
        ..GcpEmulatorOptions::default()
    };
    match cluster {
        Cluster::Local(_) => {
            options.metadata_bind = SocketAddr::from((pod_host_ip(), 0));
            options.api_bind_ip = pod_host_ip().into();
        }
        Cluster::Kind(kind) => {
            options.metadata_bind = SocketAddr::new(kind.host_gateway_ip(), 0);
            options.api_bind_ip = kind.host_gateway_ip();
        }
        Cluster::Existing(_) => {}
    }
    GcpEmulators::start(options)
        .await
        .context("starting the GCP emulators")
}

/// What GKE sets on node pools with `workloadMetadataConfig.mode: GKE_METADATA`.
async fn label_nodes_for_gke_metadata(client: &kube::Client) -> Result<()> {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, ListParams, Patch, PatchParams};
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {"labels": {GKE_METADATA_NODE_LABEL: "true"}}});
    for node in nodes.list(&ListParams::default()).await?.items {
        let name = node.metadata.name.unwrap_or_default();
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("labelling node {name} {GKE_METADATA_NODE_LABEL}=true"))?;
    }
    Ok(())
}

async fn local_cluster(
    aws: &AwsEmulators,
    state_root: &Path,
    signing_key: String,
) -> Result<LocalCluster> {
    // Issuer and JWKS flags come from kind-config.yaml, the one source both providers read.
    let flags = KindConfig::load(
        &default_kind_config_path(),
        &KindConfigVars::new(aws.issuer_url()),
    )?
    .local_apiserver_flags()?;
    let mut options = LocalClusterOptions::new(flags.issuer);
    options.service_account_jwks_uri = flags.jwks_uri;
    options.extra_apiserver_args = flags.extra_args;
    options.state_dir = state_root.join("cluster");
    options.service_account_signing_key_pem = Some(signing_key);
    LocalCluster::up(options)
        .await
        .context("starting the local cluster")
}

/// The cloud front on the bridge's address, port 443, with a certificate from the harness CA
/// (the one in the images' CA bundle): AWS names to the first worker's gate until the runner
/// routes a namespace elsewhere, Entra and the Google APIs to their one emulator set.
fn start_cloud_front(
    aws: &AwsEmulators,
    gcp: &GcpEmulators,
    azure: &AzureEmulators,
    state_root: &Path,
    bind: SocketAddr,
) -> Result<CloudFront> {
    let ca = HarnessCa::load_or_generate(&HarnessCa::default_dir())?;
    let oauth_token_url = gcp.oauth_token_url();
    let options = CloudFrontOptions {
        bind,
        upstreams: CloudFrontUpstreams {
            aws: aws.gate_url().to_owned(),
            entra: Some(azure.entra_url().to_owned()),
            google: Some(GoogleUpstreams {
                sts: gcp.sts_url().to_owned(),
                iam_credentials: gcp.iam_credentials_url().to_owned(),
                oauth2: oauth_token_url.trim_end_matches("/token").to_owned(),
                storage: gcp.gcs_url().to_owned(),
                iam: gcp.iam_url().to_owned(),
            }),
            trusted_ca_files: vec![azure.ca_file().to_path_buf()],
        },
        log_file: Some(state_root.join("cloud-front.log")),
    };
    CloudFront::start(options, &ca).context("starting the cloud front")
}

/// The agent on the bridge's host address, a random port (pods reach it by DNAT).
fn start_pod_identity_agent(aws: &AwsEmulators) -> Result<PodIdentityAgent> {
    let address = SocketAddr::from((pod_host_ip(), 0));
    PodIdentityAgent::bind(
        address,
        DEFAULT_CLUSTER_NAME,
        AgentRoute {
            endpoint: aws.gate_url().to_owned(),
            credentials: aws.admin().clone(),
        },
    )
}

/// Pods on the bridge reach the metadata server at 169.254.169.254:80 and the agent at
/// 169.254.170.23:80; the host never has these addresses (`cluster::link_local`).
fn link_local_redirects(
    iptables: &Path,
    metadata: SocketAddr,
    agent: Option<SocketAddr>,
) -> Result<Vec<LinkLocalRedirect>> {
    let mut services = vec![(METADATA_IP, metadata)];
    services.extend(agent.map(|a| (POD_IDENTITY_AGENT_IP, a)));
    services
        .into_iter()
        .map(|(ip, target)| {
            let SocketAddr::V4(target) = target else {
                anyhow::bail!("{target} is not IPv4: cannot serve {ip} to pods");
            };
            LinkLocalRedirect::install(
                iptables,
                pod_network().bridge(),
                std::net::SocketAddrV4::new(ip, 80),
                target,
            )
            .with_context(|| format!("serving {ip}:80 to pods (DNAT to {target})"))
        })
        .collect()
}

/// kind: what the local provider puts on its bridge, on the `kind` network's gateway instead —
/// the Pod Identity agent (a free port), the cloud front (port 443) — then the node's DNAT of
/// 169.254.169.254:80 and 169.254.170.23:80 to the metadata server and the agent, and kind's
/// CoreDNS answering the clouds' names with the gateway (`cluster/kind_network.rs`).
async fn kind_wiring(
    kind: &KindCluster,
    client: &kube::Client,
    aws: &AwsEmulators,
    gcp: &GcpEmulators,
    azure: &AzureEmulators,
    state_root: &Path,
) -> Result<(PodIdentityAgent, CloudFront)> {
    use crate::cluster::kind_network::LinkLocalForward;
    use std::net::{IpAddr, SocketAddrV4};
    let IpAddr::V4(gateway) = kind.host_gateway_ip() else {
        anyhow::bail!("the kind network's gateway is not IPv4");
    };
    let agent = PodIdentityAgent::bind(
        SocketAddr::from((gateway, 0)),
        DEFAULT_CLUSTER_NAME,
        AgentRoute {
            endpoint: aws.gate_url().to_owned(),
            credentials: aws.admin().clone(),
        },
    )?;
    let front = start_cloud_front(
        aws,
        gcp,
        azure,
        state_root,
        SocketAddr::from((gateway, 443)),
    )?;
    let v4 = |address: SocketAddr| match address {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => Err(anyhow::anyhow!("{a} is not IPv4")),
    };
    let metadata: SocketAddr = gcp.metadata_host().parse()?;
    let forwards = [
        LinkLocalForward {
            service: SocketAddrV4::new(METADATA_IP, 80),
            target: v4(metadata)?,
        },
        LinkLocalForward {
            service: SocketAddrV4::new(POD_IDENTITY_AGENT_IP, 80),
            target: v4(agent.address())?,
        },
    ];
    kind.forward_link_local(&forwards)
        .context("DNAT of the link-local addresses in the kind node")?;
    kind.install_faults()
        .context("the block steps' chain in the kind node")?;
    kind.configure_dns(client, Duration::from_secs(120))
        .await
        .context("pointing kind's CoreDNS at the cloud front")?;
    Ok((agent, front))
}
