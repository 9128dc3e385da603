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

/// Where the kubeconfig came from, for messages: `--kubeconfig`, `$KUBECONFIG` (a list of
/// files kubectl merges) or the default file, as kubectl resolves it.
fn kubeconfig_source(flag: Option<&std::path::Path>) -> String {
    if let Some(path) = flag {
        return path.display().to_string();
    }
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(value) => format!("KUBECONFIG={}", value.to_string_lossy()),
        None => match std::env::home_dir() {
            Some(home) => home.join(".kube/config").display().to_string(),
            None => "the default kubeconfig (no home directory)".into(),
        },
    }
}

/// The context, cluster and user `flags` select, checked as kubectl checks them: a name the
/// kubeconfig does not hold is an error naming it and the kubeconfig (kube-rs would say only
/// "failed to load current context", and would use no credentials for an unknown --user).
fn selected(kubeconfig: &Kubeconfig, flags: &ConnectionFlags, source: &str) -> Result<Selection> {
    let names = |list: Vec<&String>| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let Some(context) = flags
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
    else {
        return Err(Error::Kubeconfig(format!(
            "{source} sets no current-context and no --context was given (its contexts: {})",
            names(kubeconfig.contexts.iter().map(|c| &c.name).collect())
        )));
    };
    // A name from a flag is a usage error; one from the kubeconfig itself, a broken kubeconfig.
    let error = |from_flag: bool, message: String| {
        if from_flag {
            Error::KubeconfigName(message)
        } else {
            Error::Kubeconfig(message)
        }
    };
    let Some(named) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
    else {
        return Err(error(
            flags.context.is_some(),
            format!(
                "context {context:?} does not exist in {source} (its contexts: {})",
                names(kubeconfig.contexts.iter().map(|c| &c.name).collect())
            ),
        ));
    };
    let cluster = flags
        .cluster
        .clone()
        .unwrap_or_else(|| named.cluster.clone());
    if !kubeconfig.clusters.iter().any(|c| c.name == cluster) {
        return Err(error(
            flags.cluster.is_some(),
            format!(
                "cluster {cluster:?} (of context {context:?}) does not exist in {source} (its clusters: {})",
                names(kubeconfig.clusters.iter().map(|c| &c.name).collect())
            ),
        ));
    }
    // A context naming a user the kubeconfig lacks connects without credentials, as client-go
    // does (kube-rs#1594); `--user` naming one is refused, as kubectl refuses it.
    let user = flags.user.clone().or_else(|| named.user.clone());
    if let Some(user) = &flags.user
        && !kubeconfig.auth_infos.iter().any(|u| &u.name == user)
    {
        return Err(error(
            true,
            format!(
                "user {user:?} (of context {context:?}) does not exist in {source} (its users: {})",
                names(kubeconfig.auth_infos.iter().map(|u| &u.name).collect())
            ),
        ));
    }
    Ok(Selection { context, user })
}

struct Selection {
    context: String,
    user: Option<String>,
}

pub async fn connect(flags: &ConnectionFlags) -> Result<Connection> {
    let options = KubeConfigOptions {
        context: flags.context.clone(),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let source = kubeconfig_source(flags.kubeconfig.as_deref());
    let kubeconfig = match &flags.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| Error::Kubeconfig(format!("{source}: {}", message(&e))))?;
    let selection = selected(&kubeconfig, flags, &source)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| Error::Kubeconfig(format!("{source}: {}", message(&e))))?;
    crate::error::set_cluster_location(crate::error::ClusterLocation {
        server: config.cluster_url.to_string(),
        context: selection.context,
        user: selection.user,
        kubeconfig: format!("kubeconfig {source}"),
        credentials_expired: super::credential_expiry::expired(
            &config.auth_info,
            crate::token_claims::now(),
        ),
    });
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
    // kube's stack (auth, its 429/503 retry, timeouts) behind a buffer, so the reconnecting
    // retry around it can send a request again (`reconnect.rs`).
    let stack = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| Error::Kubeconfig(e.to_string()))?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(
            super::reconnect::ReconnectPolicy::new(timeout),
        ));
    let client = stack.build();
    Ok(Connection {
        client,
        namespace,
        timeout,
    })
}
