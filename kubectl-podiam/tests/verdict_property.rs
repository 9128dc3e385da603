//! The judge's verdict invariant over generated pods (issue 11): for every mechanism and every
//! evidence path that runs without a cluster (`verify -f` documents, templates and dumps, with
//! and without `--token-file`, exchanges that get no answer), a pod whose identity could not be
//! established is never a pass and never exits 0, and no expectation flag vanishes.
//!
//! Bounded: 400 cases from a fixed seed (the same corpus every CI run; `PROPTEST_RNG_SEED`
//! overrides it), every cloud endpoint a closed local port with one attempt.

use std::path::Path;

use proptest::prelude::*;

use podiam::error::Exit;
use podiam::evidence::{OfflineToken, Probe};
use podiam::expectations;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{ReportItem, Status, Verdict};
use podiam::network_policy::ManifestNetworkPolicies;
use podiam::options::{AccessExpectation, VerifyOptions};
use podiam::rbac::ManifestRbac;

/// Nothing listens here: every exchange is "unreachable" at once.
const CLOSED: &str = "http://127.0.0.1:1";
const ROLE: &str = "arn:aws:iam::123456789012:role/my-pod-role";
const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// One generated pod: the ServiceAccount's annotations, the target container's env, how the
/// document was written, and what the user expects.
#[derive(Debug, Clone)]
struct Case {
    sa_irsa: Option<&'static str>,
    sa_gsa: bool,
    sa_azure: bool,
    pod_azure_label: bool,
    env: Vec<&'static str>,
    gke_node_selector: bool,
    dump: bool,
    sidecar: bool,
    skip_app: bool,
    expect_role: Option<&'static str>,
    expect_gsa: Option<&'static str>,
    expect_client_id: Option<&'static str>,
    access: Vec<(&'static str, bool)>,
    allow_skip: bool,
    token: Option<TokenSpec>,
}

#[derive(Debug, Clone)]
struct TokenSpec {
    sa: &'static str,
    aud: &'static str,
    expired: bool,
    garbage: bool,
}

/// Env blocks of the target container (YAML list items, 8 spaces).
fn env_block(name: &str) -> &'static str {
    match name {
        "irsa" => {
            "        - {name: AWS_ROLE_ARN, value: 'arn:aws:iam::123456789012:role/preset-role'}\n        - {name: AWS_WEB_IDENTITY_TOKEN_FILE, value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token}\n"
        }
        "pod-identity" => {
            "        - {name: AWS_CONTAINER_CREDENTIALS_FULL_URI, value: 'http://169.254.170.23/v1/credentials'}\n        - {name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, value: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token}\n"
        }
        "aws-keys" => {
            "        - {name: AWS_ACCESS_KEY_ID, value: AKIAEXAMPLE}\n        - {name: AWS_SECRET_ACCESS_KEY, value: not-a-secret}\n"
        }
        "azure-secret" => "        - {name: AZURE_CLIENT_SECRET, value: not-a-secret}\n",
        "azure-wi" => {
            "        - {name: AZURE_CLIENT_ID, value: 99999999-2222-3333-4444-555555555555}\n        - {name: AZURE_TENANT_ID, value: 72f988bf-86f1-41af-91ab-2d7cd011db47}\n        - {name: AZURE_FEDERATED_TOKEN_FILE, value: /var/run/secrets/azure/tokens/azure-identity-token}\n"
        }
        "gcp-federated" => {
            "        - {name: GOOGLE_APPLICATION_CREDENTIALS, value: /etc/gcp/credential-configuration.json}\n"
        }
        other => panic!("unknown env block {other}"),
    }
}

