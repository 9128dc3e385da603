//! `kind-config.yaml` at the repository root: the kind provider's cluster config, and the one
//! source of the apiserver's service-account flags for both providers.
//!
//! The file holds `${NAME}` placeholders ([`ISSUER_VAR`], [`PKI_DIR_VAR`]) that are
//! substituted here, before kind sees the file and before any flag is read. A placeholder with
//! an unknown name is always an error (a typo must not become an empty flag); a known one
//! whose value is not given (the host PKI directory, for the local provider) stays as written
//! and is an error only where it is used: in a flag, or in a file handed to kind.
//!
//! Flags come from the `ClusterConfiguration` patches in `kubeadmConfigPatches`, top level
//! first, then the control-plane node's, a later value for the same flag replacing an earlier
//! one, as kind merges them. `extraArgs` may be kubeadm v1beta3's map or v1beta4's list of
//! `{name, value}`.
//!
//! ```no_run
//! # fn demo() -> Result<(), podiam_e2e::cluster::ClusterError> {
//! use podiam_e2e::cluster::{KindConfig, KindConfigVars, default_kind_config_path};
//! let vars = KindConfigVars::new("https://127.0.0.1:8443/id/EXAMPLE");
//! let config = KindConfig::load(&default_kind_config_path(), &vars)?;
//! let local = config.local_apiserver_flags()?;
//! assert_eq!(local.issuer, "https://127.0.0.1:8443/id/EXAMPLE");
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use super::error::{ClusterError, IoContext, Result};

/// The file's name at the repository root.
pub const KIND_CONFIG_FILE: &str = "kind-config.yaml";
/// Placeholder for the OIDC issuer URL (`--service-account-issuer`).
pub const ISSUER_VAR: &str = "PODIAM_ISSUER";
/// Placeholder for the absolute host directory mounted at [`NODE_PKI_DIR`].
pub const PKI_DIR_VAR: &str = "PODIAM_PKI_DIR";
/// Placeholder for the absolute host directory mounted at [`NODE_CNI_DIR`] (the kind
/// provider's CNI config, `kind_network::cni_conflist`).
pub const CNI_DIR_VAR: &str = "PODIAM_CNI_DIR";
/// The node's CNI config directory.
pub const NODE_CNI_DIR: &str = "/etc/cni/net.d";
/// Where the kind node sees the service-account key pair (under kubeadm's certificatesDir,
/// which kubeadm mounts into the apiserver and controller-manager static pods).
pub const NODE_PKI_DIR: &str = "/etc/kubernetes/pki/podiam";
/// The signing key (RSA private key, PEM) in the PKI directory.
pub const SIGNING_KEY_FILE: &str = "sa.key";
/// Its public half (PKIX PEM) in the PKI directory.
pub const PUBLIC_KEY_FILE: &str = "sa.pub";

/// kube-apiserver flags the local provider sets itself (`control_plane::spawn_apiserver`),
/// from [`LocalClusterOptions`](super::LocalClusterOptions) or its own PKI. Left out of
/// [`LocalApiServerFlags::extra_args`], so no flag is given twice.
pub const LOCAL_PROVIDER_APISERVER_FLAGS: [&str; 5] = [
    "service-account-issuer",
    "service-account-jwks-uri",
    "service-account-key-file",
    "service-account-signing-key-file",
    "kubelet-preferred-address-types",
];

/// `<workspace>/kind-config.yaml`.
pub fn default_kind_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(KIND_CONFIG_FILE)
}

/// Values for the file's placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindConfigVars {
    /// `${PODIAM_ISSUER}`.
    pub issuer: String,
    /// `${PODIAM_PKI_DIR}`: needed for kind, not for the local provider.
    pub host_pki_dir: Option<PathBuf>,
    /// `${PODIAM_CNI_DIR}`: needed for kind, not for the local provider.
    pub host_cni_dir: Option<PathBuf>,
}

