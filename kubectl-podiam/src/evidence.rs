//! Where runtime evidence comes from: exec in the live container, a TokenRequest for an
//! equivalent token, or (offline) a token file the user gave. The bytes of a token stay in
//! memory; only its claims and its source are ever reported.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::env_probe;
use crate::kube::exec::{self, ExecError, ExecOutput};
use crate::kube::token_request::{self, EquivalentTokenRequest};
use crate::pod_session::{self, PodSession};
use crate::subject::PodSubject;
use crate::token_claims;

pub enum Probe {
    Live {
        client: kube::Client,
        timeout: Duration,
    },
    /// Offline: the token given with `--token-file` (read once, kept in memory).
    Offline { token: Option<OfflineToken> },
}

pub struct OfflineToken {
    pub bytes: Vec<u8>,
    /// `--token-file PATH` or `--token-file -` (stdin), for the report.
    pub origin: String,
}

impl OfflineToken {
    pub fn read(path: &Path) -> Result<Self, crate::error::Error> {
        use std::io::Read;
        let mut bytes = Vec::new();
        // Bounded, stdin too: a token is small; a huge file or an endless stream is not a
        // token (the claims check then says it is too large).
        let limit = token_claims::MAX_TOKEN_BYTES as u64 + 1;
        let result = if path == Path::new("-") {
            std::io::stdin()
                .lock()
                .take(limit)
                .read_to_end(&mut bytes)
                .map(drop)
        } else {
            std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes).map(drop))
        };
        result.map_err(|source| crate::error::Error::Read {
            path: path.into(),
            source,
        })?;
        let origin = if path == Path::new("-") {
            "token from --token-file - (stdin)".to_string()
        } else {
            format!("token from --token-file {}", path.display())
        };
        Ok(OfflineToken { bytes, origin })
    }
}

/// Names and values of the container's runtime environment. Values are consulted only for
/// the few non-secret variables the mechanisms read; the type never prints them. When the
/// environment was read by [`crate::env_probe`], it also holds the token files named by the
/// variables the pod's mechanism reads, read in the same exec.
pub struct RuntimeEnv {
    variables: Vec<(String, String)>,
    files: Vec<env_probe::FileRead>,
    /// The exec that read them, still open for calls from inside the pod; None when the image
    /// has no shell (the environment then came from a bare `env`).
    session: Option<PodSession>,
    /// Why the session's output cannot be the script's own (forged frames), if it cannot.
    forged: Option<String>,
}

impl RuntimeEnv {
    pub fn parse(output: &[u8]) -> Self {
        RuntimeEnv {
            variables: env_probe::variables(output),
            files: Vec::new(),
            session: None,
            forged: None,
        }
    }

    /// True when a call through the session met frames out of turn (a forgery seen late).
    pub async fn forged_in_calls(&self) -> bool {
        match &self.session {
            Some(session) => session.forged().await,
            None => false,
        }
    }

    /// Why what exec returned cannot be the session script's own output, if it cannot.
    pub fn forged(&self) -> Option<&str> {
        self.forged.as_deref()
    }

    /// What exec returned is not the container's own view: `values` (the pod spec's, which
    /// the kubelet sets exactly) replace what `env` printed, the files read with it are
    /// forgotten (each is read again by its own exec, judged by the cloud that verifies it),
    /// and the session ends, so no call is made through what the pod forges.
    pub async fn distrust(&mut self, values: &[(String, String)]) {
        for (name, value) in values {
            match self.variables.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value.clone(),
                None => self.variables.push((name.clone(), value.clone())),
            }
        }
        self.files.clear();
        if let Some(session) = self.session.take() {
            session.close().await;
        }
    }

    /// The open session in the pod, for calls its SDK would make.
    pub fn session(&self) -> Option<&PodSession> {
        self.session.as_ref()
    }

    /// Ends the session in the pod (its exec exits).
    pub async fn close(self) {
        if let Some(session) = self.session {
            session.close().await;
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> Vec<String> {
        self.variables.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The file at `path`, if it was read with the environment: the variable naming it must
    /// still hold exactly `path` (the value the container's `cat` was given).
    fn file(&self, path: &str) -> Option<&Result<Vec<u8>, String>> {
        self.files
            .iter()
            .find(|f| self.get(&f.variable) == Some(path))
            .map(|f| &f.result)
    }
}

impl std::fmt::Debug for RuntimeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeEnv")
            .field("names", &self.names())
            .field("files", &self.files)
            .finish()
    }
}

