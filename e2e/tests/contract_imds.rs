//! Contract: SDK clients no one here wrote against the node metadata emulators on 127.0.0.1.
//! - aws-config's `ImdsCredentialsProvider` (Rust) and botocore's IMDS provider chain and
//!   `InstanceMetadataFetcher` (pytest, `AWS_EC2_METADATA_SERVICE_ENDPOINT`): the instance
//!   role's credentials, minted by moto, name `assumed-role/ROLE/i-…` in GetCallerIdentity; a
//!   role that does not trust EC2, a node without instance profile and a pod behind hop limit 1
//!   give no credentials.
//! - azure-identity's `ManagedIdentityCredential` (pytest, `AZURE_POD_IDENTITY_AUTHORITY_HOST`
//!   redirects its IMDS requests, in azure-identity's `imds.py` and MSAL's
//!   `managed_identity.py`): the node identity's token reads the Blob container it has a role
//!   on; a node without identity is "unavailable".
//!
//! Needs python3 with venv and a reachable PyPI (moto, boto3, azure-identity) — fails naming
//! them otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use podiam_e2e::emulators::azure::{AzureEmulatorOptions, AzureEmulators, AzureSetup};
use podiam_e2e::emulators::gcp::{Caller, CallingPod, ConnectionAddresses, PodResolver};
use podiam_e2e::emulators::node_metadata::{
    AwsBackend, AwsNodeSetup, AzureNodeSetup, ManagedIdentitySetup, NodeMetadata, NodeRoute,
    NodeSetup, router,
};
use podiam_e2e::emulators::{AwsEmulators, REGION};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::{CloudSetup, SetupVariables};

const NAMESPACE: &str = "imds-contract";
const NODE_CLIENT_ID: &str = "6f1c2d3e-0000-4000-8000-00000000ce11";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const ROLES: &str = r#"
aws:
  roles:
    - name: node-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: sts:AssumeRole
    - name: pods-only-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: pods.eks.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
"#;

/// A node metadata listener on 127.0.0.1 where 127.0.0.1 is a pod of [`NAMESPACE`], whose
/// node is `node` (its AWS and Azure backends as given).
async fn serve(
    node: NodeSetup,
    aws: Option<AwsBackend>,
    azure: Option<&AzureEmulators>,
) -> SocketAddr {
    let pod = Caller::Pod(CallingPod {
        namespace: NAMESPACE.to_owned(),
        name: "app".to_owned(),
        service_account: "default".to_owned(),
        gsa_annotation: None,
        started_at: None,
    });
    let resolver = PodResolver::Static(HashMap::from([(LOCALHOST, pod)]));
    // Shorter than the default hold, longer than the SDKs' 1 s timeouts.
    let metadata =
        Arc::new(NodeMetadata::new(Arc::new(resolver)).with_drop_hold(Duration::from_secs(3)));
    metadata.route_namespace(
        NAMESPACE,
        NodeRoute {
            node,
            aws,
            azure: azure.map(AzureEmulators::managed_identity_tokens),
        },
    );
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = router(metadata).into_make_service_with_connect_info::<ConnectionAddresses>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    address
}

fn aws_node(role: Option<&str>, hop_limit: u8) -> NodeSetup {
    NodeSetup {
        aws: Some(AwsNodeSetup {
            instance_role: role.map(str::to_owned),
            hop_limit,
            ..AwsNodeSetup::default()
        }),
        ..NodeSetup::default()
    }
}

fn backend(emulators: &AwsEmulators) -> AwsBackend {
    AwsBackend {
        moto_url: emulators.moto_url().to_owned(),
        admin: emulators.admin().clone(),
        account_id: emulators.account_id().to_owned(),
        region: emulators.region().to_owned(),
    }
}

fn aws_config_provider(
    address: SocketAddr,
) -> aws_config::imds::credentials::ImdsCredentialsProvider {
    let client = aws_config::imds::Client::builder()
        .endpoint(format!("http://{address}"))
        .expect("endpoint")
        .max_attempts(1)
        .build();
    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
        .imds_client(client)
        .build()
}

struct Endpoints {
    good: SocketAddr,
    untrusted: SocketAddr,
    no_profile: SocketAddr,
    hop_one: SocketAddr,
}

