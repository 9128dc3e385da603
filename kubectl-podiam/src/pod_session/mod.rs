//! A session in the pod: ONE exec that reads the container's environment and token files, then
//! stays open so the mechanisms can make the calls the pod's SDK would make (token exchange,
//! the Pod Identity agent, the node's metadata service) from inside the pod's network
//! namespace, with the pod's own files, proxy settings, DNS and CA bundle. The plugin writes a
//! request line on the exec's stdin, the script (`script.rs`) runs it with the image's client
//! and frames the answer on stdout; causes of failures are named in `outcome.rs`.
//!
//! The transport is any pair of byte streams: the kube exec in a cluster, a local `sh` in tests.

pub mod call;
pub mod inspect;
pub mod outcome;
pub mod script;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use call::{Method, PodCall, SecretFromFile, form};
pub use outcome::{CallAnswer, CallFailure, CallOutcome};

/// The most a session reads from the pod: a hostile container controls its output.
pub const MAX_STDOUT: usize = 4 * 1024 * 1024;
const MAX_STDERR: usize = 256 * 1024;
/// Added to a call's own bound: the exec's streaming and the client's start-up.
const CALL_GRACE: Duration = Duration::from_secs(5);

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// A session's exec: its streams and what keeps it alive (dropped, the exec ends).
pub struct Streams {
    pub stdin: Writer,
    pub stdout: Reader,
    pub stderr: Reader,
    pub keepalive: Box<dyn Send + Sync>,
}

/// Opens the session's exec again, running the same script with the same boundary and files.
pub type Reopen = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Streams, String>> + Send>>
        + Send
        + Sync,
>;

/// What the session's first phase read: the raw `env` text and the token files.
pub struct Opening {
    pub env: Vec<u8>,
    pub files: Vec<crate::env_probe::FileRead>,
    /// The client the image offers (`curl`, `wget`, `python3`), if any.
    pub client: Option<String>,
    /// Why this output cannot be the script's own (`env_probe::forged_framing`, or frames
    /// after `ready`), if it cannot.
    pub forged: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the session script did not start within {0:?}")]
    Timeout(Duration),
    #[error("the session script ended before it was ready: {0}")]
    Ended(String),
    #[error("the container printed more than {MAX_STDOUT} bytes before the session was ready")]
    TooLarge,
}

struct Io {
    stdin: Writer,
    stdout: Reader,
    /// stdout read but not yet consumed.
    pending: Vec<u8>,
    next_id: u32,
    broken: Option<String>,
    /// Keeps the exec (or child process) alive; replaced when the exec is opened again.
    _keepalive: Box<dyn Send + Sync>,
    /// False once opening the exec again failed: later calls do not wait on it again.
    may_reopen: bool,
}

pub struct PodSession {
    io: tokio::sync::Mutex<Io>,
    stderr: Arc<Mutex<Vec<u8>>>,
    boundary: String,
    client: Option<String>,
    /// How to open the exec again when it ends under a call (the API server restarted, the
    /// connection dropped): the call is then made once more on the new exec, so the pod's own
    /// view is kept rather than lost to evidence from this machine.
    reopen: Option<Reopen>,
    /// Bounds the opening of a new exec, as the first one's.
    open_timeout: Duration,
}

impl std::fmt::Debug for PodSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodSession")
            .field("client", &self.client)
            .finish()
    }
}

