//! Fleet verification: `verify -A`, `verify -n NS` without a pod, `verify -l SELECTOR`. Every
//! listed pod goes through the same judging as a single pod, a bounded number at a time; a pod
//! that cannot be read or reached becomes its own report item and never stops the others.
//! Cloud answers are shared between pods through [`crate::answer_cache`].

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;

use crate::error::{Error, Result};
use crate::evidence::Probe;
use crate::judge::judge;
use crate::kube::pods;
use crate::model::ReportItem;
use crate::options::VerifyOptions;
use crate::report::Format;
use crate::unjudged::{not_running_check, unreachable_item};

/// Containers judged at once (every container of a pod is judged, each its own unit). Each
/// costs one exec (two with Pod Identity's agent; the apiserver's most
/// expensive call, a streamed connection through the kubelet and `runc exec`) and a few
/// cloud calls; 16 keeps a small apiserver responsive while hiding most of the latency
/// (`bench fleet` on 2 cores: 32 is no faster, the cluster's exec path is CPU-bound).
pub const DEFAULT_CONCURRENCY: u16 = 16;

/// Which pods to list, as kubectl resolves `-A`, `-n` and `-l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub selector: Option<String>,
}

impl Scope {
    /// `-A` wins over `-n` (as in kubectl); otherwise `-n`, else the context's namespace.
    pub fn new(all_namespaces: bool, namespace: &str, selector: Option<&str>) -> Result<Self> {
        let selector = match selector.map(str::trim) {
            Some("") => return Err(Error::Usage("-l needs a label selector".into())),
            s => s.map(str::to_string),
        };
        Ok(Scope {
            namespace: (!all_namespaces).then(|| namespace.to_string()),
            selector,
        })
    }

    /// "in namespace X" / "in all namespaces", for messages.
    pub fn describe(&self) -> String {
        let place = match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "in any namespace".into(),
        };
        match &self.selector {
            Some(s) => format!("{place} matching {s}"),
            None => place,
        }
    }
}

/// Whether to draw a progress bar: only for a person watching a terminal, never in CI logs
/// and never when machine-readable output is being piped.
pub fn show_progress(format: Format, stderr_tty: bool, stdout_tty: bool, ci: bool) -> bool {
    stderr_tty && !ci && (format == Format::Text || stdout_tty)
}

/// Stable report order: namespace, pod name; a pod's containers keep the order they were
/// judged in (default container first), so a pod's items stay together.
pub fn sort_items(items: &mut [ReportItem]) {
    items.sort_by(|a, b| (&a.pod.namespace, &a.pod.name).cmp(&(&b.pod.namespace, &b.pod.name)));
}

/// One container of one listed pod: the unit judged (and bounded by `--concurrency`), since
/// each costs its own exec.
struct Unit {
    pod: std::sync::Arc<Pod>,
    container: String,
    /// Its place among the pod's judged containers (0: the default container).
    position: usize,
    /// Containers the pod opts out, named in its first item.
    opted_out: Vec<crate::containers::OptedOut>,
}

pub struct Fleet<'a> {
    pub client: &'a kube::Client,
    pub timeout: Duration,
    pub container: Option<&'a str>,
    pub options: &'a VerifyOptions,
    pub concurrency: usize,
    pub progress: bool,
}

