//! Everything scenarios run against on the local provider, started in dependency order:
//! the AWS emulators (whose OIDC issuer is the cluster's `--service-account-issuer` and signs
//! with the cluster's key, as EKS publishes its issuer), the local cluster, and the EKS
//! pod-identity webhook stand-in registered by URL; then the Azure emulators (trusting the
//! cluster's issuer; pods reach Entra on the host's bridge address) and the Azure Workload
//! Identity webhook stand-in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use std::net::SocketAddr;

use crate::cluster::{
    KindCluster, KindClusterOptions, KindConfig, KindConfigVars, LocalCluster, LocalClusterOptions,
    default_kind_config_path,
};
use crate::emulators::azure::{AzureEmulatorOptions, AzureEmulators, POD_BRIDGE_HOST};
use crate::emulators::{AwsEmulatorOptions, AwsEmulators, SIGNING_KEY_FILE_NAME};
use crate::scenario::PodPhase;
use crate::scenario::schema::{ApplyStep, WaitStep};
use crate::webhooks::azure_mutation::AzureMutationSettings;
use crate::webhooks::{
    AzureWebhookOptions, AzureWorkloadIdentityWebhook, EksPodIdentityWebhook, WebhookOptions,
};

/// Which Kubernetes the scenarios run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Real binaries on this machine (needs root).
    Local,
    /// kind (needs Docker); the webhook stand-in listens on the kind network's gateway.
    Kind,
}

pub enum Cluster {
    Local(Box<LocalCluster>),
    Kind(Box<KindCluster>),
}

pub struct Environment {
    // Field order is drop order: webhooks, then cluster, then the emulators.
    pub webhook: EksPodIdentityWebhook,
    pub azure_webhook: AzureWorkloadIdentityWebhook,
    pub cluster: Option<Cluster>,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
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
        Self::start(Provider::Local, state_root).await
    }

    pub async fn start(provider: Provider, state_root: &Path) -> Result<Self> {
        let mut timings = Vec::new();
        let t = Instant::now();
        let aws = AwsEmulators::start(AwsEmulatorOptions {
            state_dir: Some(state_root.join("aws")),
            persist_signing_key: true,
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
                POD_BRIDGE_HOST.to_owned(),
            ),
            Provider::Kind => {
                let mut options = KindClusterOptions::new(aws.issuer_url(), signing_key);
                options.state_dir = state_root.join("kind");
                let kind = KindCluster::up(options)
                    .await
                    .context("starting the kind cluster")?;
                // The apiserver runs in a container: it reaches the host on the network's gateway.
                let bind = SocketAddr::new(kind.host_gateway_ip(), 0);
                let host = kind.host_gateway_ip().to_string();
                (Cluster::Kind(Box::new(kind)), bind, host)
            }
        };
        timings.push(("cluster up (node Ready)", t.elapsed()));

        let t = Instant::now();
        let (client, kubeconfig) = match &cluster {
            Cluster::Local(c) => (c.client().await?, c.kubeconfig_path().to_path_buf()),
            Cluster::Kind(c) => (c.client().await?, c.kubeconfig_path().to_path_buf()),
        };
        let webhook = EksPodIdentityWebhook::start(
            client.clone(),
            WebhookOptions {
                bind: webhook_bind,
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
        let azure = AzureEmulators::start(AzureEmulatorOptions {
            state_dir: Some(state_root.join("azure")),
            // Pods reach the host on their bridge, which exists only now: listen everywhere.
            entra_bind_ip: std::net::IpAddr::from([0, 0, 0, 0]),
            authority_hostname: pod_facing_host,
            trusted_ca_files: vec![aws.ca_file().to_path_buf()],
        })
        .await
        .context("starting the Azure emulators")?;
        let azure_webhook = AzureWorkloadIdentityWebhook::start(
            client.clone(),
            AzureWebhookOptions {
                bind: webhook_bind,
                settings: AzureMutationSettings {
                    tenant_id: azure.tenant_id(),
                    authority_host: azure.authority_host().to_owned(),
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
        Ok(Environment {
            webhook,
            azure_webhook,
            azure,
            kubeconfig,
            cluster: Some(cluster),
            client,
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
                phase: PodPhase::Running,
                timeout_seconds: 90,
            };
            super::wait::wait(&self.client, namespace, &step).await?;
        }
        Ok(())
    }

    /// Starts `count` more emulator sets for parallel scenarios.
    pub async fn add_workers(&mut self, count: usize, state_root: &Path) -> Result<()> {
        for i in 0..count {
            let worker = AwsEmulators::start(AwsEmulatorOptions {
                state_dir: Some(state_root.join(format!("aws-worker-{}", i + 1))),
                signing_key_file: Some(self.aws.state_dir().join(SIGNING_KEY_FILE_NAME)),
                extra_trusted_ca_files: vec![self.aws.ca_file().to_path_buf()],
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
        match self.cluster.take() {
            Some(Cluster::Local(c)) => c.down()?,
            Some(Cluster::Kind(c)) => c.down()?,
            None => {}
        }
        Ok(())
    }
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
