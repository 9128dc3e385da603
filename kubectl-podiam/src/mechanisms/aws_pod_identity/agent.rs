//! Asking the Pod Identity Agent from inside the pod, exactly as the pod's SDK does: the token
//! file's content in `Authorization`, GET on the full URI. The token never leaves the pod
//! except towards the agent (the shell reads it); the credentials come back into memory only.

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::evidence::{Probe, ReadFailure};
use crate::kube::exec::ExecError;
use crate::subject::PodSubject;

/// busybox and GNU wget both take `--header`; never `-T` (busybox builds may lack it): the
/// exec is bounded by the client instead.
const SCRIPT: &str = r#"wget -q -O - --header "Authorization: $(cat "$2")" "$1""#;

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

pub async fn ask(probe: &Probe, pod: &PodSubject, uri: &str, token_file: &str) -> AgentOutcome {
    let out = match probe
        .exec(pod, &["sh", "-c", SCRIPT, "podiam", uri, token_file])
        .await
    {
        Ok(out) => out,
        Err(ReadFailure::NoExec(ExecError::Timeout(d))) => {
            return AgentOutcome::Unreachable(format!("no answer within {}s", d.as_secs()));
        }
        Err(ReadFailure::NoExec(e)) => return AgentOutcome::NoTool(e.to_string()),
        Err(ReadFailure::Denied(e)) => return AgentOutcome::NoTool(e),
        Err(ReadFailure::Offline) => return AgentOutcome::NoTool("offline".into()),
    };
    let stderr = out.stderr.trim().to_string();
    if !out.success {
        if stderr.contains("not found") && stderr.contains("wget") {
            return AgentOutcome::NoTool("the image has no wget".into());
        }
        if let Some(status) = stderr.split("server returned error:").nth(1) {
            return AgentOutcome::Refused(status.trim().to_string());
        }
        return AgentOutcome::Unreachable(if stderr.is_empty() {
            "wget failed without a message".into()
        } else {
            stderr
        });
    }
    match serde_json::from_slice::<AgentCredentials>(&out.stdout) {
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
            out.stdout.len(),
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
