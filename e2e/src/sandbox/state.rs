//! `sandbox.json`: what the daemon started (processes, endpoints, clouds), written once it is
//! ready and read by `status`, `down` and by an `up` cleaning after a crash. No secrets: only
//! names, pids, addresses and paths.

use std::path::{Path, PathBuf};

use super::processes::RecordedProcess;
use super::{Clouds, STATE_FILE, SandboxError, io};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SandboxState {
    pub daemon: RecordedProcess,
    pub clouds: Clouds,
    pub seeded: bool,
    /// `--aws-backend` as given (`moto` when the state predates it).
    #[serde(default = "moto")]
    pub aws_backend: String,
    pub kubeconfig: PathBuf,
    /// The cluster's state directory (its pid files, for cleanup after a crash).
    pub cluster_state_dir: PathBuf,
    pub api_server: String,
    pub endpoints: Vec<Endpoint>,
    /// The daemon's descendants when it became ready (moto, containerd, etcd, kube-*, …).
    pub processes: Vec<RecordedProcess>,
}

fn moto() -> String {
    "moto".to_owned()
}

impl SandboxState {
    pub fn write(&self, state_dir: &Path) -> Result<(), SandboxError> {
        let path = state_dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|source| SandboxError::BadState {
            path: path.clone(),
            source,
        })?;
        write_atomically(&path, text.as_bytes())
    }

    /// `None` when no state file exists.
    pub fn read(state_dir: &Path) -> Result<Option<Self>, SandboxError> {
        let path = state_dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| SandboxError::BadState { path, source })
    }
}

/// Write to a temporary name, then rename: a reader never sees half a file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), SandboxError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, contents).map_err(io("writing", &temporary))?;
    std::fs::rename(&temporary, path).map_err(io("renaming to", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_absence_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(SandboxState::read(dir.path()).expect("read").is_none());
        let state = SandboxState {
            daemon: RecordedProcess::of(std::process::id()).expect("self"),
            clouds: Clouds::default(),
            seeded: true,
            aws_backend: "localstack".into(),
            kubeconfig: dir.path().join("kubeconfig"),
            cluster_state_dir: dir.path().join("env/cluster"),
            api_server: "https://127.0.0.1:6443".into(),
            endpoints: vec![Endpoint {
                name: "gate".into(),
                address: "https://127.0.0.1:1".into(),
            }],
            processes: Vec::new(),
        };
        state.write(dir.path()).expect("write");
        let read = SandboxState::read(dir.path()).expect("read").expect("some");
        assert_eq!(read.daemon, state.daemon);
        assert_eq!(read.endpoints[0].address, "https://127.0.0.1:1");
        std::fs::write(dir.path().join(STATE_FILE), "{").expect("corrupt");
        assert!(matches!(
            SandboxState::read(dir.path()),
            Err(SandboxError::BadState { .. })
        ));
    }
}
