//! The ephemeral probe (`--probe=ephemeral|auto`): for images without a shell or an HTTP
//! client, the `podiam-probe` binary is started in the pod as an ephemeral container with the
//! target container's user, env and volume mounts (`spec.rs`), it makes the pod's exchange and
//! metadata calls itself and prints one JSON line without secrets (`report.rs`, the contract
//! with `probe/`), which the plugin reads through the API (`run.rs`) and turns into the same
//! checks and identity the exec session gives (`evidence.rs`).
//!
//! Opt-in: an ephemeral container cannot be removed from a pod (it stays, terminated, in the
//! pod's spec until the pod is deleted). `auto` starts it only when exec found no shell or
//! no client.

pub mod evidence;
pub mod report;
pub mod run;
pub mod spec;

use std::time::Duration;

use crate::evidence::{Probe, RuntimeEnv};
use crate::model::{Check, MechanismId};
use crate::subject::PodSubject;

pub use evidence::Evidence;

/// The image the plugin starts when `--probe-image` is not given: built from `probe/` with the
/// plugin's own version (`.github/workflows/release.yml`; the harness builds it locally).
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/podiam/probe:v", env!("CARGO_PKG_VERSION"));
/// The check that says why the ephemeral probe gave no evidence.
pub const CHECK_ID: &str = "probe.ephemeral";

/// How podiam gets inside the pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMode {
    /// One exec in the target container (needs a shell and curl, wget or python3).
    #[default]
    Exec,
    /// Always start the ephemeral probe (cannot be removed from the pod afterwards).
    Ephemeral,
    /// The ephemeral probe only when exec finds no shell or no HTTP client.
    Auto,
}

#[derive(Debug, Clone, Default)]
pub struct ProbeSettings {
    pub mode: ProbeMode,
    /// None: [`DEFAULT_IMAGE`].
    pub image: Option<String>,
}

impl ProbeSettings {
    pub fn from_flags(flags: &crate::cli::ProbeFlags) -> Self {
        ProbeSettings {
            mode: flags.probe,
            image: Some(flags.probe_image.clone()),
        }
    }

    pub fn image(&self) -> &str {
        self.image
            .as_deref()
            .filter(|i| !i.is_empty())
            .unwrap_or(DEFAULT_IMAGE)
    }
}

/// What asking the ephemeral probe came to.
pub enum Collected {
    /// Not asked (`exec`, offline, or `auto` with a usable exec session).
    NotAsked,
    Evidence(Box<Evidence>),
    /// Asked, no evidence: the warning naming why (RBAC, image pull, timeout, …).
    Failed(Check),
}

/// Whether exec left the pod's own path unusable (no shell, no client): `auto`'s trigger.
pub fn exec_unusable(env: Option<&RuntimeEnv>) -> bool {
    match env.and_then(RuntimeEnv::session) {
        Some(session) => session.client().is_none(),
        None => true,
    }
}

/// Starts the probe when `settings` ask for it, and reads its evidence.
pub async fn collect(
    pod: &PodSubject,
    probe: &Probe,
    env: Option<&RuntimeEnv>,
    mechanism: MechanismId,
    settings: &ProbeSettings,
) -> Collected {
    let asked = match settings.mode {
        ProbeMode::Exec => false,
        ProbeMode::Ephemeral => true,
        ProbeMode::Auto => exec_unusable(env),
    };
    let Probe::Live { client, timeout } = probe else {
        return Collected::NotAsked;
    };
    if !asked {
        return Collected::NotAsked;
    }
    let request = run::ProbeRequest {
        image: settings.image().to_string(),
        mechanism: spec::mechanism_arg(pod, mechanism),
        node: evidence::node_clouds(pod, mechanism),
        timeout: *timeout,
    };
    match run::run(client, pod, &request).await {
        Ok(ran) => match report::parse_log(&ran.log) {
            Ok(report) => Collected::Evidence(Box::new(Evidence {
                container: ran.name,
                report,
                pod: format!("{}/{}", pod.namespace, pod.name),
                target: pod.container.clone(),
            })),
            Err(e) => Collected::Failed(Check::warn(
                CHECK_ID,
                format!(
                    "the ephemeral probe {} in {} printed no report podiam can read ({e})",
                    ran.name,
                    pod.describe()
                ),
                format!(
                    "use a probe image that matches this plugin ({})",
                    DEFAULT_IMAGE
                ),
            )),
        },
        Err(e) => Collected::Failed(e.check(pod, settings.image())),
    }
}

/// The probe's own bound for each call: a quarter of the API budget, at most the SDKs' 10s.
pub fn call_timeout(budget: Duration) -> Duration {
    (budget / 4).clamp(Duration::from_secs(2), Duration::from_secs(10))
}
