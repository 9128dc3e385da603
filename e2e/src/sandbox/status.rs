//! `podiam-e2e status`: each recorded process (pid, alive?), the cluster's API endpoint, the
//! emulators' and webhooks' addresses and the clouds, from `sandbox.json`. Healthy only when
//! the daemon is ready and every recorded process still runs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::state::SandboxState;
use super::{READY_FILE, SandboxError, running_daemon};

#[derive(Debug)]
pub enum SandboxStatus {
    /// No daemon runs (and none is recorded).
    NotUp { state_dir: PathBuf },
    /// The daemon runs but has not written its ready file yet.
    Starting { state_dir: PathBuf, pid: u32 },
    /// What `sandbox.json` recorded, checked now.
    Recorded {
        state_dir: PathBuf,
        state: Box<SandboxState>,
        daemon_alive: bool,
        /// (name, pid, alive) of each recorded process.
        processes: Vec<(String, u32, bool)>,
    },
}

impl SandboxStatus {
    /// Up, ready, and nothing recorded has died.
    pub fn healthy(&self) -> bool {
        match self {
            SandboxStatus::Recorded {
                daemon_alive,
                processes,
                ..
            } => *daemon_alive && processes.iter().all(|(_, _, alive)| *alive),
            _ => false,
        }
    }
}

pub fn status(state_dir: &Path) -> Result<SandboxStatus, SandboxError> {
    let running = running_daemon(state_dir);
    let state = SandboxState::read(state_dir)?;
    let state_dir = state_dir.to_path_buf();
    match (running, state) {
        (Some(pid), None) => Ok(SandboxStatus::Starting { state_dir, pid }),
        (Some(pid), Some(_)) if !state_dir.join(READY_FILE).exists() => {
            Ok(SandboxStatus::Starting { state_dir, pid })
        }
        (None, None) => Ok(SandboxStatus::NotUp { state_dir }),
        (_, Some(state)) => {
            let processes = state
                .processes
                .iter()
                .map(|p| (p.name.clone(), p.pid, p.is_alive()))
                .collect();
            Ok(SandboxStatus::Recorded {
                daemon_alive: state.daemon.is_alive(),
                processes,
                state: Box::new(state),
                state_dir,
            })
        }
    }
}

impl fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alive = |a: bool| if a { "running" } else { "DEAD" };
        match self {
            SandboxStatus::NotUp { state_dir } => {
                writeln!(f, "no sandbox is up ({})", state_dir.display())
            }
            SandboxStatus::Starting { state_dir, pid } => writeln!(
                f,
                "the sandbox is starting: daemon pid {pid} ({})",
                state_dir.display()
            ),
            SandboxStatus::Recorded {
                state_dir,
                state,
                daemon_alive,
                processes,
            } => {
                writeln!(f, "sandbox     {}", state_dir.display())?;
                writeln!(
                    f,
                    "clouds      {}{}",
                    state.clouds,
                    if state.seeded { " (seeded)" } else { "" }
                )?;
                writeln!(f, "API server  {}", state.api_server)?;
                writeln!(f, "kubeconfig  {}", state.kubeconfig.display())?;
                writeln!(f, "processes:")?;
                writeln!(
                    f,
                    "  {:<24} pid {:<8} {}",
                    "sandbox-daemon",
                    state.daemon.pid,
                    alive(*daemon_alive)
                )?;
                for (name, pid, running) in processes {
                    writeln!(f, "  {name:<24} pid {pid:<8} {}", alive(*running))?;
                }
                writeln!(f, "endpoints:")?;
                for endpoint in &state.endpoints {
                    writeln!(f, "  {:<34} {}", endpoint.name, endpoint.address)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_up_is_not_healthy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = status(dir.path()).expect("status");
        assert!(matches!(s, SandboxStatus::NotUp { .. }));
        assert!(!s.healthy());
        assert!(s.to_string().contains("no sandbox is up"));
    }
}
