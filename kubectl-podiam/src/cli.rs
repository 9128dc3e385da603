//! Command-line definitions. Every flag is defined once here; help and completions come from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl podiam",
    bin_name = "kubectl podiam",
    version,
    about = "Which cloud identity does this pod really get, and why not the one I configured?",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's global flags: kubectl passes them through to plugins untouched.
#[derive(Debug, Args, Clone)]
pub struct GlobalFlags {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Namespace of the pod (default: the context's namespace)
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Timeout for each API request, e.g. 10s, 1m (0 = default 30s)
    #[arg(long, global = true, value_parser = parse_duration)]
    pub request_timeout: Option<std::time::Duration>,
    /// Username to impersonate
    #[arg(long = "as", global = true)]
    pub impersonate: Option<String>,
    /// Group to impersonate (repeatable)
    #[arg(long = "as-group", global = true)]
    pub impersonate_groups: Vec<String>,
    /// Output format
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    pub output: Format,
    /// More diagnostics on stderr (-v, -vv, -vvv); tokens and keys are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Cloud endpoints and expectations shared by whoami and verify.
#[derive(Debug, Args, Clone, Default)]
pub struct CloudFlags {
    /// AWS endpoint for STS/S3/IAM (default: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, then AWS)
    #[arg(long)]
    pub aws_endpoint_url: Option<String>,
    /// AWS region (default: the pod's AWS_REGION, then the local AWS config, then us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// EKS cluster name for Pod Identity: its associations and exchanges from this machine
    /// (default: $PODIAM_EKS_CLUSTER_NAME, then an EKS ARN or eksctl name in the kubeconfig
    /// context)
    #[arg(long, value_name = "NAME")]
    pub eks_cluster_name: Option<String>,
    /// GCS JSON API base URL for --can/--cannot gcs:… (default: STORAGE_EMULATOR_HOST, then Google)
    #[arg(long, value_name = "URL")]
    pub gcs_endpoint_url: Option<String>,
    /// Google's tokeninfo, asked from here about the token a GKE pod's metadata server returned
    /// (default: https://oauth2.googleapis.com/tokeninfo)
    #[arg(long, value_name = "URL", env = "PODIAM_GCP_TOKENINFO_URL")]
    pub gcp_tokeninfo_url: Option<String>,
    /// Fail unless the pod gets this Google service account (GSA email)
    #[arg(long, value_name = "EMAIL")]
    pub expect_gsa: Option<String>,
    /// Entra authority for the token exchange (default: the pod's AZURE_AUTHORITY_HOST)
    #[arg(long, value_name = "URL", env = "PODIAM_AZURE_AUTHORITY_HOST")]
    pub azure_authority_host: Option<String>,
    /// Azure Blob endpoint, path style: URL/ACCOUNT/CONTAINER (default: https://ACCOUNT.blob.core.windows.net)
    #[arg(long, value_name = "URL", env = "PODIAM_AZURE_BLOB_ENDPOINT")]
    pub azure_blob_endpoint: Option<String>,
    /// Fail unless the pod gets this Azure application (client) id
    #[arg(long, value_name = "ID")]
    pub expect_client_id: Option<String>,
}

/// How podiam gets inside the pod (whoami and verify).
#[derive(Debug, Args, Clone, Default)]
pub struct ProbeFlags {
    /// exec: one exec in the container (needs a shell and curl/wget/python3); ephemeral: start
    /// the podiam-probe ephemeral container (it cannot be removed from the pod afterwards);
    /// auto: ephemeral only when exec finds no shell or client
    #[arg(long, value_enum, default_value = "exec")]
    pub probe: crate::ephemeral::ProbeMode,
    /// Image of the ephemeral probe (a registry mirror, or a locally built one)
    #[arg(long, value_name = "IMAGE", env = "PODIAM_PROBE_IMAGE", default_value = crate::ephemeral::DEFAULT_IMAGE)]
    pub probe_image: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a pod's effective identity (Kubernetes and cloud) and the evidence it came from
    Whoami(WhoamiArgs),
    /// Check a pod's cloud identity wiring; exit 0 verified, 1 failed, 2 bad input, 3 unreachable,
    /// 4 incomplete (identity not established, or an expectation skipped)
    Verify(VerifyArgs),
    /// Bind a ServiceAccount to a cloud identity (plan first with --dry-run=client);
    /// exit 0 bound, 1 refused, 2 bad input, 3 unreachable or stopped midway
    Bind(BindArgs),
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the plugin version
    Version,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// The pod to inspect
    pub pod: String,
    /// Judge only this container (default: the default container, then every other container and
    /// sidecar the pod does not opt out with a skip-containers annotation)
    #[arg(short, long)]
    pub container: Option<String>,
    /// After the pod's own exchange, assume this role with the pod's credentials (sts:AssumeRole,
    /// as cert-manager, Karpenter and External Secrets do); repeat for a chain, each hop with the
    /// previous hop's credentials. Offline (no credentials obtained) each hop is a skip
    #[arg(long = "assume-role", value_name = "ARN")]
    pub assume_roles: Vec<String>,
    /// Accept expectations (--expect-*, --can, --cannot, --assume-role) that could not be judged (skipped,
    /// e.g. offline): without it they leave the pod incomplete (exit 4). A pod whose identity
    /// could not be established stays incomplete either way
    #[arg(long)]
    pub allow_skip: bool,
    #[command(flatten)]
    pub cloud: CloudFlags,
    #[command(flatten)]
    pub probe: ProbeFlags,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The pod to verify; without it (and without -f), every pod in the namespace
    #[arg(conflicts_with_all = ["filename", "all_namespaces", "selector"])]
    pub pod: Option<String>,
    /// Verify the pods of every namespace (kube-system included, as kubectl does)
    #[arg(short = 'A', long, conflicts_with = "filename")]
    pub all_namespaces: bool,
    /// Only pods matching this label selector, e.g. app=web,tier!=db (in -n, or with -A)
    #[arg(short = 'l', long, conflicts_with = "filename")]
    pub selector: Option<String>,
    /// Containers verified at once (every container of a pod is judged; each costs an exec and a few cloud calls)
    #[arg(long, default_value_t = crate::fleet::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Verify manifests offline: a file, a directory, or - for stdin
    #[arg(short = 'f', long)]
    pub filename: Option<PathBuf>,
    /// Judge only this container (default: the default container, then every other container and
    /// sidecar the pod does not opt out with a skip-containers annotation)
    #[arg(short, long)]
    pub container: Option<String>,
    /// With -f: exchange this token (a file, or - for stdin) as the pod's token
    #[arg(long, requires = "filename")]
    pub token_file: Option<PathBuf>,
    /// Fail unless the pod gets this role ARN
    #[arg(long, value_name = "ARN")]
    pub expect_role: Option<String>,
    /// Expect this call to be allowed, e.g. s3:ListBucket=my-bucket, gcs:list=my-bucket,
    /// blob:list=ACCOUNT/CONTAINER (repeatable)
    #[arg(long, value_name = "ACTION=RESOURCE")]
    pub can: Vec<String>,
    /// Expect this call to be denied, e.g. s3:PutObject=my-bucket/x, gcs:get=my-bucket/x (repeatable)
    #[arg(long, value_name = "ACTION=RESOURCE")]
    pub cannot: Vec<String>,
    /// After the pod's own exchange, assume this role with the pod's credentials (sts:AssumeRole,
    /// as cert-manager, Karpenter and External Secrets do); repeat for a chain, each hop with the
    /// previous hop's credentials. Offline (no credentials obtained) each hop is a skip
    #[arg(long = "assume-role", value_name = "ARN")]
    pub assume_roles: Vec<String>,
    /// Accept expectations (--expect-*, --can, --cannot, --assume-role) that could not be judged (skipped,
    /// e.g. offline): without it they leave the pod incomplete (exit 4). A pod whose identity
    /// could not be established stays incomplete either way
    #[arg(long)]
    pub allow_skip: bool,
    #[command(flatten)]
    pub cloud: CloudFlags,
    #[command(flatten)]
    pub probe: ProbeFlags,
}

/// kubectl's `--dry-run` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRunArg {
    None,
    Client,
    Server,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("identity").required(true).args(["aws_role", "gcp_sa", "azure_client_id"])))]
