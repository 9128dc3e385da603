//! `podiam-e2e down`: SIGTERM to the daemon (it tears its environment down as a scenario run
//! does), SIGKILL after a grace period; then every process it recorded that still runs, and
//! whatever the cluster left (by its pid files: processes, mounts, cgroups, NAT rules, the
//! bridge and its addresses — [`crate::cluster::down_detached`]); then the sandbox's files
//! (credentials included), keeping `logs/`. Idempotent; also what `up` runs after a crash.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::daemon::environment_root;
use super::processes::{RecordedProcess, descendants, stop};
use super::state::SandboxState;
use super::{DAEMON_PID_FILE, SandboxError, io};

/// How long the daemon gets to stop its environment before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(60);

/// What `down` found and did.
#[derive(Debug)]
pub struct DownReport {
    /// The daemon that was running, if any.
    pub daemon: Option<u32>,
    /// True when anything (a process or files) was there to clean.
    pub cleaned: bool,
    pub took: Duration,
}

pub fn down(state_dir: &Path) -> Result<DownReport, SandboxError> {
    let started = Instant::now();
    let daemon = super::running_daemon(state_dir);
    let cleaned = daemon.is_some() || leftovers_exist(state_dir);
    if cleaned {
        clean(state_dir, STOP_GRACE)?;
    }
    Ok(DownReport {
        daemon,
        cleaned,
        took: started.elapsed(),
    })
}

/// True when an earlier sandbox left anything in `state_dir` besides its logs.
pub fn leftovers_exist(state_dir: &Path) -> bool {
    [
        DAEMON_PID_FILE,
        super::STATE_FILE,
        super::READY_FILE,
        super::ENV_FILE,
        "env",
        "credentials",
        "bin",
    ]
    .iter()
    .any(|name| state_dir.join(name).exists())
}

/// Stops everything the sandbox in `state_dir` runs or left, and removes its files but logs.
pub fn clean(state_dir: &Path, grace: Duration) -> Result<(), SandboxError> {
    let recorded = SandboxState::read(state_dir).ok().flatten();
    let mut processes: Vec<RecordedProcess> = recorded.map(|s| s.processes).unwrap_or_default();
    if let Some(pid) = super::running_daemon(state_dir) {
        // What runs below it now (a daemon that never got ready recorded nothing).
        processes.extend(descendants(pid).into_iter().filter_map(RecordedProcess::of));
        if let Some(daemon) = RecordedProcess::of(pid) {
            let left = stop(std::slice::from_ref(&daemon), grace);
            if !left.is_empty() {
                return Err(SandboxError::Unkillable(left));
            }
        }
    }
    processes.sort_by_key(|p| p.pid);
    processes.dedup_by_key(|p| p.pid);
    let left = stop(&processes, Duration::from_secs(10));
    if !left.is_empty() {
        return Err(SandboxError::Unkillable(left));
    }
    let cluster_dir = environment_root(state_dir).join("cluster");
    if cluster_dir.exists() {
        // The cluster's own leftovers: pid files, shims, mounts, cgroups, iptables, bridge.
        crate::cluster::down_detached(&cluster_dir)?;
    }
    for name in [
        super::READY_FILE,
        super::ENV_FILE,
        super::STATE_FILE,
        DAEMON_PID_FILE,
    ] {
        let path = state_dir.join(name);
        if path.exists() {
            fs::remove_file(&path).map_err(io("removing", &path))?;
        }
    }
    for name in ["credentials", "bin", "env"] {
        let path = state_dir.join(name);
        if path.exists() {
            fs::remove_dir_all(&path).map_err(io("removing", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_of_nothing_is_a_no_op_and_keeps_logs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = down(dir.path()).expect("down");
        assert!(!report.cleaned);
        assert_eq!(report.daemon, None);
        fs::create_dir_all(dir.path().join("logs")).expect("logs");
        fs::create_dir_all(dir.path().join("credentials")).expect("credentials");
        fs::write(dir.path().join("credentials/aws-credentials"), "x").expect("file");
        fs::write(dir.path().join(DAEMON_PID_FILE), "0").expect("stale pid file");
        assert!(leftovers_exist(dir.path()));
        let report = down(dir.path()).expect("down");
        assert!(report.cleaned);
        assert!(!leftovers_exist(dir.path()));
        assert!(
            dir.path().join("logs").is_dir(),
            "logs stay for a post-mortem"
        );
        assert!(!report.cleaned || down(dir.path()).is_ok_and(|r| !r.cleaned));
    }
}
