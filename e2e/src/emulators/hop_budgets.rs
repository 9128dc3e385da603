//! How long each hop of the emulated AWS path may take before it answers an error instead of
//! hanging. Nested, so that the innermost hop that stalls is the one named, and all well under
//! the plugin's 30 s exec budget (which also pays for the exec itself):
//! pod → agent (whole request 12 s) → EKS Auth (10 s) → gate (whole request 8 s) → moto (5 s a call).

use std::time::Duration;

/// Opening a TCP connection to a local emulator or to moto.
pub const CONNECT: Duration = Duration::from_secs(2);
/// One call from the gate to moto (IAM read, STS, pass-through), connection included.
pub const MOTO_CALL: Duration = Duration::from_secs(5);
/// Everything the gate does for one request.
pub const GATE_REQUEST: Duration = Duration::from_secs(8);
/// The agent's AssumeRoleForPodIdentity call to EKS Auth (one attempt: no retries, so the
/// error the gate answered is the one passed on).
pub const AGENT_TO_EKS_AUTH: Duration = Duration::from_secs(10);
/// Everything the agent does for one request.
pub const AGENT_REQUEST: Duration = Duration::from_secs(12);

/// The gate's HTTP client for moto: bounded, never proxied.
pub fn moto_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT)
        .timeout(MOTO_CALL)
        .build()
}

/// What went wrong calling moto, naming the hop; never the request (it may carry a signature).
pub fn moto_failure(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("moto did not answer within {}s", MOTO_CALL.as_secs())
    } else if err.is_connect() {
        "moto is unreachable (connection failed)".to_owned()
    } else {
        format!("calling moto failed: {}", without_url(err))
    }
}

/// reqwest's message without the URL it appends (moto's URL is harmless, but pass-through
/// URLs may hold presigned query strings).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_nest_under_the_plugins_exec_budget() {
        assert!(MOTO_CALL < GATE_REQUEST);
        assert!(GATE_REQUEST < AGENT_TO_EKS_AUTH);
        assert!(AGENT_TO_EKS_AUTH < AGENT_REQUEST);
        assert!(AGENT_REQUEST + Duration::from_secs(10) <= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_silent_moto_is_named_within_the_budget() {
        // Accepts connections and never answers: a moto that hangs.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let client = moto_http_client().unwrap();
        let started = std::time::Instant::now();
        let err = client.post(&url).body("Action=x").send().await.unwrap_err();
        let took = started.elapsed();
        assert!(took >= MOTO_CALL && took < MOTO_CALL + Duration::from_secs(2));
        assert_eq!(moto_failure(&err), "moto did not answer within 5s");
        drop(listener);
    }
}