impl PodSession {
    /// Reads the opening (env, files, `ready`) from streams whose other end runs
    /// [`script::full_script`] with `boundary`. `stderr` is drained in the background.
    pub async fn start(
        stdin: Writer,
        stdout: Reader,
        stderr: Reader,
        boundary: String,
        keepalive: Box<dyn Send + Sync>,
        timeout: Duration,
    ) -> Result<(Opening, PodSession), OpenError> {
        let stderr_buf = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(drain(stderr, stderr_buf.clone()));
        let mut io = Io {
            stdin,
            stdout,
            pending: Vec::new(),
            next_id: 1,
            broken: None,
            _keepalive: keepalive,
            may_reopen: true,
        };
        let ready = format!("\n{boundary} ready ");
        let head = tokio::time::timeout(timeout, read_through(&mut io, ready.as_bytes()))
            .await
            .map_err(|_| OpenError::Timeout(timeout))?
            .map_err(|e| {
                if e == TOO_MUCH {
                    OpenError::TooLarge
                } else {
                    OpenError::Ended(e)
                }
            })?;
        let client_line = tokio::time::timeout(timeout, read_through(&mut io, b"\n"))
            .await
            .map_err(|_| OpenError::Timeout(timeout))?
            .map_err(OpenError::Ended)?;
        let client = String::from_utf8_lossy(&client_line).trim().to_string();
        // cat's errors for the files are on stderr; wait for the script's marker there.
        let stderr_marker = format!("\n{boundary} readyerr");
        let seen = wait_for(&stderr_buf, &stderr_marker, Duration::from_secs(2)).await;
        let stderr_text =
            String::from_utf8_lossy(&stderr_buf.lock().unwrap_or_else(|p| p.into_inner()))
                .into_owned();
        let (env, files) = crate::env_probe::parse(&boundary, &head, &stderr_text);
        let mut forged = crate::env_probe::forged_framing(&boundary, &head, &files);
        if forged.is_none() && stderr_text.matches(&stderr_marker).count() > 1 {
            forged = Some("the session's ready marker was printed twice on stderr".into());
        }
        // The script prints nothing on stdout between `ready` and the first request: a frame
        // there means something printed `ready` before the script did (the script's own
        // output then follows). Looked at once its stderr marker is seen, briefly.
        if forged.is_none() && seen {
            read_for(&mut io, Duration::from_millis(20)).await;
            if find_from(&io.pending, boundary.as_bytes(), 0).is_some() {
                forged = Some("the session's frames were printed again after ready".into());
            }
        }
        let session = PodSession {
            io: tokio::sync::Mutex::new(io),
            stderr: stderr_buf,
            boundary,
            client: (client != "none").then_some(client.clone()),
            reopen: None,
            open_timeout: timeout,
        };
        Ok((
            Opening {
                env,
                files,
                client: session.client.clone(),
                forged,
            },
            session,
        ))
    }

    /// Lets calls open the exec again (once per call) when it ends under them.
    pub fn with_reopen(mut self, reopen: Reopen) -> Self {
        self.reopen = Some(reopen);
        self
    }

    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// True when a call found the session's frames out of turn ([`FORGED_FRAMES`]).
    pub async fn forged(&self) -> bool {
        self.io.lock().await.broken.as_deref() == Some(FORGED_FRAMES)
    }

    /// Makes `call` from inside the pod. Calls are made one at a time.
    /// An exec that ended under the call (not one the pod forged, overfilled or let time
    /// out) is opened again once, and the call made once more: the calls are token exchanges
    /// and reads, which a pod's SDK repeats as freely.
    pub async fn call(&self, call: &PodCall) -> CallOutcome {
        let mut io = self.io.lock().await;
        if self.client.is_none() {
            return Err(CallFailure::NoClient);
        }
        let deadline = call.timeout + CALL_GRACE;
        let sent = self.request(&mut io, deadline, call).await;
        let (id, (client, rc, stdout)) = match sent {
            Ok(answered) => answered,
            Err(Unanswered::Broken(reason)) => return Err(CallFailure::SessionBroken(reason)),
            Err(Unanswered::Timeout(after)) => return Err(CallFailure::Timeout { after }),
        };
        let end_marker = format!("\n{} callerrend {id}\n", self.boundary);
        wait_for(&self.stderr, &end_marker, Duration::from_secs(2)).await;
        let stderr = self.call_stderr(id);
        let outcome = outcome::classify(&outcome::RawCall {
            client: &client,
            rc,
            stdout: &stdout,
            stderr: &stderr,
            boundary: &self.boundary,
            timeout: call.timeout,
        });
        tracing::debug!(id, outcome = ?outcome.as_ref().map(|a| a.status), "call answered");
        outcome
    }