impl KindConfigVars {
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            host_pki_dir: None,
            host_cni_dir: None,
        }
    }

    pub fn with_host_pki_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.host_pki_dir = Some(dir.into());
        self
    }

    pub fn with_host_cni_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.host_cni_dir = Some(dir.into());
        self
    }

    /// `(name, value)` of every known placeholder; `None` when not given.
    fn values(&self) -> Result<Vec<(&'static str, Option<String>)>> {
        Ok(vec![
            (ISSUER_VAR, Some(self.issuer.clone())),
            (
                PKI_DIR_VAR,
                absolute_dir(PKI_DIR_VAR, self.host_pki_dir.as_deref())?,
            ),
            (
                CNI_DIR_VAR,
                absolute_dir(CNI_DIR_VAR, self.host_cni_dir.as_deref())?,
            ),
        ])
    }
}

/// A mount's host directory as text: absolute (kind resolves relative mounts against its
/// working directory) and UTF-8.
fn absolute_dir(var: &str, dir: Option<&Path>) -> Result<Option<String>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    if !dir.is_absolute() {
        return Err(ClusterError::other(format!(
            "{var} must be an absolute path (kind resolves relative mounts against its working \
             directory), got {}",
            dir.display()
        )));
    }
    dir.to_str()
        .map(|s| Some(s.to_owned()))
        .ok_or_else(|| ClusterError::other(format!("{var} is not UTF-8: {}", dir.display())))
}

/// A host directory mounted into a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraMount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// What the local provider takes from the file: put `issuer` and `jwks_uri` into
/// `LocalClusterOptions::{service_account_issuer, service_account_jwks_uri}` and
/// `extra_args` into `extra_apiserver_args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalApiServerFlags {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    /// `--flag=value` for every apiserver flag not in [`LOCAL_PROVIDER_APISERVER_FLAGS`].
    pub extra_args: Vec<String>,
}

/// A rendered `kind-config.yaml`.
#[derive(Debug, Clone)]
pub struct KindConfig {
    source: String,
    text: String,
    doc: Value,
    apiserver: Vec<(String, String)>,
    controller_manager: Vec<(String, String)>,
}

impl KindConfig {
    /// Reads `path` and renders it with `vars`.
    pub fn load(path: &Path, vars: &KindConfigVars) -> Result<Self> {
        let template =
            fs::read_to_string(path).io_context(|| format!("reading {}", path.display()))?;
        Self::render(&template, vars, &path.display().to_string())
    }

    /// Substitutes the placeholders of `template` and parses the result. `source` names the
    /// template in errors.
    pub fn render(template: &str, vars: &KindConfigVars, source: &str) -> Result<Self> {
        let text = substitute(template, &vars.values()?)
            .map_err(|e| ClusterError::other(format!("{source}: {e}")))?;
        let doc: Value = serde_saphyr::from_str(&text)
            .map_err(|e| ClusterError::other(format!("{source}: not YAML: {e}")))?;
        let fail = |e: String| ClusterError::other(format!("{source}: {e}"));
        check_header(&doc).map_err(fail)?;
        let patches = cluster_configuration_patches(&doc).map_err(fail)?;
        let apiserver = component_args(&patches, "apiServer").map_err(fail)?;
        let controller_manager = component_args(&patches, "controllerManager").map_err(fail)?;
        Ok(Self {
            source: source.to_owned(),
            text,
            doc,
            apiserver,
            controller_manager,
        })
    }

