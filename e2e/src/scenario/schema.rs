//! The scenario schema and its loader. Unknown fields are errors; every error names the file
//! and, for YAML problems, the line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::assertion::Assertion;
use crate::setup::CloudSetup;

pub const API_VERSION: &str = "podiam.dev/v1alpha1";
pub const KIND: &str = "Scenario";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ScenarioSpec,
    /// The file it was read from (relative paths in steps resolve against its directory).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Gcp,
    Azure,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    pub cloud: Cloud,
    /// Cloud-side objects created in the emulators before the steps run.
    #[serde(default)]
    pub setup: CloudSetup,
    pub steps: Vec<Step>,
    /// Diagnostics collected when a step fails.
    #[serde(default)]
    pub catch: Vec<CatchItem>,
}

/// One step; exactly one key per list entry, as in Chainsaw.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Server-side apply manifests into the scenario's namespace (`${NAMESPACE}` expands).
    Apply(ApplyStep),
    /// Wait for a pod to reach a phase.
    Wait(WaitStep),
    /// Delete an object in the scenario's namespace.
    Delete(DeleteStep),
    /// Run the built `kubectl-podiam` and assert on its exit code and JSON output.
    Podiam(PodiamStep),
    /// Read a Kubernetes object or an emulator's record directly (not through the plugin) and
    /// assert on it: proves what a command changed, or that a dry run changed nothing.
    State(StateStep),
    /// Block egress from a pod until the scenario ends (local provider only): iptables on the
    /// pod bridge, or the cloud front holding one host name (`via: front`).
    Block(BlockStep),
    /// Take an identity webhook stand-in out of service until the scenario ends (its
    /// registration is restored afterwards, pass or fail).
    Webhook(WebhookStep),
}

