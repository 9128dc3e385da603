//! Tier-2 contract: the strict gate in front of LocalStack (`--aws-backend localstack` and
//! `--aws-backend URL`), with aws-sdk-rust and boto3: AssumeRoleWithWebIdentity granted and
//! refused, IAM role create/get, S3 get/put with the session held to the role's policy.
//! `moto_and_localstack_differ_as_documented` measures the differences docs/localstack.md lists.
//!
//! Needs python3 with venv and a reachable PyPI (the pinned LocalStack venv,
//! `e2e/localstack/requirements.txt`, and moto's) — fails naming them otherwise.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use aws_sdk_sts::error::ProvideErrorMetadata;
use podiam_e2e::emulators::localstack::LocalStackServer;
use podiam_e2e::emulators::{AwsBackend, AwsEmulatorOptions, AwsEmulators, TokenSpec};
use podiam_e2e::localstack_env::LocalStackEnv;
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::CloudSetup;

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "my-pod-role";
const NEEDS: &str = "needs python3 with venv and PyPI for the pinned LocalStack venv";

async fn seeded(backend: AwsBackend) -> AwsEmulators {
    let emulators = AwsEmulators::start(AwsEmulatorOptions {
        backend,
        ..AwsEmulatorOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("AWS emulators start in front of LocalStack ({NEEDS}): {e:#}"));
    emulators
        .apply(&CloudSetup::seed_aws())
        .await
        .expect("the AWS seed applies through the gate to LocalStack");
    emulators
}

fn config(endpoint: &str) -> aws_sdk_sts::config::Builder {
    aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
}

fn sts_with(
    endpoint: &str,
    credentials: Option<aws_credential_types::Credentials>,
) -> aws_sdk_sts::Client {
    let mut builder = config(endpoint);
    if let Some(credentials) = credentials {
        builder = builder.credentials_provider(credentials);
    }
    aws_sdk_sts::Client::from_conf(builder.build())
}

fn s3_with(endpoint: &str, credentials: aws_credential_types::Credentials) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            .build(),
    )
}

fn key(id: &str, secret: &str, token: Option<&str>) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(id, secret, token.map(str::to_owned), None, "contract")
}

async fn assume(
    emulators: &AwsEmulators,
    spec: &TokenSpec,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    (String, String),
> {
    let token = emulators.mint_token(spec).expect("mint");
    sts_with(emulators.gate_url(), None)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn(ROLE))
        .role_session_name("contract-test")
        .web_identity_token(token)
        .send()
        .await
        .map_err(|err| {
            let service = err.as_service_error().expect("a service error");
            (
                service.code().unwrap_or_default().to_owned(),
                service.message().unwrap_or_default().to_owned(),
            )
        })
}

