//! The floor under `verify -A`: the same pods, the same concurrency, one bare exec of `true`
//! each through the same API (apiserver → kubelet → containerd → runc). A fleet run cannot be
//! faster than the execs it needs; `bench fleet` prints its wall time against this floor.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams};
use tokio::io::AsyncReadExt;

/// Wall time of one exec of `true` in each pod matching `selector` in `namespace`,
/// `concurrency` at a time.
pub async fn exec_floor(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    concurrency: usize,
) -> Result<(Duration, usize)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let names: Vec<(String, String)> = pods
        .list(&ListParams::default().labels(selector))
        .await
        .context("listing the fleet's pods")?
        .items
        .into_iter()
        .filter_map(|p| {
            let container = p.spec.as_ref()?.containers.first()?.name.clone();
            Some((p.metadata.name?, container))
        })
        .collect();
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(names.iter())
        .map(|(name, container)| {
            let pods = pods.clone();
            async move {
                let params = AttachParams::default()
                    .container(container.as_str())
                    .stdin(false)
                    .stdout(true)
                    .stderr(false);
                let mut attached = pods
                    .exec(name, ["true"], &params)
                    .await
                    .with_context(|| format!("exec in {name}"))?;
                if let Some(mut out) = attached.stdout() {
                    let mut sink = Vec::new();
                    let _ = out.read_to_end(&mut sink).await;
                }
                attached
                    .join()
                    .await
                    .with_context(|| format!("exec in {name}"))?;
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} bare execs failed", names.len());
    }
    Ok((elapsed, names.len()))
}
