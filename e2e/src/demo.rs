//! `podiam-e2e demo`: the main job on the embedded default. Builds what is missing (setup),
//! starts the strict emulators (AWS, GCP, Azure), a real local Kubernetes and the webhook
//! stand-ins, creates the seed's three ServiceAccounts and pods (`s3-pod`, `gcs-pod`,
//! `azure-pod`), and runs `kubectl podiam whoami` and `verify` on each running pod as a user
//! would read them — then a pod whose role's trust policy names another namespace — and tears
//! everything down.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::emulators::ACCOUNT_ID;
use crate::emulators::azure::AzureSetup;
use crate::runner::environment::Environment;
use crate::runner::plugin_command::{add_gcp_env, host_side_args, plugin_command};
use crate::sandbox::Clouds;
use crate::setup::{CloudSetup, SetupVariables};

/// The seed's manifests, embedded so the demo runs from any directory.
const SEED_SERVICE_ACCOUNT: &str = include_str!("../../examples/aws/serviceaccount.yaml");
const SEED_POD: &str = include_str!("../../examples/aws/pod.yaml");
const GCP_SERVICE_ACCOUNT: &str = include_str!("../../examples/gcp/serviceaccount.yaml");
const GCP_POD: &str = include_str!("../../examples/gcp/pod.yaml");
const AZURE_SERVICE_ACCOUNT: &str = include_str!("../../examples/azure/serviceaccount.yaml");
const AZURE_POD: &str = include_str!("../../examples/azure/pod.yaml");

const STAGING_ROLE: &str = r#"
aws:
  roles:
    - name: staging-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Federated: "arn:aws:iam::${ACCOUNT_ID}:oidc-provider/${ISSUER_HOSTPATH}"}
            Action: sts:AssumeRoleWithWebIdentity
            Condition:
              StringEquals:
                "${ISSUER_HOSTPATH}:sub": system:serviceaccount:staging:staging-reader
                "${ISSUER_HOSTPATH}:aud": sts.amazonaws.com
"#;

/// The node's instance profile role (what an unwired pod's SDK falls back to through IMDS).
const NODE_ROLE: &str = r#"
aws:
  roles:
    - name: node-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: sts:AssumeRole
"#;

/// A pod wired to no workload identity.
const UNWIRED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: unwired-pod
spec:
  containers:
    - name: app
      image: amazonlinux
      command: ["sleep", "3600"]
"#;

/// A pod in `default` whose ServiceAccount points at a role trusting namespace `staging`.
const MISCONFIGURED: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: staging-reader
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/staging-role
---
apiVersion: v1
kind: Pod
metadata:
  name: staging-pod
spec:
  serviceAccountName: staging-reader
  containers:
    - name: app
      image: amazonlinux
      command: ["sleep", "3600"]
"#;

/// `kubectl-podiam` next to this executable (both are built by `cargo build`).
pub fn plugin_path() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let plugin = exe.with_file_name("kubectl-podiam");
    if !plugin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --workspace)",
            plugin.display()
        );
    }
    Ok(plugin)
}

pub async fn run(state_root: &Path) -> Result<()> {
    run_with(state_root, crate::emulators::AwsBackend::default()).await
}

/// The demo with the AWS gate in front of `aws_backend` (`demo --aws-backend`).
pub async fn run_with(state_root: &Path, aws_backend: crate::emulators::AwsBackend) -> Result<()> {
    let plugin = plugin_path()?;
    println!("# Setup: host packages, Kubernetes v1.34.4 and etcd (built once, cached), moto venv");
    tokio::task::spawn_blocking(crate::prerequisites::ensure_all).await??;
    println!(
        "# Starting the emulators (AWS, GCP, Azure), a local Kubernetes cluster and the webhooks"
    );
    let mut options = super::runner::environment::ProviderOptions::new(
        super::runner::environment::Provider::Local,
    );
    options.aws_backend = aws_backend;
    let env = Environment::start(&options, state_root).await?;
    for (what, took) in &env.timings {
        println!("#   {what}: {:.1}s", took.as_secs_f64());
    }
    let result = demo_steps(&env, &plugin).await;
    env.down().await?;
    println!("# Cluster stopped; emulators stopped.");
    println!(
        "# To type these commands yourself: eval \"$(podiam-e2e up --seed)\", then kubectl podiam verify s3-pod"
    );
    println!("#   (podiam-e2e status shows what runs; podiam-e2e down stops it all)");
    result
}