fn s3_error<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, aws_sdk_s3::error::SdkError<E>>,
) -> (String, String) {
    let err = result.expect_err("must be refused");
    let service = err.as_service_error().expect("a service error");
    (
        service.code().unwrap_or_default().to_owned(),
        service.message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn gate_in_front_of_localstack_with_aws_sdk_rust() {
    let emulators = seeded(AwsBackend::LocalStack).await;
    let log = emulators
        .backend_log_file()
        .expect("host-mode LocalStack keeps a log")
        .to_path_buf();
    assert!(log.starts_with(emulators.state_dir()), "{}", log.display());

    // Granted: the gate validated the token, LocalStack minted the session.
    let output = assume(&emulators, &TokenSpec::new("default", "s3-reader"))
        .await
        .expect("the seed's ServiceAccount may assume the role");
    let expected_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/contract-test");
    let user = output.assumed_role_user().expect("user");
    assert_eq!(user.arn(), expected_arn);
    assert_eq!(
        output.subject_from_web_identity_token(),
        Some("system:serviceaccount:default:s3-reader")
    );
    let c = output.credentials().expect("credentials");
    assert!(
        c.access_key_id().starts_with("LSIA"),
        "LocalStack's session keys start LSIA"
    );
    let session = key(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let identity = sts_with(emulators.gate_url(), Some(session.clone()))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the session");
    assert_eq!(identity.arn(), Some(expected_arn.as_str()));
    assert_eq!(identity.account(), Some(ACCOUNT));
    let caller_user_id = identity.user_id().unwrap_or_default().to_owned();
    assert!(caller_user_id.starts_with("AROA") && caller_user_id.ends_with(":contract-test"));

    // S3 through the gate: held to the role's policy (LocalStack itself enforces none).
    let s3 = s3_with(emulators.gate_url(), session.clone());
    let object = s3
        .get_object()
        .bucket("my-bucket")
        .key("hello.txt")
        .send()
        .await
        .expect("GetObject is allowed");
    let body = object.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"hello from podiam");
    let listed = s3
        .list_objects_v2()
        .bucket("my-bucket")
        .send()
        .await
        .expect("ListBucket is allowed");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["hello.txt"]);
    let (code, message) = s3_error(
        s3.put_object()
            .bucket("my-bucket")
            .key("written.txt")
            .body(b"nope".to_vec().into())
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        format!(
            "User: {expected_arn} is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::my-bucket/written.txt\" because no identity-based policy allows the s3:PutObject action"
        )
    );
    let (code, _) = s3_error(s3.get_object().bucket("other-bucket").key("x").send().await);
    assert_eq!(code, "AccessDenied", "no policy names other-bucket");
    // The admin (the account's root) writes; the object is really there.
    let admin = s3_with(emulators.gate_url(), emulators.admin().sdk_credentials());
    admin
        .put_object()
        .bucket("my-bucket")
        .key("by-admin.txt")
        .body(b"admin".to_vec().into())
        .send()
        .await
        .expect("the admin may write");
    let read_back = s3
        .get_object()
        .bucket("my-bucket")
        .key("by-admin.txt")
        .send()
        .await
        .expect("the role reads what the admin wrote");
    assert_eq!(
        &read_back.body.collect().await.expect("body").into_bytes()[..],
        b"admin"
    );

    // Keys LocalStack never issued: refused by the gate (LocalStack would take them as the
    // root of account 000000000000).
    let stranger = key("AKIAUNKNOWNKEY000000", "x", None);
    let (code, _) = s3_error(
        s3_with(emulators.gate_url(), stranger.clone())
            .get_object()
            .bucket("my-bucket")
            .key("hello.txt")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidAccessKeyId");
    let refused = sts_with(emulators.gate_url(), Some(stranger))
        .get_caller_identity()
        .send()
        .await
        .expect_err("an unknown key is refused");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.code()),
        Some("InvalidClientTokenId")
    );

    // Refused exchanges: the gate's strict checks, whatever the backend.
    assert_eq!(
        assume(&emulators, &TokenSpec::new("other", "s3-reader"))
            .await
            .expect_err("other namespace"),
        (
            "AccessDenied".to_owned(),
            "Not authorized to perform sts:AssumeRoleWithWebIdentity".to_owned()
        )
    );
    let mut wrong_audience = TokenSpec::new("default", "s3-reader");
    wrong_audience.audiences = vec!["vault".to_owned()];
    assert_eq!(
        assume(&emulators, &wrong_audience)
            .await
            .expect_err("wrong audience"),
        (
            "InvalidIdentityToken".to_owned(),
            "Incorrect token audience".to_owned()
        )
    );
    let mut expired = TokenSpec::new("default", "s3-reader");
    expired.expired = true;
    let (code, _) = assume(&emulators, &expired).await.expect_err("expired");
    assert_eq!(code, "ExpiredTokenException");

    // IAM through the gate: create and read a role back.
    let iam = emulators.admin().iam_client(emulators.gate_url());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let created = iam
        .create_role()
        .role_name("contract-created")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    let role = created.role().expect("role");
    assert_eq!(
        role.arn(),
        format!("arn:aws:iam::{ACCOUNT}:role/contract-created")
    );
    assert!(role.role_id().starts_with("AROA"));
    let read = iam
        .get_role()
        .role_name("contract-created")
        .send()
        .await
        .expect("GetRole");
    assert_eq!(read.role().expect("role").role_id(), role.role_id());
    let missing = iam
        .get_role()
        .role_name("no-such-role")
        .send()
        .await
        .expect_err("missing role");
    assert_eq!(
        missing.as_service_error().and_then(|e| e.code()),
        Some("NoSuchEntity")
    );
    // An http:// OIDC provider: LocalStack would take it; the gate refuses as IAM does.
    let http_provider = iam
        .create_open_id_connect_provider()
        .url("http://issuer.example")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect_err("http issuer");
    assert_eq!(
        http_provider.as_service_error().and_then(|e| e.code()),
        Some("InvalidInput")
    );

    let log_text = fs::read_to_string(&log).expect("LocalStack's log");
    assert!(log_text.contains("sts.AssumeRoleWithWebIdentity => 200"));
    assert!(
        !log_text.contains(c.secret_access_key()) && !log_text.contains(c.session_token()),
        "LocalStack's log holds no session secret"
    );
}