    /// One request (a call or an inspection), written with a new id and its answer read
    /// within `within`; a request that cannot be written as a line is refused unsent. An exec that ended under it, or under an earlier request, is
    /// opened again once and the request sent again with a new id. The id answered and the
    /// answer; a break or a timeout leaves the session broken.
    async fn request<R: Request>(
        &self,
        io: &mut Io,
        within: Duration,
        what: &R,
    ) -> Result<(u32, R::Answer), Unanswered> {
        let mut reopened = match io.broken.clone() {
            None => false,
            Some(reason) if exec_ended(&reason) && self.reopened(io, &reason).await => true,
            Some(reason) => return Err(Unanswered::Broken(reason)),
        };
        loop {
            let id = io.next_id;
            io.next_id += 1;
            let line = what.line(id).map_err(Unanswered::Broken)?;
            match tokio::time::timeout(within, what.send(self, io, id, &line)).await {
                Ok(Ok(answer)) => return Ok((id, answer)),
                Ok(Err(reason)) => {
                    if !reopened && exec_ended(&reason) && self.reopened(io, &reason).await {
                        reopened = true;
                        continue;
                    }
                    io.broken = Some(reason.clone());
                    return Err(Unanswered::Broken(reason));
                }
                Err(_) => {
                    io.broken = Some(format!(
                        "no answer from the pod within {}s",
                        within.as_secs()
                    ));
                    return Err(Unanswered::Timeout(within));
                }
            }
        }
    }

    /// Opens the exec again after it ended (`why`) and reads the new script to `ready`; its
    /// opening (env, files) was read with the first exec and is not read again. True when the
    /// new exec is ready; the session is then whole again.
    async fn reopened(&self, io: &mut Io, why: &str) -> bool {
        let Some(reopen) = self.reopen.as_ref().filter(|_| io.may_reopen) else {
            return false;
        };
        tracing::info!("the exec in the pod ended ({why}); opening it again");
        let opened = async {
            let streams = reopen().await?;
            tokio::spawn(drain(streams.stderr, self.stderr.clone()));
            io.stdin = streams.stdin;
            io.stdout = streams.stdout;
            io._keepalive = streams.keepalive;
            io.pending.clear();
            read_through(io, format!("\n{} ready ", self.boundary).as_bytes()).await?;
            read_through(io, b"\n").await?;
            Ok::<_, String>(())
        };
        let outcome = tokio::time::timeout(self.open_timeout, opened).await;
        io.may_reopen = matches!(outcome, Ok(Ok(())));
        match outcome {
            Ok(Ok(())) => {
                io.broken = None;
                true
            }
            Ok(Err(e)) => {
                tracing::info!("the exec in the pod could not be opened again: {e}");
                false
            }
            Err(_) => {
                tracing::info!(
                    "the exec in the pod could not be opened again within {:?}",
                    self.open_timeout
                );
                false
            }
        }
    }

    async fn exchange(
        &self,
        io: &mut Io,
        id: u32,
        line: &str,
    ) -> Result<(String, i32, Vec<u8>), String> {
        io.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("{WRITING}: {e}"))?;
        io.stdin
            .flush()
            .await
            .map_err(|e| format!("{WRITING}: {e}"))?;
        let begin = format!("\n{} call {id} begin\n", self.boundary);
        let skipped = read_through(io, begin.as_bytes()).await?;
        // The script prints nothing between an answer and the next call's frame.
        if find_from(&skipped, self.boundary.as_bytes(), 0).is_some() {
            return Err(FORGED_FRAMES.to_string());
        }
        let end = format!("\n{} call {id} end ", self.boundary);
        let stdout = read_through(io, end.as_bytes()).await?;
        let tail = read_through(io, b"\n").await?;
        let tail = String::from_utf8_lossy(&tail);
        let mut words = tail.split_whitespace();
        let client = words.next().unwrap_or("?").to_string();
        let rc = words.next().and_then(|r| r.parse().ok()).unwrap_or(-1);
        Ok((client, rc, stdout))
    }

    fn call_stderr(&self, id: u32) -> String {
        let buf = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&buf);
        let start_marker = format!("\n{} callerr {id}\n", self.boundary);
        let end_marker = format!("\n{} callerrend {id}\n", self.boundary);
        let Some(start) = text.find(&start_marker) else {
            return String::new();
        };
        let rest = &text[start + start_marker.len()..];
        rest[..rest.find(&end_marker).unwrap_or(rest.len())].to_string()
    }

    /// Ends the script (`end` line, then stdin closed).
    pub async fn close(self) {
        let mut io = self.io.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = io.stdin.write_all(b"end\n").await;
            let _ = io.stdin.shutdown().await;
        })
        .await;
    }
}

