//! Runs a command in a container and captures its output in memory. Output may hold a token:
//! callers decode it and drop it; it is never logged.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bounded capture: anything larger is not a token or an environment worth reading.
const MAX_CAPTURE: u64 = 1024 * 1024 + 1;

#[derive(Debug)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub success: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("exec is forbidden: {0}")]
    Forbidden(String),
    #[error("the image has no {0} (no shell or distroless image)")]
    NoSuchCommand(String),
    #[error("exec timed out after {0:?}")]
    Timeout(Duration),
    #[error("exec failed: {0}")]
    Failed(String),
    /// A hostile or broken container: output past our bound is not an environment or a token.
    #[error("the container printed more than {0} bytes: not an environment or a token")]
    TooLarge(usize),
}

pub async fn run(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
    timeout: Duration,
) -> Result<ExecOutput, ExecError> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(timeout, run_unbounded(pods, pod, container, command))
        .await
        .map_err(|_| ExecError::Timeout(timeout))?;
    result.map_err(|e| timed_out_in_kube(e, started, timeout))
}

/// kube's client reads with the same `--request-timeout`, so its own timer can fire first and
/// fail the request as `client error (SendRequest)`: a failure at the deadline is the timeout
/// (else the fallback would spend another timeout on a bare `env`).
fn timed_out_in_kube(
    error: ExecError,
    started: std::time::Instant,
    timeout: Duration,
) -> ExecError {
    match error {
        ExecError::Failed(_) if started.elapsed() >= timeout => ExecError::Timeout(timeout),
        other => other,
    }
}

async fn run_unbounded(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
) -> Result<ExecOutput, ExecError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .map_err(|e| classify(e, command[0]))?;
    let stdout = attached.stdout();
    let stderr = attached.stderr();
    let status = attached.take_status();
    let read_out = async {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_CAPTURE).read_to_end(&mut buf).await;
        }
        buf
    };
    let read_err = async {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(MAX_CAPTURE).read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    };
    let (stdout, stderr) = tokio::join!(read_out, read_err);
    // Past the bound the command may print forever: stop it (dropping the exec aborts it)
    // instead of waiting for a status that may never come.
    if stdout.len() as u64 >= MAX_CAPTURE || stderr.len() as u64 >= MAX_CAPTURE {
        return Err(ExecError::TooLarge(MAX_CAPTURE as usize - 1));
    }
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = attached.join().await;
    let success = status
        .as_ref()
        .is_some_and(|s| s.status.as_deref() == Some("Success"));
    if !success {
        let message = status.and_then(|s| s.message).unwrap_or_default();
        if is_missing_executable(&message) || is_missing_executable(&stderr) {
            return Err(ExecError::NoSuchCommand(command[0].to_string()));
        }
    }
    Ok(ExecOutput {
        stdout,
        stderr,
        success,
    })
}

fn is_missing_executable(message: &str) -> bool {
    message.contains("executable file not found")
        || message.contains("no such file or directory") && message.contains("exec")
}

fn classify(err: kube::Error, command: &str) -> ExecError {
    use kube::client::UpgradeConnectionError::ProtocolSwitch;
    match &err {
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            ExecError::Forbidden(status.message.clone())
        }
        kube::Error::UpgradeConnection(ProtocolSwitch(code)) if code.as_u16() == 403 => {
            ExecError::Forbidden("pods/exec is not allowed for this user".into())
        }
        _ => {
            let text = err.to_string();
            if is_missing_executable(&text) {
                ExecError::NoSuchCommand(command.to_string())
            } else {
                ExecError::Failed(text)
            }
        }
    }
}

/// An exec whose stdin stays open: the streams of a pod session and the guard keeping it.
pub struct AttachedSession {
    pub stdin: Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
    pub stdout: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    pub stderr: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    /// Owns the exec; dropping it aborts the remote command.
    pub guard: ExecGuard,
}

/// Aborts the task owning the exec (and so the exec) when dropped.
pub struct ExecGuard(tokio::task::JoinHandle<()>);

impl Drop for ExecGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts `command` with stdin, stdout and stderr attached, bounded by `timeout` to start.
pub async fn attach(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
    timeout: Duration,
) -> Result<AttachedSession, ExecError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let started = std::time::Instant::now();
    let mut attached =
        tokio::time::timeout(timeout, pods.exec(pod, command.iter().copied(), &params))
            .await
            .map_err(|_| ExecError::Timeout(timeout))?
            .map_err(|e| timed_out_in_kube(classify(e, command[0]), started, timeout))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (attached.stdin(), attached.stdout(), attached.stderr())
    else {
        return Err(ExecError::Failed(
            "the exec has no stdin/stdout/stderr".into(),
        ));
    };
    let (stdout, stderr, guard) = closed_with_the_exec(attached, stdout, stderr);
    Ok(AttachedSession {
        stdin: Box::new(stdin),
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
        guard,
    })
}

/// kube ends an exec's stdout and stderr only when the server closes the stream properly: when
/// the connection breaks instead (the API server killed, a reset), its task ends with an error
/// and the readers stay open forever, so a call would wait out its timeout and be taken for
/// the pod's own silence. Here both streams are forwarded and closed once the exec's task has
/// ended, after what it had already written.
fn closed_with_the_exec(
    process: kube::api::AttachedProcess,
    mut stdout: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    mut stderr: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> (
    impl tokio::io::AsyncRead + Unpin + Send,
    impl tokio::io::AsyncRead + Unpin + Send,
    ExecGuard,
) {
    const FORWARD_BUFFER: usize = 64 * 1024;
    // What the task wrote before it ended is already buffered: read it, not wait for more.
    const DRAIN: Duration = Duration::from_millis(200);
    let (stdout_reader, mut stdout_writer) = tokio::io::simplex(FORWARD_BUFFER);
    let (stderr_reader, mut stderr_writer) = tokio::io::simplex(FORWARD_BUFFER);
    let task = tokio::spawn(async move {
        {
            let copies = futures::future::join(
                tokio::io::copy(&mut stdout, &mut stdout_writer),
                tokio::io::copy(&mut stderr, &mut stderr_writer),
            );
            tokio::pin!(copies);
            tokio::select! {
                _ = &mut copies => {}
                ended = process.join() => {
                    if let Err(e) = ended {
                        tracing::debug!("the exec's stream ended: {e}");
                    }
                    let _ = tokio::time::timeout(DRAIN, &mut copies).await;
                }
            }
        }
        let _ = stdout_writer.shutdown().await;
        let _ = stderr_writer.shutdown().await;
    });
    (stdout_reader, stderr_reader, ExecGuard(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kube_failure_at_the_deadline_is_the_timeout_and_an_earlier_one_is_not() {
        let timeout = Duration::from_millis(50);
        let failed = || ExecError::Failed("client error (SendRequest)".into());
        let early = std::time::Instant::now();
        assert_eq!(timed_out_in_kube(failed(), early, timeout), failed());
        let late = early - Duration::from_millis(60);
        assert_eq!(
            timed_out_in_kube(failed(), late, timeout),
            ExecError::Timeout(timeout)
        );
        // A refusal stays a refusal, whenever it came.
        let forbidden = ExecError::Forbidden("pods/exec".into());
        assert_eq!(
            timed_out_in_kube(forbidden.clone(), late, timeout),
            forbidden
        );
    }
}