#[tokio::test]
async fn gate_in_front_of_localstack_with_boto3() {
    let emulators = seeded(AwsBackend::LocalStack).await;
    let python = PythonEnv::ensure().expect("Python venv with boto3 and pytest (python3, PyPI)");
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("token");
    let mint = |adjust: &dyn Fn(&mut TokenSpec)| {
        let mut spec = TokenSpec::new("default", "s3-reader");
        adjust(&mut spec);
        emulators.mint_token(&spec).expect("mint")
    };
    write_private(&token_file, &mint(&|_| {}));
    let unregistered = "https://oidc.eks.eu-west-1.amazonaws.com/id/UNREGISTERED";
    // The same boto3 contract moto's gate passes (tests/contract_boto3.rs).
    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_boto3_web_identity.py");
    let output = Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", token_dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_ROLE_ARN", emulators.role_arn(ROLE))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("PODIAM_UNREGISTERED_ISSUER", unregistered)
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
            mint(&|s| s.issuer = Some(unregistered.to_owned())),
        )
        .env("PODIAM_TOKEN_EXPIRED", mint(&|s| s.expired = true))
        .env("PODIAM_TOKEN_TAMPERED", mint(&|s| s.wrong_key = true))
        .env("PODIAM_TOKEN_GARBAGE", "not-a-jwt")
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

#[tokio::test]
async fn url_backend_fronts_a_running_localstack() {
    let env = tokio::task::spawn_blocking(LocalStackEnv::ensure)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{e}"));
    let state = tempfile::tempdir().expect("temp dir");
    let localstack = LocalStackServer::start(&env, state.path())
        .await
        .expect("LocalStack starts in host mode");
    let emulators = seeded(AwsBackend::Url(localstack.url().to_owned())).await;
    assert_eq!(emulators.backend_url(), localstack.url());
    assert!(emulators.backend_log_file().is_none(), "not ours: no log");
    let output = assume(&emulators, &TokenSpec::new("default", "s3-reader"))
        .await
        .expect("granted through the gate");
    assert_eq!(
        output.assumed_role_user().expect("user").arn(),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/contract-test")
    );
}

/// `--aws-backend localstack-docker` with the default image (built here from the pinned venv
/// with mmdebstrap + `docker import` when missing). Needs a running Docker daemon.
#[tokio::test(flavor = "multi_thread")]
async fn gate_in_front_of_localstack_in_docker() {
    let emulators = seeded(AwsBackend::LocalStackDocker { image: None }).await;
    assert!(
        !emulators.backend_url().contains("127.0.0.1"),
        "the container publishes no host port: {}",
        emulators.backend_url()
    );
    let output = assume(&emulators, &TokenSpec::new("default", "s3-reader"))
        .await
        .expect("granted through the gate");
    let c = output.credentials().expect("credentials");
    assert!(c.access_key_id().starts_with("LSIA"));
    let s3 = s3_with(
        emulators.gate_url(),
        key(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        ),
    );
    let object = s3
        .get_object()
        .bucket("my-bucket")
        .key("hello.txt")
        .send()
        .await
        .expect("GetObject is allowed");
    assert_eq!(
        &object.body.collect().await.expect("body").into_bytes()[..],
        b"hello from podiam"
    );
    let (code, _) = s3_error(
        s3.put_object()
            .bucket("my-bucket")
            .key("x")
            .body(b"x".to_vec().into())
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    let log = emulators.backend_log_file().expect("the container's log");
    let text = fs::read_to_string(log).expect("log");
    assert!(text.contains("Ready."), "{}", log.display());
}

#[tokio::test]
async fn url_backend_that_does_not_answer_is_a_clear_error() {
    // A port nothing listens on: bound and released at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = AwsEmulators::start(AwsEmulatorOptions {
        backend: AwsBackend::Url(url.clone()),
        ..AwsEmulatorOptions::default()
    })
    .await
    .err()
    .expect("nothing answers");
    let text = format!("{error:#}");
    assert!(
        text.contains(&format!("no LocalStack answers at {url}")),
        "{text}"
    );
}

