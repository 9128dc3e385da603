//! Which containers of a pod are judged. Every container the pod runs alongside its app can
//! carry the cloud identity (the webhooks wire them all), so by default every app container
//! and every sidecar (an init container with `restartPolicy: Always`) gets its own report item,
//! the default container first; `-c NAME` narrows to one. Run-to-completion init containers
//! have finished in a running pod (nothing to exec into) and are judged only when named.
//!
//! A container the pod deliberately opts out of its webhook (`eks.amazonaws.com/skip-containers`,
//! `azure.workload.identity/skip-containers`) is not judged by default: it is named in a
//! `k8s.container.not-judged` line of the pod's first item instead of failing on its own.
//! The default container is judged even when listed, so an app opted out by mistake fails
//! (`aws.irsa.container-skipped`, …) instead of hiding behind a passing sidecar.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::evidence::Probe;
use crate::judge::judge;
use crate::mechanisms::{aws_irsa, azure_workload_identity};
use crate::model::{Check, ReportItem};
use crate::options::VerifyOptions;
use crate::subject::{PodSubject, default_container};

/// Check id (docs/checks.md).
pub const NOT_JUDGED: &str = "k8s.container.not-judged";

/// A container left out because the pod opts it out of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptedOut {
    pub container: String,
    /// The annotation naming it.
    pub annotation: &'static str,
}

/// The containers to judge, in report order, and those deliberately left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub judged: Vec<String>,
    pub opted_out: Vec<OptedOut>,
}

/// An init container that keeps running beside the app (Kubernetes native sidecar).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The containers of a pod to judge: `requested` alone when given (the caller has checked it
/// exists), else every app container and sidecar, default container first.
pub fn select(meta: &ObjectMeta, spec: &PodSpec, requested: Option<&str>) -> Selection {
    if let Some(name) = requested {
        return Selection {
            judged: vec![name.to_string()],
            opted_out: Vec::new(),
        };
    }
    // kubectl's default-container annotation counts only when it names a container the pod has.
    let exists = |name: &str| {
        spec.containers.iter().any(|c| c.name == name)
            || spec
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == name)
    };
    let default = default_container(meta, spec)
        .filter(|name| exists(name))
        .or_else(|| spec.containers.first().map(|c| c.name.clone()))
        .unwrap_or_default();
    let mut names: Vec<String> = vec![default.clone()];
    let others = spec
        .containers
        .iter()
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| is_sidecar(c)),
        )
        .map(|c| c.name.clone());
    for name in others {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let opted_out_by = opt_outs(meta);
    let mut selection = Selection::default();
    for name in names {
        match opted_out_by.iter().find(|(c, _)| *c == name) {
            // The default container is always judged: an app listed by mistake must fail
            // (`aws.irsa.container-skipped`, …), not vanish behind a passing sidecar.
            Some((_, annotation)) if name != default => selection.opted_out.push(OptedOut {
                container: name,
                annotation,
            }),
            _ => selection.judged.push(name),
        }
    }
    selection
}

/// (container, annotation) for every container a skip-containers annotation names, parsed
/// as each webhook parses its own annotation.
fn opt_outs(meta: &ObjectMeta) -> Vec<(String, &'static str)> {
    let pod = PodSubject {
        meta: meta.clone(),
        ..Default::default()
    };
    let aws = aws_irsa::webhook::skipped_containers(&pod)
        .into_iter()
        .map(|c| (c, crate::cloud::aws::irsa::SKIP_CONTAINERS));
    let azure = azure_workload_identity::webhook::skipped_containers(&pod)
        .into_iter()
        .map(|c| (c, crate::cloud::azure::SKIP_CONTAINERS));
    aws.chain(azure).collect()
}

/// The line naming the containers that were not judged, for the pod's first item.
/// An `info`: the opt-out is the pod's own choice, not a fault.
pub fn not_judged_check(opted_out: &[OptedOut]) -> Option<Check> {
    if opted_out.is_empty() {
        return None;
    }
    let list: Vec<String> = opted_out
        .iter()
        .map(|o| format!("{} (listed in {})", o.container, o.annotation))
        .collect();
    Some(Check::info(
        NOT_JUDGED,
        format!(
            "not judged: the pod opts {} out of its identity webhook",
            list.join(", ")
        ),
        "name one with -c to judge it",
    ))
}

