use crate::bind::aws_role::RoleRequest;
use crate::bind::gcp_workload_identity::{GcpIamTarget, GsaRequest};
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
    let target = match (&args.aws_role, &args.gcp_sa) {
        (_, Some(email)) => {
            // A malformed email is bad input: say so before touching the cluster.
            crate::bind::gcp_workload_identity::parse_email(email)?;
            BindTarget::GcpWorkloadIdentity(GsaRequest {
                email: email.clone(),
                project: args.gcp_project.clone(),
                allow_no_metadata_server: args.allow_no_gke_metadata_server,
            })
        }
        (Some(role), None) => BindTarget::AwsIrsa(RoleRequest {
            role: role.clone(),
            create_role: args.create_role,
            policy_arns: args.policy_arns.clone(),
            audience: args
                .audience
                .clone()
                .unwrap_or_else(|| irsa::DEFAULT_AUDIENCE.to_owned()),
        }),
        (None, None) => return Err(Error::Usage("bind needs --aws-role or --gcp-sa".into())),
    };
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
        gcp_iam: GcpIamTarget {
            iam_endpoint_url: args.gcp_iam_endpoint_url.clone(),
            timeout: global.request_timeout.filter(|d| !d.is_zero()),
        },
    };
    crate::bind::run(&conn.client, &clouds, &request).await
}
