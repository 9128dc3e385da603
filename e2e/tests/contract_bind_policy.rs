//! Contract: the gate holds the bind operator's key to `deploy/iam/podiam-bind-policy.json`,
//! as AWS would, whatever moto allows it. AWS's own SDK clients (aws-sdk-iam, -eks, -sts, -s3)
//! must get what the policy allows, and refusals in AWS's codes and words: IAM's 403
//! `AccessDenied` ("User: … is not authorized to perform: iam:X on resource: role R because no
//! identity-based policy allows the iam:X action"), EKS's 403 `AccessDeniedException` (the
//! `iam:PassRole` EKS checks, only to `pods.eks.amazonaws.com`), and every call the gate cannot
//! map refused. Nothing refused reaches moto.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use podiam_e2e::emulators::{AwsEmulators, DEFAULT_CLUSTER_NAME};
use podiam_e2e::setup::CloudSetup;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/podiam-e2e-bind-operator";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/my-pod-role";

fn credentials(emulators: &AwsEmulators) -> aws_credential_types::Credentials {
    let (id, secret) = emulators.bind_operator_credentials();
    aws_credential_types::Credentials::new(id, secret, None, None, "bind-operator")
}

fn iam(emulators: &AwsEmulators) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials(emulators))
            .build(),
    )
}

fn eks(emulators: &AwsEmulators) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::Config::builder()
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .region(aws_sdk_eks::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials(emulators))
            .build(),
    )
}

/// HTTP status, error code and message of a refused call.
fn refusal<E: ProvideErrorMetadata + std::fmt::Debug>(
    error: &SdkError<E>,
) -> (u16, String, String) {
    let SdkError::ServiceError(service) = error else {
        panic!("not a service error: {error:?}");
    };
    (
        service.raw().status().as_u16(),
        service.err().code().unwrap_or_default().to_owned(),
        service.err().message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_bind_operator_gets_exactly_the_shipped_policy() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    let iam = iam(&emulators);

    // Allowed: what bind reads and writes.
    let role = iam
        .get_role()
        .role_name("my-pod-role")
        .send()
        .await
        .expect("iam:GetRole is in the policy");
    assert_eq!(role.role().map(|r| r.arn()), Some(ROLE_ARN));
    iam.list_open_id_connect_providers()
        .send()
        .await
        .expect("iam:ListOpenIDConnectProviders is in the policy");
    let identity = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials(&emulators))
            .build(),
    )
    .get_caller_identity()
    .send()
    .await
    .expect("sts:GetCallerIdentity needs no permission");
    assert_eq!(identity.arn(), Some(OPERATOR));

    // Denied: an IAM write the policy does not grant, in IAM's words, and moto never saw it.
    let error = iam
        .put_role_policy()
        .role_name("my-pod-role")
        .policy_name("escalate")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .expect_err("iam:PutRolePolicy is not in the policy");
    assert_eq!(
        refusal(&error),
        (
            403,
            "AccessDenied".to_owned(),
            format!(
                "User: {OPERATOR} is not authorized to perform: iam:PutRolePolicy on resource: role my-pod-role because no identity-based policy allows the iam:PutRolePolicy action"
            )
        )
    );
    let inline = emulators
        .admin()
        .iam_client(emulators.gate_url())
        .list_role_policies()
        .role_name("my-pod-role")
        .send()
        .await
        .expect("admin reads the role");
    assert_eq!(inline.policy_names(), ["s3-read"]);

    // Unmapped: refused, not passed on.
    let error = iam
        .create_user()
        .user_name("another-admin")
        .send()
        .await
        .expect_err("the gate maps no iam:CreateUser");
    let (status, code, message) = refusal(&error);
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(
        message.contains("cannot tell which permission iam:CreateUser needs"),
        "{message}"
    );

    // S3 is not in the policy either.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .force_path_style(true)
            .credentials_provider(credentials(&emulators))
            .build(),
    );
    let error = s3
        .get_object()
        .bucket("my-bucket")
        .key("hello.txt")
        .send()
        .await
        .expect_err("s3:GetObject is not in the policy");
    let SdkError::ServiceError(service) = &error else {
        panic!("not a service error: {error:?}");
    };
    assert_eq!(service.raw().status().as_u16(), 403);
    assert_eq!(service.err().code(), Some("AccessDenied"));

    // EKS: creating an association passes the role to pods.eks.amazonaws.com, which the
    // policy's conditional PassRole allows.
    let created = eks(&emulators)
        .create_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("apps")
        .service_account("reader")
        .role_arn(ROLE_ARN)
        .send()
        .await
        .expect("create with iam:PassRole to EKS pods");
    let id = created
        .association()
        .and_then(|a| a.association_id())
        .expect("id")
        .to_owned();
    // Delete is not in the policy: EKS's refusal, naming the association's ARN.
    let error = eks(&emulators)
        .delete_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .send()
        .await
        .expect_err("eks:DeletePodIdentityAssociation is not in the policy");
    assert_eq!(
        refusal(&error),
        (
            403,
            "AccessDeniedException".to_owned(),
            format!(
                "User: {OPERATOR} is not authorized to perform: eks:DeletePodIdentityAssociation on resource: arn:aws:eks:us-east-1:123456789012:podidentityassociation/{DEFAULT_CLUSTER_NAME}/{id}"
            )
        )
    );

    // The shipped policy minus iam:PassRole: updating the association's role is refused at
    // the PassRole, and the association keeps its role.
    emulators
        .apply(&CloudSetup::from_yaml("aws: {bindPolicyWithout: [iam:PassRole]}").expect("setup"))
        .await
        .expect("apply the reduced policy");
    let error = eks(&emulators)
        .update_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .role_arn(ROLE_ARN)
        .send()
        .await
        .expect_err("no iam:PassRole");
    assert_eq!(
        refusal(&error),
        (
            403,
            "AccessDeniedException".to_owned(),
            format!(
                "User: {OPERATOR} is not authorized to perform: iam:PassRole on resource: {ROLE_ARN}"
            )
        )
    );
    assert_eq!(emulators.pod_identity_associations().len(), 1);
}
