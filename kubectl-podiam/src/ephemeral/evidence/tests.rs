use super::*;
use crate::ephemeral::report::{self, tests::fixture_line};
use crate::model::Status;
use crate::options::AccessExpectation;

fn evidence(line: &str) -> Evidence {
    Evidence {
        container: "podiam-probe-abcde".into(),
        report: report::parse_log(line).unwrap(),
        pod: "team-a/s3-pod".into(),
        target: "app".into(),
    }
}

/// What the IRSA runtime gives for a distroless pod: an equivalent token and an exchange from
/// this machine.
fn host_outcome() -> RuntimeOutcome {
    RuntimeOutcome {
        checks: vec![
            Check::warn(
                "aws.token.source",
                "equivalent token from TokenRequest",
                "x",
            ),
            Check::warn("aws.sts.pod-path", "no exec session in the pod", "x"),
            Check::pass("aws.sts.assume-role", "STS accepted the token"),
            Check::pass("aws.access.can", "s3:ListBucket=my-bucket allowed"),
        ],
        identity: Some(Identity {
            provider: "aws",
            principal: "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-s3-pod".into(),
            source: "exchanged from this machine (podiam), not by the pod".into(),
        }),
        unreachable: false,
    }
}

fn status_of(outcome: &RuntimeOutcome, id: &str) -> Vec<Status> {
    outcome
        .checks
        .iter()
        .filter(|c| c.id == id)
        .map(|c| c.status)
        .collect()
}

#[test]
fn the_probes_identity_replaces_the_exchange_from_this_machine() {
    let e = evidence(&fixture_line());
    let mut outcome = host_outcome();
    let options = VerifyOptions {
        access: vec![AccessExpectation::parse("s3:ListBucket=my-bucket", true).unwrap()],
        ..VerifyOptions::default()
    };
    e.apply(MechanismId::AwsIrsa, &mut outcome, &options);
    let identity = outcome.identity.as_ref().unwrap();
    assert!(
        identity
            .principal
            .ends_with("podiam-probe-20260101T000000Z")
    );
    assert!(
        identity
            .source
            .starts_with("ephemeral probe podiam-probe-abcde in pod team-a/s3-pod"),
        "{}",
        identity.source
    );
    assert_eq!(status_of(&outcome, "aws.token.source"), vec![Status::Pass]);
    assert_eq!(status_of(&outcome, "aws.sts.reachable"), vec![Status::Pass]);
    assert_eq!(
        status_of(&outcome, "aws.sts.assume-role"),
        vec![Status::Pass]
    );
    assert!(status_of(&outcome, "aws.sts.pod-path").is_empty());
    // No credentials came back: --can is a skip that says why, never a silent pass.
    let can: Vec<&Check> = outcome
        .checks
        .iter()
        .filter(|c| c.id == "aws.access.can")
        .collect();
    assert_eq!(can.len(), 1);
    assert_eq!(can[0].status, Status::Skip);
    assert!(
        can[0].message.contains("no credentials"),
        "{}",
        can[0].message
    );
}

#[test]
fn a_failed_call_in_the_pod_is_a_fail_naming_its_cause() {
    let mut v: serde_json::Value = serde_json::from_str(&fixture_line()).unwrap();
    v["identity"] = serde_json::Value::Null;
    v["calls"][0]["status"] = serde_json::Value::Null;
    v["calls"][0]["failure"] =
        serde_json::json!({"cause": "timeout", "detail": "no answer within 7s"});
    v["calls"][0]["proxy"] = serde_json::json!("http://proxy.corp:3128 (HTTPS_PROXY)");
    let e = evidence(&v.to_string());
    let mut outcome = host_outcome();
    e.apply(
        MechanismId::AwsIrsa,
        &mut outcome,
        &VerifyOptions::default(),
    );
    let reach: Vec<&Check> = outcome
        .checks
        .iter()
        .filter(|c| c.id == "aws.sts.reachable")
        .collect();
    assert_eq!(reach.len(), 1);
    assert_eq!(reach[0].status, Status::Fail);
    assert!(
        reach[0]
            .message
            .contains("proxy: no answer through the proxy within 7s"),
        "{}",
        reach[0].message
    );
    assert!(
        reach[0]
            .message
            .contains("ephemeral probe podiam-probe-abcde")
    );
    // The exchange from this machine stays, labelled as such.
    assert!(
        outcome
            .identity
            .unwrap()
            .source
            .contains("from this machine")
    );
}

