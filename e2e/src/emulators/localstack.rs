//! LocalStack community in host mode (`python -m localstack.runtime.main` from the pinned
//! venv), serving IAM, STS and S3 on a loopback port; or an existing LocalStack at a URL.
//!
//! LocalStack binds its gateway itself (no inherited socket), so the harness picks a free port
//! and retries with another when LocalStack reports the port taken (it then still says
//! "Ready.", serving nothing: the log is the only witness).

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::child_record::{self, ChildRecord};
use crate::localstack_env::{LOCALSTACK_VERSION, LocalStackEnv};

/// The services the gate fronts.
pub const LOCALSTACK_SERVICES: &str = "sts,iam,s3";
/// Ports tried before giving up (each lost only to a race with another process).
const PORT_ATTEMPTS: usize = 5;
/// Host-mode start-up measured at 3-5 s on an idle machine; the machine is shared.
const START_BUDGET: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum LocalStackError {
    #[error("starting LocalStack ({python}): {source}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    #[error("LocalStack exited during start-up ({status}); its log: {log}")]
    Exited { status: String, log: PathBuf },
    #[error("LocalStack did not become ready within {}s; its log: {log}", START_BUDGET.as_secs())]
    NotReady { log: PathBuf },
    #[error("LocalStack could not bind a port in {PORT_ATTEMPTS} attempts; its log: {log}")]
    NoPort { log: PathBuf },
    #[error(
        "no LocalStack answers at {url} ({detail}): start one (e.g. `docker run -p 4566:4566 localstack/localstack:4`) or pass another --aws-backend"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "{url} answers but LocalStack does not serve {service} ({state}); start it with SERVICES including sts,iam,s3"
    )]
    ServiceMissing {
        url: String,
        service: String,
        state: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A LocalStack this harness started; killed when dropped.
pub struct LocalStackServer {
    child: Child,
    url: String,
    log: PathBuf,
    /// Lets the next start kill this LocalStack if this process dies without dropping it.
    _record: Option<ChildRecord>,
}

impl LocalStackServer {
    /// Starts LocalStack in host mode; its log and filesystem go under `state_dir`
    /// (`localstack.log`, `localstack-fs/`).
    pub async fn start(env: &LocalStackEnv, state_dir: &Path) -> Result<Self, LocalStackError> {
        let log = state_dir.join("localstack.log");
        let filesystem = state_dir.join("localstack-fs");
        fs::create_dir_all(&filesystem).map_err(|source| LocalStackError::Io {
            what: "creating",
            path: filesystem.clone(),
            source,
        })?;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port().map_err(|source| LocalStackError::Io {
                what: "choosing a port on",
                path: PathBuf::from("127.0.0.1"),
                source,
            })?;
            match Self::start_on(env, port, &filesystem, &log).await? {
                Some(server) => return Ok(server),
                None => continue,
            }
        }
        Err(LocalStackError::NoPort { log })
    }

    /// `None`: the port was taken meanwhile (try another).
    async fn start_on(
        env: &LocalStackEnv,
        port: u16,
        filesystem: &Path,
        log: &Path,
    ) -> Result<Option<Self>, LocalStackError> {
        let log_file = File::create(log).map_err(|source| LocalStackError::Io {
            what: "creating",
            path: log.to_path_buf(),
            source,
        })?;
        let stderr = log_file.try_clone().map_err(|source| LocalStackError::Io {
            what: "opening",
            path: log.to_path_buf(),
            source,
        })?;
        let mut command = Command::new(env.python());
        command
            .args(["-m", "localstack.runtime.main"])
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("SERVICES", LOCALSTACK_SERVICES)
            // Host mode: its files under the state dir even when this host is a container.
            .env("OVERRIDE_IN_DOCKER", "0")
            .env("FILESYSTEM_ROOT", filesystem)
            // Port 53 is the cluster's; nothing else is needed off this host.
            .env("DNS_ADDRESS", "0")
            .env("DISABLE_EVENTS", "1")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .kill_on_drop(true);
        child_record::reap_orphans(&child_record::records_dir());
        let child = command.spawn().map_err(|source| LocalStackError::Spawn {
            python: env.python(),
            source,
        })?;
        let record = child
            .id()
            .and_then(|pid| ChildRecord::write(&child_record::records_dir(), pid));
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
            _record: record,
        };
        let deadline = Instant::now() + START_BUDGET;
        loop {
            let text = fs::read_to_string(log).unwrap_or_default();
            if text.contains("Address already in use") || text.contains("CannotListenError") {
                // Ours never listened: whatever answers on the port is somebody else's.
                let _ = server.child.kill().await;
                return Ok(None);
            }
            if text.contains("Ready.") {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(LocalStackError::Exited {
                    status: status.to_string(),
                    log: log.to_path_buf(),
                });
            }
            if Instant::now() > deadline {
                return Err(LocalStackError::NotReady {
                    log: log.to_path_buf(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        check_health(&server.url).await?;
        Ok(Some(server))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn log_file(&self) -> &Path {
        &self.log
    }

    pub fn version() -> &'static str {
        LOCALSTACK_VERSION
    }
}

impl Drop for LocalStackServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A free loopback port. LocalStack binds it itself a moment later; a race lost here shows
/// in its log and is retried by the caller.
fn free_port() -> std::io::Result<u16> {
    let listener = StdTcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(listener.local_addr()?.port())
}

/// `GET /_localstack/health` answers and names sts, iam and s3 as available or running.
pub async fn check_health(url: &str) -> Result<(), LocalStackError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| LocalStackError::Unreachable {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
    let health_url = format!("{}/_localstack/health", url.trim_end_matches('/'));
    let unreachable = |detail: String| LocalStackError::Unreachable {
        url: url.to_owned(),
        detail,
    };
    let response = http
        .get(&health_url)
        .send()
        .await
        .map_err(|e| unreachable(connect_detail(&e)))?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "GET /_localstack/health: HTTP {}",
            response.status()
        )));
    }
    let health: serde_json::Value = response
        .json()
        .await
        .map_err(|e| unreachable(format!("GET /_localstack/health is not JSON: {e}")))?;
    for service in ["sts", "iam", "s3"] {
        let state = health
            .get("services")
            .and_then(|s| s.get(service))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("absent");
        if state != "available" && state != "running" {
            return Err(LocalStackError::ServiceMissing {
                url: url.to_owned(),
                service: service.to_owned(),
                state: state.to_owned(),
            });
        }
    }
    Ok(())
}

fn connect_detail(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer within 5s".to_owned()
    } else if err.is_connect() {
        "connection refused or unreachable".to_owned()
    } else {
        "the request failed".to_owned()
    }
}
