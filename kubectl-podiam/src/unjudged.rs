//! The items and checks of pods that were not (fully) judged: a pod not Running is judged from
//! its spec only, a pod that could not be read or reached is its own item. Fleet mode makes
//! them; the reports count them (`report/summary.rs`), so they live apart from both.

use k8s_openapi::api::core::v1::Pod;

use crate::judge::kubernetes_identity;
use crate::model::{Check, KubernetesIdentity, MechanismId, PodRef, ReportItem, Verdict};
use crate::subject::{Origin, PodSubject, default_container};

/// Check ids (docs/checks.md).
pub const NOT_RUNNING: &str = "k8s.pod.running";
pub const UNREACHABLE: &str = "k8s.pod.reachable";

pub fn not_running_check(phase: &str) -> Check {
    Check::skip(
        NOT_RUNNING,
        format!(
            "the pod is {phase}, not Running: judged from its spec and ServiceAccount only (no exec, no exchange)"
        ),
    )
}

/// The item of a pod that could not be judged: no failing check, no identity (`incomplete`),
/// and unreachable (exit 3 when nothing else failed).
pub fn unreachable_item(pod: &Pod, container: Option<&str>, reason: &str) -> ReportItem {
    let spec = pod.spec.clone().unwrap_or_default();
    let container = container
        .map(str::to_string)
        .or_else(|| default_container(&pod.metadata, &spec))
        .unwrap_or_default();
    let subject = PodSubject {
        kind: "Pod".into(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        meta: pod.metadata.clone(),
        spec,
        origin: Origin::Live,
        container,
        // Nothing else could be read.
        ..Default::default()
    };
    let kubernetes: KubernetesIdentity = kubernetes_identity(&subject);
    ReportItem {
        pod: PodRef {
            namespace: subject.namespace.clone(),
            name: subject.name.clone(),
            container: subject.container.clone(),
            kind: subject.kind.clone(),
        },
        service_account: subject.service_account_name().to_string(),
        kubernetes,
        mechanism: MechanismId::None,
        identity: None,
        checks: vec![Check::warn(
            UNREACHABLE,
            format!("{} could not be verified: {reason}", subject.describe()),
            "check that the pod still exists and that you may get pods, serviceaccounts and pods/exec in its namespace",
        )],
        // No identity was established: never a pass.
        verdict: Verdict::Incomplete,
        unreachable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"serviceAccountName": "app", "containers": [{"name": "main"}, {"name": "side"}]},
            "status": {"phase": "Pending"}
        }))
        .unwrap()
    }

    #[test]
    fn an_unreachable_pod_is_its_own_item() {
        let item = unreachable_item(&pod("ns", "p"), Some("side"), "exec is forbidden");
        assert!(item.unreachable);
        assert_eq!(item.verdict, Verdict::Incomplete);
        assert_eq!(item.pod.container, "side");
        assert_eq!(item.service_account, "app");
        assert_eq!(item.checks[0].id, UNREACHABLE);
        assert!(item.checks[0].message.contains("exec is forbidden"));
        let item = unreachable_item(&pod("ns", "p"), None, "gone");
        assert_eq!(item.pod.container, "main");
    }
}
