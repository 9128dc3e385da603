//! Contract: aws-sdk-eksauth (AWS's generated Rust client, not ours) against the EKS Auth
//! emulator on the gate. The SDK must parse every answer — the grant and each error into its
//! modeled exception — and the granted credentials must be the role's on STS.

use aws_sdk_eksauth::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eksauth::operation::assume_role_for_pod_identity::AssumeRoleForPodIdentityError;
use podiam_e2e::emulators::{AwsEmulators, DEFAULT_CLUSTER_NAME, TokenSpec};
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
    - name: no-tag-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: pods.eks.amazonaws.com}
            Action: sts:AssumeRole
  podIdentityAssociations:
    - {namespace: apps, serviceAccount: reader, roleName: pod-role}
    - {namespace: apps, serviceAccount: ec2-trusted, roleName: ec2-role}
    - {namespace: apps, serviceAccount: no-tag, roleName: no-tag-role}
    - {namespace: apps, serviceAccount: ghost, roleArn: "arn:aws:iam::123456789012:role/deleted-role"}
"#;

fn client(emulators: &AwsEmulators, key: Option<(&str, &str)>) -> aws_sdk_eksauth::Client {
    let (id, secret) = emulators.admin_credentials();
    let (id, secret) = key.unwrap_or((&id, &secret));
    let config = aws_sdk_eksauth::Config::builder()
        .behavior_version(aws_sdk_eksauth::config::BehaviorVersion::latest())
        .region(aws_sdk_eksauth::config::Region::new("us-east-1"))
        .endpoint_url(emulators.gate_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            id, secret, None, None, "test",
        ))
        .build();
    aws_sdk_eksauth::Client::from_conf(config)
}

fn token(emulators: &AwsEmulators, adjust: impl Fn(&mut TokenSpec)) -> String {
    let mut spec = TokenSpec::new("apps", "reader");
    spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
    spec.pod_name = Some("reader-pod".to_owned());
    adjust(&mut spec);
    emulators.mint_token(&spec).expect("mint")
}

/// The modeled exception's name, or a panic naming what came back instead.
async fn refusal(client: &aws_sdk_eksauth::Client, cluster: &str, token: &str) -> String {
    match client
        .assume_role_for_pod_identity()
        .cluster_name(cluster)
        .token(token)
        .send()
        .await
    {
        Ok(_) => panic!("expected a refusal, got credentials"),
        Err(SdkError::ServiceError(e)) => {
            let err = e.err();
            let modeled = match err {
                AssumeRoleForPodIdentityError::AccessDeniedException(_) => "AccessDeniedException",
                AssumeRoleForPodIdentityError::ExpiredTokenException(_) => "ExpiredTokenException",
                AssumeRoleForPodIdentityError::InvalidTokenException(_) => "InvalidTokenException",
                AssumeRoleForPodIdentityError::ResourceNotFoundException(_) => {
                    "ResourceNotFoundException"
                }
                AssumeRoleForPodIdentityError::InvalidParameterException(_) => {
                    "InvalidParameterException"
                }
                AssumeRoleForPodIdentityError::InvalidRequestException(_) => {
                    "InvalidRequestException"
                }
                _ => "unmodeled",
            };
            let code = err.code().unwrap_or_default().to_owned();
            assert!(
                modeled == "unmodeled" || modeled == code,
                "code {code} parsed as {modeled}"
            );
            assert!(
                !err.message().unwrap_or_default().is_empty(),
                "{code} without a message"
            );
            code
        }
        Err(other) => panic!("not a service error: {other:?}"),
    }
}