/// One exec running the session script: the environment, the token files, then calls.
async fn open_session(
    pods: &Api<Pod>,
    pod: &PodSubject,
    file_vars: &[&str],
    timeout: Duration,
) -> Result<RuntimeEnv, ExecError> {
    let boundary = env_probe::boundary();
    let script = pod_session::script::full_script();
    let argv =
        pod_session::script::argv(&script, &boundary, pod_session::script::CLIENTS, file_vars);
    let attached = exec::attach(pods, &pod.name, &pod.container, &argv, timeout).await?;
    // The same script, boundary and files, should the exec have to be opened again.
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let keepalive = Box::new(attached.guard);
    let (opening, session) = PodSession::start(
        attached.stdin,
        attached.stdout,
        attached.stderr,
        boundary,
        keepalive,
        timeout,
    )
    .await
    .map_err(|e| match e {
        pod_session::OpenError::Timeout(d) => ExecError::Timeout(d),
        pod_session::OpenError::Ended(why) => ExecError::Failed(why),
        pod_session::OpenError::TooLarge => ExecError::TooLarge(pod_session::MAX_STDOUT),
    })?;
    let (pods, name, container) = (pods.clone(), pod.name.clone(), pod.container.clone());
    let session = session.with_reopen(Box::new(move || {
        let (pods, name, container, argv) =
            (pods.clone(), name.clone(), container.clone(), argv.clone());
        Box::pin(async move {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let attached = exec::attach(&pods, &name, &container, &argv, timeout)
                .await
                .map_err(|e| e.to_string())?;
            Ok(pod_session::Streams {
                stdin: attached.stdin,
                stdout: attached.stdout,
                stderr: attached.stderr,
                keepalive: Box::new(attached.guard),
            })
        })
    }));
    let mut env = RuntimeEnv::parse(&opening.env);
    env.files = opening.files;
    env.session = Some(session);
    env.forged = opening.forged;
    Ok(env)
}

/// A token and how it was obtained.
pub struct Token {
    pub bytes: Vec<u8>,
    pub source: String,
    /// True for a TokenRequest stand-in rather than the file the pod really reads.
    pub equivalent: bool,
}

/// Why the container's own token file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// The container's user cannot read it, or it does not exist (stderr says which).
    Denied(String),
    /// Exec itself was impossible (no binary, forbidden, timeout).
    NoExec(ExecError),
    /// Offline and no --token-file.
    Offline,
}

