//! The Python virtualenv holding LocalStack community (`--aws-backend localstack`), created
//! once per machine from the exact pins of `e2e/localstack/requirements.txt`.
//!
//! Its own venv, not moto's: LocalStack pins its own boto3/botocore and moto fork.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::python_env::DirLock;

/// The LocalStack release the pins install (also the cache key and the image tag).
pub const LOCALSTACK_VERSION: &str = "4.13.1";

/// The pins, compiled in so the binary needs no source tree.
pub const REQUIREMENTS: &str = include_str!("../localstack/requirements.txt");

/// Written last, so a half-finished install is recognised and redone.
const COMPLETE_MARKER: &str = ".podiam-complete";

// Tests in one binary run on several threads; only one of them should build the venv.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum LocalStackEnvError {
    #[error("HOME is not set")]
    NoHome,
    #[error("prerequisite missing: python3 (>= 3.10) is needed for LocalStack; install python3")]
    NoPython,
    #[error(
        "prerequisite missing: the python3 venv module (Debian: apt-get install python3-venv): {0}"
    )]
    NoVenvModule(String),
    #[error(
        "prerequisite missing: pip could not install LocalStack {LOCALSTACK_VERSION} from e2e/localstack/requirements.txt (is PyPI or a mirror reachable?): {0}"
    )]
    Pip(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Lock(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LocalStackEnvError {
    let path = path.to_path_buf();
    move |source| LocalStackEnvError::Io { what, path, source }
}

/// A ready virtualenv at `~/.cache/podiam/localstack-<version>-<pins hash>`.
#[derive(Debug, Clone)]
pub struct LocalStackEnv {
    dir: PathBuf,
}

impl LocalStackEnv {
    /// Returns the venv, creating it (python3 -m venv + pip install -r) if needed.
    pub fn ensure() -> Result<Self, LocalStackEnvError> {
        let home = std::env::var_os("HOME").ok_or(LocalStackEnvError::NoHome)?;
        let dir = Path::new(&home)
            .join(".cache")
            .join("podiam")
            .join(venv_dir_name());
        Self::ensure_at(&dir)
    }

    /// Like [`LocalStackEnv::ensure`] with an explicit directory.
    pub fn ensure_at(dir: &Path) -> Result<Self, LocalStackEnvError> {
        let env = Self {
            dir: dir.to_path_buf(),
        };
        if env.is_complete() {
            return Ok(env);
        }
        let _in_process = CREATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        let mut lock_path = dir.as_os_str().to_owned();
        lock_path.push(".lock");
        let _across_processes = DirLock::acquire(Path::new(&lock_path))
            .map_err(|e| LocalStackEnvError::Lock(format!("{e:#}")))?;
        if env.is_complete() {
            return Ok(env);
        }
        env.create()?;
        Ok(env)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    fn is_complete(&self) -> bool {
        self.dir.join(COMPLETE_MARKER).is_file() && self.python().is_file()
    }

    fn create(&self) -> Result<(), LocalStackEnvError> {
        let python3 = Command::new("python3").arg("--version").output();
        if !matches!(&python3, Ok(out) if out.status.success()) {
            return Err(LocalStackEnvError::NoPython);
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).map_err(io("removing incomplete venv", &self.dir))?;
        }
        eprintln!(
            "podiam-e2e: creating the LocalStack {LOCALSTACK_VERSION} venv {} (a minute or two)",
            self.dir.display()
        );
        let venv = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&self.dir)
            .output()
            .map_err(|e| LocalStackEnvError::NoVenvModule(e.to_string()))?;
        if !venv.status.success() {
            return Err(LocalStackEnvError::NoVenvModule(
                String::from_utf8_lossy(&venv.stderr).trim().to_owned(),
            ));
        }
        let requirements = self.dir.join("requirements.txt");
        fs::write(&requirements, REQUIREMENTS).map_err(io("writing", &requirements))?;
        let pip = Command::new(self.dir.join("bin").join("pip"))
            .args(["install", "--quiet", "-r"])
            .arg(&requirements)
            .output()
            .map_err(|e| LocalStackEnvError::Pip(e.to_string()))?;
        if !pip.status.success() {
            let stderr = String::from_utf8_lossy(&pip.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(LocalStackEnvError::Pip(
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            ));
        }
        let marker = self.dir.join(COMPLETE_MARKER);
        fs::write(&marker, LOCALSTACK_VERSION).map_err(io("writing", &marker))?;
        Ok(())
    }
}

/// `localstack-<version>-<first 12 hex of the pins' SHA-256>`.
pub fn venv_dir_name() -> String {
    let digest = Sha256::digest(REQUIREMENTS.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("localstack-{LOCALSTACK_VERSION}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pin_the_version_exactly() {
        let line = format!("localstack-core=={LOCALSTACK_VERSION}");
        assert!(REQUIREMENTS.lines().any(|l| l.trim() == line), "{line}");
        for requirement in REQUIREMENTS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert!(requirement.contains("=="), "not exact: {requirement}");
        }
        assert!(venv_dir_name().starts_with(&format!("localstack-{LOCALSTACK_VERSION}-")));
    }
}