fn yaml(case: &Case) -> String {
    let mut sa_annotations = String::from("    podiam.dev/generated: \"true\"\n");
    if let Some(role) = case.sa_irsa {
        sa_annotations.push_str(&format!("    eks.amazonaws.com/role-arn: '{role}'\n"));
    }
    if case.sa_gsa {
        sa_annotations.push_str(&format!("    iam.gke.io/gcp-service-account: {GSA}\n"));
    }
    if case.sa_azure {
        sa_annotations.push_str(&format!(
            "    azure.workload.identity/client-id: '{CLIENT_ID}'\n    azure.workload.identity/tenant-id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
        ));
    }
    let config_map = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: wif-config, namespace: default}}
data:
  credential-configuration.json: |
    {{"type": "external_account",
     "audience": "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-pool/providers/my-provider",
     "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
     "token_url": "{CLOSED}/v1/token",
     "service_account_impersonation_url": "{CLOSED}/v1/projects/-/serviceAccounts/{GSA}:generateAccessToken",
     "credential_source": {{"file": "/var/run/service-account/token", "format": {{"type": "text"}}}}}}
"#
    );
    let mut meta = String::from("{name: app-pod, namespace: default");
    if case.dump {
        meta.push_str(", uid: 0b0e6ad7-2f7e-4a8e-9a57-0c7d1b8f2a11");
    }
    let mut annotations = Vec::new();
    if case.skip_app {
        annotations.push("eks.amazonaws.com/skip-containers: app");
    }
    if !annotations.is_empty() {
        meta.push_str(&format!(", annotations: {{{}}}", annotations.join(", ")));
    }
    if case.pod_azure_label {
        meta.push_str(", labels: {azure.workload.identity/use: \"true\"}");
    }
    meta.push('}');
    let env: String = case.env.iter().map(|e| env_block(e)).collect();
    let env = if env.is_empty() {
        String::new()
    } else {
        format!("      env:\n{env}")
    };
    let federated = case.env.contains(&"gcp-federated");
    let mounts = if federated {
        "      volumeMounts: [{name: gcp-config, mountPath: /etc/gcp}]\n"
    } else {
        ""
    };
    let volumes = if federated {
        "  volumes: [{name: gcp-config, configMap: {name: wif-config}}]\n"
    } else if case.env.contains(&"pod-identity") {
        "  volumes:\n    - name: eks-pod-identity-token\n      projected: {sources: [{serviceAccountToken: {audience: pods.eks.amazonaws.com, expirationSeconds: 86400, path: eks-pod-identity-token}}]}\n"
    } else {
        ""
    };
    let node_selector = if case.gke_node_selector {
        "  nodeSelector: {iam.gke.io/gke-metadata-server-enabled: \"true\"}\n"
    } else {
        ""
    };
    let sidecar = if case.sidecar {
        "    - {name: sidecar, image: busybox}\n"
    } else {
        ""
    };
    let status = if case.dump {
        "status: {phase: Running}\n"
    } else {
        ""
    };
    let sa_labels = if case.sa_azure {
        "  labels: {azure.workload.identity/use: \"true\"}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: default\n{sa_labels}  annotations:\n{sa_annotations}---\n{config_map}---\napiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec:\n  serviceAccountName: app\n{node_selector}  containers:\n    - name: app\n      image: amazonlinux\n{env}{mounts}{sidecar}{volumes}{status}"
    )
}

