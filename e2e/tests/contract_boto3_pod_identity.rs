//! Contract: boto3's container credential provider (AWS_CONTAINER_CREDENTIALS_FULL_URI +
//! AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) against the Pod Identity Agent emulator, which
//! calls the EKS Auth emulator. Runs `tests/python/test_boto3_pod_identity.py` with pytest.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use podiam_e2e::emulators::pod_identity_agent::AgentRoute;
use podiam_e2e::emulators::{AwsEmulators, DEFAULT_CLUSTER_NAME, PodIdentityAgent, TokenSpec};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::CloudSetup;

const SETUP: &str = r#"
aws:
  roles:
    - name: pod-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: pods.eks.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
    - name: ec2-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
  podIdentityAssociations:
    - {namespace: apps, serviceAccount: reader, roleName: pod-role}
    - {namespace: apps, serviceAccount: ec2-trusted, roleName: ec2-role}
"#;

/// This host's address on its default route: not loopback, so botocore must refuse plain
/// http to it. Found without sending anything (UDP connect only picks the route).
fn non_loopback_address() -> Ipv4Addr {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket
        .connect("192.0.2.1:9")
        .expect("a default route (prerequisite: a non-loopback interface)");
    match socket.local_addr().expect("local addr") {
        SocketAddr::V4(a) if !a.ip().is_loopback() => *a.ip(),
        other => panic!("prerequisite: a non-loopback IPv4 address, got {other}"),
    }
}

#[tokio::test]
async fn boto3_container_provider_contract() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).expect("setup"))
        .await
        .expect("apply setup");
    let python = PythonEnv::ensure().expect("Python venv with boto3 and pytest");
    // Bound on every address so the same agent is reachable by a non-loopback one.
    let agent = PodIdentityAgent::bind(
        SocketAddr::from(([0, 0, 0, 0], 0)),
        DEFAULT_CLUSTER_NAME,
        AgentRoute {
            endpoint: emulators.gate_url().to_owned(),
            credentials: emulators.admin().clone(),
        },
    )
    .expect("agent on a free port");
    let port = agent.address().port();

    let dir = tempfile::tempdir().expect("temp dir");
    let mint = |adjust: &dyn Fn(&mut TokenSpec)| {
        let mut spec = TokenSpec::new("apps", "reader");
        spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
        spec.pod_name = Some("reader-pod".to_owned());
        adjust(&mut spec);
        emulators.mint_token(&spec).expect("mint")
    };
    let cases: Vec<(&str, String)> = vec![
        ("OK", mint(&|_| {})),
        (
            "NO_ASSOCIATION",
            mint(&|s| s.service_account = "nobody".to_owned()),
        ),
        (
            "WRONG_AUDIENCE",
            mint(&|s| s.audiences = vec!["sts.amazonaws.com".to_owned()]),
        ),
        ("EXPIRED", mint(&|s| s.expired = true)),
        (
            "TRUST_WRONG",
            mint(&|s| s.service_account = "ec2-trusted".to_owned()),
        ),
        ("EMPTY", String::new()),
    ];
    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_boto3_pod_identity.py");
    let mut command = Command::new(python.python());
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env(
            "PODIAM_AGENT_URL",
            format!("http://127.0.0.1:{port}/v1/credentials"),
        )
        .env(
            "PODIAM_AGENT_URL_NOT_ALLOWED",
            format!("http://{}:{port}/v1/credentials", non_loopback_address()),
        );
    for (case, token) in &cases {
        let file = dir.path().join(case.to_ascii_lowercase());
        write_private(&file, token);
        command.env(format!("PODIAM_TOKEN_FILE_{case}"), &file);
    }
    // Blocking on purpose: the emulators and the agent serve from their own runtimes.
    let output = command.output().expect("run pytest from the venv");
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let served: Vec<String> = agent.request_log().into_iter().map(|e| e.outcome).collect();
    assert!(served.contains(&"200".to_owned()), "{served:?}");
    assert!(served.contains(&"404".to_owned()), "{served:?}");
}

fn write_private(path: &Path, contents: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create token file");
    file.write_all(contents.as_bytes())
        .expect("write token file");
}
