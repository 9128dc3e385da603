//! `--aws-backend localstack-docker`: LocalStack in a container started with testcontainers.
//!
//! The image is `--localstack-image`, else on GitHub's runners the public
//! `localstack/localstack:<version>`, else one built here without any registry: a Debian
//! bookworm rootfs from `mmdebstrap` (python3, python3-venv) imported with `docker import`, and a
//! Dockerfile that makes a venv in it and copies in the site-packages of the pinned host venv
//! (`localstack_env`): the same LocalStack the `localstack` backend runs.
//!
//! The container publishes no port (nothing on the host's interfaces, no port race): the gate
//! reaches it on its Docker bridge address, port 4566.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

use super::localstack::{LOCALSTACK_SERVICES, LocalStackError, check_health};
use crate::localstack_env::{LOCALSTACK_VERSION, LocalStackEnv, venv_dir_name};

/// LocalStack's gateway port inside the container.
const GATEWAY_PORT: u16 = 4566;
const IMAGE_REPOSITORY: &str = "podiam.local/localstack";

#[derive(Debug, thiserror::Error)]
pub enum LocalStackDockerError {
    #[error(
        "prerequisite missing: a running Docker daemon (`docker info` failed: {0}); `podiam-e2e setup --kind` installs and starts one"
    )]
    NoDocker(String),
    #[error(
        "prerequisite missing: mmdebstrap (Debian: apt-get install mmdebstrap) to build the LocalStack image: {0}"
    )]
    NoMmdebstrap(String),
    #[error("building the LocalStack image: `{command}` failed: {detail}")]
    Build { command: String, detail: String },
    #[error("the LocalStack venv: {0}")]
    Venv(#[from] crate::localstack_env::LocalStackEnvError),
    #[error("starting the LocalStack container from {image}: {detail}")]
    Start { image: String, detail: String },
    #[error(transparent)]
    NotHealthy(#[from] LocalStackError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A LocalStack container; removed when dropped (testcontainers).
pub struct LocalStackContainer {
    // Dropped first: the log copier ends with the container.
    _container: ContainerAsync<GenericImage>,
    url: String,
    image: String,
    log: PathBuf,
}

impl LocalStackContainer {
    /// Starts `image` (default: [`default_image`], built here if missing); its output is copied
    /// to `state_dir/localstack.log`.
    pub async fn start(
        image: Option<&str>,
        state_dir: &Path,
    ) -> Result<Self, LocalStackDockerError> {
        docker_running()?;
        let image = match image {
            Some(image) => image.to_owned(),
            None => {
                let image = default_image();
                if !on_github_actions() {
                    let built = image.clone();
                    tokio::task::spawn_blocking(move || ensure_local_image(&built))
                        .await
                        .map_err(|e| LocalStackDockerError::Start {
                            image: image.clone(),
                            detail: e.to_string(),
                        })??;
                }
                image
            }
        };
        let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
        let start_error = |detail: String| LocalStackDockerError::Start {
            image: image.clone(),
            detail,
        };
        let container = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_either_std("Ready."))
            // Named, so that its address on the bridge can be read back.
            .with_network("bridge")
            .with_env_var("SERVICES", LOCALSTACK_SERVICES)
            .with_env_var("GATEWAY_LISTEN", format!("0.0.0.0:{GATEWAY_PORT}"))
            .with_env_var("DISABLE_EVENTS", "1")
            .with_env_var("SKIP_SSL_CERT_DOWNLOAD", "1")
            .with_startup_timeout(Duration::from_secs(180))
            .start()
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let ip = container
            .get_bridge_ip_address()
            .await
            .map_err(|e| start_error(format!("reading its bridge address: {e}")))?;
        let url = format!("http://{ip}:{GATEWAY_PORT}");
        let log = state_dir.join("localstack.log");
        fs::create_dir_all(state_dir).map_err(|source| LocalStackDockerError::Io {
            what: "creating",
            path: state_dir.to_path_buf(),
            source,
        })?;
        copy_output(&container, &log)?;
        check_health(&url).await?;
        Ok(Self {
            _container: container,
            url,
            image,
            log,
        })
    }

    /// `http://<bridge address>:4566`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn image(&self) -> &str {
        &self.image
    }

    pub fn log_file(&self) -> &Path {
        &self.log
    }
}

/// Follows the container's stdout and stderr into `log` until the container goes.
fn copy_output(
    container: &ContainerAsync<GenericImage>,
    log: &Path,
) -> Result<(), LocalStackDockerError> {
    let file = File::create(log).map_err(|source| LocalStackDockerError::Io {
        what: "creating",
        path: log.to_path_buf(),
        source,
    })?;
    for mut stream in [container.stdout(true), container.stderr(true)] {
        let mut file = file
            .try_clone()
            .map_err(|source| LocalStackDockerError::Io {
                what: "opening",
                path: log.to_path_buf(),
                source,
            })?;
        tokio::spawn(async move {
            let mut line = String::new();
            while stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                let _ = file.write_all(line.as_bytes());
                line.clear();
            }
        });
    }
    Ok(())
}