async fn aws_endpoints(emulators: &AwsEmulators) -> Endpoints {
    Endpoints {
        good: serve(
            aws_node(Some("node-role"), 2),
            Some(backend(emulators)),
            None,
        )
        .await,
        untrusted: serve(
            aws_node(Some("pods-only-role"), 2),
            Some(backend(emulators)),
            None,
        )
        .await,
        no_profile: serve(aws_node(None, 2), Some(backend(emulators)), None).await,
        hop_one: serve(
            aws_node(Some("node-role"), 1),
            Some(backend(emulators)),
            None,
        )
        .await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_config_imds_credentials_name_the_instance_role() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(ROLES).expect("roles parse"))
        .await
        .expect("roles created");
    let endpoints = aws_endpoints(&emulators).await;

    let credentials = aws_config_provider(endpoints.good)
        .provide_credentials()
        .await
        .expect("aws-config gets the instance role's credentials");
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(REGION))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials)
            .build(),
    );
    let arn = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the instance role's credentials")
        .arn()
        .unwrap_or_default()
        .to_owned();
    let prefix = format!(
        "arn:aws:sts::{}:assumed-role/node-role/i-",
        emulators.account_id()
    );
    assert!(arn.starts_with(&prefix), "caller {arn}");

    for (what, address) in [
        ("a role that does not trust EC2", endpoints.untrusted),
        ("a node without instance profile", endpoints.no_profile),
        ("a pod behind hop limit 1", endpoints.hop_one),
    ] {
        let refused = aws_config_provider(address).provide_credentials().await;
        assert!(refused.is_err(), "aws-config got credentials from {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn botocore_imds_provider_contract() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(ROLES).expect("roles parse"))
        .await
        .expect("roles created");
    let endpoints = aws_endpoints(&emulators).await;
    let python = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("Python venv with boto3 and pytest");
    let home = tempfile::tempdir().expect("temp dir");
    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_botocore_imds.py");
    let url = |address: SocketAddr| format!("http://{address}/");
    let output = tokio::process::Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        // Only what the test needs: no keys, profiles or web identity from this machine.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", url(endpoints.good))
        .env("PODIAM_STS_ENDPOINT", emulators.gate_url())
        .env("PODIAM_IMDS_UNTRUSTED", url(endpoints.untrusted))
        .env("PODIAM_IMDS_NO_PROFILE", url(endpoints.no_profile))
        .env("PODIAM_IMDS_HOP_ONE", url(endpoints.hop_one))
        .env(
            "PODIAM_EXPECTED_ARN_PREFIX",
            format!(
                "arn:aws:sts::{}:assumed-role/node-role/i-",
                emulators.account_id()
            ),
        )
        .output()
        .await
        .expect("run pytest from the venv");
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_identity_managed_identity_credential_contract() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let azure = AzureEmulators::start(AzureEmulatorOptions::default())
        .await
        .expect("Azure emulators start");
    let mut setup = AzureSetup::seed();
    setup.storage_accounts[0].role_assignments[0].principal = NODE_CLIENT_ID.to_owned();
    azure
        .apply(
            &setup,
            &SetupVariables {
                issuer: "https://127.0.0.1:1/unused".to_owned(),
                account_id: String::new(),
            },
        )
        .expect("setup applies");
    let with_identity = serve(
        NodeSetup {
            azure: Some(AzureNodeSetup {
                managed_identity: Some(ManagedIdentitySetup {
                    client_id: NODE_CLIENT_ID.to_owned(),
                    principal_id: None,
                    resource_id: None,
                }),
            }),
            ..NodeSetup::default()
        },
        None,
        Some(&azure),
    )
    .await;
    let without_identity = serve(
        NodeSetup {
            azure: Some(AzureNodeSetup::default()),
            ..NodeSetup::default()
        },
        None,
        Some(&azure),
    )
    .await;
    let python = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("Python venv with azure-identity, azure-storage-blob and pytest");
    let home = tempfile::tempdir().expect("temp dir");
    let test_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_azure_imds.py");
    let output = tokio::process::Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("REQUESTS_CA_BUNDLE", azure.ca_bundle_file())
        .env("SSL_CERT_FILE", azure.ca_bundle_file())
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{with_identity}"),
        )
        .env(
            "PODIAM_IMDS_WITHOUT_IDENTITY",
            format!("http://{without_identity}"),
        )
        .env("PODIAM_NODE_CLIENT_ID", NODE_CLIENT_ID)
        .env(
            "PODIAM_BLOB_ACCOUNT_URL",
            format!("{}/mystorageaccount", azure.blob_https_endpoint()),
        )
        .output()
        .await
        .expect("run pytest from the venv");
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
