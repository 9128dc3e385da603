//! `podiam-e2e up|status|down`: a sandbox to type into. `up` starts a detached daemon
//! (`podiam-e2e sandbox-daemon`, its own session) that builds the same [`Environment`] a
//! scenario run builds — emulators, local cluster, webhook stand-ins — optionally creates the
//! seed's pods, writes the lines a shell `eval`s (KUBECONFIG, PATH, endpoints, credential
//! *files*), signals readiness and stays until SIGTERM. `status` reads what it recorded;
//! `down` stops it by pid and removes whatever is left.
//!
//! Layout of the state directory (default `~/.cache/podiam/sandbox`, or `PODIAM_SANDBOX_DIR`):
//! `daemon.pid`, `ready` (written last), `env.sh` (the eval lines), `sandbox.json` (processes,
//! endpoints), `bin/` (kubectl, kubectl-podiam), `credentials/` (0600 files), `logs/daemon.log`,
//! `env/` (the environment's own state: cluster, emulators).
//!
//! [`Environment`]: crate::runner::environment::Environment

pub mod daemon;
pub mod down;
pub mod eval_lines;
pub mod processes;
pub mod state;
pub mod status;
pub mod up;

use std::path::{Path, PathBuf};

pub use down::down;
pub use status::status;
pub use up::{UpOptions, up};

/// The daemon's pid, written by the daemon first thing.
pub const DAEMON_PID_FILE: &str = "daemon.pid";
/// Written last, once everything runs (and the seed's pods with `--seed`).
pub const READY_FILE: &str = "ready";
/// The lines `up` prints for `eval`.
pub const ENV_FILE: &str = "env.sh";
/// What runs: processes and endpoints (read by `status`, and by `up` after a crash).
pub const STATE_FILE: &str = "sandbox.json";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("a sandbox is up (pid {pid}): podiam-e2e down first")]
    AlreadyUp { pid: u32 },
    #[error("a sandbox stopped without cleaning up ({}): podiam-e2e down first", dir.display())]
    LeftOver { dir: PathBuf },
    #[error(
        "another cluster runs on this machine ({address} answers: a scenario run or `cluster up`); stop it first"
    )]
    ClusterRunning { address: std::net::SocketAddr },
    #[error("unknown cloud {0:?} in --clouds (want aws, gcp, azure)")]
    UnknownCloud(String),
    #[error("the sandbox daemon exited before it was ready; its log ({}) ends with:\n{tail}", log.display())]
    DaemonFailed { log: PathBuf, tail: String },
    #[error("the sandbox was not ready after {seconds}s (log: {})", log.display())]
    NotReady { seconds: u64, log: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a sandbox state file: {source}", path.display())]
    BadState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cleaning up the sandbox's cluster: {0}")]
    Cleanup(#[from] crate::cluster::ClusterError),
    #[error("still running after SIGKILL: pids {0:?}")]
    Unkillable(Vec<u32>),
}

pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::Io { what, path, source }
}

/// Which clouds the sandbox offers (its seed pods and eval lines); all three by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clouds {
    pub aws: bool,
    pub gcp: bool,
    pub azure: bool,
}

impl Default for Clouds {
    fn default() -> Self {
        Self {
            aws: true,
            gcp: true,
            azure: true,
        }
    }
}

impl Clouds {
    pub fn only_aws() -> Self {
        Self {
            aws: true,
            gcp: false,
            azure: false,
        }
    }
}

impl std::str::FromStr for Clouds {
    type Err = SandboxError;

    /// `aws,gcp,azure` in any order and subset.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut clouds = Clouds {
            aws: false,
            gcp: false,
            azure: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "aws" => clouds.aws = true,
                "gcp" => clouds.gcp = true,
                "azure" => clouds.azure = true,
                other => return Err(SandboxError::UnknownCloud(other.to_owned())),
            }
        }
        Ok(clouds)
    }
}

impl std::fmt::Display for Clouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [("aws", self.aws), ("gcp", self.gcp), ("azure", self.azure)]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// `$PODIAM_SANDBOX_DIR`, else `<cache>/sandbox` (`~/.cache/podiam/sandbox`).
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("PODIAM_SANDBOX_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate::cluster::cache_dir().join("sandbox"),
    }
}

/// The daemon's pid when its pid file names a live process.
pub fn running_daemon(state_dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(state_dir.join(DAEMON_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    crate::cluster::process::is_alive(pid).then_some(pid)
}

/// For commands that would start their own cluster (`run`, `demo`): the machine has one pod
/// bridge and one apiserver port, so a running sandbox must be stopped first, not destroyed.
/// A crashed sandbox's processes may still hold them too.
pub fn refuse_if_up() -> Result<(), SandboxError> {
    let dir = default_state_dir();
    match running_daemon(&dir) {
        Some(pid) => Err(SandboxError::AlreadyUp { pid }),
        None if down::leftovers_exist(&dir) => Err(SandboxError::LeftOver { dir }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_parse_any_subset_and_reject_others() {
        let c: Clouds = "gcp, aws".parse().expect("valid");
        assert_eq!(
            c,
            Clouds {
                aws: true,
                gcp: true,
                azure: false
            }
        );
        assert_eq!(c.to_string(), "aws,gcp");
        assert!(matches!(
            "aws,eks".parse::<Clouds>(),
            Err(SandboxError::UnknownCloud(n)) if n == "eks"
        ));
    }

    #[test]
    fn a_pid_file_of_a_dead_process_is_not_a_running_sandbox() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(running_daemon(dir.path()), None);
        std::fs::write(
            dir.path().join(DAEMON_PID_FILE),
            std::process::id().to_string(),
        )
        .expect("pid file");
        assert_eq!(running_daemon(dir.path()), Some(std::process::id()));
        // Pid 0 is never a process of ours; a garbage file is not a pid.
        std::fs::write(dir.path().join(DAEMON_PID_FILE), "not a pid").expect("pid file");
        assert_eq!(running_daemon(dir.path()), None);
    }
}
