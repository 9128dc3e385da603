//! kind on a machine with no registry: the kind binary and podiam's node image
//! (`podiam.local/kind-node:<Kubernetes version>`), built locally from the Go module proxy and
//! Debian, cached, and rebuilt only when what they are built from changes.
//!
//! The work is done by scripts next to this crate, called in order:
//! `k8s/build.sh` (Kubernetes, etcd, CoreDNS), `kind-image/build-bins.sh` (kind, kubeadm,
//! kube-proxy, containerd, crictl, CNI plugins, local-path-provisioner, pause) and
//! `kind-image/build-image.sh` (root filesystems, the node's images, `kind build node-image`).
//! The image carries the label `podiam.inputs`: the hash `build-image.sh inputs` prints for
//! the binaries' stamps and the scripts; equal means up to date.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{KUBERNETES_VERSION, cache_dir, default_binaries_dir};
use crate::docker_engine::{self, DockerEngineError};

/// The label holding the hash of the image's inputs.
pub const INPUTS_LABEL: &str = "podiam.inputs";

#[derive(Debug, thiserror::Error)]
pub enum KindImageError {
    #[error("Docker: {0}")]
    Docker(#[from] DockerEngineError),
    #[error("{} not found: run podiam-e2e from its source tree", script.display())]
    NoScript { script: PathBuf },
    #[error("missing prerequisite: go (1.26+) on PATH, to build kind and the node binaries")]
    NoGo,
    #[error("running {}: {source}", script.display())]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} failed ({status}):\n{tail}", script.display())]
    Script {
        script: PathBuf,
        status: String,
        tail: String,
    },
    #[error("missing prerequisite: {what}; {fix}")]
    Missing { what: String, fix: String },
}

type Result<T> = std::result::Result<T, KindImageError>;

/// The node image's tag: `podiam.local/kind-node:v1.34.4`.
pub fn node_image_tag() -> String {
    format!("podiam.local/kind-node:{KUBERNETES_VERSION}")
}

/// `~/.cache/podiam/kind-node-<Kubernetes version>`: binaries, stamps and work files.
pub fn kind_cache_dir() -> PathBuf {
    cache_dir().join(format!("kind-node-{KUBERNETES_VERSION}"))
}

/// The kind binary `build-bins.sh` builds (kind v0.30.0, from `e2e/kind-image/go/kind`).
pub fn kind_binary() -> PathBuf {
    kind_cache_dir().join("bin").join("kind")
}

fn script(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// How long each step of [`ensure_node_image`] took.
#[derive(Debug, Default, Clone)]
pub struct NodeImageReport {
    pub tag: String,
    pub docker: Duration,
    pub kubernetes_binaries: Duration,
    pub kind_binaries: Duration,
    /// None when the image was up to date.
    pub image: Option<Duration>,
}

/// Makes sure dockerd runs (see [`docker_engine::ensure_running`]), the binaries are built and
/// the node image exists with its current inputs; returns the tag. Idempotent: a warm run only
/// checks stamps and the image's label.
pub fn ensure_node_image() -> Result<String> {
    ensure_node_image_report().map(|r| r.tag)
}

/// [`ensure_node_image`], with each step's duration.
pub fn ensure_node_image_report() -> Result<NodeImageReport> {
    let mut report = NodeImageReport {
        tag: node_image_tag(),
        ..Default::default()
    };
    let started = Instant::now();
    docker_engine::ensure_running()?;
    report.docker = started.elapsed();
    if Command::new("go").arg("version").output().is_err() {
        return Err(KindImageError::NoGo);
    }
    let started = Instant::now();
    run_script(&script("k8s/build.sh"), &[])?;
    report.kubernetes_binaries = started.elapsed();
    let started = Instant::now();
    run_script(&script("kind-image/build-bins.sh"), &[])?;
    report.kind_binaries = started.elapsed();

    let image_args = image_script_args(&report.tag);
    let build_image = script("kind-image/build-image.sh");
    let mut inputs_args = vec!["inputs".to_owned()];
    inputs_args.extend(image_args.iter().cloned());
    let wanted = script_output(&build_image, &inputs_args)?;
    if image_inputs(&report.tag).as_deref() != Some(wanted.trim()) {
        let started = Instant::now();
        let mut build_args = vec!["build".to_owned()];
        build_args.extend(image_args);
        run_script(&build_image, &build_args)?;
        report.image = Some(started.elapsed());
    }
    Ok(report)
}

/// Checks, without building anything, that Docker answers, kind is built and the node image
/// exists; returns the tag. The error names the missing prerequisite and how to get it.
pub fn require_node_image() -> Result<String> {
    let fix = "run `podiam-e2e setup --kind` (as root)".to_owned();
    if docker_engine::daemon_default_runtime().is_none() {
        return Err(KindImageError::Missing {
            what: "no Docker daemon answers `docker info`".into(),
            fix,
        });
    }
    if !kind_binary().exists() {
        return Err(KindImageError::Missing {
            what: format!("no kind binary at {}", kind_binary().display()),
            fix,
        });
    }
    let tag = node_image_tag();
    if image_inputs(&tag).is_none() {
        return Err(KindImageError::Missing {
            what: format!("no node image {tag} in Docker"),
            fix,
        });
    }
    Ok(tag)
}

/// The `podiam.inputs` label of a local image, or None when the image is absent.
pub fn image_inputs(tag: &str) -> Option<String> {
    let format = format!("{{{{index .Config.Labels \"{INPUTS_LABEL}\"}}}}");
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", &format, tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn image_script_args(tag: &str) -> Vec<String> {
    let dir = kind_cache_dir();
    [
        tag.to_owned(),
        dir.join("bin").display().to_string(),
        default_binaries_dir().display().to_string(),
        dir.join("work").display().to_string(),
    ]
    .into()
}

/// Runs a build script, its output going to this process's stderr (they are long and
/// say what they do).
fn run_script(path: &Path, args: &[String]) -> Result<()> {
    if !path.exists() {
        return Err(KindImageError::NoScript {
            script: path.to_owned(),
        });
    }
    let status = Command::new("bash")
        .arg(path)
        .args(args)
        .env(
            "GOFLAGS",
            std::env::var("GOFLAGS").unwrap_or_else(|_| "-p=2".into()),
        )
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| KindImageError::Spawn {
            script: path.to_owned(),
            source,
        })?;
    if status.success() {
        return Ok(());
    }
    Err(KindImageError::Script {
        script: path.to_owned(),
        status: status.to_string(),
        tail: "(its output is above)".into(),
    })
}

fn script_output(path: &Path, args: &[String]) -> Result<String> {
    let output = Command::new("bash")
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| KindImageError::Spawn {
            script: path.to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    Err(KindImageError::Script {
        script: path.to_owned(),
        status: output.status.to_string(),
        tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_and_paths_follow_the_kubernetes_version() {
        assert_eq!(
            node_image_tag(),
            format!("podiam.local/kind-node:{KUBERNETES_VERSION}")
        );
        assert!(kind_binary().ends_with(format!("kind-node-{KUBERNETES_VERSION}/bin/kind")));
        assert!(script("kind-image/build-image.sh").exists());
        assert!(script("kind-image/build-bins.sh").exists());
    }
}
