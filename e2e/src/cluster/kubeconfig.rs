//! Kubeconfig files for the admin and each component: certificate paths, never inline keys.

use std::fs;
use std::path::Path;

use serde_json::json;

use super::error::{IoContext, Result};
use super::pki::CertFiles;

/// The context every kubeconfig written here uses.
pub const CONTEXT: &str = "podiam-local";

/// Writes a kubeconfig for `user` authenticating with `client` to `server`.
pub fn write(
    path: &Path,
    server: &str,
    ca_cert: &Path,
    user: &str,
    client: &CertFiles,
) -> Result<()> {
    // JSON is YAML: every kubeconfig reader (kubectl, client-go, kube-rs) accepts it.
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {"server": server, "certificate-authority": ca_cert},
        }],
        "users": [{
            "name": user,
            "user": {"client-certificate": client.cert, "client-key": client.key},
        }],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    });
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    fs::write(path, text).io_context(|| format!("writing {}", path.display()))
}