/// Adds the not-judged line to the pod's first item (keeping the checks sorted by status).
pub fn note_not_judged(items: &mut [ReportItem], opted_out: &[OptedOut]) {
    if let (Some(first), Some(check)) = (items.first_mut(), not_judged_check(opted_out)) {
        first.checks.push(check);
        first.checks.sort_by_key(|c| c.status);
    }
}

/// Options for a container after the first: the ephemeral probe (a container that cannot be
/// removed) is added for the first judged container only; the others are judged by exec.
pub fn options_after_first(options: &VerifyOptions) -> VerifyOptions {
    let mut options = options.clone();
    options.probe.mode = crate::ephemeral::ProbeMode::Exec;
    options
}

/// Judges one pod's containers (`requested`: `-c`). `subject.container` is ignored: each judged
/// container gets its own copy of the subject and its own exec session, judged at once (a
/// pod has a few containers); cloud answers they share come from the answer cache.
pub async fn judge_pod(
    subject: &PodSubject,
    requested: Option<&str>,
    probe: &Probe,
    options: &VerifyOptions,
) -> Vec<ReportItem> {
    let selection = select(&subject.meta, &subject.spec, requested);
    let later = options_after_first(options);
    let subjects: Vec<PodSubject> = selection
        .judged
        .iter()
        .map(|name| PodSubject {
            container: name.clone(),
            ..subject.clone()
        })
        .collect();
    let mut items = futures::future::join_all(subjects.iter().enumerate().map(|(i, one)| {
        let options = if i == 0 { options } else { &later };
        judge(one, probe, options)
    }))
    .await;
    note_not_judged(&mut items, &selection.opted_out);
    if requested.is_none() {
        fold_unestablished_sidecars(&mut items);
    }
    items
}

/// Containers after the first whose identity could not be established and where nothing failed
/// (typically a distroless sidecar that never calls the cloud: no shell, no client to ask the
/// metadata server with) are folded into an `info` line on the pod's first item: otherwise
/// every such pod would end incomplete (exit 4) for a container the user did not ask about.
/// Named with `-c`, a container is judged in full.
pub fn fold_unestablished_sidecars(items: &mut Vec<ReportItem>) {
    if items.len() < 2 {
        return;
    }
    let folded: Vec<String> = items[1..]
        .iter()
        .filter(|i| unestablished(i))
        .map(|i| i.pod.container.clone())
        .collect();
    if folded.is_empty() {
        return;
    }
    let mut kept = vec![items.remove(0)];
    kept.extend(items.drain(..).filter(|i| !unestablished(i)));
    kept[0].checks.push(Check::info(
        NOT_JUDGED,
        format!(
            "not judged: no cloud identity could be established for container(s) {} (nothing failed there; no shell or client to ask with, or no exchange answered)",
            folded.join(", ")
        ),
        "name one with -c to judge it in full",
    ));
    kept[0].checks.sort_by_key(|c| c.status);
    *items = kept;
}

