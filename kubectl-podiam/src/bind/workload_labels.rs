//! Workloads whose pods the Azure webhook will skip: it mutates only pods labelled
//! `azure.workload.identity/use: "true"` (its objectSelector). Deployments, StatefulSets and
//! DaemonSets running the ServiceAccount whose pod template lacks the label are named, and with
//! `--label-workloads` their templates get it (a rollout, so the new pods are mutated). A bare
//! pod cannot be fixed in place: the webhook acts only at creation, so it must be recreated.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use super::plan::{Change, ChangeStatus, Operation, StalePod, System};
use crate::cloud::azure as a;
use crate::error::{Error, Result};

/// One workload-template call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadOperation {
    /// Adds `azure.workload.identity/use: "true"` to the pod template's labels.
    LabelTemplate {
        namespace: String,
        kind: String,
        name: String,
    },
}

impl WorkloadOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            WorkloadOperation::LabelTemplate {
                namespace,
                kind,
                name,
            } => format!(
                "kubectl patch {} {name} -n {namespace} --type=json -p '[{{\"op\":\"remove\",\"path\":\"/spec/template/metadata/labels/{}\"}}]'",
                kind.to_ascii_lowercase(),
                a::USE_LABEL.replace('/', "~1")
            ),
        }
    }
}

/// A workload of the ServiceAccount whose pods the webhook will not mutate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlabelled {
    /// `Deployment`, `StatefulSet`, `DaemonSet` or `Pod` (a bare pod).
    pub kind: &'static str,
    pub name: String,
}

fn uses(template_sa: Option<&str>, service_account: &str) -> bool {
    template_sa.filter(|s| !s.is_empty()).unwrap_or("default") == service_account
}

fn template_is_unlabelled(template: &PodTemplateSpec, service_account: &str) -> bool {
    let spec = template.spec.as_ref();
    let sa = spec.and_then(|s| {
        s.service_account_name
            .as_deref()
            .or(s.service_account.as_deref())
    });
    uses(sa, service_account) && !has_label(template.metadata.as_ref())
}

fn has_label(
    metadata: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
) -> bool {
    metadata
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(a::USE_LABEL))
        .is_some_and(|v| v == a::USE_LABEL_VALUE)
}

/// Whether a pod is managed by a controller (its template, not the pod, is what to fix).
fn is_bare(pod: &Pod) -> bool {
    !pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

/// Every workload in `namespace` running `service_account` without the label, sorted by kind
/// then name.
pub async fn find(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
) -> Result<Vec<Unlabelled>> {
    let list = ListParams::default();
    let what = |kind: &str| format!("list {kind} in {namespace}");
    let mut found = Vec::new();
    for d in Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&list)
        .await
        .map_err(|e| Error::from_kube(what("deployments"), e))?
    {
        if d.spec
            .as_ref()
            .is_some_and(|s| template_is_unlabelled(&s.template, service_account))
        {
            found.push(Unlabelled {
                kind: "Deployment",
                name: d.metadata.name.unwrap_or_default(),
            });
        }
    }
    for s in Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .list(&list)
        .await
        .map_err(|e| Error::from_kube(what("statefulsets"), e))?
    {
        if s.spec
            .as_ref()
            .is_some_and(|spec| template_is_unlabelled(&spec.template, service_account))
        {
            found.push(Unlabelled {
                kind: "StatefulSet",
                name: s.metadata.name.unwrap_or_default(),
            });
        }
    }
    for d in Api::<DaemonSet>::namespaced(client.clone(), namespace)
        .list(&list)
        .await
        .map_err(|e| Error::from_kube(what("daemonsets"), e))?
    {
        if d.spec
            .as_ref()
            .is_some_and(|s| template_is_unlabelled(&s.template, service_account))
        {
            found.push(Unlabelled {
                kind: "DaemonSet",
                name: d.metadata.name.unwrap_or_default(),
            });
        }
    }
    for p in Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&list)
        .await
        .map_err(|e| Error::from_kube(what("pods"), e))?
    {
        let spec_sa = p.spec.as_ref().and_then(|s| {
            s.service_account_name
                .as_deref()
                .or(s.service_account.as_deref())
        });
        if is_bare(&p)
            && p.metadata.deletion_timestamp.is_none()
            && uses(spec_sa, service_account)
            && !has_label(Some(&p.metadata))
        {
            found.push(Unlabelled {
                kind: "Pod",
                name: p.metadata.name.unwrap_or_default(),
            });
        }
    }
    Ok(found)
}