/// `podiam.local/localstack:<version>-<pins hash>` here; `localstack/localstack:<version>` on
/// GitHub's runners (`GITHUB_ACTIONS=true`).
pub fn default_image() -> String {
    if on_github_actions() {
        return format!("localstack/localstack:{LOCALSTACK_VERSION}");
    }
    let hash = venv_dir_name()
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .to_owned();
    format!("{IMAGE_REPOSITORY}:{LOCALSTACK_VERSION}-{hash}")
}

/// What `podiam-e2e setup --localstack` prepares for `localstack-docker`: the default image,
/// built here when missing (on GitHub's runners the public image is pulled on first use).
pub fn ensure_default_image() -> Result<String, LocalStackDockerError> {
    docker_running()?;
    let image = default_image();
    if !on_github_actions() {
        ensure_local_image(&image)?;
    }
    Ok(image)
}

fn on_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

fn docker_running() -> Result<(), LocalStackDockerError> {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| LocalStackDockerError::NoDocker(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LocalStackDockerError::NoDocker(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

/// Builds `image` unless Docker has it: rootfs (cached tar) → `docker import` → `docker build`.
pub fn ensure_local_image(image: &str) -> Result<(), LocalStackDockerError> {
    if run_quiet("docker", &["image", "inspect", image]).is_ok() {
        return Ok(());
    }
    let env = LocalStackEnv::ensure()?;
    let cache = env
        .dir()
        .parent()
        .unwrap_or(Path::new("/tmp"))
        .join("localstack-image");
    fs::create_dir_all(&cache).map_err(|source| LocalStackDockerError::Io {
        what: "creating",
        path: cache.clone(),
        source,
    })?;
    let rootfs = cache.join("rootfs-bookworm-python3.tar");
    if !rootfs.is_file() {
        eprintln!("podiam-e2e: building a Debian bookworm rootfs with python3 (mmdebstrap)");
        let partial = cache.join("rootfs.tar.partial");
        // What an interrupted or older build left (a directory, when the format was guessed
        // from the ".partial" name) would block the rename.
        for leftover in [&partial, &rootfs] {
            if leftover.is_dir() {
                let _ = fs::remove_dir_all(leftover);
            }
        }
        run_quiet(
            "mmdebstrap",
            &[
                "--variant=minbase",
                // Explicit: mmdebstrap guesses the format from the name, and ".partial" is a
                // directory to it.
                "--format=tar",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                &partial.to_string_lossy(),
            ],
        )
        .map_err(|detail| {
            if detail.contains("No such file") {
                LocalStackDockerError::NoMmdebstrap(detail)
            } else {
                LocalStackDockerError::Build {
                    command: "mmdebstrap … bookworm".to_owned(),
                    detail,
                }
            }
        })?;
        fs::rename(&partial, &rootfs).map_err(|source| LocalStackDockerError::Io {
            what: "renaming",
            path: partial.clone(),
            source,
        })?;
    }
    let base = format!("{IMAGE_REPOSITORY}-base:bookworm-python3");
    if run_quiet("docker", &["image", "inspect", &base]).is_err() {
        run_quiet("docker", &["import", &rootfs.to_string_lossy(), &base]).map_err(|detail| {
            LocalStackDockerError::Build {
                command: format!("docker import {}", rootfs.display()),
                detail,
            }
        })?;
    }
    let context = tempfile::TempDir::with_prefix_in("context-", &cache).map_err(|source| {
        LocalStackDockerError::Io {
            what: "creating a build context in",
            path: cache.clone(),
            source,
        }
    })?;
    let site_packages = env.dir().join("lib/python3.11/site-packages");
    let copied = context.path().join("site-packages");
    run_quiet(
        "cp",
        &[
            "-a",
            &site_packages.to_string_lossy(),
            &copied.to_string_lossy(),
        ],
    )
    .map_err(|detail| LocalStackDockerError::Build {
        command: format!("cp -a {}", site_packages.display()),
        detail,
    })?;
    let dockerfile = format!(
        "FROM {base}\n\
         RUN python3 -m venv /opt/localstack\n\
         COPY site-packages/ /opt/localstack/lib/python3.11/site-packages/\n\
         ENV GATEWAY_LISTEN=0.0.0.0:{GATEWAY_PORT} SERVICES={LOCALSTACK_SERVICES} DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1\n\
         EXPOSE {GATEWAY_PORT}\n\
         ENTRYPOINT [\"/opt/localstack/bin/python\", \"-m\", \"localstack.runtime.main\"]\n"
    );
    let dockerfile_path = context.path().join("Dockerfile");
    fs::write(&dockerfile_path, dockerfile).map_err(|source| LocalStackDockerError::Io {
        what: "writing",
        path: dockerfile_path,
        source,
    })?;
    eprintln!("podiam-e2e: building image {image} from the pinned LocalStack venv");
    run_quiet(
        "docker",
        &[
            "build",
            "-q",
            "-t",
            image,
            &context.path().to_string_lossy(),
        ],
    )
    .map_err(|detail| LocalStackDockerError::Build {
        command: format!("docker build -t {image}"),
        detail,
    })?;
    Ok(())
}

/// Runs a command, returning its stderr's tail on failure.
fn run_quiet(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}
