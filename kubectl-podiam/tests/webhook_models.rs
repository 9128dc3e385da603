//! FACTS.md "Webhooks: upstream vs the stand-ins vs the plugin's model": each case where
//! `verify -f` contradicted what the real webhook (amazon-eks-pod-identity-webhook v0.6.17,
//! azure-workload-identity v1.6.0) did is a manifest in tests/fixtures/webhook_models/, judged
//! offline here as `verify -f` judges it. Also: static keys judged per cloud.

use std::path::Path;

use k8s_openapi::api::core::v1::{PodSpec, ServiceAccountTokenProjection};
use podiam::evidence::Probe;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::mechanisms::aws_irsa::webhook as irsa_webhook;
use podiam::model::{MechanismId, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;
use podiam::subject::{EksAssociation, PodSubject, env_value};

fn subject(fixture: &str) -> PodSubject {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhook_models")
        .join(fixture);
    let yaml = std::fs::read_to_string(&path).expect("fixture exists");
    let docs = documents::parse(&path, &yaml).expect("fixture parses");
    let mut subjects = subjects::subjects(&docs, "default", None).expect("fixture has a pod");
    assert_eq!(subjects.len(), 1, "{fixture}");
    subjects.remove(0)
}

fn judged(pod: &PodSubject) -> ReportItem {
    tokio::runtime::Runtime::new().unwrap().block_on(judge(
        pod,
        &Probe::Offline { token: None },
        &VerifyOptions::default(),
    ))
}

fn check(item: &ReportItem, id: &str) -> (Status, String) {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| (c.status, c.message.clone()))
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", item.checks))
}

fn failures(item: &ReportItem) -> Vec<String> {
    item.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect()
}

fn projection<'a>(spec: &'a PodSpec, volume: &str) -> &'a ServiceAccountTokenProjection {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume)
        .and_then(|v| v.projected.as_ref()?.sources.as_ref()?.first())
        .and_then(|s| s.service_account_token.as_ref())
        .unwrap_or_else(|| panic!("no projected volume {volume}"))
}

fn container<'a>(spec: &'a PodSpec, name: &str) -> &'a k8s_openapi::api::core::v1::Container {
    spec.containers.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn skip_containers_go_csv_rejects_a_bare_quote_so_nothing_is_skipped() {
    let pod = subject("irsa_skip_containers_bare_quote.yaml");
    let spec = irsa_webhook::mutate(&pod);
    for name in ["app", "side car"] {
        assert_eq!(
            env_value(container(&spec, name), "AWS_ROLE_ARN"),
            Some("arn:aws:iam::123456789012:role/app-role"),
            "{name} is mutated"
        );
    }
    let item = judged(&pod);
    let (status, message) = check(&item, "aws.irsa.container-skipped");
    assert_eq!(status, Status::Warn, "{message}");
    assert!(message.contains("bare \" in non-quoted-field"), "{message}");
    assert_eq!(check(&item, "aws.irsa.pod-mutated").0, Status::Pass);
    assert!(failures(&item).is_empty(), "{:#?}", failures(&item));
}

#[test]
fn empty_audience_annotation_projects_no_audience() {
    let pod = subject("irsa_empty_audience.yaml");
    let spec = irsa_webhook::mutate(&pod);
    assert_eq!(projection(&spec, "aws-iam-token").audience, None);
    let (status, message) = check(&judged(&pod), "aws.irsa.audience");
    assert_eq!(status, Status::Warn, "{message}");
    assert!(
        message.contains("no audience") && message.contains("API server's default"),
        "{message}"
    );
}

#[test]
fn invalid_pod_token_expiration_falls_back_to_the_service_accounts() {
    let pod = subject("irsa_invalid_pod_token_expiration.yaml");
    let spec = irsa_webhook::mutate(&pod);
    assert_eq!(
        projection(&spec, "aws-iam-token").expiration_seconds,
        Some(3600)
    );
    let (status, message) = check(&judged(&pod), "aws.irsa.token-expiration");
    assert_eq!(
        (status, message.as_str()),
        (Status::Pass, "token expires after 3600s")
    );
}

#[test]
fn service_account_token_expiration_is_not_trimmed() {
    let pod = subject("irsa_sa_token_expiration_leading_space.yaml");
    let spec = irsa_webhook::mutate(&pod);
    assert_eq!(
        projection(&spec, "aws-iam-token").expiration_seconds,
        Some(86400)
    );
}

#[test]
fn regional_sts_follows_parse_bool() {
    for (value, regional) in [
        ("1", true),
        ("t", true),
        ("TRUE", true),
        ("True", true),
        ("0", false),
        ("F", false),
        ("yes", false),
        ("tRue", false),
    ] {
        let mut pod = subject("irsa_regional_sts_parsebool.yaml");
        pod.service_account
            .as_mut()
            .unwrap()
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(
                "eks.amazonaws.com/sts-regional-endpoints".into(),
                value.into(),
            );
        let spec = irsa_webhook::mutate(&pod);
        assert_eq!(
            env_value(container(&spec, "app"), "AWS_STS_REGIONAL_ENDPOINTS"),
            regional.then_some("regional"),
            "{value:?}"
        );
        let item = judged(&pod);
        let regional_check = item.checks.iter().find(|c| c.id == "aws.irsa.regional-sts");
        assert_eq!(
            regional_check.map(|c| c.status),
            regional.then_some(Status::Pass),
            "{value:?}"
        );
    }
}

