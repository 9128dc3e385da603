//! The Python virtualenv holding moto, boto3, google-auth, azure-identity, azure-storage-blob
//! and pytest, created once per machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Pinned so every run tests against the same moto and boto3.
pub const PIP_REQUIREMENTS: &[&str] = &[
    "moto[server]==5.2.5",
    "boto3==1.44.8",
    "pytest==9.2.0",
    "google-auth==2.63.0",
    "requests==2.34.2",
    "azure-identity==1.27.0",
    "azure-storage-blob==12.31.1",
];

/// Renamed whenever PIP_REQUIREMENTS changes, so the venv is rebuilt.
const VENV_DIR_NAME: &str = "venv-py-3";
/// Written last, so a half-finished install is recognised and redone.
const COMPLETE_MARKER: &str = ".podiam-complete";

// Tests in one binary run on several threads; only one of them should build the venv.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// A ready virtualenv at `~/.cache/podiam/<VENV_DIR_NAME>`.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    dir: PathBuf,
}

impl PythonEnv {
    /// Returns the venv, creating it (python3 -m venv + pip install) if needed.
    ///
    /// Fails naming the missing prerequisite: python3, its venv module, or PyPI.
    pub fn ensure() -> Result<Self> {
        let home = std::env::var_os("HOME").context("HOME is not set")?;
        let dir = Path::new(&home)
            .join(".cache")
            .join("podiam")
            .join(VENV_DIR_NAME);
        Self::ensure_at(&dir)
    }

    /// Like [`PythonEnv::ensure`] with an explicit directory.
    pub fn ensure_at(dir: &Path) -> Result<Self> {
        let env = Self {
            dir: dir.to_path_buf(),
        };
        if env.is_complete() {
            return Ok(env);
        }
        let _in_process = CREATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut lock_path = dir.as_os_str().to_owned();
        lock_path.push(".lock");
        let _across_processes = DirLock::acquire(Path::new(&lock_path))?;
        if env.is_complete() {
            return Ok(env);
        }
        env.create()?;
        Ok(env)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    pub fn python(&self) -> PathBuf {
        self.bin("python")
    }

    fn is_complete(&self) -> bool {
        self.dir.join(COMPLETE_MARKER).is_file() && self.bin("moto_server").is_file()
    }

    fn create(&self) -> Result<()> {
        let python3 = Command::new("python3").arg("--version").output();
        if !matches!(&python3, Ok(out) if out.status.success()) {
            bail!("prerequisite missing: python3 (>= 3.9) is needed for moto; install python3");
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing incomplete venv {}", self.dir.display()))?;
        }
        eprintln!("podiam-e2e: creating Python venv {}", self.dir.display());
        let venv = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&self.dir)
            .output()
            .context("running python3 -m venv")?;
        if !venv.status.success() {
            bail!(
                "prerequisite missing: the python3 venv module (Debian: apt-get install python3-venv): {}",
                String::from_utf8_lossy(&venv.stderr).trim()
            );
        }
        eprintln!("podiam-e2e: pip install {}", PIP_REQUIREMENTS.join(" "));
        let pip = Command::new(self.bin("pip"))
            .args(["install", "--quiet"])
            .args(PIP_REQUIREMENTS)
            .output()
            .context("running pip install")?;
        if !pip.status.success() {
            bail!(
                "prerequisite missing: pip could not install {} (is PyPI or a mirror reachable?): {}",
                PIP_REQUIREMENTS.join(" "),
                String::from_utf8_lossy(&pip.stderr).trim()
            );
        }
        fs::write(self.dir.join(COMPLETE_MARKER), PIP_REQUIREMENTS.join(" "))?;
        Ok(())
    }
}

/// A lock held by creating a directory (atomic); removed on drop. Stale after 10 minutes.
/// Shared with [`crate::awscli_env`], whose venv is built the same way.
pub(crate) struct DirLock {
    path: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let started = Instant::now();
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    if started.elapsed() > Duration::from_secs(600) {
                        let _ = fs::remove_dir(path);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("creating lock {}", path.display()));
                }
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}
