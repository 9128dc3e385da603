//! A kube client built from the same flags kubectl passes through to plugins.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::error::{Error, Result};

/// kubectl's global connection flags, as parsed by the CLI.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFlags {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
    pub request_timeout: Option<Duration>,
    pub impersonate: Option<String>,
    pub impersonate_groups: Vec<String>,
}

pub struct Connection {
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    pub timeout: Duration,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The error without the YAML parser's snippet: it quotes lines of the file, and a kubeconfig
/// holds tokens and client keys (found by the kubeconfig fuzz target).
fn message(e: &KubeconfigError) -> String {
    match e {
        KubeconfigError::Parse(yaml) => {
            format!(
                "failed to parse kubeconfig YAML: {}",
                yaml.without_snippet()
            )
        }
        other => other.to_string(),
    }
}

pub async fn connect(flags: &ConnectionFlags) -> Result<Connection> {
    let options = KubeConfigOptions {
        context: flags.context.clone(),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let (config, current_context) = match &flags.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {}", path.display(), message(&e))))?;
            let current = kubeconfig.current_context.clone();
            (
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await,
                current,
            )
        }
        None => (
            kube::Config::from_kubeconfig(&options).await,
            Kubeconfig::read().ok().and_then(|k| k.current_context),
        ),
    };
    let mut config = config.map_err(|e| Error::Kubeconfig(message(&e)))?;
    crate::error::set_cluster_location(format!(
        "the cluster at {} (context {})",
        config.cluster_url,
        flags
            .context
            .clone()
            .or(current_context)
            .unwrap_or_else(|| "none".into())
    ));
    let timeout = flags.request_timeout.unwrap_or(DEFAULT_TIMEOUT);
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    if let Some(user) = &flags.impersonate {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !flags.impersonate_groups.is_empty() {
        config.auth_info.impersonate_groups = Some(flags.impersonate_groups.clone());
    }
    let namespace = flags
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    Ok(Connection {
        client,
        namespace,
        timeout,
    })
}
