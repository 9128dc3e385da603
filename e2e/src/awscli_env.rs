//! A second pinned virtualenv holding only the AWS CLI (v1, from PyPI), for `bench verify`'s
//! manual anchor: what a user types by hand. It cannot share [`crate::python_env`]'s venv:
//! awscli pins its own botocore (1.46.3 vendors botocore 1.43.x), older than boto3 1.44.8's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::cluster::cache_dir;
use crate::python_env::DirLock;

/// Pinned so every anchor run times the same CLI.
pub const AWSCLI_REQUIREMENT: &str = "awscli==1.46.3";

/// Renamed whenever [`AWSCLI_REQUIREMENT`] changes, so the venv is rebuilt.
const VENV_DIR_NAME: &str = "venv-awscli-1";
/// Written last, so a half-finished install is recognised and redone.
const COMPLETE_MARKER: &str = ".podiam-complete";

// Tests in one binary run on several threads; only one of them should build the venv.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum AwsCliEnvError {
    #[error("prerequisite missing: python3 (>= 3.10) is needed for the AWS CLI; install python3")]
    NoPython,
    #[error(
        "prerequisite missing: the python3 venv module (Debian: apt-get install python3-venv): {0}"
    )]
    NoVenvModule(String),
    #[error(
        "prerequisite missing: pip could not install {AWSCLI_REQUIREMENT} (is PyPI or a mirror reachable?): {0}"
    )]
    PipFailed(String),
    #[error("the installed AWS CLI does not start (`aws --version`): {0}")]
    CliDoesNotStart(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0:#}")]
    Lock(anyhow::Error),
}

/// A ready virtualenv with the AWS CLI at `<cache>/venv-awscli-1` (`~/.cache/podiam/…`).
#[derive(Debug, Clone)]
pub struct AwsCliEnv {
    dir: PathBuf,
}

impl AwsCliEnv {
    /// Returns the venv, creating it (python3 -m venv + pip install awscli) if needed.
    /// Idempotent: a complete venv is only checked.
    pub fn ensure() -> Result<Self, AwsCliEnvError> {
        Self::ensure_at(&cache_dir().join(VENV_DIR_NAME))
    }

    /// Like [`AwsCliEnv::ensure`] with an explicit directory.
    pub fn ensure_at(dir: &Path) -> Result<Self, AwsCliEnvError> {
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
        let _across_processes =
            DirLock::acquire(Path::new(&lock_path)).map_err(AwsCliEnvError::Lock)?;
        if env.is_complete() {
            return Ok(env);
        }
        env.create()?;
        Ok(env)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `aws` entry point.
    pub fn aws(&self) -> PathBuf {
        self.dir.join("bin").join("aws")
    }

    fn is_complete(&self) -> bool {
        self.dir.join(COMPLETE_MARKER).is_file() && self.aws().is_file()
    }

    fn create(&self) -> Result<(), AwsCliEnvError> {
        let python3 = Command::new("python3").arg("--version").output();
        if !matches!(&python3, Ok(out) if out.status.success()) {
            return Err(AwsCliEnvError::NoPython);
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).map_err(io("removing incomplete venv", &self.dir))?;
        }
        eprintln!(
            "podiam-e2e: creating the AWS CLI venv {}",
            self.dir.display()
        );
        let venv = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&self.dir)
            .output()
            .map_err(io("running python3 -m venv", &self.dir))?;
        if !venv.status.success() {
            return Err(AwsCliEnvError::NoVenvModule(stderr_of(&venv)));
        }
        eprintln!("podiam-e2e: pip install {AWSCLI_REQUIREMENT}");
        let pip_path = self.dir.join("bin").join("pip");
        let pip = Command::new(&pip_path)
            .args(["install", "--quiet", AWSCLI_REQUIREMENT])
            .output()
            .map_err(io("running", &pip_path))?;
        if !pip.status.success() {
            return Err(AwsCliEnvError::PipFailed(stderr_of(&pip)));
        }
        // The marker says the CLI runs, not only that pip finished.
        let version = Command::new(self.aws())
            .arg("--version")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .output()
            .map_err(io("running", &self.aws()))?;
        if !version.status.success() {
            return Err(AwsCliEnvError::CliDoesNotStart(stderr_of(&version)));
        }
        let marker = self.dir.join(COMPLETE_MARKER);
        fs::write(&marker, AWSCLI_REQUIREMENT).map_err(io("writing", &marker))?;
        Ok(())
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AwsCliEnvError {
    let path = path.to_path_buf();
    move |source| AwsCliEnvError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_the_marker_is_not_complete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = AwsCliEnv {
            dir: dir.path().to_path_buf(),
        };
        fs::create_dir_all(dir.path().join("bin")).expect("bin");
        fs::write(env.aws(), "#!/bin/sh\n").expect("aws");
        assert!(!env.is_complete(), "pip may have stopped half way");
        fs::write(dir.path().join(COMPLETE_MARKER), AWSCLI_REQUIREMENT).expect("marker");
        assert!(env.is_complete());
    }

    #[test]
    fn the_pin_is_exact() {
        let (name, version) = AWSCLI_REQUIREMENT.split_once("==").expect("pinned with ==");
        assert_eq!(name, "awscli");
        assert!(
            version.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{version}"
        );
    }
}
