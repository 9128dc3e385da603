//! Asking the Pod Identity Agent from inside the pod, exactly as the pod's SDK does: GET on the
//! full URI with the token file's content in `Authorization`, through the pod's session (its
//! network namespace, its proxy variables). The token never leaves the pod except towards the
//! agent; the credentials come back into memory only.

use std::time::Duration;

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::evidence::RuntimeEnv;
use crate::mechanisms::pod_path;
use crate::pod_session::{CallFailure, PodCall, SecretFromFile};

/// The SDKs give the container credentials endpoint a few seconds (botocore: 2 s connect and
/// read, with retries); a little more here so a slow node is not taken for a dead agent.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

pub enum AgentOutcome {
    Credentials {
        credentials: Credentials,
        account_id: String,
    },
    /// No connection (refused, no route, no answer in time): wget's words.
    Unreachable(String),
    /// The agent answered with an HTTP error (busybox wget shows only the status line).
    Refused(String),
    /// The agent answered 200 with something that is not credentials.
    Garbled(String),
    /// No shell or wget in the image, or exec impossible.
    NoTool(String),
}

/// The agent's 200 answer; never Debug-printed.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
    #[serde(default)]
    account_id: String,
}

pub async fn ask(env: Option<&RuntimeEnv>, uri: &str, token_file: &str) -> AgentOutcome {
    let Some((env, session)) = env.and_then(|e| e.session().map(|s| (e, s))) else {
        return AgentOutcome::NoTool("no exec session in the pod (no shell in the image)".into());
    };
    let call = PodCall::get(uri, AGENT_TIMEOUT).with_secret(SecretFromFile::Header {
        path: token_file.into(),
        name: "Authorization".into(),
    });
    let answer = match session.call(&call).await {
        Ok(answer) => answer,
        Err(CallFailure::NoClient) => {
            return AgentOutcome::NoTool("the image has no curl, wget or python3".into());
        }
        Err(CallFailure::SecretUnreadable(why)) => return AgentOutcome::NoTool(why),
        Err(failure) => {
            let via = pod_path::proxy_for(env, uri)
                .map(|p| format!(" (through the proxy {p})"))
                .unwrap_or_default();
            return AgentOutcome::Unreachable(format!("{failure}{via}"));
        }
    };
    if answer.status != 200 {
        // The agent's errors are plain text without secrets: `[id]: (Exception): message`.
        let text = String::from_utf8_lossy(&answer.body)
            .trim()
            .chars()
            .take(300)
            .collect::<String>();
        return AgentOutcome::Refused(if text.is_empty() {
            format!("HTTP {}", answer.status)
        } else {
            format!("HTTP {}: {text}", answer.status)
        });
    }
    match serde_json::from_slice::<AgentCredentials>(&answer.body) {
        Ok(c) => AgentOutcome::Credentials {
            credentials: Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.token),
                None,
                "podiam-pod-identity-agent",
            ),
            account_id: c.account_id,
        },
        Err(e) => AgentOutcome::Garbled(format!(
            "the answer is not the agent's credentials JSON ({} bytes): {}",
            answer.body.len(),
            e.classify_name()
        )),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of parse error only: its Display could quote a secret.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "JSON without AccessKeyId/SecretAccessKey/Token",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}
