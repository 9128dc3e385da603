//! Tier-2 contract: aws-sdk-sts (a client no one here wrote) against the strict gate.
//!
//! Needs python3 with venv and a reachable PyPI (for moto) — fails naming them otherwise.

use aws_sdk_sts::error::ProvideErrorMetadata;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use podiam_e2e::setup::CloudSetup;

const ROLE: &str = "my-pod-role";

async fn seeded_emulators() -> AwsEmulators {
    AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)")
}

fn anonymous_sts(emulators: &AwsEmulators) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(emulators.gate_url())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

async fn assume(
    emulators: &AwsEmulators,
    token: &str,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    aws_sdk_sts::error::SdkError<
        aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError,
    >,
> {
    anonymous_sts(emulators)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn(ROLE))
        .role_session_name("contract-test")
        .web_identity_token(token)
        .send()
        .await
}

/// The (code, message) of a failed AssumeRoleWithWebIdentity.
async fn assume_error(emulators: &AwsEmulators, spec: &TokenSpec) -> (String, String) {
    let token = emulators.mint_token(spec).expect("mint");
    error_of(assume(emulators, &token).await)
}

fn error_of<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, aws_sdk_sts::error::SdkError<E>>,
) -> (String, String) {
    let err = result.expect_err("must be refused");
    let service = err
        .as_service_error()
        .expect("a service error, not a transport one");
    (
        service.code().unwrap_or_default().to_owned(),
        service.message().unwrap_or_default().to_owned(),
    )
}

fn role_credentials(
    output: &aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
) -> aws_credential_types::Credentials {
    let c = output.credentials().expect("credentials");
    aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "contract-test",
    )
}

#[tokio::test]
async fn right_role_yields_assumed_role_identity() {
    let emulators = seeded_emulators().await;
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");
    let output = assume(&emulators, &token).await.expect("assume role");

    let expected_arn = "arn:aws:sts::123456789012:assumed-role/my-pod-role/contract-test";
    assert_eq!(
        output.assumed_role_user().expect("user").arn(),
        expected_arn
    );
    assert_eq!(
        output.subject_from_web_identity_token(),
        Some("system:serviceaccount:default:s3-reader")
    );
    assert_eq!(output.audience(), Some("sts.amazonaws.com"));
    assert_eq!(
        output.provider(),
        Some(
            format!(
                "arn:aws:iam::123456789012:oidc-provider/{}",
                emulators.issuer_host_path()
            )
            .as_str()
        )
    );

    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(role_credentials(&output))
            .build(),
    );
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(identity.arn(), Some(expected_arn));
    assert_eq!(identity.account(), Some("123456789012"));
    assert_eq!(
        identity.user_id(),
        Some(output.assumed_role_user().expect("user").assumed_role_id())
    );
    assert!(identity.user_id().unwrap_or_default().starts_with("AROA"));
}

#[tokio::test]
async fn role_credentials_are_held_to_the_role_policy_on_s3() {
    let emulators = seeded_emulators().await;
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");
    let output = assume(&emulators, &token).await.expect("assume role");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .force_path_style(true)
            .credentials_provider(role_credentials(&output))
            .build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket("my-bucket")
        .send()
        .await
        .expect("ListBucket is allowed");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["hello.txt"]);

    let put = s3
        .put_object()
        .bucket("my-bucket")
        .key("written.txt")
        .body(b"nope".to_vec().into())
        .send()
        .await;
    let err = put.expect_err("PutObject must be denied");
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("AccessDenied")
    );
}

#[tokio::test]
async fn other_namespace_is_access_denied() {
    let emulators = seeded_emulators().await;
    let (code, message) = assume_error(&emulators, &TokenSpec::new("other", "s3-reader")).await;
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    );
}

#[tokio::test]
async fn wrong_audience_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.audiences = vec!["vault".to_owned()];
    let (code, message) = assume_error(&emulators, &spec).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidIdentityToken", "Incorrect token audience")
    );
}

#[tokio::test]
async fn missing_audience_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.audiences.clear();
    let (code, message) = assume_error(&emulators, &spec).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidIdentityToken", "Missing a required claim: aud")
    );
}

#[tokio::test]
async fn unregistered_issuer_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.issuer = Some("https://oidc.eks.eu-west-1.amazonaws.com/id/UNREGISTERED".to_owned());
    let (code, message) = assume_error(&emulators, &spec).await;
    assert_eq!(code, "InvalidIdentityToken");
    assert_eq!(
        message,
        "No OpenIDConnect provider found in your account for https://oidc.eks.eu-west-1.amazonaws.com/id/UNREGISTERED"
    );
}

#[tokio::test]
async fn expired_token_is_expired_token_exception() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.expired = true;
    let (code, message) = assume_error(&emulators, &spec).await;
    assert_eq!(code, "ExpiredTokenException");
    assert!(
        message.starts_with("Token expired: current date/time "),
        "{message}"
    );
    assert!(
        message.contains(" must be before the expiration date/time "),
        "{message}"
    );
}

#[tokio::test]
async fn token_from_the_future_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    for (claim, adjust) in [
        (
            "not-before",
            (|s: &mut TokenSpec| s.not_before_in_seconds = Some(3600)) as fn(&mut TokenSpec),
        ),
        ("issued-at", |s: &mut TokenSpec| {
            // nbf stays now: only iat is in the future.
            s.issued_at_in_seconds = Some(3600);
            s.not_before_in_seconds = Some(0);
        }),
    ] {
        let mut spec = TokenSpec::new("default", "s3-reader");
        adjust(&mut spec);
        let (code, message) = assume_error(&emulators, &spec).await;
        assert_eq!(code, "InvalidIdentityToken", "{claim}");
        assert!(
            message.starts_with("Token is not valid yet: current date/time ")
                && message.contains(&format!(" is before the {claim} date/time ")),
            "{claim}: {message}"
        );
    }
}

