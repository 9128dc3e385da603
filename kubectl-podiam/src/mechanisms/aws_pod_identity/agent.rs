//! Asking the Pod Identity Agent from inside the pod, exactly as the pod's SDK does: GET on the
//! full URI with the token file's content in `Authorization`, through the pod's session (its
//! network namespace, its proxy variables). The token never leaves the pod except towards the
//! agent; the credentials come back into memory only.

use std::time::Duration;

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::evidence::RuntimeEnv;
use crate::exchange::sdk_retry;
use crate::mechanisms::pod_path;
use crate::pod_session::{CallAnswer, CallFailure, PodCall, PodSession, SecretFromFile};

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
    /// The agent answered 429 or 5xx to every attempt: busy or failing on the node, not a
    /// verdict on the binding.
    Unavailable(String),
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
    ask_through(session, env, uri, token_file).await
}

/// The agent asked through `session`. The SDKs retry the container credentials endpoint
/// (botocore's `ContainerMetadataFetcher`: 3 attempts, 1 s apart); podiam retries its 429 and
/// 5xx answers as `sdk_retry` says, so a busy agent is no finding, then names it (exit 3).
async fn ask_through(
    session: &PodSession,
    env: &RuntimeEnv,
    uri: &str,
    token_file: &str,
) -> AgentOutcome {
    let call = PodCall::get(uri, AGENT_TIMEOUT).with_secret(SecretFromFile::Header {
        path: token_file.into(),
        name: "Authorization".into(),
    });
    let transient = |answer: &Result<CallAnswer, CallFailure>| match answer {
        Ok(answer) if sdk_retry::retryable(answer.status, "") => Some(answer.status),
        _ => None,
    };
    let (answer, attempts) =
        sdk_retry::retried("the Pod Identity Agent", || session.call(&call), transient).await;
    let answer = match answer {
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
        if sdk_retry::retryable(answer.status, "") {
            return AgentOutcome::Unavailable(sdk_retry::exhausted(
                "the Pod Identity Agent",
                answer.status,
                "",
                &text,
                attempts,
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_session::tests::through_curl_and_python;

    const BUSY: &str = "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n[a1b2]: (ThrottlingException): Rate exceeded";
    const FAILING: &str = "HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n[a1b2]: (InternalServerException): internal error";
    const REFUSED: &str = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n[a1b2]: (InvalidTokenException): token is expired";
    const ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"AccessKeyId\":\"ASIAEXAMPLE\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"AccountId\":\"123456789012\",\"Expiration\":\"2030-01-01T00:00:00Z\"}";

    /// The agent asked from the pod (curl, then python3) against a server answering
    /// `responses` in turn; each client's outcome and the calls received.
    async fn asked(responses: Vec<&'static str>) -> Vec<(AgentOutcome, usize)> {
        through_curl_and_python(responses, async |pod, port, token_path| {
            let env = RuntimeEnv::parse(b"");
            let uri = format!("http://127.0.0.1:{port}/v1/credentials");
            ask_through(pod, &env, &uri, token_path).await
        })
        .await
    }

    #[tokio::test]
    async fn a_busy_agent_is_asked_again_and_its_credentials_count() {
        for (outcome, calls) in asked(vec![BUSY, FAILING, ANSWER]).await {
            match outcome {
                AgentOutcome::Credentials { account_id, .. } => {
                    assert_eq!(account_id, "123456789012")
                }
                _ => panic!("the third answer's credentials were not used"),
            }
            assert_eq!(calls, 3, "one call per attempt");
        }
    }

    #[tokio::test]
    async fn an_agent_busy_to_every_attempt_is_unavailable_not_a_refusal() {
        for (outcome, calls) in asked(vec![BUSY]).await {
            match outcome {
                AgentOutcome::Unavailable(why) => assert!(
                    why.contains(
                        "the Pod Identity Agent failed on the service's side each of 3 attempts"
                    ) && why.contains("Rate exceeded"),
                    "{why}"
                ),
                _ => panic!("a lasting 503 must be named as the agent unavailable"),
            }
            assert_eq!(calls, 3);
        }
    }

    #[tokio::test]
    async fn a_refusal_is_never_retried() {
        for (outcome, calls) in asked(vec![REFUSED, ANSWER]).await {
            match outcome {
                AgentOutcome::Refused(why) => {
                    assert!(why.contains("InvalidTokenException"), "{why}")
                }
                _ => panic!("the agent's 400 must stay the answer"),
            }
            assert_eq!(calls, 1);
        }
    }
}