/// An unsigned JWT with the claims the plugin reads (never a real token).
fn token(spec: &TokenSpec) -> Vec<u8> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if spec.garbage {
        return b"not-a-jwt".to_vec();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = if spec.expired { now - 60 } else { now + 3600 };
    let payload = serde_json::json!({
        "iss": "https://oidc.example.test",
        "sub": format!("system:serviceaccount:default:{}", spec.sa),
        "aud": [spec.aud],
        "exp": exp,
        "iat": now - 10,
    });
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
    .into_bytes()
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let env = proptest::sample::subsequence(
        vec![
            "irsa",
            "pod-identity",
            "aws-keys",
            "azure-secret",
            "azure-wi",
            "gcp-federated",
        ],
        0..=2,
    );
    let access = proptest::sample::subsequence(
        vec![
            ("s3:ListBucket=my-bucket", true),
            ("s3:PutObject=my-bucket/x", false),
            ("gcs:list=my-bucket", true),
            ("blob:list=acct/cont", true),
        ],
        0..=2,
    );
    let token = proptest::option::of(
        (
            prop::sample::select(vec!["app", "other"]),
            prop::sample::select(vec![
                "sts.amazonaws.com",
                "pods.eks.amazonaws.com",
                "api://AzureADTokenExchange",
                "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-pool/providers/my-provider",
            ]),
            any::<bool>(),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(sa, aud, expired, garbage)| TokenSpec {
                sa,
                aud,
                expired,
                garbage,
            }),
    );
    let wiring = (
        proptest::option::of(prop::sample::select(vec![ROLE, "not-an-arn"])),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        env,
        any::<bool>(),
    );
    let shape = (any::<bool>(), any::<bool>(), prop::bool::weighted(0.15));
    let wanted = (
        proptest::option::of(prop::sample::select(vec![
            ROLE,
            "arn:aws:iam::111111111111:role/wrong",
        ])),
        proptest::option::of(prop::sample::select(vec![
            GSA,
            "other@p.iam.gserviceaccount.com",
        ])),
        proptest::option::of(prop::sample::select(vec![
            CLIENT_ID,
            "00000000-0000-0000-0000-000000000000",
        ])),
        access,
        any::<bool>(),
    );
    (wiring, shape, wanted, token).prop_map(
        |(
            (sa_irsa, sa_gsa, sa_azure, pod_azure_label, env, gke_node_selector),
            (dump, sidecar, skip_app),
            (expect_role, expect_gsa, expect_client_id, access, allow_skip),
            token,
        )| Case {
            sa_irsa,
            sa_gsa,
            sa_azure,
            pod_azure_label,
            env,
            gke_node_selector,
            dump,
            sidecar,
            skip_app,
            expect_role,
            expect_gsa,
            expect_client_id,
            access,
            allow_skip,
            token,
        },
    )
}

fn judge_case(rt: &tokio::runtime::Runtime, case: &Case) -> Vec<ReportItem> {
    let text = yaml(case);
    let docs = documents::parse(Path::new("generated.yaml"), &text).expect("generated YAML parses");
    let subjects = subjects::subjects(&docs, "default", None).expect("one pod");
    let mut options = VerifyOptions {
        expect_role: case.expect_role.map(str::to_string),
        expect_gsa: case.expect_gsa.map(str::to_string),
        expect_client_id: case.expect_client_id.map(str::to_string),
        access: case
            .access
            .iter()
            .map(|(spec, allowed)| AccessExpectation::parse(spec, *allowed).unwrap())
            .collect(),
        allow_skip: case.allow_skip,
        ..Default::default()
    };
    options.aws.endpoint_url = Some(CLOSED.into());
    options.aws.timeout = Some(std::time::Duration::from_secs(2));
    options.azure.authority_host = Some("https://127.0.0.1:1/".into());
    options.azure.blob_endpoint = Some(CLOSED.into());
    options.azure.timeout = Some(std::time::Duration::from_secs(2));
    options.gcp.gcs_endpoint_url = Some(CLOSED.into());
    options.gcp.timeout = Some(std::time::Duration::from_secs(2));
    options.rbac.manifests = ManifestRbac::from_documents(&docs, "default").unwrap();
    options.manifest_network_policies =
        Some(ManifestNetworkPolicies::from_documents(&docs, "default").unwrap());
    let probe = Probe::Offline {
        token: case.token.as_ref().map(|t| OfflineToken {
            bytes: token(t),
            origin: "token from --token-file (generated)".into(),
        }),
    };
    subjects
        .iter()
        .map(|s| rt.block_on(judge(s, &probe, &options)))
        .collect()
}