impl Probe {
    /// The container's environment, and the files named by `file_vars` (the token files the
    /// pod's mechanism will read), in one exec as the container's user; without a shell in
    /// the image, `env` alone (the files are then read by their own exec).
    pub async fn env(
        &self,
        pod: &PodSubject,
        file_vars: &[&str],
    ) -> Result<RuntimeEnv, ReadFailure> {
        let Probe::Live { client, timeout } = self else {
            return Err(ReadFailure::Offline);
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        match open_session(&pods, pod, file_vars, *timeout).await {
            Ok(env) => return Ok(env),
            // No shell (distroless) or the script failed: a bare `env`; files by their own exec.
            Err(ExecError::NoSuchCommand(_)) | Err(ExecError::Failed(_)) => {}
            Err(e) => return Err(ReadFailure::NoExec(e)),
        }
        let out = exec::run(&pods, &pod.name, &pod.container, &["env"], *timeout)
            .await
            .map_err(ReadFailure::NoExec)?;
        if !out.success {
            return Err(ReadFailure::NoExec(ExecError::Failed(out.stderr)));
        }
        Ok(RuntimeEnv::parse(&out.stdout))
    }

    /// Runs `command` in the target container, bounded by the probe's timeout. The output may
    /// hold secrets: callers parse it in memory and drop it.
    pub async fn exec(
        &self,
        pod: &PodSubject,
        command: &[&str],
    ) -> Result<crate::kube::exec::ExecOutput, ReadFailure> {
        let timeout = self.timeout().ok_or(ReadFailure::Offline)?;
        self.exec_within(pod, command, timeout).await
    }

    /// The live exec budget (`--request-timeout`, else 30s); None offline.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Probe::Live { timeout, .. } => Some(*timeout),
            Probe::Offline { .. } => None,
        }
    }

    /// Like [`Probe::exec`] with an explicit bound (`timeout` from our side). The output
    /// may hold a secret (a metadata token): callers parse it and drop it.
    pub async fn exec_within(
        &self,
        pod: &PodSubject,
        argv: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput, ReadFailure> {
        let Probe::Live { client, .. } = self else {
            return Err(ReadFailure::Offline);
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        exec::run(&pods, &pod.name, &pod.container, argv, timeout)
            .await
            .map_err(ReadFailure::NoExec)
    }

    /// Reads a file in the container as its own user (`cat`); offline there is no container.
    pub async fn read_file(&self, pod: &PodSubject, path: &str) -> Result<Vec<u8>, ReadFailure> {
        let Some(timeout) = self.timeout() else {
            return Err(ReadFailure::Offline);
        };
        let out = self.exec_within(pod, &["cat", path], timeout).await?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(ReadFailure::Denied(out.stderr.trim().to_string()))
        }
    }

    /// Reads the token the way the pod's SDK does: the file, as the container's user. When
    /// `env` already holds it (read in the same exec as the environment), no exec is made.
    pub async fn read_token_file(
        &self,
        pod: &PodSubject,
        env: Option<&RuntimeEnv>,
        path: &str,
    ) -> Result<Token, ReadFailure> {
        let source = || {
            format!(
                "token read by exec from {path} in container {} as its own user",
                pod.container
            )
        };
        if let (Probe::Live { .. }, Some(read)) = (self, env.and_then(|e| e.file(path))) {
            return match read {
                Ok(bytes) => Ok(Token {
                    bytes: bytes.clone(),
                    source: source(),
                    equivalent: false,
                }),
                Err(stderr) => Err(ReadFailure::Denied(stderr.clone())),
            };
        }
        match self {
            Probe::Offline { token: None } => Err(ReadFailure::Offline),
            Probe::Offline { token: Some(t) } => Ok(Token {
                bytes: t.bytes.clone(),
                source: t.origin.clone(),
                equivalent: false,
            }),
            Probe::Live { client, timeout } => {
                let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
                let out = exec::run(&pods, &pod.name, &pod.container, &["cat", path], *timeout)
                    .await
                    .map_err(ReadFailure::NoExec)?;
                if out.success {
                    Ok(Token {
                        bytes: out.stdout,
                        source: source(),
                        equivalent: false,
                    })
                } else {
                    Err(ReadFailure::Denied(out.stderr.trim().to_string()))
                }
            }
        }
    }

    /// The token the kubelet would mount for this pod (TokenRequest), when exec cannot read it.
    pub async fn equivalent_token(
        &self,
        pod: &PodSubject,
        audience: &str,
        expiration_seconds: i64,
    ) -> Result<Token, String> {
        let Probe::Live { client, .. } = self else {
            return Err("offline: pass --token-file to exchange a token".into());
        };
        let uid = pod.meta.uid.clone().unwrap_or_default();
        let token = token_request::request(
            client,
            &EquivalentTokenRequest {
                namespace: &pod.namespace,
                service_account: pod.service_account_name(),
                audience,
                expiration_seconds,
                pod: Some((&pod.name, &uid)),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(Token {
            bytes: token.into_bytes(),
            source: format!(
                "equivalent token from TokenRequest for serviceaccount {}/{} (audience {audience}), not the file in the pod",
                pod.namespace,
                pod.service_account_name()
            ),
            equivalent: true,
        })
    }
}
