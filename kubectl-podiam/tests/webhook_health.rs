//! The plugin finds the webhooks as the e2e stand-ins register them (upstream's names), and a
//! configuration calling an in-cluster Service as upstream's self-hosted manifests do.

use podiam::webhook_health::known::Webhook;
use podiam::webhook_health::read::{Target, find};

#[test]
fn the_stand_ins_registrations_are_found() {
    let eks = podiam_e2e::webhooks::webhook_configuration("https://127.0.0.1:9443/mutate", "ca");
    let azure = podiam_e2e::webhooks::azure_webhook_configuration(
        "https://127.0.0.1:9444/mutate-v1-pod",
        "ca",
    );
    let all = vec![azure.clone(), eks.clone()];
    let r = find(&all, Webhook::Eks).expect("EKS webhook found");
    assert_eq!(r.configuration, podiam_e2e::webhooks::CONFIGURATION_NAME);
    assert_eq!(r.webhook, podiam_e2e::webhooks::WEBHOOK_NAME);
    assert_eq!(r.failure_policy, "Ignore");
    assert_eq!(
        r.target,
        Target::Url("https://127.0.0.1:9443/mutate".into())
    );
    let r = find(&all, Webhook::Azure).expect("Azure webhook found");
    assert_eq!(
        r.configuration,
        podiam_e2e::webhooks::AZURE_CONFIGURATION_NAME
    );
    assert_eq!(r.failure_policy, "Fail");
    assert!(find(&[azure], Webhook::Eks).is_none());
}

#[test]
fn a_self_hosted_configuration_is_found_by_its_webhook_name_and_service() {
    let config: k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-irsa-webhook"},
            "webhooks": [{
                "name": "pod-identity-webhook.amazonaws.com",
                "clientConfig": {"service": {"name": "pod-identity-webhook", "namespace": "default", "path": "/mutate"}},
                "admissionReviewVersions": ["v1beta1"],
                "sideEffects": "None"
            }]
        }))
        .unwrap();
    let r = find(&[config], Webhook::Eks).expect("found by webhook name");
    assert_eq!(r.configuration, "my-irsa-webhook");
    // failurePolicy absent: the API's default, Fail.
    assert_eq!(r.failure_policy, "Fail");
    assert_eq!(
        r.target,
        Target::Service {
            namespace: "default".into(),
            name: "pod-identity-webhook".into()
        }
    );
}