fn found(pod: &mut PodSubject) {
    pod.eks_association = EksAssociation::Found {
        cluster: "podiam-e2e".into(),
        id: "a-0123456789abcdef0".into(),
        role_arn: "arn:aws:iam::123456789012:role/pod-role".into(),
        target_role_arn: None,
    };
}

#[test]
fn pod_identity_association_wins_over_the_irsa_annotation() {
    let mut pod = subject("pod_identity_association_and_irsa_annotation.yaml");
    // Offline, the association is unknown: said so, not judged as certainly IRSA.
    let offline = judged(&pod);
    assert_eq!(offline.mechanism, MechanismId::AwsIrsa);
    let (status, _) = check(&offline, "aws.pod-identity.association");
    assert_eq!(status, Status::Info);
    let hint = offline
        .checks
        .iter()
        .find(|c| c.id == "aws.pod-identity.association")
        .and_then(|c| c.remediation.clone())
        .unwrap_or_default();
    assert!(hint.contains("--eks-cluster-name"), "{hint}");

    // Known (looked up): the webhook injects Pod Identity and no AWS_ROLE_ARN.
    found(&mut pod);
    let item = judged(&pod);
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    let (status, message) = check(&item, "aws.pod-identity.association");
    assert_eq!(status, Status::Warn, "{message}");
    assert!(message.contains("is ignored"), "{message}");
    assert_eq!(check(&item, "aws.pod-identity.env").0, Status::Pass);
    let spec = podiam::mechanisms::aws_pod_identity::webhook::mutate(&pod);
    let app = container(&spec, "app");
    assert_eq!(env_value(app, "AWS_ROLE_ARN"), None);
    assert_eq!(
        env_value(app, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        Some("http://169.254.170.23/v1/credentials")
    );
    assert_eq!(
        projection(&spec, "eks-pod-identity-token")
            .audience
            .as_deref(),
        Some("pods.eks.amazonaws.com")
    );
}

#[test]
fn pod_identity_association_without_annotation_is_unknown_offline_not_a_failure() {
    let mut pod = subject("pod_identity_association_no_annotation.yaml");
    let item = judged(&pod);
    assert!(failures(&item).is_empty(), "{:#?}", failures(&item));
    assert_ne!(item.verdict, Verdict::Fail);
    assert!(item.identity.is_none());
    let (status, message) = check(&item, "identity.mechanism");
    assert_eq!(status, Status::Skip);
    assert!(
        message.contains("associations live in EKS") && message.contains("--eks-cluster-name"),
        "{message}"
    );

    // EKS answered "none": then the template is known to be wired to nothing.
    pod.eks_association = EksAssociation::Absent {
        cluster: "podiam-e2e".into(),
    };
    assert_eq!(check(&judged(&pod), "identity.mechanism").0, Status::Fail);

    // EKS answered with an association: judged as the Pod Identity pod the webhook makes.
    found(&mut pod);
    let item = judged(&pod);
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    assert_eq!(check(&item, "aws.pod-identity.association").0, Status::Pass);
    assert_eq!(check(&item, "aws.pod-identity.env").0, Status::Pass);
    assert!(failures(&item).is_empty(), "{:#?}", failures(&item));
}

#[test]
fn azure_template_without_its_service_account_is_rejected_at_create() {
    let pod = subject("azure_service_account_missing.yaml");
    let item = judged(&pod);
    assert_eq!(item.verdict, Verdict::Fail);
    let (status, message) = check(&item, "azure.wi.pod-mutated");
    assert_eq!(status, Status::Fail);
    assert!(
        message.contains("400: serviceaccounts \"app\" not found"),
        "{message}"
    );
}

#[test]
fn azure_rejections_carry_go_messages() {
    use podiam::mechanisms::azure_workload_identity::webhook::{Admission, admission};
    let mut pod = subject("azure_service_account_missing.yaml");
    pod.service_account = Some(Default::default());
    let annotations = pod.meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(
        "azure.workload.identity/service-account-token-expiration".into(),
        "1h".into(),
    );
    assert_eq!(
        admission(&pod),
        Admission::Rejected("strconv.ParseInt: parsing \"1h\": invalid syntax".into())
    );
    let annotations = pod.meta.annotations.as_mut().unwrap();
    annotations.insert(
        "azure.workload.identity/inject-proxy-sidecar".into(),
        "true".into(),
    );
    annotations.insert(
        "azure.workload.identity/proxy-sidecar-port".into(),
        "abc".into(),
    );
    assert_eq!(
        admission(&pod),
        Admission::Rejected(
            "failed to parse proxy sidecar port: strconv.ParseInt: parsing \"abc\": invalid syntax"
                .into()
        )
    );
}

// Static keys, per cloud.

#[test]
fn azure_secret_in_an_irsa_container_is_reported_but_the_identity_stays_irsa() {
    let item = judged(&subject("static_azure_secret_in_irsa_pod.yaml"));
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    // Offline: the role the configuration names, not the static key.
    assert_eq!(item.identity.as_ref().map(|i| i.provider), Some("aws"));
    assert!(
        item.identity
            .as_ref()
            .is_some_and(|i| i.principal.contains(":role/")),
        "{:?}",
        item.identity
    );
    let (status, message) = check(&item, "static-credentials.env");
    assert_eq!(status, Status::Warn, "{message}");
    assert!(message.contains("AZURE_CLIENT_SECRET"), "{message}");
}

#[test]
fn aws_key_in_an_irsa_container_overrides_irsa() {
    let item = judged(&subject("static_aws_key_in_irsa_pod.yaml"));
    assert_eq!(item.mechanism, MechanismId::StaticCredentials);
    assert_eq!(item.identity.as_ref().map(|i| i.provider), Some("aws"));
    assert_eq!(check(&item, "static-credentials.env").0, Status::Fail);
}

#[test]
fn azure_secret_in_an_azure_wi_container_overrides_workload_identity() {
    let item = judged(&subject("static_azure_secret_in_azure_wi_pod.yaml"));
    assert_eq!(item.mechanism, MechanismId::StaticCredentials);
    assert_eq!(item.identity.as_ref().map(|i| i.provider), Some("azure"));
    assert_eq!(check(&item, "static-credentials.env").0, Status::Fail);
}

#[test]
fn aws_key_in_an_azure_wi_container_is_reported_but_the_identity_stays_azure() {
    let item = judged(&subject("static_aws_key_in_azure_wi_pod.yaml"));
    assert_eq!(item.mechanism, MechanismId::AzureWorkloadIdentity);
    // Offline: the client id the configuration names, not the static key.
    assert_eq!(item.identity.as_ref().map(|i| i.provider), Some("azure"));
    assert!(
        item.identity
            .as_ref()
            .is_some_and(|i| !i.principal.contains("static key")),
        "{:?}",
        item.identity
    );
    assert_eq!(check(&item, "static-credentials.env").0, Status::Warn);
}

#[test]
fn gcp_key_file_in_an_irsa_container_is_reported_but_the_identity_stays_irsa() {
    let item = judged(&subject("static_gcp_key_file_in_irsa_pod.yaml"));
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    let (status, message) = check(&item, "static-credentials.env");
    assert_eq!(status, Status::Warn, "{message}");
    assert!(
        message.contains("GOOGLE_APPLICATION_CREDENTIALS") && message.contains("gcp-sa-key"),
        "{message}"
    );
}

#[test]
fn aws_key_on_a_gke_metadata_node_decides_the_identity() {
    let mut pod = subject("static_aws_key_on_gke_metadata_node.yaml");
    // Without the node: an unwired pod whose key decides.
    assert_eq!(judged(&pod).mechanism, MechanismId::StaticCredentials);
    // On a GKE Workload Identity node the KSA has a direct principal, but the pod chose no
    // cloud: the AWS key still decides and fails, it does not merely warn.
    pod.node_labels = Some(
        [
            ("iam.gke.io/gke-metadata-server-enabled", "true"),
            ("cloud.google.com/gke-nodepool", "pool-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let item = judged(&pod);
    assert_eq!(item.mechanism, MechanismId::StaticCredentials, "{item:#?}");
    assert_eq!(check(&item, "static-credentials.env").0, Status::Fail);
    assert_eq!(item.identity.as_ref().map(|i| i.provider), Some("aws"));
}

/// An association with a `targetRoleArn`: EKS Auth chains through its role to the target, so
/// the template's role is the target, and the association check names both.
#[test]
fn pod_identity_association_with_a_target_role_gives_the_target() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/pod-role";
    const TARGET: &str = "arn:aws:iam::210987654321:role/target-role";
    let mut pod = subject("pod_identity_association_no_annotation.yaml");
    pod.eks_association = EksAssociation::Found {
        cluster: "podiam-e2e".into(),
        id: "a-0123456789abcdef0".into(),
        role_arn: ROLE.into(),
        target_role_arn: Some(TARGET.into()),
    };
    let judged_expecting = |role: &str| {
        tokio::runtime::Runtime::new().unwrap().block_on(judge(
            &pod,
            &Probe::Offline { token: None },
            &VerifyOptions {
                expect_role: Some(role.into()),
                ..VerifyOptions::default()
            },
        ))
    };
    let item = judged_expecting(TARGET);
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    let (status, message) = check(&item, "aws.pod-identity.association");
    assert_eq!(status, Status::Pass, "{message}");
    assert!(
        message.contains(&format!("role {ROLE}, then target {TARGET}")),
        "{message}"
    );
    let (status, message) = check(&item, "aws.sts.expected-role");
    assert_eq!(status, Status::Pass, "{message}");
    // The association's own role is not what the pod gets.
    let (status, message) = check(&judged_expecting(ROLE), "aws.sts.expected-role");
    assert_ne!(status, Status::Pass, "{message}");
    assert!(message.contains(TARGET), "{message}");
}
