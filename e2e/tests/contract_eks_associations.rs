//! Contract: aws-sdk-eks (AWS's generated Rust client, not ours) against the gate's EKS
//! control-plane API for Pod Identity associations. The SDK must parse every answer (create,
//! list, describe, update, delete) and each refusal into its modeled exception; an association
//! created through the API must be the one EKS Auth then grants.

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::operation::create_pod_identity_association::CreatePodIdentityAssociationError;
use aws_sdk_eks::operation::describe_pod_identity_association::DescribePodIdentityAssociationError;
use aws_sdk_eks::operation::list_pod_identity_associations::ListPodIdentityAssociationsError;
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
    - name: other-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: pods.eks.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
"#;

const POD_ROLE: &str = "arn:aws:iam::123456789012:role/pod-role";
const OTHER_ROLE: &str = "arn:aws:iam::123456789012:role/other-role";

fn eks_client(emulators: &AwsEmulators, key: Option<(&str, &str)>) -> aws_sdk_eks::Client {
    let (id, secret) = emulators.admin_credentials();
    let (id, secret) = key.unwrap_or((&id, &secret));
    let config = aws_sdk_eks::Config::builder()
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .region(aws_sdk_eks::config::Region::new("us-east-1"))
        .endpoint_url(emulators.gate_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            id, secret, None, None, "test",
        ))
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

fn eks_auth_client(emulators: &AwsEmulators) -> aws_sdk_eksauth::Client {
    let (id, secret) = emulators.admin_credentials();
    aws_sdk_eksauth::Client::from_conf(
        aws_sdk_eksauth::Config::builder()
            .behavior_version(aws_sdk_eksauth::config::BehaviorVersion::latest())
            .region(aws_sdk_eksauth::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(aws_credential_types::Credentials::new(
                id, secret, None, None, "test",
            ))
            .build(),
    )
}

/// The role EKS Auth grants to a pod of apps/reader right now.
async fn granted_role(emulators: &AwsEmulators) -> String {
    let mut spec = TokenSpec::new("apps", "reader");
    spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
    spec.pod_name = Some("reader-pod".to_owned());
    let token = emulators.mint_token(&spec).expect("mint");
    let out = eks_auth_client(emulators)
        .assume_role_for_pod_identity()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .token(token)
        .send()
        .await
        .expect("EKS Auth grants the associated role");
    out.assumed_role_user()
        .expect("assumedRoleUser")
        .arn()
        .to_owned()
}

#[tokio::test]
async fn eks_sdk_association_contract() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).expect("setup"))
        .await
        .expect("apply setup");
    let eks = eks_client(&emulators, None);

    // Create, as the SDK parses it.
    let created = eks
        .create_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("apps")
        .service_account("reader")
        .role_arn(POD_ROLE)
        .send()
        .await
        .expect("create");
    let association = created.association().expect("association");
    let id = association.association_id().expect("id").to_owned();
    assert_eq!(id.len(), 19, "{id}");
    assert!(id.starts_with("a-"));
    assert_eq!(association.cluster_name(), Some(DEFAULT_CLUSTER_NAME));
    assert_eq!(association.namespace(), Some("apps"));
    assert_eq!(association.service_account(), Some("reader"));
    assert_eq!(association.role_arn(), Some(POD_ROLE));
    assert_eq!(
        association.association_arn(),
        Some(
            format!(
                "arn:aws:eks:us-east-1:123456789012:podidentityassociation/{DEFAULT_CLUSTER_NAME}/{id}"
            )
            .as_str()
        )
    );
    assert!(association.created_at().expect("createdAt").secs() > 1_700_000_000);

    // What EKS Auth serves is what the API created.
    assert!(
        granted_role(&emulators)
            .await
            .starts_with("arn:aws:sts::123456789012:assumed-role/pod-role/"),
    );

    // A second association for the same ServiceAccount: ResourceInUseException.
    let error = eks
        .create_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("apps")
        .service_account("reader")
        .role_arn(OTHER_ROLE)
        .send()
        .await
        .expect_err("a second association is refused");
    let SdkError::ServiceError(service) = &error else {
        panic!("not a service error: {error:?}");
    };
    assert!(
        matches!(
            service.err(),
            CreatePodIdentityAssociationError::ResourceInUseException(_)
        ),
        "{:?}",
        service.err()
    );
    assert_eq!(service.raw().status().as_u16(), 409);
    assert_eq!(
        service.err().message(),
        Some(format!("Association already exists: {id}").as_str())
    );

    // An invalid role: InvalidParameterException.
    let error = eks
        .create_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("apps")
        .service_account("writer")
        .role_arn("pod-role")
        .send()
        .await
        .expect_err("a role name is not an ARN");
    assert!(matches!(
        error.as_service_error(),
        Some(CreatePodIdentityAssociationError::InvalidParameterException(_))
    ));

    // List, filtered as the query says.
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("apps")
        .service_account("reader")
        .send()
        .await
        .expect("list");
    let summaries = listed.associations();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].association_id(), Some(id.as_str()));
    assert_eq!(summaries[0].service_account(), Some("reader"));
    let none = eks
        .list_pod_identity_associations()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .namespace("elsewhere")
        .send()
        .await
        .expect("list another namespace");
    assert!(none.associations().is_empty());

    // An unknown cluster: ResourceNotFoundException.
    let error = eks
        .list_pod_identity_associations()
        .cluster_name("no-such-cluster")
        .send()
        .await
        .expect_err("unknown cluster");
    assert!(matches!(
        error.as_service_error(),
        Some(ListPodIdentityAssociationsError::ResourceNotFoundException(
            _
        ))
    ));
    assert_eq!(
        error.as_service_error().and_then(|e| e.message()),
        Some("No cluster found for name: no-such-cluster.")
    );

    // Update to another role, then Describe shows it and EKS Auth grants it.
    let updated = eks
        .update_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .role_arn(OTHER_ROLE)
        .send()
        .await
        .expect("update");
    assert_eq!(
        updated.association().and_then(|a| a.role_arn()),
        Some(OTHER_ROLE)
    );
    let described = eks
        .describe_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        described.association().and_then(|a| a.role_arn()),
        Some(OTHER_ROLE)
    );
    assert!(
        granted_role(&emulators)
            .await
            .starts_with("arn:aws:sts::123456789012:assumed-role/other-role/"),
    );

    // Delete answers the deleted association; then it is gone everywhere.
    let deleted = eks
        .delete_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        deleted.association().and_then(|a| a.association_id()),
        Some(id.as_str())
    );
    assert!(emulators.pod_identity_associations().is_empty());
    let error = eks
        .describe_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&id)
        .send()
        .await
        .expect_err("deleted");
    assert!(matches!(
        error.as_service_error(),
        Some(DescribePodIdentityAssociationError::ResourceNotFoundException(_))
    ));

    // Signed by a key the account does not know: refused before the service.
    let stranger = eks_client(&emulators, Some(("AKIASTRANGER", "secret")));
    let error = stranger
        .list_pod_identity_associations()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(
        error.as_service_error().and_then(|e| e.code()),
        Some("UnrecognizedClientException")
    );

    // Every call was seen by the gate under its operation name.
    let actions: Vec<String> = emulators
        .request_log()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "CreatePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "UpdatePodIdentityAssociation",
        "DescribePodIdentityAssociation",
        "DeletePodIdentityAssociation",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
}
