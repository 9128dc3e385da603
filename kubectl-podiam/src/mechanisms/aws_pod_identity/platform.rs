//! Where EKS Pod Identity cannot work, read from the pod spec (and the node's labels when
//! live): AWS documents that Pod Identity is for Linux EC2 nodes and is not available to pods
//! on AWS Fargate or on Windows nodes (fail). A `hostNetwork` pod shares the node's network
//! namespace; AWS does not document it as unsupported, but the agent has been reported to
//! refuse such pods ("EKS does not have permissions to assume the associated role",
//! aws/eks-pod-identity-agent#139) although the webhook wired them: a warning, not a fail.

use k8s_openapi::api::core::v1::PodSpec;

use crate::cloud::aws::{COMPUTE_TYPE_LABEL, FARGATE_PROFILE_ANNOTATION, FARGATE_SCHEDULER};
use crate::model::Check;
use crate::subject::PodSubject;

/// Check ids (docs/checks.md).
pub const COMPUTE: &str = "aws.pod-identity.compute";
pub const HOST_NETWORK: &str = "aws.pod-identity.host-network";

const OS_LABEL: &str = "kubernetes.io/os";

/// Why the pod runs on Fargate, when it does: its node's label, its nodeSelector, the Fargate
/// profile annotation or the Fargate scheduler.
fn fargate_evidence(pod: &PodSubject, spec: &PodSpec) -> Option<String> {
    let is_fargate = |v: &String| v.eq_ignore_ascii_case("fargate");
    if let Some(labels) = &pod.node_labels
        && labels.get(COMPUTE_TYPE_LABEL).is_some_and(is_fargate)
    {
        return Some(format!("its node is labelled {COMPUTE_TYPE_LABEL}=fargate"));
    }
    if spec
        .node_selector
        .as_ref()
        .and_then(|s| s.get(COMPUTE_TYPE_LABEL))
        .is_some_and(is_fargate)
    {
        return Some(format!(
            "its nodeSelector asks for {COMPUTE_TYPE_LABEL}=fargate"
        ));
    }
    if let Some(profile) = pod.annotation(FARGATE_PROFILE_ANNOTATION) {
        return Some(format!(
            "it was scheduled by the Fargate profile {profile} ({FARGATE_PROFILE_ANNOTATION})"
        ));
    }
    if spec.scheduler_name.as_deref() == Some(FARGATE_SCHEDULER) {
        return Some(format!("its schedulerName is {FARGATE_SCHEDULER}"));
    }
    None
}

/// Why the pod runs on Windows, when it does: its node's OS label, else its nodeSelector.
fn windows_evidence(pod: &PodSubject, spec: &PodSpec) -> Option<String> {
    let node = pod.node_labels.as_ref().and_then(|l| l.get(OS_LABEL));
    let selected = spec.node_selector.as_ref().and_then(|s| s.get(OS_LABEL));
    match (node, selected) {
        (Some(os), _) if os == "windows" => {
            Some(format!("its node is labelled {OS_LABEL}=windows"))
        }
        (None, Some(os)) if os == "windows" => {
            Some(format!("its nodeSelector asks for {OS_LABEL}=windows"))
        }
        _ if pod.node_labels.is_none() && pod.node_os.as_deref() == Some("windows") => {
            Some("it runs on a Windows node".into())
        }
        _ => None,
    }
}

