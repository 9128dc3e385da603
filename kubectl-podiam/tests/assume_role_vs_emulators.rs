//! `--assume-role` (role chaining) from the pod's IRSA credentials, the built plugin against the
//! strict gate (which decides sts:AssumeRole with its own trust evaluator), no cluster.

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use serde_json::Value;

const ACCOUNT: &str = "123456789012";

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws")
}

fn verify(emu: &AwsEmulators, token: Option<&str>, operator: bool, extra: &[&str]) -> (i32, Value) {
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", emu.gate_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["verify", "-o", "json", "-f"])
        .arg(examples())
        .args(extra);
    if let Some(token) = token {
        cmd.args(["--token-file", "-"])
            .write_stdin(token.to_string());
    }
    if operator {
        let (key, secret) = emu.admin_credentials();
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn chain_checks(report: &Value) -> Vec<Value> {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "aws.sts.assume-role-chain")
        .cloned()
        .collect()
}

async fn create_role(emu: &AwsEmulators, name: &str, principal: &str) -> String {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    emu.admin()
        .iam_client(emu.gate_url())
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    emu.role_arn(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_hop_is_assumed_with_the_previous_hops_credentials() {
    let emu = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let first = create_role(&emu, "chain-first", &emu.role_arn("my-pod-role")).await;
    // The second hop trusts the first hop's role, not the pod's.
    let second = create_role(&emu, "chain-second", &first).await;
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let (code, report) = verify(
        &emu,
        Some(&token),
        false,
        &["--assume-role", &first, "--assume-role", &second],
    );
    assert_eq!(code, 0, "{report:#}");
    let hops = chain_checks(&report);
    assert_eq!(hops.len(), 2, "{report:#}");
    assert_eq!(hops[0]["status"], "pass");
    assert!(
        hops[1]["message"].as_str().unwrap().ends_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/chain-second/podiam-hop-2"
        )),
        "{}",
        hops[1]["message"]
    );

    // Reversed: the pod's role is not trusted by chain-second. Diagnosed from its trust policy
    // with the operator's credentials; the hop after it is a skip.
    let (code, report) = verify(
        &emu,
        Some(&token),
        true,
        &["--assume-role", &second, "--assume-role", &first],
    );
    assert_eq!(code, 1, "{report:#}");
    let hops = chain_checks(&report);
    assert_eq!(hops[0]["status"], "fail", "{report:#}");
    let message = hops[0]["message"].as_str().unwrap();
    assert!(message.contains("trust policy does not admit"), "{message}");
    assert!(
        message.contains("is not authorized to perform: sts:AssumeRole"),
        "{message}"
    );
    let fix = hops[0]["remediation"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            r#""Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:role/my-pod-role"}}"#
        )),
        "{fix}"
    );
    assert_eq!(hops[1]["status"], "skip");

    // Self-assumption: the pod's role trusts only the OIDC provider.
    let (code, report) = verify(
        &emu,
        Some(&token),
        true,
        &["--assume-role", &emu.role_arn("my-pod-role")],
    );
    assert_eq!(code, 1, "{report:#}");
    let message = chain_checks(&report)[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("assuming itself"), "{message}");

    // Offline, no token: each hop is a skip, and the pod is incomplete.
    let (code, report) = verify(&emu, None, false, &["--assume-role", &first]);
    assert_eq!(code, 4, "{report:#}");
    assert_eq!(chain_checks(&report)[0]["status"], "skip");
}