async fn demo_steps(env: &Environment, plugin: &Path) -> Result<()> {
    create_seed(env, Clouds::only_aws(), MISCONFIGURED, &["staging-pod"]).await?;
    env.aws.apply(&CloudSetup::from_yaml(STAGING_ROLE)?).await?;
    println!(
        "#   role my-pod-role trusts system:serviceaccount:default:s3-reader; bucket my-bucket"
    );
    println!();
    println!("# 1. The seed's pod, as wired: s3-reader → my-pod-role");
    let whoami = podiam(env, plugin, &["whoami", "s3-pod"]).await?;
    println!();
    let verified = podiam(
        env,
        plugin,
        &[
            "verify",
            "s3-pod",
            "--expect-role",
            "arn:aws:iam::123456789012:role/my-pod-role",
            "--can",
            "s3:ListBucket=my-bucket",
            "--cannot",
            "s3:PutObject=my-bucket/x",
        ],
    )
    .await?;
    println!();

    let gke_and_aks = Clouds {
        aws: false,
        ..Clouds::default()
    };
    create_seed(env, gke_and_aks, "", &[]).await?;
    println!("# 2. The seed's GKE pod: gke-service-account → gke-service-account@my-project");
    let gcp_whoami = podiam(env, plugin, &["whoami", "gcs-pod"]).await?;
    println!();
    let gcp_verified = podiam(
        env,
        plugin,
        &[
            "verify",
            "gcs-pod",
            "--expect-gsa",
            "gke-service-account@my-project.iam.gserviceaccount.com",
            "--can",
            "gcs:list=my-bucket",
        ],
    )
    .await?;
    println!();
    println!("# 3. The seed's AKS pod (labelled, GUID client id): aks-service-account → its app");
    let azure_whoami = podiam(env, plugin, &["whoami", "azure-pod"]).await?;
    println!();
    let azure_verified = podiam(
        env,
        plugin,
        &[
            "verify",
            "azure-pod",
            "--can",
            "blob:list=mystorageaccount/mycontainer",
        ],
    )
    .await?;
    println!();

    println!("# 4. Misconfigured: staging-pod's role trusts namespace staging, not default");
    let caught = podiam(env, plugin, &["verify", "staging-pod"]).await?;
    println!();

    println!("# 5. Blocked: s3-pod's egress to STS dropped (iptables, from the pod's address to");
    println!(
        "#    sts.us-east-1.amazonaws.com:443 only); from this machine the exchange still works"
    );
    let block = block_sts(env).await?;
    let blocked = podiam(env, plugin, &["verify", "s3-pod"]).await;
    if let Some((faults, rule)) = block {
        let _ = faults.remove(&rule);
    }
    let blocked = blocked?;
    println!();

    println!(
        "# 6. Unwired: unwired-pod has no workload identity; its node's instance role (hop limit 2)"
    );
    println!("#    answers IMDSv2 from inside the pod, so the pod's SDK silently runs as the node");
    env.aws.apply(&CloudSetup::from_yaml(NODE_ROLE)?).await?;
    route_node_role(env)?;
    env.create_pods("default", UNWIRED, &["unwired-pod"])
        .await
        .context("creating the unwired pod")?;
    let node_fallback = podiam(env, plugin, &["verify", "unwired-pod"]).await?;
    println!();
    let codes = [
        whoami,
        verified,
        gcp_whoami,
        gcp_verified,
        azure_whoami,
        azure_verified,
        caught,
        blocked,
        node_fallback,
    ];
    if codes == [0, 0, 0, 0, 0, 0, 1, 1, 1] {
        println!(
            "# demo: s3-pod, gcs-pod and azure-pod verified (exit 0); the misconfiguration, the pod cut off from STS and the node-role fallback were caught (exit 1)"
        );
        Ok(())
    } else {
        bail!("demo: unexpected exit codes {codes:?} (want 0 for each seed pod, then 1)")
    }
}

