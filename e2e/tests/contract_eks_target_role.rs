//! Contract: EKS Pod Identity `targetRoleArn` (cross-account role chaining) with aws-sdk-eks
//! (UpdatePodIdentityAssociation) and aws-sdk-eksauth (AssumeRoleForPodIdentity) against the
//! gate: the grant is the target role's session when the target trusts the association's role,
//! and AccessDeniedException otherwise.

use aws_sdk_eksauth::error::ProvideErrorMetadata;
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
    - name: target-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/pod-role"}
            Action: sts:AssumeRole
    - name: untrusting-target
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/someone-else"}
            Action: sts:AssumeRole
  podIdentityAssociations:
    - {namespace: apps, serviceAccount: reader, roleName: pod-role}
"#;

#[tokio::test]
async fn the_grant_is_the_target_roles_when_it_trusts_the_association_role() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).expect("setup"))
        .await
        .expect("apply setup");
    let (id, secret) = emulators.admin_credentials();
    let credentials = aws_credential_types::Credentials::new(id, secret, None, None, "test");
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::Config::builder()
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .region(aws_sdk_eks::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials.clone())
            .build(),
    );
    let eks_auth = aws_sdk_eksauth::Client::from_conf(
        aws_sdk_eksauth::Config::builder()
            .behavior_version(aws_sdk_eksauth::config::BehaviorVersion::latest())
            .region(aws_sdk_eksauth::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials)
            .build(),
    );
    let association = emulators
        .pod_identity_associations()
        .into_iter()
        .find(|a| a.service_account == "reader")
        .expect("the reader association");
    let mut spec = TokenSpec::new("apps", "reader");
    spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
    spec.pod_name = Some("reader-pod".to_owned());
    let token = emulators.mint_token(&spec).expect("mint");

    let set_target = |target: &str| {
        eks.update_pod_identity_association()
            .cluster_name(DEFAULT_CLUSTER_NAME)
            .association_id(&association.association_id)
            .target_role_arn(target)
            .send()
    };
    let updated = set_target(&emulators.role_arn("target-role"))
        .await
        .expect("UpdatePodIdentityAssociation with targetRoleArn");
    assert_eq!(
        updated.association().and_then(|a| a.target_role_arn()),
        Some(emulators.role_arn("target-role").as_str())
    );
    let granted = eks_auth
        .assume_role_for_pod_identity()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .token(&token)
        .send()
        .await
        .expect("EKS Auth chains to the target role");
    let arn = granted.assumed_role_user().expect("user").arn();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/target-role/"),
        "{arn}"
    );

    set_target(&emulators.role_arn("untrusting-target"))
        .await
        .expect("update");
    let refused = eks_auth
        .assume_role_for_pod_identity()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .token(&token)
        .send()
        .await
        .expect_err("the target does not trust pod-role");
    let service = refused.as_service_error().expect("a service error");
    assert_eq!(service.code(), Some("AccessDeniedException"));
    assert!(
        service
            .message()
            .unwrap_or_default()
            .contains("untrusting-target"),
        "{:?}",
        service.message()
    );
}
