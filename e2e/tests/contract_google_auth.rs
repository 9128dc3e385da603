//! Tier-2 contract: google-auth (from the harness venv) against the strict GCP emulators, via
//! pytest. external_account files carry the emulators' STS and IAM Credentials URLs; the
//! metadata server identifies this test process (127.0.0.1) through the static resolver as
//! pod default/gcs-pod running as KSA gke-service-account.
//! Needs python3 with venv and a reachable PyPI — fails naming them otherwise.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use podiam_e2e::emulators::TokenSpec;
use podiam_e2e::emulators::gcp::{
    Caller, CallingPod, GcpEmulatorOptions, GcpEmulators, GcpSetup, PodResolver,
};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::{CloudSetup, SetupVariables};

const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
const UNBOUND_GSA: &str = "unbound@my-project.iam.gserviceaccount.com";
const POOL: &str = "podiam-pool";
const PROVIDER: &str = "podiam-provider";

#[tokio::test]
async fn google_auth_contract() {
    let this_process = Caller::Pod(CallingPod {
        namespace: "default".to_owned(),
        name: "gcs-pod".to_owned(),
        service_account: "gke-service-account".to_owned(),
        gsa_annotation: Some(GSA.to_owned()),
        started_at: None,
    });
    let emulators = GcpEmulators::start(GcpEmulatorOptions {
        resolver: PodResolver::Static(HashMap::from([(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            this_process,
        )])),
        test_issuer: true,
        ..GcpEmulatorOptions::default()
    })
    .await
    .expect("GCP emulators start");
    let issuer = emulators.issuer_url().expect("own issuer").to_owned();
    let variables = SetupVariables {
        issuer: issuer.clone(),
        account_id: String::new(),
    };
    let bound = bound_setup();
    emulators.apply(&bound, &variables).expect("apply");
    let python = PythonEnv::ensure().expect("Python venv with google-auth and pytest");

    let workdir = tempfile::tempdir().expect("temp dir");
    let audience = emulators.provider_audience(POOL, PROVIDER);
    let mint = |adjust: &dyn Fn(&mut TokenSpec)| {
        let mut spec = TokenSpec::new("default", "gke-service-account");
        spec.audiences = vec![format!("https:{audience}")];
        adjust(&mut spec);
        emulators.mint_token(&spec).expect("mint")
    };
    let mut configs: Vec<(String, String)> = Vec::new();
    let mut config = |case: &str, token: String, audience: &str, gsa: &str| {
        let token_file = workdir.path().join(format!("{case}.token"));
        write_private(&token_file, &token);
        let file = workdir.path().join(format!("{case}.json"));
        let body = serde_json::json!({
            "type": "external_account",
            "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": emulators.token_url(),
            "service_account_impersonation_url": emulators.impersonation_url(gsa),
            "credential_source": {"file": token_file, "format": {"type": "text"}},
        });
        write_private(&file, &body.to_string());
        configs.push((format!("PODIAM_CONFIG_{case}"), file.display().to_string()));
    };
    config("OK", mint(&|_| {}), &audience, GSA);
    config(
        "WRONG_AUDIENCE",
        mint(&|s| s.audiences = vec!["sts.amazonaws.com".to_owned()]),
        &audience,
        GSA,
    );
    config(
        "UNKNOWN_POOL",
        mint(&|_| {}),
        &emulators.provider_audience("no-such-pool", PROVIDER),
        GSA,
    );
    config(
        "MALFORMED_AUDIENCE",
        mint(&|_| {}),
        "//iam.googleapis.com/projects/1234567890/pools/p",
        GSA,
    );
    config("EXPIRED", mint(&|s| s.expired = true), &audience, GSA);
    config("TAMPERED", mint(&|s| s.wrong_key = true), &audience, GSA);
    config("UNBOUND_GSA", mint(&|_| {}), &audience, UNBOUND_GSA);

    let test_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_google_auth.py");
    let run_pytest = |phase: &str| {
        let output = Command::new(python.python())
            // Short tracebacks: the long style prints call arguments, bearer tokens included.
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short"])
            .arg(&test_file)
            // Only what the test needs: no credentials from the developer's environment.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", workdir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("GCE_METADATA_HOST", emulators.metadata_host())
            .env("GCE_METADATA_IP", emulators.metadata_host())
            .env("PODIAM_GCS_URL", emulators.gcs_url())
            .env("PODIAM_PHASE", phase)
            .envs(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // Blocking on purpose: the emulators serve from their own runtime meanwhile.
            .output()
            .expect("run pytest from the venv");
        assert!(
            output.status.success(),
            "pytest ({phase}) failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let bound_summary = run_pytest("bound");
    assert!(bound_summary.contains("passed"), "{bound_summary}");

    // The same pod after the GSA's Workload Identity binding is removed.
    emulators.reset();
    let mut unbound = bound.clone();
    for account in &mut unbound.service_accounts {
        account.iam_policy.bindings.clear();
    }
    emulators
        .apply(&unbound, &variables)
        .expect("apply unbound");
    let unbound_summary = run_pytest("unbound");
    assert!(unbound_summary.contains("passed"), "{unbound_summary}");

    let log = emulators.request_log();
    assert!(
        log.iter()
            .any(|e| e.action.starts_with("sts:token") && e.outcome == "invalid_target"),
        "{log:?}"
    );
    assert!(
        log.iter().any(
            |e| e.action.starts_with("iamcredentials:generateAccessToken")
                && e.outcome == "PERMISSION_DENIED"
        ),
        "{log:?}"
    );
}

/// The seed plus a workload identity pool trusting the test issuer, whose principals may
/// impersonate the seed's GSA; and a GSA nobody may impersonate.
fn bound_setup() -> GcpSetup {
    let mut setup = CloudSetup::seed_gcp().gcp;
    let pool_principal = format!(
        "principal://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/{POOL}/subject/system:serviceaccount:default:gke-service-account"
    );
    setup.service_accounts[0].iam_policy.bindings.push(
        serde_json::from_value(serde_json::json!({
            "role": "roles/iam.workloadIdentityUser",
            "members": [pool_principal],
        }))
        .expect("binding"),
    );
    setup
        .service_accounts
        .push(serde_json::from_value(serde_json::json!({"email": UNBOUND_GSA})).expect("account"));
    setup.workload_identity_pools.push(
        serde_json::from_value(serde_json::json!({
            "pool": POOL, "provider": PROVIDER, "issuer": "${ISSUER}",
        }))
        .expect("pool"),
    );
    setup
}

fn write_private(path: &Path, contents: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create file");
    file.write_all(contents.as_bytes()).expect("write file");
}
