//! Tier-2 contract: boto3 (from the harness venv) against the strict gate, via pytest.
//!
//! One `cargo test` entry point: this starts the emulators, mints the tokens, and runs
//! `tests/python/test_boto3_web_identity.py`, passing everything through the environment.
//! Needs python3 with venv and a reachable PyPI — fails naming them otherwise.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use podiam_e2e::python_env::PythonEnv;

const UNREGISTERED_ISSUER: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/UNREGISTERED";

#[tokio::test]
async fn boto3_web_identity_contract() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let python = PythonEnv::ensure().expect("Python venv with boto3 and pytest");

    let mint = |adjust: &dyn Fn(&mut TokenSpec)| {
        let mut spec = TokenSpec::new("default", "s3-reader");
        adjust(&mut spec);
        emulators.mint_token(&spec).expect("mint")
    };
    // The provider chain reads the token from a file, as in a pod: 0600, in a temp dir
    // removed when the test ends.
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("token");
    write_private(&token_file, &mint(&|_| {}));

    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_boto3_web_identity.py");
    let output = Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        // Only what the test needs: no keys or profiles from the developer's environment.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", token_dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_ROLE_ARN", emulators.role_arn("my-pod-role"))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("PODIAM_UNREGISTERED_ISSUER", UNREGISTERED_ISSUER)
        .env(
            "PODIAM_TOKEN_OTHER_NAMESPACE",
            mint(&|s| s.namespace = "other".to_owned()),
        )
        .env(
            "PODIAM_TOKEN_WRONG_AUDIENCE",
            mint(&|s| s.audiences = vec!["vault".to_owned()]),
        )
        .env(
            "PODIAM_TOKEN_UNREGISTERED_ISSUER",
            mint(&|s| s.issuer = Some(UNREGISTERED_ISSUER.to_owned())),
        )
        .env("PODIAM_TOKEN_EXPIRED", mint(&|s| s.expired = true))
        .env("PODIAM_TOKEN_TAMPERED", mint(&|s| s.wrong_key = true))
        .env("PODIAM_TOKEN_GARBAGE", "not-a-jwt")
        // Blocking on purpose: the emulators serve from their own runtime meanwhile.
        .output()
        .expect("run pytest from the venv");
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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