/// Fargate or Windows (fail), and `hostNetwork` (warn), each with its fix; nothing when the pod
/// can use Pod Identity as far as its spec and node tell.
pub fn checks(pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
    let mut checks = Vec::new();
    let unsupported = fargate_evidence(pod, spec)
        .map(|why| ("AWS Fargate", why))
        .or_else(|| windows_evidence(pod, spec).map(|why| ("a Windows node", why)));
    if let Some((platform, why)) = unsupported {
        checks.push(Check::fail(
            COMPUTE,
            format!(
                "{} runs on {platform} ({why}): EKS Pod Identity is available on Linux EC2 nodes only; there is no agent to give it credentials",
                pod.describe()
            ),
            "use IRSA for this workload (kubectl podiam bind SA --aws-role ROLE), or schedule it on Linux EC2 nodes",
        ));
    }
    if spec.host_network == Some(true) {
        checks.push(Check::warn(
            HOST_NETWORK,
            format!(
                "{} uses hostNetwork: the EKS Pod Identity agent has been reported to refuse credentials to pods in the node's network namespace (aws/eks-pod-identity-agent#139)",
                pod.describe()
            ),
            "drop hostNetwork from the pod, or use IRSA for it (kubectl podiam bind SA --aws-role ROLE)",
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Status;

    fn subject(spec: serde_json::Value, annotations: serde_json::Value) -> PodSubject {
        PodSubject {
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: "p".into(),
            meta: serde_json::from_value(serde_json::json!({"annotations": annotations})).unwrap(),
            spec: serde_json::from_value(spec).unwrap(),
            container: "app".into(),
            ..Default::default()
        }
    }

    fn ids(pod: &PodSubject) -> Vec<(&'static str, Status)> {
        checks(pod, &pod.spec)
            .into_iter()
            .map(|c| (c.id, c.status))
            .collect()
    }

    const APP: &str = "app";

    #[test]
    fn an_ordinary_linux_pod_has_no_finding() {
        let pod = subject(
            serde_json::json!({"containers": [{"name": APP}]}),
            serde_json::json!({}),
        );
        assert!(ids(&pod).is_empty());
        let mut on_linux = pod.clone();
        on_linux.node_labels = Some(BTreeMap::from([
            (OS_LABEL.into(), "linux".into()),
            (COMPUTE_TYPE_LABEL.into(), "ec2".into()),
        ]));
        assert!(ids(&on_linux).is_empty());
    }

    #[test]
    fn fargate_from_the_node_label_the_selector_the_profile_or_the_scheduler() {
        let mut pod = subject(
            serde_json::json!({"containers": [{"name": APP}]}),
            serde_json::json!({}),
        );
        pod.node_labels = Some(BTreeMap::from([(
            COMPUTE_TYPE_LABEL.into(),
            "fargate".into(),
        )]));
        assert_eq!(ids(&pod), [(COMPUTE, Status::Fail)]);
        let by_selector = subject(
            serde_json::json!({"containers": [{"name": APP}], "nodeSelector": {COMPUTE_TYPE_LABEL: "fargate"}}),
            serde_json::json!({}),
        );
        let check = &checks(&by_selector, &by_selector.spec)[0];
        assert!(check.message.contains("AWS Fargate"), "{}", check.message);
        assert!(check.message.contains("nodeSelector"), "{}", check.message);
        let by_profile = subject(
            serde_json::json!({"containers": [{"name": APP}]}),
            serde_json::json!({FARGATE_PROFILE_ANNOTATION: "fp-default"}),
        );
        assert!(
            checks(&by_profile, &by_profile.spec)[0]
                .message
                .contains("fp-default")
        );
        let by_scheduler = subject(
            serde_json::json!({"containers": [{"name": APP}], "schedulerName": FARGATE_SCHEDULER}),
            serde_json::json!({}),
        );
        assert_eq!(ids(&by_scheduler), [(COMPUTE, Status::Fail)]);
    }

    #[test]
    fn windows_from_the_node_else_the_selector() {
        let by_selector = subject(
            serde_json::json!({"containers": [{"name": APP}], "nodeSelector": {OS_LABEL: "windows"}}),
            serde_json::json!({}),
        );
        let found = checks(&by_selector, &by_selector.spec);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("a Windows node"),
            "{}",
            found[0].message
        );
        // The node's own label wins over a selector.
        let mut on_linux = by_selector.clone();
        on_linux.node_labels = Some(BTreeMap::from([(OS_LABEL.into(), "linux".into())]));
        assert!(ids(&on_linux).is_empty());
        let mut on_windows = subject(
            serde_json::json!({"containers": [{"name": APP}]}),
            serde_json::json!({}),
        );
        on_windows.node_labels = Some(BTreeMap::from([(OS_LABEL.into(), "windows".into())]));
        assert_eq!(ids(&on_windows), [(COMPUTE, Status::Fail)]);
    }

    #[test]
    fn host_network_pods_are_named() {
        let pod = subject(
            serde_json::json!({"containers": [{"name": APP}], "hostNetwork": true}),
            serde_json::json!({}),
        );
        assert_eq!(ids(&pod), [(HOST_NETWORK, Status::Warn)]);
        let check = &checks(&pod, &pod.spec)[0];
        assert!(
            check
                .remediation
                .as_deref()
                .unwrap()
                .contains("hostNetwork")
        );
    }
}
