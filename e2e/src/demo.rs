//! `podiam-e2e demo`: the main job on the embedded default. Starts the strict AWS emulators with
//! the seed's role, trust policy and bucket, then runs `kubectl podiam verify` on the seed's
//! `s3-pod` as a user would read it: once as the seed wires it, once with a trust policy that
//! names another namespace. Until the local cluster provider is wired in, the pod is verified
//! from its manifests (`verify -f … --token-file -`) with a token the issuer mints for its
//! ServiceAccount.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

use crate::emulators::{AwsEmulatorOptions, AwsEmulators, TokenSpec};
use crate::setup::CloudSetup;

/// The seed's manifests, embedded so the demo runs from any directory.
const SEED_SERVICE_ACCOUNT: &str = include_str!("../../examples/aws/serviceaccount.yaml");
const SEED_POD: &str = include_str!("../../examples/aws/pod.yaml");

const MISCONFIGURED_ROLE: &str = r#"
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
                "${ISSUER_HOSTPATH}:sub": system:serviceaccount:staging:s3-reader
                "${ISSUER_HOSTPATH}:aud": sts.amazonaws.com
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

pub async fn run() -> Result<()> {
    let plugin = plugin_path()?;
    println!("# Starting the AWS emulators: OIDC issuer, strict STS gate, moto (IAM enforced)");
    let emulators = AwsEmulators::start(AwsEmulatorOptions::default()).await?;
    emulators.apply(&CloudSetup::seed_aws()).await?;
    emulators
        .apply(&CloudSetup::from_yaml(MISCONFIGURED_ROLE)?)
        .await?;
    println!("#   issuer {}", emulators.issuer_url());
    println!(
        "#   role my-pod-role trusts system:serviceaccount:default:s3-reader; bucket my-bucket"
    );

    let workdir = tempfile::TempDir::with_prefix("podiam-demo-")?;
    let seed = workdir.path().join("seed");
    std::fs::create_dir_all(&seed)?;
    std::fs::write(seed.join("serviceaccount.yaml"), SEED_SERVICE_ACCOUNT)?;
    std::fs::write(seed.join("pod.yaml"), SEED_POD)?;
    let staging = workdir.path().join("misconfigured");
    std::fs::create_dir_all(&staging)?;
    std::fs::write(
        staging.join("serviceaccount.yaml"),
        SEED_SERVICE_ACCOUNT.replace("role/my-pod-role", "role/staging-role"),
    )?;
    std::fs::write(staging.join("pod.yaml"), SEED_POD)?;

    let token = emulators.mint_token(&TokenSpec::new("default", "s3-reader"))?;
    println!();
    println!("# 1. The seed, as wired: s3-reader → my-pod-role");
    let first = verify(
        &plugin,
        &emulators,
        &seed,
        &token,
        &[
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
    println!("# 2. Misconfigured: the role's trust policy names namespace staging");
    let second = verify(&plugin, &emulators, &staging, &token, &[]).await?;
    println!();
    match (first, second) {
        (0, 1) => {
            println!(
                "# demo: the seed pod verified (exit 0); the misconfiguration was caught (exit 1)"
            );
            Ok(())
        }
        other => bail!("demo: unexpected exit codes {other:?} (want 0 then 1)"),
    }
}

async fn verify(
    plugin: &Path,
    emulators: &AwsEmulators,
    manifests: &Path,
    token: &str,
    extra: &[&str],
) -> Result<i32> {
    let (key, secret) = emulators.admin_credentials();
    println!(
        "$ kubectl podiam verify -f {} --token-file - {}",
        manifests.file_name().unwrap_or_default().to_string_lossy(),
        extra.join(" ")
    );
    let mut child = tokio::process::Command::new(plugin)
        .args(["verify", "-f"])
        .arg(manifests)
        .args(["--token-file", "-"])
        .args(extra)
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_REGION", emulators.region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The operator's credentials: the plugin reads the trust policy to explain a refusal.
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", plugin.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(token.as_bytes()).await?;
    drop(stdin);
    Ok(child.wait().await?.code().unwrap_or(-1))
}