#[tokio::test]
async fn eksauth_sdk_contract() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).expect("setup"))
        .await
        .expect("apply setup");
    let eks = client(&emulators, None);
    let association = emulators
        .pod_identity_associations()
        .into_iter()
        .find(|a| a.service_account == "reader")
        .expect("the reader association");

    // The grant, field by field as the SDK parsed it.
    let out = eks
        .assume_role_for_pod_identity()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .token(token(&emulators, |_| {}))
        .send()
        .await
        .expect("EKS Auth grants the associated role");
    let subject = out.subject().expect("subject");
    assert_eq!(
        (subject.namespace(), subject.service_account()),
        ("apps", "reader")
    );
    assert_eq!(out.audience(), "pods.eks.amazonaws.com");
    let granted_association = out.pod_identity_association().expect("association");
    assert_eq!(
        granted_association.association_id(),
        association.association_id
    );
    assert_eq!(
        granted_association.association_arn(),
        association.association_arn
    );
    assert!(
        association
            .association_arn
            .starts_with("arn:aws:eks:us-east-1:123456789012:podidentityassociation/podiam-e2e/a-")
    );
    let role_user = out.assumed_role_user().expect("assumedRoleUser");
    assert!(
        role_user.arn().starts_with(
            "arn:aws:sts::123456789012:assumed-role/pod-role/eks-podiam-e2e-reader-pod-"
        ),
        "{}",
        role_user.arn()
    );
    let credentials = out.credentials().expect("credentials");
    assert!(credentials.expiration().secs() > 0);

    // The credentials are the role's: STS says so, with the same session.
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(aws_credential_types::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                None,
                "granted",
            ))
            .build(),
    );
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .expect("caller identity");
    assert_eq!(me.arn(), Some(role_user.arn()));

    // Each refusal, as the SDK names it.
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "no association for the ServiceAccount",
            token(&emulators, |s| s.service_account = "nobody".to_owned()),
            DEFAULT_CLUSTER_NAME,
            "ResourceNotFoundException",
        ),
        (
            "unknown cluster",
            token(&emulators, |_| {}),
            "other-cluster",
            "ResourceNotFoundException",
        ),
        (
            "audience sts.amazonaws.com",
            token(&emulators, |s| {
                s.audiences = vec!["sts.amazonaws.com".to_owned()]
            }),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "expired",
            token(&emulators, |s| s.expired = true),
            DEFAULT_CLUSTER_NAME,
            "ExpiredTokenException",
        ),
        (
            "not valid before an hour from now",
            token(&emulators, |s| s.not_before_in_seconds = Some(3600)),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "issued an hour from now",
            token(&emulators, |s| {
                // nbf stays now: only iat is in the future.
                s.issued_at_in_seconds = Some(3600);
                s.not_before_in_seconds = Some(0);
            }),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "signed by another key",
            token(&emulators, |s| s.wrong_key = true),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "another cluster's issuer",
            token(&emulators, |s| {
                s.issuer = Some("https://oidc.eks.us-east-1.amazonaws.com/id/OTHER".to_owned())
            }),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_owned(),
            DEFAULT_CLUSTER_NAME,
            "InvalidTokenException",
        ),
        (
            "role trusts ec2.amazonaws.com",
            token(&emulators, |s| s.service_account = "ec2-trusted".to_owned()),
            DEFAULT_CLUSTER_NAME,
            "AccessDeniedException",
        ),
        (
            "trust lacks sts:TagSession",
            token(&emulators, |s| s.service_account = "no-tag".to_owned()),
            DEFAULT_CLUSTER_NAME,
            "AccessDeniedException",
        ),
        (
            "associated role deleted",
            token(&emulators, |s| s.service_account = "ghost".to_owned()),
            DEFAULT_CLUSTER_NAME,
            "AccessDeniedException",
        ),
    ];
    for (what, token, cluster, expected) in &cases {
        assert_eq!(&refusal(&eks, cluster, token).await, expected, "{what}");
    }
    let stranger = client(&emulators, Some(("AKIASTRANGER0000000", "not-a-secret")));
    assert_eq!(
        refusal(&stranger, DEFAULT_CLUSTER_NAME, &token(&emulators, |_| {})).await,
        "UnrecognizedClientException",
        "a key the account does not know"
    );

    let outcomes: Vec<String> = emulators
        .request_log()
        .into_iter()
        .filter(|e| e.action == "AssumeRoleForPodIdentity")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes.len(), cases.len() + 2, "{outcomes:?}");
    assert_eq!(outcomes[0], "200");
}