impl Fleet<'_> {
    pub async fn verify(&self, scope: &Scope) -> Result<Vec<ReportItem>> {
        let listed = pods::list_pods(
            self.client,
            scope.namespace.as_deref(),
            scope.selector.as_deref(),
        )
        .await?;
        let listed: Vec<Pod> = match self.container {
            // `-c` picks pods that have that container; the others are not this question.
            Some(c) => listed.into_iter().filter(|p| has_container(p, c)).collect(),
            None => listed,
        };
        if listed.is_empty() {
            eprintln!("No pods found {}.", scope.describe());
        }
        let units = units(listed, self.container);
        let bar = self.progress_bar(units.len());
        let bar_ref = &bar;
        let mut judged: Vec<(usize, ReportItem)> = futures::stream::iter(units)
            .map(|unit| async move {
                let mut item = self
                    .judge_listed(&unit.pod, &unit.container, unit.position)
                    .await;
                if unit.position == 0 {
                    crate::containers::note_not_judged(
                        std::slice::from_mut(&mut item),
                        &unit.opted_out,
                    );
                }
                bar_ref.inc(1);
                (unit.position, item)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        bar.finish_and_clear();
        tracing::debug!(answers = ?self.options.answers.tallies(), "answers shared between pods");
        judged.sort_by_key(|(position, _)| *position);
        let mut items: Vec<ReportItem> = judged.into_iter().map(|(_, item)| item).collect();
        sort_items(&mut items);
        Ok(items)
    }

    fn progress_bar(&self, len: usize) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(len as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "verifying pods {pos}/{len} [{bar:30}] {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// One container of a pod, whatever happens: its report item.
    async fn judge_listed(&self, pod: &Pod, container: &str, position: usize) -> ReportItem {
        // Exec, STS, TokenRequest and S3 each have their own timeout; this bounds their sum.
        let budget = self.timeout * 4;
        match tokio::time::timeout(budget, self.judge_pod(pod, container, position)).await {
            Ok(Ok(item)) => item,
            Ok(Err(e)) => unreachable_item(pod, Some(container), &e.to_string()),
            Err(_) => unreachable_item(
                pod,
                Some(container),
                &format!("no verdict within {budget:?}"),
            ),
        }
    }

    async fn judge_pod(&self, pod: &Pod, container: &str, position: usize) -> Result<ReportItem> {
        let phase = phase(pod);
        let subject = pods::subject(
            self.client,
            pod.clone(),
            Some(container),
            &self.options.answers,
        )
        .await?;
        // The ephemeral probe (refused in fleet mode anyway) is for the first container only.
        let later;
        let options = if position == 0 {
            self.options
        } else {
            later = crate::containers::options_after_first(self.options);
            &later
        };
        if phase == "Running" {
            let probe = Probe::Live {
                client: self.client.clone(),
                timeout: self.timeout,
            };
            return Ok(judge(&subject, &probe, options).await);
        }
        // Nothing to exec into: the spec and its ServiceAccount are all the evidence.
        let mut item = judge(&subject, &Probe::Offline { token: None }, options).await;
        item.checks.push(not_running_check(&phase));
        item.checks.sort_by_key(|c| c.status);
        Ok(item)
    }
}

/// Every listed pod's judged containers (`-c`: that one, in the pods that have it).
fn units(listed: Vec<Pod>, container: Option<&str>) -> Vec<Unit> {
    let mut units = Vec::new();
    for pod in listed {
        let spec = pod.spec.clone().unwrap_or_default();
        let selection = crate::containers::select(&pod.metadata, &spec, container);
        let pod = std::sync::Arc::new(pod);
        for (position, name) in selection.judged.into_iter().enumerate() {
            units.push(Unit {
                pod: pod.clone(),
                container: name,
                position,
                opted_out: if position == 0 {
                    selection.opted_out.clone()
                } else {
                    Vec::new()
                },
            });
        }
    }
    units
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into())
}

fn has_container(pod: &Pod, name: &str) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == name)
    })
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
    fn all_namespaces_wins_over_the_namespace() {
        let s = Scope::new(true, "team-a", None).unwrap();
        assert_eq!(s.namespace, None);
        assert_eq!(s.describe(), "in any namespace");
        let s = Scope::new(false, "team-a", Some("app=web")).unwrap();
        assert_eq!(s.namespace.as_deref(), Some("team-a"));
        assert_eq!(s.selector.as_deref(), Some("app=web"));
        assert_eq!(s.describe(), "in namespace team-a matching app=web");
        assert!(Scope::new(false, "team-a", Some("  ")).is_err());
    }

    #[test]
    fn progress_only_for_a_person_at_a_terminal() {
        assert!(show_progress(Format::Text, true, false, false));
        assert!(show_progress(Format::Json, true, true, false));
        assert!(!show_progress(Format::Json, true, false, false));
        assert!(!show_progress(Format::Junit, true, false, false));
        assert!(!show_progress(Format::Text, false, true, false));
        assert!(!show_progress(Format::Text, true, true, true));
    }

    #[test]
    fn items_sort_by_namespace_then_name() {
        let mut items = vec![
            unreachable_item(&pod("b", "a"), None, "x"),
            unreachable_item(&pod("a", "z"), None, "x"),
            unreachable_item(&pod("a", "b"), None, "x"),
        ];
        sort_items(&mut items);
        let order: Vec<_> = items
            .iter()
            .map(|i| format!("{}/{}", i.pod.namespace, i.pod.name))
            .collect();
        assert_eq!(order, ["a/b", "a/z", "b/a"]);
    }

    #[test]
    fn every_container_is_a_unit_and_c_narrows() {
        let all = units(vec![pod("ns", "p"), pod("ns", "q")], None);
        let names: Vec<_> = all
            .iter()
            .map(|u| {
                format!(
                    "{}/{}@{}",
                    u.pod.metadata.name.as_deref().unwrap(),
                    u.container,
                    u.position
                )
            })
            .collect();
        assert_eq!(names, ["p/main@0", "p/side@1", "q/main@0", "q/side@1"]);
        let one = units(vec![pod("ns", "p")], Some("side"));
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].container.as_str(), one[0].position), ("side", 0));
    }

    #[test]
    fn containers_filter_pods() {
        assert!(has_container(&pod("ns", "p"), "side"));
        assert!(!has_container(&pod("ns", "p"), "other"));
        assert_eq!(phase(&pod("ns", "p")), "Pending");
    }
}