/// `webhook: {name: eks|azure, state: down|unregistered, service: NAME}`: `down` points the
/// webhook's configuration at the Service `service` of the scenario's namespace (which the
/// scenario gives no ready endpoint), as when the webhook's Deployment is not running;
/// `unregistered` deletes the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookStep {
    pub name: WebhookName,
    pub state: WebhookState,
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookName {
    Eks,
    Azure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    Down,
    Unregistered,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyStep {
    /// A file or directory, relative to the scenario file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Inline YAML documents.
    #[serde(default)]
    pub manifests: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PodPhase {
    Running,
    Ready,
    Succeeded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitStep {
    /// A pod by name…
    #[serde(default)]
    pub pod: Option<String>,
    /// …or the first pod matching a label selector (pods of a Deployment).
    #[serde(default)]
    pub selector: Option<String>,
    /// With `selector`: wait until this many matching pods have reached the phase.
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(rename = "for", default = "default_phase")]
    pub phase: PodPhase,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_phase() -> PodPhase {
    PodPhase::Running
}

fn default_timeout() -> u64 {
    90
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteStep {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodiamStep {
    /// Arguments after `kubectl-podiam`; `${NAMESPACE}` expands, and `${POD:SELECTOR}` becomes
    /// the name of the first pod matching the selector. `-n NS` and `-o json` are added.
    pub args: Vec<String>,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default, rename = "assert")]
    pub assertions: Vec<Assertion>,
    /// Texts stderr must contain (e.g. the fix a refusal prints).
    #[serde(default)]
    pub stderr_contains: Vec<String>,
    /// Keep the JSON output under this name for later `sameAs` assertions.
    #[serde(default)]
    pub capture: Option<String>,
    /// The command must end within this many seconds (it is killed then, and the step fails):
    /// a hostile pod must not hold the plugin.
    #[serde(default)]
    pub within_seconds: Option<u64>,
    /// Texts neither stdout nor stderr may contain (a secret or forged value the pod showed).
    #[serde(default)]
    pub output_excludes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateStep {
    /// An object in the scenario's namespace (JSON `null` when it does not exist)…
    #[serde(default)]
    pub kubernetes: Option<ObjectRef>,
    /// …or a record of an emulator.
    #[serde(default)]
    pub emulator: Option<EmulatorRecord>,
    #[serde(rename = "assert")]
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmulatorRecord {
    pub cloud: Cloud,
    /// What to read, per cloud (see `runner::state_step`): e.g. `role/NAME` for AWS. `${NAMESPACE}`
    /// expands.
    pub record: String,
}

/// `block: {pod, host | address, port, action, via}`. With `host`, every address the cluster
/// DNS gives for it is blocked; every cloud name resolves to the one cloud front, so to block
/// one name among them (the global STS endpoint, not the regional one) use `via: front`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockStep {
    pub pod: String,
    #[serde(default)]
    pub host: Option<String>,
    /// An IPv4 address (e.g. `169.254.170.23`).
    #[serde(default)]
    pub address: Option<String>,
    /// TCP port; 443 when absent.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub action: BlockAction,
    #[serde(default)]
    pub via: BlockVia,
}

impl BlockStep {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(443)
    }

    fn validate(&self) -> Result<()> {
        if self.host.is_some() == self.address.is_some() {
            bail!("needs exactly one of host or address");
        }
        if let Some(address) = &self.address
            && address.parse::<std::net::Ipv4Addr>().is_err()
        {
            bail!("address {address:?} is not an IPv4 address");
        }
        if self.port == Some(0) {
            bail!("port 0 is no TCP port");
        }
        if self.via == BlockVia::Front {
            let Some(host) = &self.host else {
                bail!("via: front needs a host (the front tells cloud names apart, not addresses)");
            };
            if crate::cloud_hosts::service_of(host).is_none() {
                bail!("via: front: the cloud front serves no host {host:?} (see cloud_hosts.rs)");
            }
            if self.port() != 443 {
                bail!("via: front holds HTTPS on port 443 only");
            }
            if self.action != BlockAction::Drop {
                bail!("via: front holds requests unanswered (drop); reject needs iptables");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockAction {
    /// Packets vanish: the pod's client times out.
    #[default]
    Drop,
    /// A TCP reset: the pod's client sees "connection refused".
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockVia {
    /// A rule in the harness's iptables chain on the pod bridge.
    #[default]
    Iptables,
    /// The cloud front holds the host's requests from the pod's namespace unanswered.
    Front,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CatchItem {
    Describe { pod: String },
    Events {},
    Logs { pod: String },
    EmulatorLog {},
}

impl Scenario {
    /// Parses a scenario; `${POD_HOST}` anywhere in it is the host's address on the local
    /// provider's pod bridge (`cluster::pod_host_ip`).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Self> {
        let text = text.replace(
            crate::cluster::POD_HOST_VAR,
            &crate::cluster::pod_host_ip().to_string(),
        );
        let mut scenario: Scenario = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        scenario.path = path.to_path_buf();
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        Self::from_yaml(path, &text)
    }

    /// Loads every `*.yaml` under the given files or directories, sorted by path.
    pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Self>> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                for entry in
                    std::fs::read_dir(p).with_context(|| format!("reading {}", p.display()))?
                {
                    let f = entry?.path();
                    if matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                        files.push(f);
                    }
                }
            } else {
                files.push(p.clone());
            }
        }
        files.sort();
        files.iter().map(|f| Self::load(f)).collect()
    }

    fn validate(&self) -> Result<()> {
        let at = self.path.display();
        if self.api_version != API_VERSION {
            bail!(
                "{at}: apiVersion must be {API_VERSION}, found {:?}",
                self.api_version
            );
        }
        if self.kind != KIND {
            bail!("{at}: kind must be {KIND}, found {:?}", self.kind);
        }
        let name_ok = !self.metadata.name.is_empty()
            && self.metadata.name.len() <= 40
            && self
                .metadata
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            bail!(
                "{at}: metadata.name {:?} must be 1-40 lowercase letters, digits or '-' (it names the namespace)",
                self.metadata.name
            );
        }
        if self.spec.steps.is_empty() {
            bail!("{at}: spec.steps is empty");
        }
        for (i, step) in self.spec.steps.iter().enumerate() {
            match step {
                Step::Apply(a) if a.file.is_some() == a.manifests.is_some() => {
                    bail!("{at}: spec.steps[{i}].apply needs exactly one of file or manifests")
                }
                Step::Wait(w) if w.pod.is_some() == w.selector.is_some() => {
                    bail!("{at}: spec.steps[{i}].wait needs exactly one of pod or selector")
                }
                Step::Wait(w) if w.count.is_some() && w.selector.is_none() => {
                    bail!("{at}: spec.steps[{i}].wait.count needs a selector")
                }
                Step::Podiam(p) => {
                    for (j, a) in p.assertions.iter().enumerate() {
                        a.validate()
                            .with_context(|| format!("{at}: spec.steps[{i}].podiam.assert[{j}]"))?;
                    }
                }
                Step::State(st) => {
                    if st.kubernetes.is_some() == st.emulator.is_some() {
                        bail!(
                            "{at}: spec.steps[{i}].state needs exactly one of kubernetes or emulator"
                        )
                    }
                    if st.assertions.is_empty() {
                        bail!("{at}: spec.steps[{i}].state.assert is empty")
                    }
                    for (j, a) in st.assertions.iter().enumerate() {
                        a.validate()
                            .with_context(|| format!("{at}: spec.steps[{i}].state.assert[{j}]"))?;
                    }
                }
                Step::Block(b) => b
                    .validate()
                    .with_context(|| format!("{at}: spec.steps[{i}].block"))?,
                Step::Webhook(w) if (w.state == WebhookState::Down) != w.service.is_some() => {
                    bail!("{at}: spec.steps[{i}].webhook: state down needs a service, and only it")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The namespace this scenario runs in.
    pub fn namespace(&self) -> String {
        format!("podiam-{}", self.metadata.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: podiam.dev/v1alpha1
kind: Scenario
metadata: {name: aws-seed}
spec:
  cloud: aws
  steps:
    - apply: {file: ../examples/aws}
    - wait: {pod: s3-pod}
    - podiam:
        args: [whoami, s3-pod]
        assert:
          - path: $.items[0].mechanism
            equals: aws-irsa
  catch:
    - describe: {pod: s3-pod}
    - events: {}
"#;

    #[test]
    fn loads_a_scenario() {
        let s = Scenario::from_yaml(Path::new("s.yaml"), GOOD).unwrap();
        assert_eq!(s.spec.steps.len(), 3);
        assert_eq!(s.namespace(), "podiam-aws-seed");
        assert!(
            matches!(&s.spec.steps[1], Step::Wait(w) if w.phase == PodPhase::Running && w.timeout_seconds == 90)
        );
        let both = GOOD.replace("{pod: s3-pod}", "{pod: s3-pod, selector: a=b}");
        assert!(Scenario::from_yaml(Path::new("w.yaml"), &both).is_err());
        let counted = GOOD.replace("wait: {pod: s3-pod}", "wait: {selector: a=b, count: 4}");
        let s = Scenario::from_yaml(Path::new("c.yaml"), &counted).unwrap();
        assert!(matches!(&s.spec.steps[1], Step::Wait(w) if w.count == Some(4)));
        let count_without_selector =
            GOOD.replace("wait: {pod: s3-pod}", "wait: {pod: s3-pod, count: 2}");
        assert!(Scenario::from_yaml(Path::new("n.yaml"), &count_without_selector).is_err());
    }

    #[test]
    fn unknown_fields_name_file_and_line() {
        let bad = GOOD.replace(
            "    - wait: {pod: s3-pod}",
            "    - wait: {pod: s3-pod, forr: Ready}",
        );
        let err = Scenario::from_yaml(Path::new("bad.yaml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.yaml:"), "{err}");
        assert!(err.contains("forr"), "{err}");
        assert!(err.contains("line") || err.contains(":9"), "{err}");
    }

    #[test]
    fn block_steps_are_validated() {
        let with = |block: &str| {
            let text = GOOD.replace(
                "    - wait: {pod: s3-pod}",
                &format!("    - wait: {{pod: s3-pod}}\n    - block: {block}"),
            );
            Scenario::from_yaml(Path::new("b.yaml"), &text).map_err(|e| format!("{e:#}"))
        };
        let s = with("{pod: s3-pod, host: sts.us-east-1.amazonaws.com}").unwrap();
        let Step::Block(b) = &s.spec.steps[2] else {
            panic!("not a block step: {:?}", s.spec.steps[2]);
        };
        assert_eq!(
            (b.port(), b.action, b.via),
            (443, BlockAction::Drop, BlockVia::Iptables)
        );
        let s = with("{pod: p, address: 169.254.170.23, port: 80, action: reject}").unwrap();
        assert!(
            matches!(&s.spec.steps[2], Step::Block(b) if b.port() == 80 && b.action == BlockAction::Reject)
        );
        with("{pod: p, host: sts.amazonaws.com, via: front}").unwrap();
        for (bad, says) in [
            ("{pod: p}", "exactly one of host or address"),
            (
                "{pod: p, host: a.b, address: 10.0.0.1}",
                "exactly one of host or address",
            ),
            (
                "{pod: p, address: sts.amazonaws.com}",
                "not an IPv4 address",
            ),
            ("{pod: p, address: 10.0.0.1, port: 0}", "port 0"),
            (
                "{pod: p, address: 10.213.0.1, via: front}",
                "via: front needs a host",
            ),
            ("{pod: p, host: example.org, via: front}", "serves no host"),
            (
                "{pod: p, host: sts.amazonaws.com, via: front, port: 80}",
                "port 443 only",
            ),
            (
                "{pod: p, host: sts.amazonaws.com, via: front, action: reject}",
                "reject needs iptables",
            ),
            ("{pod: p, host: a.b, action: refuse}", "refuse"),
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn semantic_errors_are_named() {
        let bad = GOOD.replace("kind: Scenario", "kind: Test");
        assert!(
            Scenario::from_yaml(Path::new("k.yaml"), &bad)
                .unwrap_err()
                .to_string()
                .contains("kind must be Scenario")
        );
        let bad = GOOD.replace("{file: ../examples/aws}", "{}");
        assert!(
            Scenario::from_yaml(Path::new("a.yaml"), &bad)
                .unwrap_err()
                .to_string()
                .contains("exactly one of file or manifests")
        );
        let bad = GOOD.replace("equals: aws-irsa", "");
        let err = format!(
            "{:#}",
            Scenario::from_yaml(Path::new("x.yaml"), &bad).unwrap_err()
        );
        assert!(err.contains("assert[0]"), "{err}");
    }
}
