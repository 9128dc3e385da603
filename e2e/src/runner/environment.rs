//! Everything scenarios run against on the local provider, started in dependency order:
//! the AWS emulators (whose OIDC issuer is the cluster's `--service-account-issuer` and signs
//! with the cluster's key, as EKS publishes its issuer), the local cluster, and the EKS
//! pod-identity webhook stand-in registered by URL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::{LocalCluster, LocalClusterOptions};
use crate::emulators::{AwsEmulatorOptions, AwsEmulators, SIGNING_KEY_FILE_NAME};
use crate::webhooks::{EksPodIdentityWebhook, WebhookOptions};

pub struct Environment {
    // Field order is drop order: webhook, then cluster, then the emulators.
    pub webhook: EksPodIdentityWebhook,
    pub cluster: Option<LocalCluster>,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub aws: AwsEmulators,
    pub timings: Vec<(&'static str, Duration)>,
}

impl Environment {
    pub async fn start_local(state_root: &Path) -> Result<Self> {
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
        let mut options = LocalClusterOptions::new(aws.issuer_url());
        options.state_dir = state_root.join("cluster");
        options.service_account_signing_key_pem = Some(
            std::fs::read_to_string(&key_file)
                .with_context(|| format!("reading {}", key_file.display()))?,
        );
        let cluster = LocalCluster::up(options)
            .await
            .context("starting the local cluster")?;
        timings.push(("cluster up (node Ready)", t.elapsed()));

        let t = Instant::now();
        let client = cluster.client().await?;
        let webhook = EksPodIdentityWebhook::start(client.clone(), WebhookOptions::default())?;
        webhook.register(&client).await?;
        webhook
            .wait_until_called(&client, "default", Duration::from_secs(30))
            .await
            .context("the apiserver never called the pod-identity webhook")?;
        timings.push(("webhook registered", t.elapsed()));
        Ok(Environment {
            webhook,
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            cluster: Some(cluster),
            client,
            aws,
            timings,
        })
    }

    /// Stops the cluster (every process by pid) and then the emulators.
    pub async fn down(mut self) -> Result<()> {
        if let Some(cluster) = self.cluster.take() {
            cluster.down()?;
        }
        Ok(())
    }
}
