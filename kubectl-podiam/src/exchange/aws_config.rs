//! SdkConfig for the AWS calls: region and endpoint the way the pod's SDK would resolve them,
//! with `--region`/`--aws-endpoint-url` on top.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sts::config::Region;

#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// `--aws-endpoint-url`; else the SDK reads AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL.
    pub endpoint_url: Option<String>,
    /// `--region`; else the pod's AWS_REGION/AWS_DEFAULT_REGION; else the operator's; else us-east-1.
    pub region: Option<String>,
    pub timeout: Option<Duration>,
    /// Configs already loaded, shared by clones: every pod of a fleet run would otherwise
    /// load its own (a new HTTP client, TLS roots and connection pool per pod).
    pub loaded: LoadedConfigs,
}

/// A config loaded at most once; concurrent askers wait for the first load.
type ConfigSlot<T> = Arc<tokio::sync::OnceCell<T>>;

/// `anonymous` per region and `operator`, each loaded once per run.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfigs {
    anonymous: Arc<Mutex<HashMap<Option<String>, ConfigSlot<aws_config::SdkConfig>>>>,
    operator: ConfigSlot<Option<aws_config::SdkConfig>>,
}

const FALLBACK_REGION: &str = "us-east-1";

impl AwsTarget {
    /// Whether any endpoint override is in force (emulators want path-style S3).
    pub fn endpoint_overridden(&self) -> bool {
        self.endpoint_url.is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
    }

    async fn loader(&self, pod_region: Option<&str>) -> aws_config::ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        let region = self
            .region
            .clone()
            .or_else(|| pod_region.map(str::to_string));
        loader = match region {
            Some(r) => loader.region(Region::new(r)),
            // Env and profile only: the default chain ends in IMDS, which stalls off EC2.
            None => loader.region(
                aws_config::meta::region::RegionProviderChain::first_try(
                    aws_config::environment::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_config::profile::ProfileFileRegionProvider::new())
                .or_else(FALLBACK_REGION),
            ),
        };
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let timeout = self.timeout.unwrap_or(Duration::from_secs(15));
        loader.timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
    }

    /// Config without credentials: AssumeRoleWithWebIdentity is an unsigned call.
    pub async fn anonymous(&self, pod_region: Option<&str>) -> aws_config::SdkConfig {
        let slot = self
            .loaded
            .anonymous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pod_region.map(str::to_string))
            .or_default()
            .clone();
        slot.get_or_init(|| async { self.loader(pod_region).await.no_credentials().load().await })
            .await
            .clone()
    }

    /// Config with the operator's credentials from the standard chain, if it yields any.
    /// Probed once per run (the chain can take seconds to give up).
    pub async fn operator(&self) -> Option<aws_config::SdkConfig> {
        self.loaded
            .operator
            .get_or_init(|| self.load_operator())
            .await
            .clone()
    }

    /// Config with the credentials of a named profile (its `role_arn` chain assumed by the
    /// SDK), when they resolve; for IAM reads in another account (`aws_account.rs`).
    pub async fn operator_profile(&self, profile: &str) -> Option<aws_config::SdkConfig> {
        let config = self.loader(None).await.profile_name(profile).load().await;
        let provider = config.credentials_provider()?;
        match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
            Ok(Ok(_)) => Some(config),
            _ => None,
        }
    }

    async fn load_operator(&self) -> Option<aws_config::SdkConfig> {
        let config = self.loader(None).await.load().await;
        let provider = config.credentials_provider()?;
        // The chain ends in IMDS, which hangs off EC2: bound the probe.
        match tokio::time::timeout(Duration::from_secs(5), provider.provide_credentials()).await {
            Ok(Ok(_)) => Some(config),
            _ => None,
        }
    }
}
