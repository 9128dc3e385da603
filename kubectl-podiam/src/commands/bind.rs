use crate::bind::aws_pod_identity::PodIdentityRequest;
use crate::bind::aws_role::RoleRequest;
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
    let target = match &args.aws_role {
        Some(role) => {
            let role = RoleRequest {
                role: role.clone(),
                create_role: args.create_role,
                policy_arns: args.policy_arns.clone(),
                audience: args
                    .audience
                    .clone()
                    .unwrap_or_else(|| irsa::DEFAULT_AUDIENCE.to_owned()),
            };
            if args.pod_identity {
                BindTarget::AwsPodIdentity(PodIdentityRequest {
                    role,
                    cluster_name: super::eks_cluster_name(global, &args.cloud).ok_or_else(|| {
                        Error::Usage(
                            "--pod-identity needs the EKS cluster's name: pass --eks-cluster-name (or set PODIAM_EKS_CLUSTER_NAME); none could be read from the kubeconfig context (an EKS ARN or an eksctl name)".into(),
                        )
                    })?,
                })
            } else {
                BindTarget::AwsIrsa(role)
            }
        }
        None => return Err(Error::Usage("bind needs --aws-role".into())),
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
    };
    crate::bind::run(&conn.client, &clouds, &request).await
}