pub struct BindArgs {
    /// The ServiceAccount to bind (created when missing)
    pub service_account: String,
    /// AWS IRSA: the IAM role (name or ARN) whose trust policy gets this ServiceAccount
    #[arg(long, value_name = "ARN|NAME")]
    pub aws_role: Option<String>,
    /// With --aws-role: EKS Pod Identity instead of IRSA (the role trusts pods.eks.amazonaws.com,
    /// the cluster --eks-cluster-name gets an association; no annotation)
    #[arg(long, requires = "aws_role", conflicts_with = "audience")]
    pub pod_identity: bool,
    /// Create the role when it does not exist
    #[arg(long, requires = "aws_role")]
    pub create_role: bool,
    /// Attach this managed policy to the role (repeatable)
    #[arg(long = "policy-arn", value_name = "ARN", requires = "aws_role")]
    pub policy_arns: Vec<String>,
    /// Token audience the trust policy requires [default: sts.amazonaws.com]
    #[arg(long, value_name = "AUDIENCE", requires = "aws_role")]
    pub audience: Option<String>,
    /// AKS Workload Identity: the application (client) id whose federated credential gets this
    /// ServiceAccount (Microsoft Graph, the operator's Azure credentials)
    #[arg(long, value_name = "GUID")]
    pub azure_client_id: Option<String>,
    /// Annotate this tenant on the ServiceAccount [default: the webhook's tenant]
    #[arg(long, value_name = "GUID", requires = "azure_client_id")]
    pub azure_tenant_id: Option<String>,
    /// Add azure.workload.identity/use: "true" to the pod templates of the workloads using the
    /// ServiceAccount (without it they are only named)
    #[arg(long, requires = "azure_client_id")]
    pub label_workloads: bool,
    /// Microsoft Graph base URL (default: https://graph.microsoft.com)
    #[arg(
        long,
        value_name = "URL",
        env = "PODIAM_AZURE_GRAPH_ENDPOINT",
        requires = "azure_client_id"
    )]
    pub azure_graph_endpoint: Option<String>,
    /// GKE Workload Identity: the Google service account whose IAM policy grants this
    /// ServiceAccount roles/iam.workloadIdentityUser
    #[arg(long, value_name = "EMAIL")]
    pub gcp_sa: Option<String>,
    /// The cluster's project, whose workload pool PROJECT.svc.id.goog the ServiceAccount belongs
    /// to (default: the project in the cluster's GKE issuer URL, else the GSA's project)
    #[arg(long, value_name = "PROJECT", requires = "gcp_sa")]
    pub gcp_project: Option<String>,
    /// IAM API base URL (default: CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM, then Google)
    #[arg(long, value_name = "URL", requires = "gcp_sa")]
    pub gcp_iam_endpoint_url: Option<String>,
    /// Bind although no node runs the GKE metadata server (e.g. fleet Workload Identity with a
    /// credential configuration file)
    #[arg(long, requires = "gcp_sa")]
    pub allow_no_gke_metadata_server: bool,
    /// none: apply; client: print the plan and change nothing; server: validate the Kubernetes
    /// changes with the API server's dry run (cloud changes are only planned)
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, require_equals = true, default_missing_value = "client")]
    pub dry_run: DryRunArg,
    /// Replace an existing, different annotation (or Pod Identity association)
    #[arg(long)]
    pub overwrite: bool,
    /// Roll the workloads whose pods predate the binding (as kubectl rollout restart)
    #[arg(long)]
    pub restart: bool,
    /// Allow a ServiceAccount name with '*' (trusts every matching ServiceAccount)
    #[arg(long)]
    pub allow_wildcard_subject: bool,
    #[command(flatten)]
    pub cloud: CloudFlags,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 10s, 1m)"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("invalid duration unit in {s:?} (s, m or h)")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("5").unwrap().as_secs(), 5);
        assert!(parse_duration("x").is_err());
    }
}