fn unestablished(item: &ReportItem) -> bool {
    item.verdict == crate::model::Verdict::Incomplete && item.identity.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(annotations: serde_json::Value) -> (ObjectMeta, PodSpec) {
        let meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "p", "annotations": annotations
        }))
        .unwrap();
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "initContainers": [
                {"name": "migrate"},
                {"name": "proxy", "restartPolicy": "Always"}
            ],
            "containers": [{"name": "app"}, {"name": "logger"}]
        }))
        .unwrap();
        (meta, spec)
    }

    #[test]
    fn every_app_container_and_sidecar_default_first() {
        let (meta, spec) = pod(serde_json::json!({}));
        let s = select(&meta, &spec, None);
        assert_eq!(s.judged, ["app", "logger", "proxy"]);
        assert!(s.opted_out.is_empty());
        let (meta, spec) =
            pod(serde_json::json!({"kubectl.kubernetes.io/default-container": "logger"}));
        assert_eq!(
            select(&meta, &spec, None).judged,
            ["logger", "app", "proxy"]
        );
    }

    #[test]
    fn sidecars_without_an_identity_are_folded_into_an_info_line() {
        use crate::model::{Identity, Verdict};
        let pod = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "p"},
            "spec": {"containers": [{"name": "app"}]}
        }))
        .unwrap();
        let item = |container: &str, verdict: Verdict, identity: bool| {
            let mut i = crate::unjudged::unreachable_item(&pod, None, "x");
            i.unreachable = false;
            i.checks.clear();
            i.pod.container = container.into();
            i.verdict = verdict;
            i.identity = identity.then(|| Identity {
                provider: "gcp",
                principal: "p".into(),
                source: "s".into(),
            });
            i
        };
        let mut items = vec![
            item("app", Verdict::Pass, true),
            item("mesh", Verdict::Incomplete, false),
            item("logger", Verdict::Fail, false),
        ];
        fold_unestablished_sidecars(&mut items);
        let names: Vec<&str> = items.iter().map(|i| i.pod.container.as_str()).collect();
        // The failing sidecar stays; the one that merely could not be asked is folded.
        assert_eq!(names, ["app", "logger"]);
        let info = items[0].checks.iter().find(|c| c.id == NOT_JUDGED).unwrap();
        assert_eq!(info.status, crate::model::Status::Info);
        assert!(info.message.contains("mesh"), "{}", info.message);
        // The first container is never folded, even without an identity.
        let mut items = vec![
            item("app", Verdict::Incomplete, false),
            item("mesh", Verdict::Pass, true),
        ];
        fold_unestablished_sidecars(&mut items);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].verdict, Verdict::Incomplete);
    }

    #[test]
    fn c_narrows_to_one_even_an_init_container() {
        let (meta, spec) = pod(serde_json::json!({"eks.amazonaws.com/skip-containers": "app"}));
        let s = select(&meta, &spec, Some("migrate"));
        assert_eq!(s.judged, ["migrate"]);
        assert!(s.opted_out.is_empty());
        // Naming an opted-out container judges it (and its checks say it is skipped).
        assert_eq!(select(&meta, &spec, Some("app")).judged, ["app"]);
    }

    #[test]
    fn opted_out_containers_are_named_not_judged() {
        let (meta, spec) = pod(serde_json::json!({
            "eks.amazonaws.com/skip-containers": "proxy,logger",
            "azure.workload.identity/skip-containers": "app;"
        }));
        let s = select(&meta, &spec, None);
        // The default container is judged even when opted out: its checks say it is skipped.
        assert_eq!(s.judged, ["app"]);
        assert_eq!(
            s.opted_out,
            [
                OptedOut {
                    container: "logger".into(),
                    annotation: "eks.amazonaws.com/skip-containers"
                },
                OptedOut {
                    container: "proxy".into(),
                    annotation: "eks.amazonaws.com/skip-containers"
                },
            ]
        );
        // The app opted out by mistake beside a sidecar: the app is still judged.
        let (meta, spec) = pod(serde_json::json!({"eks.amazonaws.com/skip-containers": "app"}));
        assert_eq!(
            select(&meta, &spec, None).judged,
            ["app", "logger", "proxy"]
        );
        // A default-container annotation naming no container of the pod is ignored.
        let (meta, spec) =
            pod(serde_json::json!({"kubectl.kubernetes.io/default-container": "gone"}));
        assert_eq!(
            select(&meta, &spec, None).judged,
            ["app", "logger", "proxy"]
        );
        let (meta, spec) = pod(serde_json::json!({"eks.amazonaws.com/skip-containers": "proxy"}));
        let s = select(&meta, &spec, None);
        assert_eq!(s.judged, ["app", "logger"]);
        let check = not_judged_check(&s.opted_out).unwrap();
        assert_eq!(check.id, NOT_JUDGED);
        assert_ne!(check.status, crate::model::Status::Fail);
        assert!(
            check
                .message
                .contains("proxy (listed in eks.amazonaws.com/skip-containers)"),
            "{}",
            check.message
        );
        assert!(not_judged_check(&[]).is_none());
    }
}