/// The measurements behind docs/localstack.md's table: each backend seeded behind its own
/// gate, then asked directly (bypassing the gate) with the sessions the gate handed out.
#[tokio::test]
async fn moto_and_localstack_differ_as_documented() {
    let moto = AwsEmulators::start_seeded()
        .await
        .expect("moto emulators (python3 with venv, PyPI)");
    let localstack = seeded(AwsBackend::LocalStack).await;
    let mut sessions = Vec::new();
    for emulators in [&moto, &localstack] {
        let output = assume(emulators, &TokenSpec::new("default", "s3-reader"))
            .await
            .expect("granted through the gate");
        let c = output.credentials().expect("credentials");
        sessions.push(key(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        ));
    }
    let (moto_session, ls_session) = (&sessions[0], &sessions[1]);
    // Session key formats.
    assert!(moto_session.access_key_id().starts_with("ASIA"));
    assert!(ls_session.access_key_id().starts_with("LSIA"));
    assert_eq!(ls_session.access_key_id().len(), 20);
    assert_eq!(ls_session.secret_access_key().len(), 40);
    let ls_token = ls_session.session_token().unwrap_or_default();
    assert!(
        ls_token.starts_with("FQoGZXIvYXdzE"),
        "LocalStack's token format"
    );
    eprintln!(
        "measured: session token length moto {} LocalStack {}",
        moto_session.session_token().unwrap_or_default().len(),
        ls_token.len()
    );
    // GetCallerIdentity's UserId for the session, asked of each backend directly, against
    // the role's RoleId.
    for emulators in [&moto, &localstack] {
        let session = if std::ptr::eq(emulators, &moto) {
            moto_session
        } else {
            ls_session
        };
        let identity = sts_with(emulators.backend_url(), Some(session.clone()))
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity on the backend");
        let role = emulators
            .admin()
            .iam_client(emulators.backend_url())
            .get_role()
            .role_name(ROLE)
            .send()
            .await
            .expect("GetRole");
        let role_id = role.role().expect("role").role_id().to_owned();
        eprintln!(
            "measured: {} role id {role_id}, session UserId {:?}, Arn {:?}",
            emulators.backend(),
            identity.user_id(),
            identity.arn()
        );
        assert_eq!(
            identity.arn(),
            Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/contract-test").as_str())
        );
    }
    // S3 PutObject with a read-only role's session: moto enforces the role's policy,
    // LocalStack does not (the gate does it in front of LocalStack).
    let put = |url: &str, credentials: aws_credential_types::Credentials| {
        let s3 = s3_with(url, credentials);
        async move {
            s3.put_object()
                .bucket("my-bucket")
                .key("measured.txt")
                .body(b"x".to_vec().into())
                .send()
                .await
        }
    };
    let (code, message) = s3_error(put(moto.backend_url(), moto_session.clone()).await);
    eprintln!("measured: moto PutObject refused: {code}: {message}");
    assert_eq!(code, "AccessDenied");
    put(localstack.backend_url(), ls_session.clone())
        .await
        .expect("LocalStack community enforces no IAM on S3");
    // A wrong secret: moto checks signatures, LocalStack does not.
    let wrong = |session: &aws_credential_types::Credentials| {
        key(
            session.access_key_id(),
            "wrong-secret",
            session.session_token(),
        )
    };
    let get = |url: &str, credentials: aws_credential_types::Credentials| {
        let s3 = s3_with(url, credentials);
        async move {
            s3.get_object()
                .bucket("my-bucket")
                .key("hello.txt")
                .send()
                .await
        }
    };
    let (code, _) = s3_error(get(moto.backend_url(), wrong(moto_session)).await);
    assert_eq!(code, "SignatureDoesNotMatch");
    get(localstack.backend_url(), wrong(ls_session))
        .await
        .expect("LocalStack checks no signature");
    // An unknown key: moto refuses it, LocalStack answers as the root of 000000000000.
    let stranger = key("AKIAUNKNOWNKEY000000", "x", None);
    let unknown = sts_with(localstack.backend_url(), Some(stranger.clone()))
        .get_caller_identity()
        .send()
        .await
        .expect("LocalStack takes any key");
    assert_eq!(unknown.account(), Some("000000000000"));
    let moto_unknown = sts_with(moto.backend_url(), Some(stranger))
        .get_caller_identity()
        .send()
        .await
        .expect_err("moto refuses an unknown key");
    let moto_code = moto_unknown
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or_default()
        .to_owned();
    let moto_status = moto_unknown.raw_response().map(|r| r.status().as_u16());
    eprintln!("measured: moto unknown key on STS -> HTTP {moto_status:?} code {moto_code:?}");
    // Unsigned AssumeRoleWithWebIdentity straight to moto (IAM enforced): a 500, which is why
    // the gate signs its own call.
    let moto_unsigned = sts_with(moto.backend_url(), None)
        .assume_role_with_web_identity()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"))
        .role_session_name("m")
        .web_identity_token("not-a-jwt")
        .send()
        .await
        .expect_err("moto fails an unsigned call");
    assert_eq!(
        moto_unsigned.raw_response().map(|r| r.status().as_u16()),
        Some(500)
    );
    // Access keys of IAM users: the admin's in moto, a new user's in LocalStack.
    assert!(moto.admin().access_key_id.starts_with("AKIA"));
    let ls_iam = localstack.admin().iam_client(localstack.backend_url());
    ls_iam
        .create_user()
        .user_name("measured")
        .send()
        .await
        .expect("CreateUser");
    let user_key = ls_iam
        .create_access_key()
        .user_name("measured")
        .send()
        .await
        .expect("CreateAccessKey");
    assert!(
        user_key
            .access_key()
            .expect("key")
            .access_key_id()
            .starts_with("LKIA")
    );
    // A missing role, on both.
    for emulators in [&moto, &localstack] {
        let missing = emulators
            .admin()
            .iam_client(emulators.backend_url())
            .get_role()
            .role_name("nope")
            .send()
            .await
            .expect_err("no such role");
        let service = missing.as_service_error().expect("service error");
        eprintln!(
            "measured: {} GetRole missing -> {:?} {:?}",
            emulators.backend(),
            service.code(),
            service.message()
        );
        assert_eq!(service.code(), Some("NoSuchEntity"));
    }
    // Unsigned AssumeRoleWithWebIdentity on a role that does not exist, with any token:
    // LocalStack grants it.
    let granted = sts_with(localstack.backend_url(), None)
        .assume_role_with_web_identity()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/no-such-role"))
        .role_session_name("m")
        .web_identity_token("not-a-jwt")
        .send()
        .await
        .expect("LocalStack checks neither token nor role");
    let user = granted.assumed_role_user().expect("user");
    assert_eq!(user.assumed_role_id(), "ARO123EXAMPLE123:m");
    // An http:// OIDC provider: LocalStack creates it (IAM and the gate refuse).
    let created = localstack
        .admin()
        .iam_client(localstack.backend_url())
        .create_open_id_connect_provider()
        .url("http://issuer.example")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("LocalStack takes an http issuer");
    assert_eq!(
        created.open_id_connect_provider_arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:oidc-provider/issuer.example").as_str())
    );
    // Missing role and missing object/bucket errors, S3 side.
    let (code, message) = s3_error(
        s3_with(localstack.gate_url(), ls_session.clone())
            .get_object()
            .bucket("my-bucket")
            .key("no-such-key")
            .send()
            .await,
    );
    eprintln!("measured: LocalStack (via gate) GetObject missing key -> {code}: {message}");
    let (moto_code, moto_message) = s3_error(
        s3_with(moto.gate_url(), moto_session.clone())
            .get_object()
            .bucket("my-bucket")
            .key("no-such-key")
            .send()
            .await,
    );
    eprintln!("measured: moto (via gate) GetObject missing key -> {moto_code}: {moto_message}");
    assert_eq!(code, moto_code);
}

fn write_private(path: &Path, contents: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create token file");
    file.write_all(contents.as_bytes()).expect("write token");
}