/// Every flag the case gave has a check of its own.
fn flags_have_checks(case: &Case, item: &ReportItem) -> Result<(), String> {
    let has = |id: &str| item.checks.iter().any(|c| c.id == id);
    for (given, id) in [
        (case.expect_role.is_some(), expectations::EXPECTED_ROLE),
        (case.expect_gsa.is_some(), expectations::EXPECTED_GSA),
        (
            case.expect_client_id.is_some(),
            expectations::EXPECTED_CLIENT_ID,
        ),
    ] {
        if given && !has(id) {
            return Err(format!("no {id} check"));
        }
    }
    for (spec, _) in &case.access {
        let prefix = format!("{spec}:");
        if !item
            .checks
            .iter()
            .any(|c| expectations::is_expectation(c.id) && c.message.starts_with(&prefix))
        {
            return Err(format!("--can/--cannot {spec} vanished"));
        }
    }
    Ok(())
}

#[test]
fn an_unestablished_identity_is_never_a_pass() {
    // SAFETY: set before any other thread of this test binary starts (it holds one test and
    // builds its runtime afterwards): one attempt per AWS call keeps a closed port instant.
    unsafe {
        std::env::set_var("AWS_MAX_ATTEMPTS", "1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let defaults = ProptestConfig::default();
    let config = ProptestConfig {
        cases: 400,
        failure_persistence: None,
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            defaults.rng_seed
        } else {
            proptest::test_runner::RngSeed::Fixed(0x7665_7264_6963)
        },
        ..defaults
    };
    proptest!(config, |(case in case_strategy())| {
        for item in judge_case(&rt, &case) {
            seen.borrow_mut().insert(format!("{}/{:?}", item.mechanism.as_str(), item.verdict));
            let failed = item.checks.iter().any(|c| c.status == Status::Fail);
            let context = format!("{case:#?}\n{}\n{:#?}", yaml(&case), item);
            if item.identity.is_none() && !failed {
                prop_assert_eq!(item.verdict, Verdict::Incomplete, "{}", context);
            }
            if item.identity.is_none() || item.verdict != Verdict::Pass {
                prop_assert_ne!(Exit::of_items(std::slice::from_ref(&item)), Exit::Verified, "{}", context);
            }
            if item.verdict == Verdict::Pass {
                prop_assert!(item.identity.is_some() && !failed, "{}", context);
            }
            // A skipped expectation is incomplete unless --allow-skip.
            let skipped = item.checks.iter().any(|c| c.status == Status::Skip && expectations::is_expectation(c.id));
            if skipped && !case.allow_skip && !failed {
                prop_assert_eq!(item.verdict, Verdict::Incomplete, "{}", context);
            }
            // info never decides: the verdict is the same without the info checks.
            let without_info: Vec<_> = item.checks.iter().filter(|c| c.status != Status::Info).cloned().collect();
            prop_assert_eq!(
                ReportItem::verdict_of(&without_info, item.identity.as_ref(), case.allow_skip),
                item.verdict,
                "{}", context
            );
            // The JSON verdict is the item's.
            let json = serde_json::to_value(&item).unwrap();
            prop_assert_eq!(json["verdict"].as_str(), Some(match item.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Incomplete => "incomplete",
            }));
            if let Err(e) = flags_have_checks(&case, &item) {
                prop_assert!(false, "{}: {}", e, context);
            }
        }
    });
    // The generator reaches every mechanism, and pods that end incomplete.
    let seen: Vec<String> = seen.into_inner().into_iter().collect();
    for want in [
        "aws-irsa/",
        "aws-pod-identity/",
        "gcp-workload-identity/",
        "azure-workload-identity/",
        "static-credentials/",
        "none/",
        "/Incomplete",
    ] {
        assert!(
            seen.iter().any(|s| s.contains(want)),
            "no generated pod reached {want}: {seen:?}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded: took {:?}",
        started.elapsed()
    );
}
