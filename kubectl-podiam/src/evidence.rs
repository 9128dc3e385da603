//! Where runtime evidence comes from: exec in the live container, a TokenRequest for an
//! equivalent token, or (offline) a token file the user gave. The bytes of a token stay in
//! memory; only its claims and its source are ever reported.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::kube::exec::{self, ExecError};
use crate::kube::token_request::{self, EquivalentTokenRequest};
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
        let result = if path == Path::new("-") {
            std::io::stdin().read_to_end(&mut bytes).map(drop)
        } else {
            std::fs::File::open(path).and_then(|f| {
                // Bounded: a token is small; a huge file is not a token.
                f.take(token_claims::MAX_TOKEN_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map(drop)
            })
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
/// the few non-secret variables the mechanisms read; the type never prints them.
pub struct RuntimeEnv(Vec<(String, String)>);

impl RuntimeEnv {
    pub fn parse(output: &[u8]) -> Self {
        let text = String::from_utf8_lossy(output);
        RuntimeEnv(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(k, _)| k.clone()).collect()
    }
}

impl std::fmt::Debug for RuntimeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RuntimeEnv").field(&self.names()).finish()
    }
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
    pub async fn env(&self, pod: &PodSubject) -> Result<RuntimeEnv, ReadFailure> {
        let Probe::Live { client, timeout } = self else {
            return Err(ReadFailure::Offline);
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
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
        let Probe::Live { client, timeout } = self else {
            return Err(ReadFailure::Offline);
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        exec::run(&pods, &pod.name, &pod.container, command, *timeout)
            .await
            .map_err(ReadFailure::NoExec)
    }

    /// Reads the token the way the pod's SDK does: the file, as the container's user.
    pub async fn read_token_file(
        &self,
        pod: &PodSubject,
        path: &str,
    ) -> Result<Token, ReadFailure> {
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
                        source: format!(
                            "token read by exec from {path} in container {} as its own user",
                            pod.container
                        ),
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
