//! Tier-2 contract: google-auth (from the harness venv) finds the emulators' `authorized_user`
//! file as application default credentials, refreshes its refresh token at the emulated OAuth
//! endpoint (google-auth pins Google's endpoint, so the test sets it), and drives the IAM
//! API's getIamPolicy / setIamPolicy through AuthorizedSession: etags, 409 ABORTED on a stale
//! one, 403 for callers without the role, 404 for an unknown account, 400 for a missing pool.
//! Needs python3 with venv and a reachable PyPI — fails naming them otherwise.

use std::path::Path;
use std::process::Command;

use podiam_e2e::emulators::gcp::{DEFAULT_OPERATOR, GcpEmulatorOptions, GcpEmulators, GcpSetup};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::SetupVariables;

const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";

#[tokio::test]
async fn google_iam_policy_contract() {
    let emulators = GcpEmulators::start(GcpEmulatorOptions::default())
        .await
        .expect("GCP emulators start");
    let setup: GcpSetup = serde_json::from_value(serde_json::json!({
        "projectIamPolicy": {"bindings": [
            {"role": "roles/owner", "members": [format!("user:{DEFAULT_OPERATOR}")]},
            {"role": "roles/editor", "members": ["user:editor@example.com"]},
        ]},
        "serviceAccounts": [{
            "email": GSA,
            "iamPolicy": {"bindings": [{
                "role": "roles/iam.serviceAccountTokenCreator",
                "members": ["user:release-bot@example.com"],
            }]},
        }],
    }))
    .expect("setup");
    emulators
        .apply(
            &setup,
            &SetupVariables {
                issuer: String::new(),
                account_id: String::new(),
            },
        )
        .expect("apply");
    let editor = emulators
        .user_credentials_file("editor@example.com")
        .expect("editor credentials");
    let stranger = emulators
        .user_credentials_file("stranger@example.com")
        .expect("stranger credentials");
    let python = PythonEnv::ensure().expect("Python venv with google-auth and pytest");
    let home = tempfile::tempdir().expect("temp dir");

    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_google_iam_policy.py");
    let output = Command::new(python.python())
        // Short tracebacks: the long style prints call arguments, bearer tokens included.
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short"])
        .arg(&test_file)
        // Only what the test needs: no credentials from the developer's environment.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            emulators.operator_credentials_file(),
        )
        .env("PODIAM_EDITOR_ADC", &editor)
        .env("PODIAM_STRANGER_ADC", &stranger)
        .env("PODIAM_IAM_URL", emulators.iam_url())
        .env("PODIAM_TOKEN_URI", emulators.oauth_token_url())
        // Blocking on purpose: the emulators serve from their own runtime meanwhile.
        .output()
        .expect("run pytest from the venv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("10 passed"), "{stdout}");

    // The emulator saw each outcome the tests asserted, and logged no token.
    let log = emulators.request_log();
    for (action, outcome) in [
        ("oauth2:token operator@example.com", "200"),
        ("oauth2:token", "invalid_grant"),
        ("iam:setIamPolicy operator@example.com", "200"),
        ("iam:setIamPolicy", "ABORTED"),
        ("iam:getIamPolicy", "NOT_FOUND"),
        ("iam:getIamPolicy", "PERMISSION_DENIED"),
        ("iam:setIamPolicy", "PERMISSION_DENIED"),
        ("iam:setIamPolicy", "INVALID_ARGUMENT"),
        ("iam:getIamPolicy", "UNAUTHENTICATED"),
    ] {
        assert!(
            log.iter()
                .any(|e| e.action.starts_with(action) && e.outcome == outcome),
            "no {action} → {outcome} in {log:?}"
        );
    }
    assert!(
        !format!("{log:?}").contains("ya29."),
        "a token reached the log"
    );
}
