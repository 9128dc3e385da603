//! The `existing` provider: the cluster the current kubeconfig points at, for conformance runs
//! against real clusters (EKS, GKE, AKS) and real clouds.
//!
//! Rules, which the runner must keep when it runs scenarios here:
//!
//! - **It never creates cloud objects it does not own.** A cloud that is not emulated is
//!   someone's real account: the runner skips `spec.setup` for it (the scenario's roles,
//!   providers and bindings must already exist, and the scenario asserts against them), or
//!   creates only objects named with, or tagged by, the scenario's own prefix (its namespace
//!   name), and deletes exactly those afterwards. It never edits, reuses or deletes an object
//!   it did not create in this run.
//! - **It installs no webhook.** The cluster's own (the EKS pod-identity webhook, the Azure
//!   workload identity webhook, GKE's metadata server) mutate pods exactly as users see; no
//!   `MutatingWebhookConfiguration` is created, changed or deleted.
//! - **It owns only its namespaces.** Each scenario gets a namespace created for it (labelled
//!   `podiam.dev/scenario`) and deleted after it; nothing cluster-scoped is created except
//!   what a scenario's own manifests hold (e.g. a ClusterRoleBinding in the `k8s-rbac-*`
//!   scenarios, named after its namespace and deleted at its end), and no existing namespace is
//!   written to.
//! - Nothing is started or stopped: there is no `up` or `down`; `connect` only reads the
//!   kubeconfig and asks the apiserver for its version.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::{ClusterError, Result};

/// A cluster the harness did not create.
#[derive(Clone)]
pub struct ExistingCluster {
    kubeconfig: PathBuf,
    context: String,
    client: kube::Client,
    server_version: String,
    /// The context's cluster CA (PEM), when the kubeconfig names one.
    ca_pem: Option<String>,
}

impl std::fmt::Debug for ExistingCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExistingCluster")
            .field("kubeconfig", &self.kubeconfig)
            .field("context", &self.context)
            .field("server_version", &self.server_version)
            .finish_non_exhaustive()
    }
}

impl ExistingCluster {
    /// Connects with `kubeconfig` (default: `$KUBECONFIG` when it names one file, else
    /// `~/.kube/config`) and `context` (default: its current context), and checks the
    /// apiserver answers. The plugin must then be run with the same
    /// `--kubeconfig` and `--context` ([`Self::plugin_args`]).
    pub async fn connect(kubeconfig: Option<PathBuf>, context: Option<String>) -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig = match kubeconfig {
            Some(path) => path,
            None => default_kubeconfig_path(std::env::var_os("KUBECONFIG"), home())?,
        };
        let parsed =
            Kubeconfig::read_from(&kubeconfig).map_err(|e| ClusterError::MissingPrerequisite {
                what: format!("a readable kubeconfig at {}: {e}", kubeconfig.display()),
                fix: "pass --kubeconfig, or set KUBECONFIG to one file".into(),
            })?;
        let context = match context.or_else(|| parsed.current_context.clone()) {
            Some(c) if !c.is_empty() => c,
            _ => {
                return Err(ClusterError::MissingPrerequisite {
                    what: format!("a context in {} (none is current)", kubeconfig.display()),
                    fix: "pass --context, or `kubectl config use-context NAME`".into(),
                });
            }
        };
        if !parsed.contexts.iter().any(|c| c.name == context) {
            return Err(ClusterError::MissingPrerequisite {
                what: format!("context {context} in {}", kubeconfig.display()),
                fix: format!(
                    "one of: {}",
                    parsed
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let ca_pem = cluster_ca_pem(&parsed, &context, &kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .map_err(|e| {
                ClusterError::other(format!(
                    "kubeconfig {} context {context}: {e}",
                    kubeconfig.display()
                ))
            })?;
        let client = kube::Client::try_from(config)
            .map_err(|e| ClusterError::other(format!("building a client: {e}")))?;
        let version =
            client
                .apiserver_version()
                .await
                .map_err(|e| ClusterError::MissingPrerequisite {
                    what: format!(
                        "a reachable cluster for context {context} in {} ({e})",
                        kubeconfig.display()
                    ),
                    fix: "check the cluster is up and the credentials are valid \
                      (`kubectl --context CONTEXT version`)"
                        .into(),
                })?;
        Ok(Self {
            kubeconfig,
            context,
            client,
            server_version: version.git_version,
            ca_pem,
        })
    }

    /// The CA the kubeconfig trusts for this cluster (PEM), if it names one; a JWKS fetched
    /// from an issuer the apiserver serves itself is signed by it.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The context in use (given, or the kubeconfig's current one).
    pub fn context(&self) -> &str {
        &self.context
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// `gitVersion` from `/version`, e.g. `v1.34.2-eks-…`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// `--kubeconfig PATH --context NAME`, for every plugin invocation.
    pub fn plugin_args(&self) -> Vec<String> {
        vec![
            "--kubeconfig".to_owned(),
            self.kubeconfig.display().to_string(),
            "--context".to_owned(),
            self.context.clone(),
        ]
    }

    /// The cluster's service-account issuer, from its OIDC discovery document
    /// (`/.well-known/openid-configuration`, readable by any authenticated user through
    /// `system:service-account-issuer-discovery`).
    pub async fn service_account_issuer(&self) -> Result<String> {
        let request = http_get("/.well-known/openid-configuration")?;
        let doc: serde_json::Value = self.client.request(request).await.map_err(|e| {
            ClusterError::other(format!(
                "reading the cluster's OIDC discovery document: {e}"
            ))
        })?;
        doc.get("issuer")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClusterError::other("the OIDC discovery document has no issuer"))
    }
}

/// `certificate-authority-data` (base64 PEM) or `certificate-authority` (a file, relative to
/// the kubeconfig) of the context's cluster.
fn cluster_ca_pem(parsed: &Kubeconfig, context: &str, kubeconfig: &Path) -> Result<Option<String>> {
    use base64::Engine as _;
    let cluster_name = parsed
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let Some(cluster) = parsed
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .and_then(|c| c.cluster.as_ref())
    else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| {
                ClusterError::other(format!(
                    "{}: certificate-authority-data is not base64: {e}",
                    kubeconfig.display()
                ))
            })?;
        return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
    }
    if let Some(file) = &cluster.certificate_authority {
        let path = kubeconfig
            .parent()
            .map_or_else(|| PathBuf::from(file), |dir| dir.join(file));
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            ClusterError::other(format!(
                "reading certificate-authority {}: {e}",
                path.display()
            ))
        })?;
        return Ok(Some(pem));
    }
    Ok(None)
}