/// What the session sends: a call or an inspection.
trait Request {
    type Answer;
    /// The request line for `id`.
    fn line(&self, id: u32) -> Result<String, String>;
    /// Writes `line` and reads the answer framed with `id`.
    async fn send(
        &self,
        session: &PodSession,
        io: &mut Io,
        id: u32,
        line: &str,
    ) -> Result<Self::Answer, String>;
}

impl Request for PodCall {
    type Answer = (String, i32, Vec<u8>);
    fn line(&self, id: u32) -> Result<String, String> {
        PodCall::line(self, id).map_err(|e| e.to_string())
    }
    async fn send(
        &self,
        session: &PodSession,
        io: &mut Io,
        id: u32,
        line: &str,
    ) -> Result<Self::Answer, String> {
        tracing::debug!(call = ?self, id, "call from inside the pod");
        session.exchange(io, id, line).await
    }
}

/// Why a request got no answer.
enum Unanswered {
    /// The session is broken, for this reason.
    Broken(String),
    /// No answer within this bound.
    Timeout(Duration),
}

/// How a session names the exec's end: the stream closed, or reading or writing it failed.
const EXEC_ENDED: &str = "the exec ended";
const READING: &str = "reading from the pod";
const WRITING: &str = "writing to the pod";

/// True when `reason` is the exec's transport ending, which opening it again can mend (not a
/// forgery, an overfull read or a timeout, which are the pod's own doing).
fn exec_ended(reason: &str) -> bool {
    reason == EXEC_ENDED || reason.starts_with(READING) || reason.starts_with(WRITING)
}

/// Why a read stops at [`MAX_STDOUT`].
/// 4 MiB, named in bytes as the opening's error names them.
const TOO_MUCH: &str = "the pod printed more than 4194304 bytes (4 MiB)";

/// Why a session stops when frames come out of turn.
pub const FORGED_FRAMES: &str = "the pod printed the session's frames out of turn (something in the container forges what exec returns)";

/// Reads whatever the pod prints within `within` into `pending` (bounded like every read).
async fn read_for(io: &mut Io, within: Duration) {
    let until = tokio::time::Instant::now() + within;
    while io.pending.len() <= MAX_STDOUT {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(until, io.stdout.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => io.pending.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// Reads until `marker` and returns what came before it (the marker is consumed).
async fn read_through(io: &mut Io, marker: &[u8]) -> Result<Vec<u8>, String> {
    let mut searched = 0;
    loop {
        if let Some(at) = find_from(&io.pending, marker, searched) {
            let before = io.pending[..at].to_vec();
            io.pending.drain(..at + marker.len());
            return Ok(before);
        }
        searched = io.pending.len().saturating_sub(marker.len());
        if io.pending.len() > MAX_STDOUT {
            return Err(TOO_MUCH.to_string());
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = io
            .stdout
            .read(&mut chunk)
            .await
            .map_err(|e| format!("{READING}: {e}"))?;
        if n == 0 {
            return Err(EXEC_ENDED.into());
        }
        io.pending.extend_from_slice(&chunk[..n]);
    }
}

async fn drain(mut stderr: Reader, into: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 8 * 1024];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut buf = into.lock().unwrap_or_else(|p| p.into_inner());
        if buf.len() + n <= MAX_STDERR {
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Waits until `marker` is in `buf`; false when it did not come within `within`.
async fn wait_for(buf: &Arc<Mutex<Vec<u8>>>, marker: &str, within: Duration) -> bool {
    let started = tokio::time::Instant::now();
    loop {
        {
            let b = buf.lock().unwrap_or_else(|p| p.into_inner());
            if find_from(&b, marker.as_bytes(), 0).is_some() {
                return true;
            }
        }
        if started.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod reopen_tests;
#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod too_much_names_the_cap {
    #[test]
    fn the_message_names_the_cap_in_bytes() {
        assert!(super::TOO_MUCH.contains(&format!("more than {} bytes", super::MAX_STDOUT)));
    }
}
