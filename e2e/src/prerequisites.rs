//! `podiam-e2e setup`: everything the local provider needs, installed or built once and cached
//! outside the repository — Debian packages (containerd, runc, CNI plugins, iptables,
//! busybox-static, curl, ca-certificates), the pinned Kubernetes, etcd and CoreDNS binaries
//! (built from the Go module proxy by `e2e/k8s/build.sh` into
//! `~/.cache/podiam/k8s-<version>/bin`), the moto venv and the AWS CLI venv (`bench verify`'s
//! manual anchor).
//! Idempotent: a warm run only checks.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::awscli_env::AwsCliEnv;
use crate::cluster::{KUBERNETES_BINARIES, default_binaries_dir, ensure_host_packages};
use crate::python_env::PythonEnv;

/// The Go build driver, in the source tree next to this crate.
fn build_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/build.sh")
}

fn binaries_present() -> bool {
    let dir = default_binaries_dir();
    KUBERNETES_BINARIES.iter().all(|b| dir.join(b).exists())
}

#[derive(Debug, Default)]
pub struct SetupReport {
    pub packages_installed: bool,
    pub built_binaries: bool,
    pub took: Duration,
}

pub fn ensure_all() -> Result<SetupReport> {
    let started = Instant::now();
    let host = ensure_host_packages().context("installing host packages")?;
    // Always run the build driver: it skips binaries whose pin is unchanged in a fraction of
    // a second, and rebuilds exactly those whose pin moved.
    let needed_build = !binaries_present();
    build_kubernetes()?;
    PythonEnv::ensure().context("creating the moto venv")?;
    AwsCliEnv::ensure().context("creating the AWS CLI venv")?;
    Ok(SetupReport {
        packages_installed: host.installed_now,
        built_binaries: needed_build,
        took: started.elapsed(),
    })
}

fn build_kubernetes() -> Result<()> {
    let script = build_script();
    if !script.exists() {
        bail!(
            "{} not found: run podiam-e2e from its source tree",
            script.display()
        );
    }
    if Command::new("go").arg("version").output().is_err() {
        bail!(
            "missing prerequisite: go (1.26+) on PATH, to build Kubernetes from the Go module proxy"
        );
    }
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    progress.set_message("checking the Kubernetes and etcd binaries");
    let mut child = Command::new("bash")
        .arg(&script)
        .env(
            "GOFLAGS",
            std::env::var("GOFLAGS").unwrap_or_else(|_| "-p=2".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        progress.set_message(line.trim_start_matches("build.sh: ").to_string());
        lines.push(line);
    }
    let stderr = std::io::read_to_string(child.stderr.take().context("stderr")?)?;
    let status = child.wait()?;
    progress.finish_and_clear();
    for line in &lines {
        eprintln!("{line}");
    }
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        bail!(
            "{} failed ({status}):\n{}",
            script.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}