fn http_get(path: &str) -> Result<axum::http::Request<Vec<u8>>> {
    axum::http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| ClusterError::other(format!("building GET {path}: {e}")))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `$KUBECONFIG` when it names exactly one file, else `~/.kube/config`. A list is refused:
/// the plugin is handed one `--kubeconfig`, and merging files would hide which one is used.
fn default_kubeconfig_path(
    env: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
) -> Result<PathBuf> {
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        let files: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        return match files.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ClusterError::other("KUBECONFIG is set but names no file")),
            _ => Err(ClusterError::MissingPrerequisite {
                what: format!(
                    "one kubeconfig file (KUBECONFIG lists {}: {})",
                    files.len(),
                    value.to_string_lossy()
                ),
                fix: "pass --kubeconfig with the file that holds the context to test".into(),
            }),
        };
    }
    home.map(|h| h.join(".kube").join("config"))
        .ok_or_else(|| ClusterError::MissingPrerequisite {
            what: "a kubeconfig (no --kubeconfig, KUBECONFIG or HOME)".into(),
            fix: "pass --kubeconfig".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_path_follows_kubectl_for_one_file() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            default_kubeconfig_path(None, home.clone()).unwrap(),
            PathBuf::from("/home/u/.kube/config")
        );
        assert_eq!(
            default_kubeconfig_path(Some("".into()), home.clone()).unwrap(),
            PathBuf::from("/home/u/.kube/config")
        );
        assert_eq!(
            default_kubeconfig_path(Some("/tmp/k".into()), home.clone()).unwrap(),
            PathBuf::from("/tmp/k")
        );
        let err = default_kubeconfig_path(Some("/a:/b".into()), home)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kubeconfig"), "{err}");
        assert!(default_kubeconfig_path(None, None).is_err());
    }

    #[tokio::test]
    async fn an_unknown_context_is_named_without_contacting_a_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            r#"{"apiVersion":"v1","kind":"Config",
                "clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:1"}}],
                "users":[{"name":"u","user":{}}],
                "contexts":[{"name":"a","context":{"cluster":"c","user":"u"}}],
                "current-context":"a"}"#,
        )
        .unwrap();
        let err = ExistingCluster::connect(Some(path.clone()), Some("b".into()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("context b") && err.contains("one of: a"),
            "{err}"
        );

        let missing = ExistingCluster::connect(Some(dir.path().join("nope")), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("kubeconfig"), "{missing}");
    }
}
