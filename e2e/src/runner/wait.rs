//! `wait` step: a pod reaches Running, Ready or Succeeded, or the step fails with its status.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::scenario::PodPhase;
use crate::scenario::schema::WaitStep;

fn reached(pod: &Pod, phase: PodPhase) -> bool {
    let status = pod.status.as_ref();
    let current = status.and_then(|s| s.phase.as_deref());
    match phase {
        PodPhase::Running => current == Some("Running"),
        PodPhase::Succeeded => current == Some("Succeeded"),
        PodPhase::Ready => status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
    }
}

fn describe(pod: Option<&Pod>) -> String {
    let Some(pod) = pod else {
        return "pod does not exist".into();
    };
    let status = pod.status.clone().unwrap_or_default();
    let waiting: Vec<String> = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            Some(format!(
                "{}: {} {}",
                c.name,
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            ))
        })
        .collect();
    format!(
        "phase {:?}; {}",
        status.phase.unwrap_or_default(),
        waiting.join("; ")
    )
}

/// The pod a step names, or the first (by name) matching its selector.
pub async fn find_pod(
    api: &Api<Pod>,
    name: Option<&str>,
    selector: Option<&str>,
) -> Result<Option<Pod>> {
    if let Some(name) = name {
        return Ok(api.get_opt(name).await?);
    }
    let mut pods = api
        .list(&ListParams::default().labels(selector.unwrap_or_default()))
        .await?
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods.into_iter().next())
}

/// How many pods matching `selector` have reached `phase`, and a description of one that has
/// not (for the timeout message).
async fn count_reached(
    api: &Api<Pod>,
    selector: &str,
    phase: PodPhase,
) -> Result<(usize, Option<Pod>)> {
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    let reached_count = pods.iter().filter(|p| reached(p, phase)).count();
    let laggard = pods.into_iter().find(|p| !reached(p, phase));
    Ok((reached_count, laggard))
}

pub async fn wait(client: &kube::Client, namespace: &str, step: &WaitStep) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    if let (Some(count), Some(selector)) = (step.count, step.selector.as_deref()) {
        let deadline = Instant::now() + Duration::from_secs(step.timeout_seconds);
        loop {
            let (done, laggard) = count_reached(&api, selector, step.phase).await?;
            if done >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{done} of {count} pods matching {selector} reached {:?} within {}s; one that did not: {}",
                    step.phase,
                    step.timeout_seconds,
                    describe(laggard.as_ref())
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(step.timeout_seconds);
    let what = step
        .pod
        .clone()
        .or_else(|| step.selector.as_ref().map(|s| format!("matching {s}")))
        .unwrap_or_default();
    loop {
        let pod = find_pod(&api, step.pod.as_deref(), step.selector.as_deref()).await?;
        if pod.as_ref().is_some_and(|p| reached(p, step.phase)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "pod {what} did not reach {:?} within {}s: {}",
                step.phase,
                step.timeout_seconds,
                describe(pod.as_ref())
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
