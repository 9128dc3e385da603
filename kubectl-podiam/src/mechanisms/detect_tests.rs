//! Which mechanism claims a pod: wiring first, then where the pod runs (GKE direct principals).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{detect, registered};
use crate::model::MechanismId;
use crate::subject::PodSubject;

const GKE_LABEL: &str = "iam.gke.io/gke-metadata-server-enabled";
const NODEPOOL_LABEL: &str = "cloud.google.com/gke-nodepool";

fn pod(
    node_label: Option<&str>,
    sa_annotations: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> PodSubject {
    let map = |kv: &[(&str, &str)]| {
        (!kv.is_empty()).then(|| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        })
    };
    PodSubject {
        kind: "Pod".into(),
        namespace: "ns".into(),
        name: "p".into(),
        container: "app".into(),
        meta: ObjectMeta {
            labels: map(labels),
            ..Default::default()
        },
        service_account: Some(ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".into()),
                annotations: map(sa_annotations),
                ..Default::default()
            },
            ..Default::default()
        }),
        node_labels: node_label.map(|v| {
            BTreeMap::from([
                (GKE_LABEL.to_string(), v.to_string()),
                (NODEPOOL_LABEL.to_string(), "default-pool".to_string()),
            ])
        }),
        ..Default::default()
    }
}

fn detected(pod: &PodSubject) -> MechanismId {
    let all = registered();
    detect(&all, pod).map_or(MechanismId::None, |m| m.id())
}

#[test]
fn an_unannotated_ksa_on_a_gke_metadata_node_is_gke_workload_identity() {
    assert_eq!(
        detected(&pod(Some("true"), &[], &[])),
        MechanismId::GcpWorkloadIdentity
    );
}

#[test]
fn other_nodes_leave_an_unwired_pod_unwired() {
    assert_eq!(detected(&pod(None, &[], &[])), MechanismId::None);
    assert_eq!(detected(&pod(Some("false"), &[], &[])), MechanismId::None);
}

#[test]
fn the_metadata_label_without_a_gke_node_pool_is_not_gke() {
    let mut p = pod(Some("true"), &[], &[]);
    p.node_labels.as_mut().unwrap().remove(NODEPOOL_LABEL);
    assert_eq!(detected(&p), MechanismId::None);
}

#[test]
fn wiring_for_another_cloud_wins_over_the_node() {
    let irsa = pod(
        Some("true"),
        &[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::111111111111:role/r",
        )],
        &[],
    );
    assert_eq!(detected(&irsa), MechanismId::AwsIrsa);
    // Azure is registered after GKE: its own wiring must still win on a GKE node.
    let azure = pod(
        Some("true"),
        &[(
            "azure.workload.identity/client-id",
            "00000000-0000-0000-0000-000000000001",
        )],
        &[("azure.workload.identity/use", "true")],
    );
    assert_eq!(detected(&azure), MechanismId::AzureWorkloadIdentity);
}