/// Warnings for every unlabelled workload, and with `label` a change per labellable template.
pub fn plan(namespace: &str, unlabelled: &[Unlabelled], label: bool) -> (Vec<Change>, Vec<String>) {
    let label_text = format!("{}: \"{}\"", a::USE_LABEL, a::USE_LABEL_VALUE);
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for workload in unlabelled {
        if workload.kind == "Pod" {
            warnings.push(format!(
                "pod {} lacks the label {label_text}, so the webhook never mutated it; a running pod cannot be changed: delete it and recreate it with the label",
                workload.name
            ));
            continue;
        }
        if !label {
            warnings.push(format!(
                "{}/{} has no {label_text} in its pod template: the webhook will not mutate its pods. Pass --label-workloads, or add the label yourself",
                workload.kind, workload.name
            ));
            continue;
        }
        changes.push(Change {
            system: System::Kubernetes,
            action: "label",
            resource: format!("{} {namespace}/{}", workload.kind, workload.name),
            detail: format!("pod template label {label_text} (rolls its pods)"),
            before: None,
            after: Some(json!({"spec": {"template": {"metadata": {"labels": {a::USE_LABEL: a::USE_LABEL_VALUE}}}}})),
            status: ChangeStatus::Planned,
            operation: Operation::Workload(WorkloadOperation::LabelTemplate {
                namespace: namespace.to_owned(),
                kind: workload.kind.to_owned(),
                name: workload.name.clone(),
            }),
        });
    }
    (changes, warnings)
}

/// A stale pod whose owner's template this binding labels is recreated by that rollout: say so
/// instead of asking for a restart.
pub fn note_rolled(changes: &[Change], stale: &mut [StalePod]) {
    for pod in stale.iter_mut() {
        let Some(owner) = &pod.owner else { continue };
        let labelled = changes.iter().find(|c| match &c.operation {
            Operation::Workload(WorkloadOperation::LabelTemplate { kind, name, .. }) => {
                *owner == format!("{kind}/{name}")
            }
            _ => false,
        });
        if let Some(change) = labelled {
            pod.action = match change.status {
                ChangeStatus::Applied => {
                    "being replaced: its owner's template was labelled, so the rollout recreates it"
                }
                _ => "its owner's template label (above) rolls it",
            }
            .to_owned();
        }
    }
}

/// Carries out one template change; `server_dry_run` asks the API server to validate only.
pub async fn apply(
    client: &kube::Client,
    operation: &WorkloadOperation,
    server_dry_run: bool,
) -> Result<()> {
    let WorkloadOperation::LabelTemplate {
        namespace,
        kind,
        name,
    } = operation;
    let patch =
        json!({"spec": {"template": {"metadata": {"labels": {a::USE_LABEL: a::USE_LABEL_VALUE}}}}});
    let params = PatchParams {
        dry_run: server_dry_run,
        ..PatchParams::default()
    };
    let result = match kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        other => {
            return Err(Error::Usage(format!(
                "cannot label the template of a {other}"
            )));
        }
    };
    result.map_err(|e| Error::from_kube(format!("label {kind} {namespace}/{name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(sa: Option<&str>, label: Option<&str>) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": label.map(|v| json!({a::USE_LABEL: v})).unwrap_or(json!({}))},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app"}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_the_exact_label_value_counts() {
        assert!(template_is_unlabelled(&template(Some("sa"), None), "sa"));
        assert!(template_is_unlabelled(
            &template(Some("sa"), Some("True")),
            "sa"
        ));
        assert!(!template_is_unlabelled(
            &template(Some("sa"), Some("true")),
            "sa"
        ));
        assert!(!template_is_unlabelled(
            &template(Some("other"), None),
            "sa"
        ));
        assert!(template_is_unlabelled(&template(None, None), "default"));
    }

    #[test]
    fn templates_are_labelled_only_when_asked_and_bare_pods_never() {
        let found = vec![
            Unlabelled {
                kind: "Deployment",
                name: "web".into(),
            },
            Unlabelled {
                kind: "Pod",
                name: "bare".into(),
            },
        ];
        let (changes, warnings) = plan("ns", &found, false);
        assert!(changes.is_empty());
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("--label-workloads"), "{}", warnings[0]);
        assert!(warnings[1].contains("recreate"), "{}", warnings[1]);
        let (changes, warnings) = plan("ns", &found, true);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].resource, "Deployment ns/web");
        assert_eq!(warnings.len(), 1);
        assert!(
            changes[0]
                .undo_hint()
                .contains("azure.workload.identity~1use")
        );
    }
}
