//! Tier-2 contract: aws-sdk-sts `AssumeRole` with a pod's role session (role chaining) against
//! the gate, which decides it with its own trust evaluator and identity-permission model.
//!
//! Needs python3 with venv and a reachable PyPI (for moto) — fails naming them otherwise.

use aws_sdk_sts::error::ProvideErrorMetadata;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};

const ACCOUNT: &str = "123456789012";
const POD_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/my-pod-role/pod";

fn sts(
    emulators: &AwsEmulators,
    credentials: Option<aws_credential_types::Credentials>,
) -> aws_sdk_sts::Client {
    let mut config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(emulators.gate_url());
    if let Some(credentials) = credentials {
        config = config.credentials_provider(credentials);
    }
    aws_sdk_sts::Client::from_conf(config.build())
}

fn as_credentials(c: &aws_sdk_sts::types::Credentials) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "contract-test",
    )
}

/// The pod's own session: my-pod-role by web identity.
async fn pod_credentials(emulators: &AwsEmulators) -> aws_credential_types::Credentials {
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");
    let out = sts(emulators, None)
        .assume_role_with_web_identity()
        .role_arn(emulators.role_arn("my-pod-role"))
        .role_session_name("pod")
        .web_identity_token(token)
        .send()
        .await
        .expect("web identity");
    as_credentials(out.credentials().expect("credentials"))
}

async fn create_role(emulators: &AwsEmulators, name: &str, principal: &str) {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    emulators
        .admin()
        .iam_client(emulators.gate_url())
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
}

async fn assume(
    emulators: &AwsEmulators,
    credentials: &aws_credential_types::Credentials,
    role: &str,
) -> Result<aws_credential_types::Credentials, (String, String)> {
    sts(emulators, Some(credentials.clone()))
        .assume_role()
        .role_arn(emulators.role_arn(role))
        .role_session_name("hop")
        .send()
        .await
        .map(|out| {
            assert_eq!(
                out.assumed_role_user().expect("user").arn(),
                format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/hop")
            );
            as_credentials(out.credentials().expect("credentials"))
        })
        .map_err(|e| {
            let service = e.as_service_error().expect("a service error");
            (
                service.code().unwrap_or_default().to_owned(),
                service.message().unwrap_or_default().to_owned(),
            )
        })
}

fn denial(role: &str) -> (String, String) {
    (
        "AccessDenied".to_owned(),
        format!(
            "User: {POD_SESSION} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{ACCOUNT}:role/{role}"
        ),
    )
}

#[tokio::test]
async fn role_chaining_is_decided_by_trust_and_permissions() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let pod = pod_credentials(&emulators).await;

    // Trust names the source role: enough in the same account.
    create_role(
        &emulators,
        "named-target",
        &emulators.role_arn("my-pod-role"),
    )
    .await;
    let hop = assume(&emulators, &pod, "named-target")
        .await
        .expect("trusted");
    let me = sts(&emulators, Some(hop.clone()))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/named-target/hop").as_str())
    );

    // Trust names another role: AWS's AccessDenied, naming caller and resource.
    create_role(
        &emulators,
        "other-target",
        &emulators.role_arn("someone-else"),
    )
    .await;
    assert_eq!(
        assume(&emulators, &pod, "other-target").await.unwrap_err(),
        denial("other-target")
    );

    // Trust names the account: the source also needs sts:AssumeRole in its identity policy.
    create_role(
        &emulators,
        "account-target",
        &format!("arn:aws:iam::{ACCOUNT}:root"),
    )
    .await;
    assert_eq!(
        assume(&emulators, &pod, "account-target")
            .await
            .unwrap_err(),
        denial("account-target")
    );
    emulators
        .admin()
        .iam_client(emulators.gate_url())
        .put_role_policy()
        .role_name("my-pod-role")
        .policy_name("chain")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{}"}}]}}"#,
            emulators.role_arn("account-target")
        ))
        .send()
        .await
        .expect("PutRolePolicy");
    assume(&emulators, &pod, "account-target")
        .await
        .expect("trusted account and permitted");

    // A role assuming itself: its trust policy names only the OIDC provider.
    assert_eq!(
        assume(&emulators, &pod, "my-pod-role").await.unwrap_err(),
        denial("my-pod-role")
    );
    // A second hop from the first hop's session.
    create_role(
        &emulators,
        "second-hop",
        &format!("arn:aws:sts::{ACCOUNT}:assumed-role/named-target/hop"),
    )
    .await;
    assume(&emulators, &hop, "second-hop")
        .await
        .expect("the hop's session is the caller");
}
