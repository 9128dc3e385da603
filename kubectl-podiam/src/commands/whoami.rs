use crate::cli::{GlobalFlags, WhoamiArgs};
use crate::containers;
use crate::error::Result;
use crate::evidence::Probe;
use crate::kube::{client, pods};
use crate::model::ReportItem;
use crate::options::VerifyOptions;

pub async fn run(global: &GlobalFlags, args: &WhoamiArgs) -> Result<Vec<ReportItem>> {
    let conn = client::connect(&super::connection_flags(global)).await?;
    let pod = pods::get_pod(&conn.client, &conn.namespace, &args.pod).await?;
    let probe = Probe::Live {
        client: conn.client.clone(),
        timeout: conn.timeout,
    };
    let options = VerifyOptions {
        aws: super::aws_target(global, &args.cloud),
        eks_cluster_name: super::eks_cluster_name(global, &args.cloud),
        rbac: super::rbac_options(global),
        gcp: super::gcp_target(global, &args.cloud),
        expect_gsa: args.cloud.expect_gsa.clone(),
        expect_client_id: args.cloud.expect_client_id.clone(),
        azure: super::azure_target(global, &args.cloud),
        probe: crate::ephemeral::ProbeSettings::from_flags(&args.probe),
        allow_skip: args.allow_skip,
        assume_roles: args.assume_roles.clone(),
        ..Default::default()
    };
    let subject = pods::subject(
        &conn.client,
        pod,
        args.container.as_deref(),
        &options.answers,
    )
    .await?;
    Ok(containers::judge_pod(&subject, args.container.as_deref(), &probe, &options).await)
}