#[tokio::test]
async fn tampered_signature_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.wrong_key = true;
    let (code, _message) = assume_error(&emulators, &spec).await;
    assert_eq!(code, "InvalidIdentityToken");
}

#[tokio::test]
async fn garbage_token_is_invalid_identity_token() {
    let emulators = seeded_emulators().await;
    let (code, _message) = error_of(assume(&emulators, "not-a-jwt").await);
    assert_eq!(code, "InvalidIdentityToken");
}

#[tokio::test]
async fn missing_role_is_access_denied() {
    let emulators = seeded_emulators().await;
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");
    let result = anonymous_sts(&emulators)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn("no-such-role"))
        .role_session_name("contract-test")
        .web_identity_token(token)
        .send()
        .await;
    assert_eq!(error_of(result).0, "AccessDenied");
}

#[tokio::test]
async fn duration_and_session_name_are_honoured() {
    let emulators = seeded_emulators().await;
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");
    let output = anonymous_sts(&emulators)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn(ROLE))
        .role_session_name("botocore-session-42")
        .duration_seconds(900)
        .web_identity_token(&token)
        .send()
        .await
        .expect("assume role");
    assert!(
        output
            .assumed_role_user()
            .expect("user")
            .arn()
            .ends_with("/my-pod-role/botocore-session-42")
    );
    let expiration = output.credentials().expect("credentials").expiration();
    let lifetime = expiration.secs()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
    assert!((800..=900).contains(&lifetime), "lifetime {lifetime}");

    let too_long = anonymous_sts(&emulators)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn(ROLE))
        .role_session_name("s")
        .web_identity_token(&token)
        .send()
        .await;
    assert_eq!(error_of(too_long).0, "ValidationError");
}

#[tokio::test]
async fn request_log_records_outcomes_without_secrets() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("other", "s3-reader");
    let _ = assume_error(&emulators, &spec).await;
    spec.namespace = "default".to_owned();
    let token = emulators.mint_token(&spec).expect("mint");
    assume(&emulators, &token).await.expect("assume role");

    let log = emulators.request_log();
    let outcomes: Vec<&str> = log
        .iter()
        .filter(|e| e.action == "AssumeRoleWithWebIdentity")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["AccessDenied", "200"]);
    let dump = format!("{log:?}");
    assert!(
        !dump.contains(&token),
        "the request log must not hold tokens"
    );
}

#[tokio::test]
async fn unreachable_issuer_is_idp_communication_error() {
    let emulators = seeded_emulators().await;
    // Registered in IAM, but nothing serves its discovery document.
    let down = "https://127.0.0.1:9/id/DOWN";
    let setup = CloudSetup::from_yaml(&format!(
        "aws:\n  oidcProviders:\n    - url: {down}\n      clientIds: [sts.amazonaws.com]\n"
    ))
    .expect("setup");
    emulators.apply(&setup).await.expect("register provider");
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.issuer = Some(down.to_owned());
    let (code, _message) = assume_error(&emulators, &spec).await;
    assert_eq!(code, "IDPCommunicationError");
}

#[tokio::test]
async fn query_string_form_is_handled_too() {
    let emulators = seeded_emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.expired = true;
    let token = emulators.mint_token(&spec).expect("mint");
    let url = url::Url::parse_with_params(
        &format!("{}/", emulators.gate_url()),
        [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", emulators.role_arn(ROLE).as_str()),
            ("RoleSessionName", "get-form"),
            ("WebIdentityToken", token.as_str()),
        ],
    )
    .expect("url");
    let response = reqwest::get(url).await.expect("GET");
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("<Code>ExpiredTokenException</Code>"),
        "{body}"
    );
}

/// An unsigned call other than AssumeRoleWithWebIdentity: AWS's 403, not moto's 500.
#[tokio::test]
async fn unsigned_get_caller_identity_is_missing_authentication_token() {
    let emulators = AwsEmulators::start(Default::default())
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    let response = reqwest::Client::new()
        .get(format!(
            "{}/?Action=GetCallerIdentity&Version=2011-06-15",
            emulators.gate_url()
        ))
        .send()
        .await
        .expect("the gate answers");
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oidc_provider_that_is_not_https_is_refused() {
    let emulators = seeded_emulators().await;
    let (id, secret) = emulators.admin_credentials();
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(emulators.gate_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            id, secret, None, None, "test",
        ))
        .build();
    let iam = aws_sdk_iam::Client::from_conf(config);
    let (code, message) = error_of(
        iam.create_open_id_connect_provider()
            .url("http://oidc.example.com/id/PLAIN")
            .client_id_list("sts.amazonaws.com")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidInput");
    assert!(message.contains("must begin with https://"), "{message}");
    let listed = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list providers");
    assert!(
        !listed
            .open_id_connect_provider_list()
            .iter()
            .any(|p| p.arn().unwrap_or_default().contains("oidc.example.com")),
        "the refused provider must not exist"
    );
    // An https one is created as before.
    iam.create_open_id_connect_provider()
        .url("https://oidc.example.com/id/TLS")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("an https provider is accepted");
}
