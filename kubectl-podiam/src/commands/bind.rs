use crate::bind::aws_role::RoleRequest;
use crate::bind::azure_graph::AzureBindTarget;
use crate::bind::azure_wi::AzureRequest;
use crate::bind::plan::{BindReport, DryRun};
use crate::bind::{BindRequest, BindTarget, CloudEndpoints};
use crate::cli::{BindArgs, DryRunArg, GlobalFlags};
use crate::error::{Error, Result};
use crate::kube::client;
use crate::mechanisms::aws_irsa::annotations as irsa;

pub async fn run(global: &GlobalFlags, args: &BindArgs) -> Result<BindReport> {
    if global.output == crate::report::Format::Junit {
        return Err(Error::Usage("-o junit is for verify".into()));
    }
    let target = match (&args.aws_role, &args.azure_client_id) {
        (Some(_), None) if args.label_workloads || args.azure_tenant_id.is_some() => {
            return Err(Error::Usage(
                "--label-workloads and --azure-tenant-id go with --azure-client-id".into(),
            ));
        }
        (None, Some(_))
            if args.create_role || !args.policy_arns.is_empty() || args.audience.is_some() =>
        {
            return Err(Error::Usage(
                "--create-role, --policy-arn and --audience go with --aws-role".into(),
            ));
        }
        (None, Some(client_id)) => BindTarget::AzureWorkloadIdentity(AzureRequest {
            client_id: client_id.clone(),
            tenant_id: args.azure_tenant_id.clone(),
            label_workloads: args.label_workloads,
        }),
        (Some(role), None) => BindTarget::AwsIrsa(RoleRequest {
            role: role.clone(),
            create_role: args.create_role,
            policy_arns: args.policy_arns.clone(),
            audience: args
                .audience
                .clone()
                .unwrap_or_else(|| irsa::DEFAULT_AUDIENCE.to_owned()),
        }),
        _ => {
            return Err(Error::Usage(
                "bind needs exactly one of --aws-role, --azure-client-id".into(),
            ));
        }
    };
    if let BindTarget::AzureWorkloadIdentity(azure) = &target {
        crate::bind::azure_wi::validate(azure)?;
    }
    let conn = client::connect(&super::connection_flags(global)).await?;
    let request = BindRequest {
        namespace: conn.namespace.clone(),
        service_account: args.service_account.clone(),
        target,
        dry_run: match args.dry_run {
            DryRunArg::None => DryRun::None,
            DryRunArg::Client => DryRun::Client,
            DryRunArg::Server => DryRun::Server,
        },
        overwrite: args.overwrite,
        restart: args.restart,
        allow_wildcard_subject: args.allow_wildcard_subject,
    };
    let clouds = CloudEndpoints {
        aws: super::aws_target(global, &args.cloud),
        azure: AzureBindTarget {
            authority_host: args.cloud.azure_authority_host.clone(),
            graph_endpoint: args.azure_graph_endpoint.clone(),
            timeout: global.request_timeout.filter(|t| !t.is_zero()),
        },
    };
    crate::bind::run(&conn.client, &clouds, &request).await
}