/// The seed of each of `clouds` (its roles, accounts and buckets; its ServiceAccount and
/// pod: `s3-pod`, `gcs-pod`, `azure-pod` in `default`), with `extra` manifests applied in the
/// same go, then waits until the seed's pods and `extra_pods` run. `demo` and `up --seed`.
pub async fn create_seed(
    env: &Environment,
    clouds: Clouds,
    extra: &str,
    extra_pods: &[&str],
) -> Result<()> {
    let variables = SetupVariables {
        issuer: env.issuer.clone(),
        account_id: ACCOUNT_ID.to_owned(),
    };
    let mut manifests = Vec::new();
    let mut pods = Vec::new();
    if clouds.aws {
        env.aws.apply(&CloudSetup::seed_aws()).await?;
        manifests.extend([SEED_SERVICE_ACCOUNT, SEED_POD]);
        pods.push("s3-pod");
    }
    if clouds.gcp {
        env.gcp.apply(&CloudSetup::seed_gcp().gcp, &variables)?;
        manifests.extend([GCP_SERVICE_ACCOUNT, GCP_POD]);
        pods.push("gcs-pod");
    }
    if clouds.azure {
        env.azure.apply(&AzureSetup::seed(), &variables)?;
        manifests.extend([AZURE_SERVICE_ACCOUNT, AZURE_POD]);
        pods.push("azure-pod");
    }
    if !extra.is_empty() {
        manifests.push(extra);
    }
    pods.extend_from_slice(extra_pods);
    if manifests.is_empty() {
        return Ok(());
    }
    env.create_pods("default", &manifests.join("\n---\n"), &pods)
        .await
        .with_context(|| format!("creating the seed's ServiceAccounts and pods ({clouds})"))
}

/// Drops s3-pod's packets to the regional STS endpoint's address (the cloud front) on 443.
async fn block_sts(
    env: &Environment,
) -> Result<Option<(&crate::cluster::EgressFaults, crate::cluster::EgressRule)>> {
    use k8s_openapi::api::core::v1::Pod;
    let Some(faults) = env.egress_faults.as_ref() else {
        bail!("the demo's blocked pod needs the local provider's egress faults");
    };
    let pods: kube::Api<Pod> = kube::Api::namespaced(env.client.clone(), "default");
    let pod_ip: std::net::Ipv4Addr = pods
        .get("s3-pod")
        .await?
        .status
        .and_then(|s| s.pod_ip)
        .context("s3-pod has no address")?
        .parse()?;
    let rule = crate::cluster::EgressRule {
        source: pod_ip,
        destination: crate::cluster::pod_host_ip(),
        port: 443,
        action: crate::cluster::EgressAction::Drop,
        tag: "demo".to_owned(),
    };
    faults.add(&rule)?;
    Ok(Some((faults, rule)))
}

/// Pods of `default` sit on a node whose instance profile is node-role (IMDSv2, hop limit 2).
fn route_node_role(env: &Environment) -> Result<()> {
    use crate::emulators::node_metadata::{AwsBackend, AwsNodeSetup, NodeRoute, NodeSetup};
    let node = NodeSetup {
        aws: Some(AwsNodeSetup {
            instance_role: Some("node-role".to_owned()),
            ..serde_json::from_value(serde_json::json!({}))?
        }),
        ..NodeSetup::default()
    };
    env.gcp.node_metadata().route_namespace(
        "default",
        NodeRoute {
            node,
            aws: Some(AwsBackend {
                moto_url: env.aws.moto_url().to_owned(),
                admin: env.aws.admin().clone(),
                account_id: env.aws.account_id().to_owned(),
                region: env.aws.region().to_owned(),
            }),
            azure: None,
        },
    );
    Ok(())
}

/// Runs the plugin as a user would, output straight to the terminal.
async fn podiam(env: &Environment, plugin: &Path, args: &[&str]) -> Result<i32> {
    println!("$ kubectl podiam {}", args.join(" "));
    let mut command = plugin_command(plugin, &env.kubeconfig, &env.aws, &env.azure, args);
    add_gcp_env(&mut command, &env.gcp);
    Ok(command
        .args(args)
        .args(host_side_args(args, &env.azure))
        .status()
        .await
        .with_context(|| format!("running {}", plugin.display()))?
        .code()
        .unwrap_or(-1))
}
