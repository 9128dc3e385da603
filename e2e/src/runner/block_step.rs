//! `block` step: cut a pod's egress to an address and port until the scenario ends — an
//! iptables rule on the pod bridge (local) or in the kind node (drop: the pod's client times
//! out; reject: refused), or the cloud front holding one host name for the namespace (`via:
//! front`). Every block is recorded so [`release`] removes it when the scenario ends, pass or
//! fail.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::RunContext;
use crate::cluster::cluster_dns::{self, QTYPE_A};
use crate::cluster::{EgressAction, EgressRule, pod_host_ip};
use crate::scenario::{BlockAction, BlockStep, BlockVia};

/// What a scenario has blocked so far.
#[derive(Debug)]
pub enum Block {
    Rule(EgressRule),
    /// The front holds hosts for this namespace.
    Front {
        namespace: String,
    },
}

const NEEDS_LOCAL: &str = "block needs the local or kind provider (iptables on the pod bridge or in the kind node, and the cloud front); this run uses another provider";

pub async fn run(
    ctx: &RunContext<'_>,
    namespace: &str,
    step: &BlockStep,
    blocks: &mut Vec<Block>,
) -> Result<()> {
    let pod = pod_address(&ctx.client, namespace, &step.pod).await?;
    if step.via == BlockVia::Front {
        let front = ctx.cloud_front.context(NEEDS_LOCAL)?;
        let host = step.host.as_deref().context("via: front needs a host")?;
        front.hold_host(namespace, IpAddr::V4(pod), host);
        blocks.push(Block::Front {
            namespace: namespace.to_owned(),
        });
        return Ok(());
    }
    if ctx.kind.is_none() && ctx.egress_faults.is_none() {
        bail!(NEEDS_LOCAL);
    }
    let destinations = match (&step.host, &step.address) {
        (_, Some(address)) => vec![address.parse::<Ipv4Addr>()?],
        (Some(host), None) => match ctx.kind {
            Some(_) => resolve_in_kind(&ctx.client, host).await?,
            None => resolve(host).await?,
        },
        (None, None) => bail!("block needs a host or an address"),
    };
    for destination in destinations {
        let rule = EgressRule {
            source: pod,
            destination,
            port: step.port(),
            action: match step.action {
                BlockAction::Drop => EgressAction::Drop,
                BlockAction::Reject => EgressAction::Reject,
            },
            tag: namespace.to_owned(),
        };
        match (ctx.kind, ctx.egress_faults) {
            (Some(kind), _) => kind.add_fault(&rule).map_err(anyhow::Error::from),
            (None, Some(faults)) => faults.add(&rule).map_err(anyhow::Error::from),
            (None, None) => bail!(NEEDS_LOCAL),
        }
        .with_context(|| {
            format!(
                "blocking {}:{} for pod {}",
                destination, rule.port, step.pod
            )
        })?;
        blocks.push(Block::Rule(rule));
    }
    Ok(())
}

/// Removes every block; failures are printed (the chain is flushed at `cluster down` anyway).
pub fn release(ctx: &RunContext<'_>, blocks: Vec<Block>) {
    for block in blocks {
        match block {
            Block::Rule(rule) => {
                let removed = match (ctx.kind, ctx.egress_faults) {
                    (Some(kind), _) => kind.remove_fault(&rule),
                    (None, Some(faults)) => faults.remove(&rule),
                    (None, None) => Ok(()),
                };
                if let Err(e) = removed {
                    eprintln!("podiam-e2e: removing a block: {e}");
                }
            }
            Block::Front { namespace } => {
                if let Some(front) = ctx.cloud_front {
                    front.release_holds(&namespace);
                }
            }
        }
    }
}

async fn pod_address(client: &kube::Client, namespace: &str, name: &str) -> Result<Ipv4Addr> {
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .with_context(|| format!("reading pod {name}"))?;
    let ip = pod
        .status
        .and_then(|s| s.pod_ip)
        .with_context(|| format!("pod {name} has no address yet (wait for it first)"))?;
    ip.parse()
        .with_context(|| format!("pod {name}'s address {ip:?} is not IPv4"))
}

/// The addresses kind's CoreDNS gives pods for `host`, asked of a running CoreDNS pod over
/// the host's route to the pods.
async fn resolve_in_kind(client: &kube::Client, host: &str) -> Result<Vec<Ipv4Addr>> {
    use kube::api::ListParams;
    let pods = Api::<Pod>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("k8s-app=kube-dns"))
        .await
        .context("listing kind's CoreDNS pods")?;
    let server: Ipv4Addr = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
        .context("kind's CoreDNS has no running pod")?;
    resolve_at(SocketAddr::from((server, 53)), host).await
}

/// The addresses the cluster DNS (CoreDNS on the bridge) gives pods for `host`.
async fn resolve(host: &str) -> Result<Vec<Ipv4Addr>> {
    resolve_at(SocketAddr::from((pod_host_ip(), 53)), host).await
}

async fn resolve_at(server: SocketAddr, host: &str) -> Result<Vec<Ipv4Addr>> {
    let name = host.to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        cluster_dns::query(server, &name, QTYPE_A, Duration::from_secs(2))
    })
    .await?
    .with_context(|| format!("asking the cluster DNS ({server}) for {host}"))?;
    if answer.addresses.is_empty() {
        bail!(
            "the cluster DNS has no address for {host} (rcode {})",
            answer.rcode
        );
    }
    Ok(answer.addresses)
}