    /// The rendered file, as given to `kind create cluster --config`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Writes the rendered file to `path`, failing if a placeholder is still unset.
    pub fn write(&self, path: &Path) -> Result<()> {
        let unset = placeholders(&self.text);
        if !unset.is_empty() {
            return Err(ClusterError::other(format!(
                "{}: placeholders with no value: {}",
                self.source,
                unset.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        fs::write(path, &self.text).io_context(|| format!("writing {}", path.display()))
    }

    /// `name:` (kind's default cluster name for this file).
    pub fn cluster_name(&self) -> Option<&str> {
        self.doc.get("name").and_then(Value::as_str)
    }

    /// `networking.podSubnet`, if set.
    pub fn pod_subnet(&self) -> Option<&str> {
        self.doc.get("networking")?.get("podSubnet")?.as_str()
    }

    /// `networking.disableDefaultCNI` (kind's default: false).
    pub fn disables_default_cni(&self) -> bool {
        self.doc
            .get("networking")
            .and_then(|n| n.get("disableDefaultCNI"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The control-plane node's `image`.
    pub fn node_image(&self) -> Option<&str> {
        self.control_plane_node()
            .and_then(|n| n.get("image"))
            .and_then(Value::as_str)
    }

    /// The control-plane node's `extraMounts`.
    pub fn extra_mounts(&self) -> Vec<ExtraMount> {
        let Some(mounts) = self
            .control_plane_node()
            .and_then(|n| n.get("extraMounts"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        mounts
            .iter()
            .filter_map(|m| {
                Some(ExtraMount {
                    host_path: m.get("hostPath")?.as_str()?.to_owned(),
                    container_path: m.get("containerPath")?.as_str()?.to_owned(),
                    read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect()
    }

    /// The host directory mounted at `container_path` (trailing slashes ignored).
    pub fn host_path_for(&self, container_path: &str) -> Option<String> {
        let want = container_path.trim_end_matches('/');
        self.extra_mounts()
            .into_iter()
            .find(|m| m.container_path.trim_end_matches('/') == want)
            .map(|m| m.host_path)
    }

    /// kube-apiserver `extraArgs`, `(name, value)` without leading dashes, in the order first
    /// seen (by name within one map-form patch; kubeadm sorts the flags it writes anyway).
    pub fn apiserver_args(&self) -> &[(String, String)] {
        &self.apiserver
    }

    /// kube-controller-manager `extraArgs`, like [`Self::apiserver_args`].
    pub fn controller_manager_args(&self) -> &[(String, String)] {
        &self.controller_manager
    }

    /// One apiserver flag's value (name without dashes); an error if it holds an unset
    /// placeholder.
    pub fn apiserver_arg(&self, name: &str) -> Result<Option<&str>> {
        match self.apiserver.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((n, v)) => self.resolved(n, v).map(Some),
        }
    }

    /// Every apiserver flag as `--name=value`.
    pub fn apiserver_flags(&self) -> Result<Vec<String>> {
        self.flags(&self.apiserver, &[])
    }

    /// Every controller-manager flag as `--name=value`.
    pub fn controller_manager_flags(&self) -> Result<Vec<String>> {
        self.flags(&self.controller_manager, &[])
    }

    /// `--service-account-issuer`, which the file must set.
    pub fn service_account_issuer(&self) -> Result<&str> {
        self.apiserver_arg("service-account-issuer")?
            .ok_or_else(|| {
                ClusterError::other(format!(
                    "{}: no ClusterConfiguration patch sets apiServer.extraArgs \
                 service-account-issuer",
                    self.source
                ))
            })
    }

    /// `--service-account-jwks-uri`, if set.
    pub fn service_account_jwks_uri(&self) -> Result<Option<&str>> {
        self.apiserver_arg("service-account-jwks-uri")
    }

    /// The flags the local provider takes from this file (see [`LocalApiServerFlags`]).
    pub fn local_apiserver_flags(&self) -> Result<LocalApiServerFlags> {
        Ok(LocalApiServerFlags {
            issuer: self.service_account_issuer()?.to_owned(),
            jwks_uri: self.service_account_jwks_uri()?.map(str::to_owned),
            extra_args: self.flags(&self.apiserver, &LOCAL_PROVIDER_APISERVER_FLAGS)?,
        })
    }

    fn flags(&self, args: &[(String, String)], except: &[&str]) -> Result<Vec<String>> {
        args.iter()
            .filter(|(n, _)| !except.contains(&n.as_str()))
            .map(|(n, v)| Ok(format!("--{n}={}", self.resolved(n, v)?)))
            .collect()
    }

    fn resolved<'a>(&self, name: &str, value: &'a str) -> Result<&'a str> {
        let unset = placeholders(value);
        if unset.is_empty() {
            Ok(value)
        } else {
            Err(ClusterError::other(format!(
                "{}: flag {name} uses {} with no value given",
                self.source,
                unset.into_iter().collect::<Vec<_>>().join(", ")
            )))
        }
    }

    fn control_plane_node(&self) -> Option<&Value> {
        self.doc
            .get("nodes")?
            .as_array()?
            .iter()
            .find(|n| n.get("role").and_then(Value::as_str) == Some("control-plane"))
    }
}

fn placeholder_regex() -> Regex {
    Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("a valid regex")
}

/// Names of the `${…}` placeholders left in `text`.
fn placeholders(text: &str) -> BTreeSet<String> {
    placeholder_regex()
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Replaces `${NAME}` for every `NAME` with a value; unknown names are an error, known names
/// without a value are left in place.
fn substitute(
    template: &str,
    values: &[(&'static str, Option<String>)],
) -> std::result::Result<String, String> {
    let unknown: BTreeSet<String> = placeholders(template)
        .into_iter()
        .filter(|name| !values.iter().any(|(known, _)| known == name))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown placeholders {} (known: {})",
            unknown
                .iter()
                .map(|n| format!("${{{n}}}"))
                .collect::<Vec<_>>()
                .join(", "),
            values
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (name, value) in values {
        if let Some(value) = value
            && (value.is_empty() || value.contains(['"', '\\', '\n', '\r', '$']))
        {
            return Err(format!(
                "{name} must be non-empty and hold no quote, backslash, newline or `$`: {value:?}"
            ));
        }
    }
    Ok(placeholder_regex()
        .replace_all(template, |c: &regex::Captures<'_>| {
            values
                .iter()
                .find(|(n, _)| *n == &c[1])
                .and_then(|(_, v)| v.clone())
                .unwrap_or_else(|| c[0].to_owned())
        })
        .into_owned())
}

fn check_header(doc: &Value) -> std::result::Result<(), String> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str);
    let kind = doc.get("kind").and_then(Value::as_str);
    if api_version != Some("kind.x-k8s.io/v1alpha4") || kind != Some("Cluster") {
        return Err(format!(
            "expected apiVersion kind.x-k8s.io/v1alpha4, kind Cluster; found {} {}",
            api_version.unwrap_or("(none)"),
            kind.unwrap_or("(none)")
        ));
    }
    // Patches the harness cannot read would make the two providers disagree silently.
    if doc.get("kubeadmConfigPatchesJSON6902").is_some() {
        return Err("kubeadmConfigPatchesJSON6902 is not read by the harness; \
                    use kubeadmConfigPatches"
            .into());
    }
    Ok(())
}

/// The parsed `ClusterConfiguration` patches, top level first, then the control-plane
/// nodes'.
fn cluster_configuration_patches(doc: &Value) -> std::result::Result<Vec<Value>, String> {
    let mut lists: Vec<(String, &Value)> = Vec::new();
    if let Some(p) = doc.get("kubeadmConfigPatches") {
        lists.push(("kubeadmConfigPatches".into(), p));
    }
    if let Some(nodes) = doc.get("nodes").and_then(Value::as_array) {
        for (i, node) in nodes.iter().enumerate() {
            if node.get("kubeadmConfigPatchesJSON6902").is_some() {
                return Err(format!(
                    "nodes[{i}].kubeadmConfigPatchesJSON6902 is not read by the harness"
                ));
            }
            let control_plane = node.get("role").and_then(Value::as_str) == Some("control-plane");
            if let (true, Some(p)) = (control_plane, node.get("kubeadmConfigPatches")) {
                lists.push((format!("nodes[{i}].kubeadmConfigPatches"), p));
            }
        }
    }
    let mut patches = Vec::new();
    for (where_, list) in lists {
        let list = list
            .as_array()
            .ok_or_else(|| format!("{where_} is not a list"))?;
        for (i, patch) in list.iter().enumerate() {
            let text = patch
                .as_str()
                .ok_or_else(|| format!("{where_}[{i}] is not a string (use `- |`)"))?;
            let parsed: Value = serde_saphyr::from_str(text)
                .map_err(|e| format!("{where_}[{i}] is not YAML: {e}"))?;
            let kind = parsed.get("kind").and_then(Value::as_str);
            let api_version = parsed.get("apiVersion").and_then(Value::as_str);
            let kubeadm = api_version.is_none_or(|v| v.starts_with("kubeadm.k8s.io/"));
            if kind == Some("ClusterConfiguration") && kubeadm {
                patches.push(parsed);
            }
        }
    }
    Ok(patches)
}

/// `<component>.extraArgs` of every patch, merged: a later value replaces an earlier one.
fn component_args(
    patches: &[Value],
    component: &str,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for patch in patches {
        let Some(extra) = patch.get(component).and_then(|c| c.get("extraArgs")) else {
            continue;
        };
        for (name, value) in extra_args(extra).map_err(|e| format!("{component}.extraArgs: {e}"))? {
            if name.is_empty() || name.starts_with('-') || name.contains('=') {
                return Err(format!(
                    "{component}.extraArgs: {name:?} is not a flag name (no dashes, no `=`)"
                ));
            }
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => merged.push((name, value)),
            }
        }
    }
    Ok(merged)
}

/// kubeadm v1beta3 `{name: value}` or v1beta4 `[{name, value}]`.
fn extra_args(extra: &Value) -> std::result::Result<Vec<(String, String)>, String> {
    match extra {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    scalar(v).ok_or_else(|| format!("{k}: not a scalar"))?,
                ))
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .map(|item| {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{item}: no name"))?;
                let value = item
                    .get("value")
                    .and_then(scalar)
                    .ok_or_else(|| format!("{name}: no scalar value"))?;
                Ok((name.to_owned(), value))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!("neither a map nor a list: {other}")),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://127.0.0.1:40123/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

    fn repo_config(vars: &KindConfigVars) -> KindConfig {
        KindConfig::load(&default_kind_config_path(), vars).unwrap()
    }

    #[test]
    fn the_repository_file_yields_the_issuer_flags() {
        let config = repo_config(&KindConfigVars::new(ISSUER));
        assert_eq!(config.cluster_name(), Some("podiam"));
        assert!(
            config
                .node_image()
                .is_some_and(|i| i.starts_with("kindest/node:v1.34.")),
            "{:?}",
            config.node_image()
        );
        assert_eq!(config.service_account_issuer().unwrap(), ISSUER);
        assert_eq!(
            config.service_account_jwks_uri().unwrap(),
            Some(format!("{ISSUER}/keys").as_str())
        );
        let flags = config.apiserver_flags().unwrap();
        assert!(flags.contains(&format!("--service-account-issuer={ISSUER}")));
        assert!(flags.contains(&format!(
            "--service-account-signing-key-file={NODE_PKI_DIR}/{SIGNING_KEY_FILE}"
        )));
        assert!(flags.contains(&format!(
            "--service-account-key-file={NODE_PKI_DIR}/{PUBLIC_KEY_FILE}"
        )));
        assert_eq!(
            config.controller_manager_flags().unwrap(),
            vec![format!(
                "--service-account-private-key-file={NODE_PKI_DIR}/{SIGNING_KEY_FILE}"
            )]
        );
    }

    #[test]
    fn the_local_provider_gets_no_flag_it_sets_itself() {
        let local = repo_config(&KindConfigVars::new(ISSUER))
            .local_apiserver_flags()
            .unwrap();
        assert_eq!(local.issuer, ISSUER);
        assert_eq!(local.jwks_uri.as_deref(), Some(&*format!("{ISSUER}/keys")));
        for flag in &local.extra_args {
            let name = flag.trim_start_matches("--").split('=').next().unwrap();
            assert!(
                !LOCAL_PROVIDER_APISERVER_FLAGS.contains(&name),
                "{flag} is set by the local provider too"
            );
        }
    }

    #[test]
    fn the_repository_file_mounts_the_key_pair_where_the_flags_point() {
        let config = repo_config(
            &KindConfigVars::new(ISSUER)
                .with_host_pki_dir("/tmp/podiam-pki")
                .with_host_cni_dir("/tmp/podiam-cni"),
        );
        assert_eq!(
            config.host_path_for(NODE_PKI_DIR).as_deref(),
            Some("/tmp/podiam-pki")
        );
        assert_eq!(
            config.host_path_for(NODE_CNI_DIR).as_deref(),
            Some("/tmp/podiam-cni")
        );
        // kindnetd masquerades pod traffic; the mounted CNI config replaces it.
        assert!(config.disables_default_cni());
        assert_eq!(
            config.pod_subnet(),
            Some(super::super::kind_network::KIND_POD_CIDR)
        );
        assert!(config.text().contains("hostPath: \"/tmp/podiam-pki\""));
        let dir = tempfile::tempdir().unwrap();
        config.write(&dir.path().join("kind.yaml")).unwrap();
    }

    #[test]
    fn an_unset_known_placeholder_fails_only_where_used() {
        let config = repo_config(&KindConfigVars::new(ISSUER));
        // The flags do not use it...
        config.apiserver_flags().unwrap();
        // ...but kind would get a literal `${PODIAM_PKI_DIR}` mount.
        let dir = tempfile::tempdir().unwrap();
        let err = config
            .write(&dir.path().join("kind.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(PKI_DIR_VAR), "{err}");

        let template = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
            kubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n  apiServer:\n    \
            extraArgs:\n      service-account-key-file: \"${PODIAM_PKI_DIR}/sa.pub\"\n";
        let config = KindConfig::render(template, &KindConfigVars::new(ISSUER), "t").unwrap();
        let err = config.apiserver_flags().unwrap_err().to_string();
        assert!(
            err.contains("service-account-key-file") && err.contains(PKI_DIR_VAR),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_placeholder_is_an_error() {
        let template =
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: \"${PODIAM_ISUER}\"\n";
        let err = KindConfig::render(template, &KindConfigVars::new(ISSUER), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("${PODIAM_ISUER}"), "{err}");
    }

    #[test]
    fn values_that_would_break_the_yaml_are_refused() {
        let template =
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: \"${PODIAM_ISSUER}\"\n";
        for bad in ["", "https://x\"y", "https://x\ny"] {
            assert!(
                KindConfig::render(template, &KindConfigVars::new(bad), "t").is_err(),
                "{bad:?}"
            );
        }
        let relative = KindConfigVars::new(ISSUER).with_host_pki_dir("pki");
        assert!(KindConfig::render(template, &relative, "t").is_err());
    }

    #[test]
    fn later_patches_win_and_both_extra_args_shapes_are_read() {
        let template = r#"
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        service-account-issuer: "https://first"
        v: 2
        profiling: false
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "a=b"
  - |
    apiVersion: kubeadm.k8s.io/v1beta4
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        - name: api-audiences
          value: sts.amazonaws.com
nodes:
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: ClusterConfiguration
        apiServer:
          extraArgs:
            service-account-issuer: "${PODIAM_ISSUER}"
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: ClusterConfiguration
        apiServer:
          extraArgs:
            service-account-issuer: "https://worker-is-ignored"
"#;
        let config = KindConfig::render(template, &KindConfigVars::new(ISSUER), "t").unwrap();
        assert_eq!(
            config.apiserver_flags().unwrap(),
            vec![
                "--profiling=false".to_owned(),
                format!("--service-account-issuer={ISSUER}"),
                "--v=2".to_owned(),
                "--api-audiences=sts.amazonaws.com".to_owned(),
            ]
        );
        assert_eq!(config.service_account_jwks_uri().unwrap(), None);
        assert_eq!(
            config.local_apiserver_flags().unwrap().extra_args,
            vec![
                "--profiling=false",
                "--v=2",
                "--api-audiences=sts.amazonaws.com"
            ]
        );
    }

    #[test]
    fn a_missing_issuer_and_foreign_files_are_errors() {
        let no_issuer = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
        let config = KindConfig::render(no_issuer, &KindConfigVars::new(ISSUER), "t").unwrap();
        assert!(config.service_account_issuer().is_err());
        assert!(config.apiserver_flags().unwrap().is_empty());

        let not_kind = "apiVersion: v1\nkind: Config\n";
        assert!(KindConfig::render(not_kind, &KindConfigVars::new(ISSUER), "t").is_err());

        let json6902 = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
            kubeadmConfigPatchesJSON6902: []\n";
        assert!(KindConfig::render(json6902, &KindConfigVars::new(ISSUER), "t").is_err());

        let dashed = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
            kubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n  apiServer:\n    \
            extraArgs:\n      --v: \"2\"\n";
        assert!(KindConfig::render(dashed, &KindConfigVars::new(ISSUER), "t").is_err());
    }
}
