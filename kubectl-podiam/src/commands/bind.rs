use crate::bind::aws_pod_identity::PodIdentityRequest;
use crate::bind::aws_role::RoleRequest;
use crate::bind::azure_graph::AzureBindTarget;
use crate::bind::azure_wi::AzureRequest;
use crate::bind::gcp_workload_identity::{GcpIamTarget, GsaRequest};
use crate::bind::plan::{BindReport, DryRun};
use crate::bind::{BindRequest, BindTarget, CloudEndpoints};
use crate::cli::{BindArgs, DryRunArg, GlobalFlags};
use crate::cloud::aws::irsa;
use crate::error::{Error, Result};
use crate::kube::client;

/// The identity flag given (clap's `identity` group allows exactly one) and the flags that only
/// make sense with it, checked by hand: clap's `requires` cannot tell a flag set by the user
/// from one set by its environment variable.
fn target(global: &GlobalFlags, args: &BindArgs) -> Result<BindTarget> {
    let aws_only = args.create_role || !args.policy_arns.is_empty() || args.audience.is_some();
    let azure_only = args.label_workloads || args.azure_tenant_id.is_some();
    let gcp_only = args.gcp_project.is_some() || args.allow_no_gke_metadata_server;
    let misplaced = |flags: &str, with: &str| Err(Error::Usage(format!("{flags} go with {with}")));
    if aws_only && args.aws_role.is_none() {
        return misplaced("--create-role, --policy-arn and --audience", "--aws-role");
    }
    if azure_only && args.azure_client_id.is_none() {
        return misplaced(
            "--label-workloads and --azure-tenant-id",
            "--azure-client-id",
        );
    }
    if gcp_only && args.gcp_sa.is_none() {
        return misplaced(
            "--gcp-project and --allow-no-gke-metadata-server",
            "--gcp-sa",
        );
    }
    match (&args.aws_role, &args.gcp_sa, &args.azure_client_id) {
        (Some(role), None, None) => {
            let role = RoleRequest {
                role: role.clone(),
                create_role: args.create_role,
                policy_arns: args.policy_arns.clone(),
                audience: args
                    .audience
                    .clone()
                    .unwrap_or_else(|| irsa::DEFAULT_AUDIENCE.to_owned()),
            };
            if !args.pod_identity {
                return Ok(BindTarget::AwsIrsa(role));
            }
            let cluster_name = super::eks_cluster_name(global, &args.cloud).ok_or_else(|| {
                Error::Usage(
                    "--pod-identity needs the EKS cluster's name: pass --eks-cluster-name (or set PODIAM_EKS_CLUSTER_NAME); none could be read from the kubeconfig context (an EKS ARN or an eksctl name)".into(),
                )
            })?;
            Ok(BindTarget::AwsPodIdentity(PodIdentityRequest {
                role,
                cluster_name,
            }))
        }
        (None, Some(email), None) => {
            // A malformed email is bad input: say so before touching the cluster.
            crate::bind::gcp_workload_identity::parse_email(email)?;
            Ok(BindTarget::GcpWorkloadIdentity(GsaRequest {
                email: email.clone(),
                project: args.gcp_project.clone(),
                allow_no_metadata_server: args.allow_no_gke_metadata_server,
            }))
        }
        (None, None, Some(client_id)) => {
            let azure = AzureRequest {
                client_id: client_id.clone(),
                tenant_id: args.azure_tenant_id.clone(),
                label_workloads: args.label_workloads,
            };
            crate::bind::azure_wi::validate(&azure)?;
            Ok(BindTarget::AzureWorkloadIdentity(azure))
        }
        _ => Err(Error::Usage(
            "bind needs exactly one of --aws-role, --gcp-sa, --azure-client-id".into(),
        )),
    }
}

pub async fn run(global: &GlobalFlags, args: &BindArgs) -> Result<BindReport> {
    if global.output == crate::report::Format::Junit {
        return Err(Error::Usage("-o junit is for verify".into()));
    }
    let target = target(global, args)?;
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
    let timeout = global.request_timeout.filter(|t| !t.is_zero());
    let clouds = CloudEndpoints {
        aws: super::aws_target(global, &args.cloud),
        gcp_iam: GcpIamTarget {
            iam_endpoint_url: args.gcp_iam_endpoint_url.clone(),
            timeout,
        },
        azure: AzureBindTarget {
            authority_host: args.cloud.azure_authority_host.clone(),
            graph_endpoint: args.azure_graph_endpoint.clone(),
            timeout,
        },
    };
    crate::bind::run(&conn.client, &clouds, &request).await
}