#[test]
fn node_identity_from_the_probe() {
    let mut v: serde_json::Value = serde_json::from_str(&fixture_line()).unwrap();
    let e = evidence(&v.to_string());
    let (check, identity) = e.node_check(MechanismId::AwsIrsa).unwrap();
    assert_eq!(check.status, Status::Pass);
    assert!(
        check.message.contains("hop limit of 1"),
        "{}",
        check.message
    );
    assert!(identity.is_none());
    v["node"]["reached"] = serde_json::json!({"provider": "aws", "principal": "arn:aws:sts::1:assumed-role/node-role/i-1", "via": "IMDSv2 from inside the pod"});
    let e = evidence(&v.to_string());
    let (check, identity) = e.node_check(MechanismId::None).unwrap();
    assert_eq!(check.status, Status::Fail);
    assert!(identity.unwrap().principal.contains("node-role"));
    let (check, _) = e.node_check(MechanismId::AwsIrsa).unwrap();
    assert_eq!(check.status, Status::Warn);
}

#[test]
fn a_refusal_keeps_the_diagnosis_and_says_the_pod_got_it_too() {
    let mut v: serde_json::Value = serde_json::from_str(&fixture_line()).unwrap();
    v["identity"] = serde_json::Value::Null;
    v["calls"][0]["status"] = serde_json::json!(403);
    v["calls"][0]["error_code"] = serde_json::json!("AccessDenied");
    let e = evidence(&v.to_string());
    let mut outcome = host_outcome();
    outcome.checks[2] = Check::fail(
        "aws.sts.assume-role",
        "role r's trust policy does not allow …",
        "trust …",
    );
    e.apply(
        MechanismId::AwsIrsa,
        &mut outcome,
        &VerifyOptions::default(),
    );
    let exchange: Vec<&Check> = outcome
        .checks
        .iter()
        .filter(|c| c.id == "aws.sts.assume-role")
        .collect();
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].status, Status::Fail);
    assert!(exchange[0].message.contains("trust policy"));
    assert!(
        exchange[0].message.contains("HTTP 403 AccessDenied"),
        "{}",
        exchange[0].message
    );
}

#[test]
fn an_agent_http_error_is_a_fail_not_a_pass() {
    let mut v: serde_json::Value = serde_json::from_str(&fixture_line()).unwrap();
    v["identity"] = serde_json::Value::Null;
    v["calls"][0]["status"] = serde_json::json!(400);
    v["calls"][0]["error_code"] = serde_json::json!("AccessDeniedException");
    v["calls"][0]["error_message"] = serde_json::json!("no association");
    let e = evidence(&v.to_string());
    let mut outcome = RuntimeOutcome::default();
    e.apply(
        MechanismId::AwsPodIdentity,
        &mut outcome,
        &VerifyOptions::default(),
    );
    let agent: Vec<&Check> = outcome
        .checks
        .iter()
        .filter(|c| c.id == "aws.pod-identity.agent")
        .collect();
    assert_eq!(agent.len(), 1, "{:#?}", outcome.checks);
    assert_eq!(agent[0].status, Status::Fail);
    assert!(
        agent[0]
            .message
            .contains("HTTP 400 AccessDeniedException no association"),
        "{}",
        agent[0].message
    );
    assert!(agent[0].remediation.is_some());
    assert_eq!(
        status_of(&outcome, "aws.pod-identity.exchange"),
        vec![Status::Fail]
    );
    assert!(outcome.identity.is_none());
}

#[test]
fn the_probes_principal_answers_expect_role() {
    let e = evidence(&fixture_line());
    let mut outcome = host_outcome();
    let options = VerifyOptions {
        expect_role: Some("arn:aws:iam::123456789012:role/other-role".into()),
        ..VerifyOptions::default()
    };
    e.apply(MechanismId::AwsIrsa, &mut outcome, &options);
    assert_eq!(
        status_of(&outcome, "aws.sts.expected-role"),
        vec![Status::Fail]
    );
}
