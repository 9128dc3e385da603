//! A scenario's node identity (`spec.setup.node`) given to the node metadata emulators for
//! the scenario's namespace: its instance role is minted in this worker's moto, its managed
//! identity's tokens signed by the Azure emulators.

use anyhow::{Context, Result};

use super::RunContext;
use crate::emulators::node_metadata::{AwsBackend, NodeRoute, NodeSetup};

/// Routes `namespace`'s pods to `node` (nothing to do when the scenario declares no node).
pub fn register(ctx: &RunContext<'_>, namespace: &str, node: &NodeSetup) -> Result<()> {
    node.validate().context("spec.setup.node")?;
    let Some(node_metadata) = &ctx.node_metadata else {
        if node.is_empty() {
            return Ok(());
        }
        anyhow::bail!("spec.setup.node needs the node metadata emulators, which this run lacks");
    };
    if node.is_empty() {
        return Ok(());
    }
    node_metadata.route_namespace(
        namespace,
        NodeRoute {
            node: node.clone(),
            aws: Some(AwsBackend {
                moto_url: ctx.aws.moto_url().to_owned(),
                admin: ctx.aws.admin().clone(),
                account_id: ctx.aws.account_id().to_owned(),
                region: ctx.aws.region().to_owned(),
            }),
            azure: Some(ctx.azure.managed_identity_tokens()),
        },
    );
    Ok(())
}

pub fn unregister(ctx: &RunContext<'_>, namespace: &str) {
    if let Some(node_metadata) = &ctx.node_metadata {
        node_metadata.unroute_namespace(namespace);
        // Requests held open for the scenario's pods end with it.
        node_metadata.release_held(namespace);
    }
}
