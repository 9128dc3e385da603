//! The probe's JSON line, as the plugin reads it: the contract with `probe/src/report.rs`,
//! both tested against `probe/tests/fixtures/report.json`. Unknown fields are ignored (a newer
//! probe may add some); another schema number is refused.

use serde::Deserialize;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
pub struct ProbeReport {
    pub podiam_probe: u32,
    pub version: String,
    pub mechanism: String,
    pub user: User,
    pub env_source: String,
    pub target_pid: Option<u32>,
    pub client: String,
    pub token: Option<TokenRead>,
    #[serde(default)]
    pub calls: Vec<Call>,
    pub identity: Option<Identity>,
    pub node: Option<Node>,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub target_uid: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenRead {
    pub variable: String,
    pub path: String,
    pub read: bool,
    pub error: Option<String>,
    pub bytes: usize,
    pub claims: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub step: String,
    pub url: String,
    pub because: String,
    pub proxy: Option<String>,
    pub ca: Option<String>,
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    pub cause: String,
    pub detail: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub provider: String,
    pub principal: String,
    pub endpoint: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub asked: Vec<String>,
    pub reached: Option<NodeReached>,
    pub not_reached: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeReached {
    pub provider: String,
    pub principal: String,
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("no JSON line in the probe's log")]
    Missing,
    #[error("the probe's line is not its report: {0}")]
    Invalid(String),
    #[error("the probe speaks schema {found}, this plugin reads {SCHEMA}")]
    Schema { found: u32 },
}

/// The last line of `log` that is a probe report (a JSON object with `podiam_probe`).
pub fn parse_log(log: &str) -> Result<ProbeReport, ReportError> {
    let value = log
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("podiam_probe").is_some())
        .ok_or(ReportError::Missing)?;
    let found = value
        .get("podiam_probe")
        .and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(SCHEMA)) {
        return Err(ReportError::Schema {
            found: found.and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
        });
    }
    serde_json::from_value(value).map_err(|e| ReportError::Invalid(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The probe's fixture, as one log line.
    pub fn fixture_line() -> String {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../probe/tests/fixtures/report.json"))
                .unwrap();
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn reads_the_probes_fixture() {
        let log = format!("some earlier output\n{}\n", fixture_line());
        let r = parse_log(&log).unwrap();
        assert_eq!(r.mechanism, "aws-irsa");
        assert_eq!(r.user.uid, 1000);
        assert_eq!(
            r.token.as_ref().unwrap().path,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
        assert_eq!(r.calls.len(), 3);
        assert_eq!(r.calls[2].failure.as_ref().unwrap().cause, "timeout");
        assert!(
            r.identity
                .unwrap()
                .principal
                .contains("assumed-role/my-pod-role/")
        );
        assert!(r.node.unwrap().reached.is_none());
    }

    #[test]
    fn refuses_what_is_not_a_report() {
        assert_eq!(
            parse_log("exec format error\n").unwrap_err(),
            ReportError::Missing
        );
        let newer = fixture_line().replace("\"podiam_probe\":1", "\"podiam_probe\":2");
        assert_eq!(
            parse_log(&newer).unwrap_err(),
            ReportError::Schema { found: 2 }
        );
        assert!(matches!(
            parse_log("{\"podiam_probe\":1}").unwrap_err(),
            ReportError::Invalid(_)
        ));
    }
}
