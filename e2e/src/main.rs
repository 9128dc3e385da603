//! `podiam-e2e`: run the emulators, mint test tokens, benchmark the gate.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use podiam_e2e::emulators::{
    AwsEmulatorOptions, AwsEmulators, DEFAULT_ISSUER_PATH, SIGNING_KEY_FILE_NAME, SigningKey,
    TokenSpec, mint_token,
};
use podiam_e2e::setup::CloudSetup;

/// Non-secret settings written by `emulate aws`, read by `token mint`.
const ENV_FILE_NAME: &str = "emulators.env";

#[derive(Parser)]
#[command(
    name = "podiam-e2e",
    about = "Harness for kubectl-podiam: strict cloud-identity emulators"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The local provider's pod CIDR (run, demo, cluster); its first address is the host's.
    #[arg(long, global = true, env = podiam_e2e::cluster::POD_CIDR_ENV, default_value = podiam_e2e::cluster::DEFAULT_POD_CIDR)]
    pod_cidr: String,
    /// The local provider's pod bridge (run, demo, cluster).
    #[arg(long, global = true, env = podiam_e2e::cluster::BRIDGE_ENV, default_value = podiam_e2e::cluster::DEFAULT_BRIDGE)]
    bridge: String,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on the embedded default: emulators + the seed's pod, verified.
    Demo {
        #[command(flatten)]
        aws: AwsBackendArgs,
    },
    /// A local cluster on its own, left running for manual use (`kubectl`, `kubectl podiam`).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
        /// Cluster provider; only `local` here.
        #[arg(long, global = true, default_value = "local")]
        provider: String,
        #[arg(long, global = true, default_value_os_t = podiam_e2e::cluster::LocalClusterOptions::new("").state_dir)]
        state_dir: PathBuf,
    },
    /// Install and build what the local cluster needs (packages, Kubernetes, etcd, moto venv).
    Setup {
        /// Also Docker (Debian's docker.io, dockerd started detached), kind and the kind node
        /// image `podiam.local/kind-node:<Kubernetes version>`, built locally, cached.
        #[arg(long)]
        kind: bool,
        /// Also LocalStack: its pinned venv (`--aws-backend localstack`) and, once Docker runs
        /// (`--kind` starts it), the image `--aws-backend localstack-docker` starts.
        #[arg(long)]
        localstack: bool,
    },
    /// Run scenarios on the local cluster (real Kubernetes) against the emulators.
    Run {
        /// Scenario files or directories.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// Cluster provider: `local` (real binaries, root), `kind` (Docker) or `existing` (the
        /// current kubeconfig; installs no webhook, creates only namespaces and what scenarios
        /// apply, deleted after each).
        #[arg(long, value_enum, default_value = "local")]
        provider: podiam_e2e::runner::environment::Provider,
        /// `--provider existing`: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// `--provider existing`: the context (default: the current one).
        #[arg(long)]
        context: Option<String>,
        /// `--provider kind`: the node image (default: podiam.local/kind-node:v1.34.4, built
        /// by `setup --kind`; GitHub's workflow passes kindest/node:v1.34.0).
        #[arg(long)]
        kind_node_image: Option<String>,
        /// Write a JUnit report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Keep the cluster, namespaces and cloud objects afterwards.
        #[arg(long)]
        keep: bool,
        /// Scenarios run at once (each with its own emulated AWS account).
        #[arg(short = 'j', long, default_value_t = 1)]
        jobs: usize,
        /// Where the cluster's and emulators' state go.
        #[arg(long, default_value_os_t = podiam_e2e::runner::suite::default_state_root())]
        state_dir: PathBuf,
        #[command(flatten)]
        aws: AwsBackendArgs,
    },
    /// Run emulators until Ctrl-C.
    Emulate {
        #[command(subcommand)]
        cloud: EmulateCloud,
    },
    /// Test tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Measure the emulators.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Start a sandbox to type into (emulators, local cluster, webhooks) detached, and print
    /// the lines to `eval` (KUBECONFIG, PATH with kubectl and kubectl-podiam, endpoints,
    /// credential files): `eval "$(podiam-e2e up --seed)"`.
    Up {
        /// The clouds offered (seed pods and settings).
        #[arg(long, default_value = "aws,gcp,azure")]
        clouds: podiam_e2e::sandbox::Clouds,
        /// Create the seed's pods (s3-pod, gcs-pod, azure-pod) and their cloud setup.
        #[arg(long)]
        seed: bool,
        /// Where pid files, logs, credentials and the cluster go (env PODIAM_SANDBOX_DIR).
        #[arg(long, default_value_os_t = podiam_e2e::sandbox::default_state_dir())]
        state_dir: PathBuf,
        /// Seconds to wait until it is ready.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        #[command(flatten)]
        aws: AwsBackendArgs,
    },
    /// What the sandbox runs; exits non-zero when nothing is up or something died.
    Status {
        #[arg(long, default_value_os_t = podiam_e2e::sandbox::default_state_dir())]
        state_dir: PathBuf,
    },
    /// Stop the sandbox (by pid) and remove everything it made; idempotent.
    Down {
        #[arg(long, default_value_os_t = podiam_e2e::sandbox::default_state_dir())]
        state_dir: PathBuf,
    },
    /// The detached process `up` starts (not for direct use).
    #[command(hide = true)]
    SandboxDaemon {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "aws,gcp,azure")]
        clouds: podiam_e2e::sandbox::Clouds,
        #[arg(long)]
        seed: bool,
        #[command(flatten)]
        aws: AwsBackendArgs,
    },
}

/// `--aws-backend` and `--localstack-image` (run, demo, up).
#[derive(clap::Args, Debug, Clone)]
struct AwsBackendArgs {
    /// What the strict AWS gate fronts for IAM, STS and S3: moto, localstack (host mode, pinned
    /// venv), localstack-docker, or the URL of a running LocalStack (docs/localstack.md).
    #[arg(long, default_value = "moto")]
    aws_backend: podiam_e2e::emulators::AwsBackend,
    /// `--aws-backend localstack-docker`: the image (default: one built locally from the pins).
    #[arg(long)]
    localstack_image: Option<String>,
}

impl AwsBackendArgs {
    fn backend(self) -> Result<podiam_e2e::emulators::AwsBackend> {
        Ok(self
            .aws_backend
            .with_localstack_image(self.localstack_image)?)
    }
}

#[derive(Subcommand)]
enum EmulateCloud {
    /// OIDC issuer + strict STS gate in front of moto (IAM enforced on S3).
    Aws {
        /// Where emulators.env, the CA and the signing key go.
        #[arg(long, default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        /// Cloud-side setup (YAML); default: the built-in seed (fixtures/aws-seed.yaml).
        #[arg(long)]
        setup: Option<PathBuf>,
        /// Issuer URL path.
        #[arg(long, default_value = DEFAULT_ISSUER_PATH)]
        issuer_path: String,
        /// Sign with this RSA private key (PEM) instead of a generated one.
        #[arg(long)]
        signing_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Print a ServiceAccount-shaped token from the running `emulate aws` issuer.
    Mint {
        #[arg(long, default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        service_account: String,
        /// Audience (repeatable); default sts.amazonaws.com.
        #[arg(long = "aud")]
        audiences: Vec<String>,
        #[arg(long, default_value_t = 3600)]
        expires_in: i64,
        /// Already expired.
        #[arg(long)]
        expired: bool,
        /// Signed by another key (signature will not verify).
        #[arg(long)]
        wrong_key: bool,
        /// Pod name for the kubernetes.io claim.
        #[arg(long)]
        pod: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Start and wait for node Ready; the processes keep running after this command exits.
    Up {
        /// `--service-account-issuer` (no emulator serves it in this mode).
        #[arg(long, default_value = "https://127.0.0.1/podiam-local")]
        issuer: String,
    },
    /// Stop every process a detached `up` started (by pid) and remove its state.
    Down,
    /// Each component's pid and whether it runs.
    Status,
}

#[derive(Subcommand)]
enum BenchTarget {
    /// AssumeRoleWithWebIdentity through the gate vs directly against moto.
    Sts {
        #[arg(long, default_value_t = 1000)]
        requests: usize,
    },
    /// whoami/verify on the seed pod in the local cluster: p50/p99, and warm cluster up.
    Verify {
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// `verify -A` over a fleet of busybox pods in the local cluster: wall time, peak RSS,
    /// time per pod, cloud calls made.
    Fleet {
        #[arg(long, default_value_t = 200)]
        pods: usize,
        #[arg(long, default_value_t = 20)]
        service_accounts: usize,
        /// The plugin's --concurrency.
        #[arg(long, default_value_t = 16)]
        concurrency: u16,
        /// A plugin binary to measure (repeatable: each on the same fleet, e.g. a debug and a
        /// release build); default: the kubectl-podiam next to this executable.
        #[arg(long = "plugin")]
        plugins: Vec<PathBuf>,
        /// Runs of verify -A per plugin.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// An extra plugin argument (repeatable, e.g. `--plugin-arg=-vv`).
        #[arg(long = "plugin-arg", allow_hyphen_values = true)]
        plugin_args: Vec<String>,
        /// Write the last run's plugin stderr here.
        #[arg(long)]
        plugin_stderr: Option<PathBuf>,
    },
}

fn default_state_dir() -> PathBuf {
    std::env::temp_dir().join("podiam-e2e-aws")
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    podiam_e2e::cluster::configure_pod_network(podiam_e2e::cluster::PodNetwork::new(
        &cli.pod_cidr,
        &cli.bridge,
    )?)?;
    match cli.command {
        Command::Demo { aws } => {
            podiam_e2e::sandbox::refuse_if_up()?;
            podiam_e2e::demo::run_with(
                &podiam_e2e::runner::suite::default_state_root(),
                aws.backend()?,
            )
            .await
        }
        Command::Cluster {
            action,
            provider,
            state_dir,
        } => {
            if provider != "local" {
                anyhow::bail!("--provider {provider}: `cluster` manages the local provider only");
            }
            cluster_command(action, state_dir).await
        }
        Command::Setup { kind, localstack } => {
            let report =
                tokio::task::spawn_blocking(podiam_e2e::prerequisites::ensure_all).await??;
            eprintln!(
                "podiam-e2e: setup done in {:.1}s {report:?}",
                report.took.as_secs_f64()
            );
            if kind {
                let report =
                    tokio::task::spawn_blocking(podiam_e2e::kind_image::ensure_node_image_report)
                        .await??;
                eprintln!("podiam-e2e: kind node image ready: {report:?}");
            }
            if localstack {
                setup_localstack().await?;
            }
            Ok(())
        }
        Command::Run {
            paths,
            provider,
            kubeconfig,
            context,
            kind_node_image,
            junit,
            keep,
            jobs,
            state_dir,
            aws,
        } => {
            let aws_backend = aws.backend()?;
            if provider != podiam_e2e::runner::environment::Provider::Existing
                && (kubeconfig.is_some() || context.is_some())
            {
                anyhow::bail!("--kubeconfig and --context apply to --provider existing only");
            }
            if provider != podiam_e2e::runner::environment::Provider::Existing {
                podiam_e2e::sandbox::refuse_if_up()?;
            }
            if provider != podiam_e2e::runner::environment::Provider::Kind
                && kind_node_image.is_some()
            {
                anyhow::bail!("--kind-node-image applies to --provider kind only");
            }
            let outcomes =
                podiam_e2e::runner::suite::run_suite(&podiam_e2e::runner::suite::SuiteOptions {
                    paths,
                    junit,
                    keep,
                    state_root: state_dir,
                    plugin: podiam_e2e::demo::plugin_path()?,
                    provider: podiam_e2e::runner::environment::ProviderOptions {
                        provider,
                        kubeconfig,
                        context,
                        aws_backend,
                        kind_node_image,
                    },
                    jobs,
                })
                .await?;
            if outcomes.iter().any(|o| !o.passed()) {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Emulate {
            cloud:
                EmulateCloud::Aws {
                    state_dir,
                    setup,
                    issuer_path,
                    signing_key,
                },
        } => emulate_aws(state_dir, setup.as_deref(), issuer_path, signing_key).await,
        Command::Token {
            action:
                TokenAction::Mint {
                    state_dir,
                    namespace,
                    service_account,
                    audiences,
                    expires_in,
                    expired,
                    wrong_key,
                    pod,
                },
        } => {
            let mut spec = TokenSpec::new(&namespace, &service_account);
            if !audiences.is_empty() {
                spec.audiences = audiences;
            }
            spec.expires_in_seconds = expires_in;
            spec.expired = expired;
            spec.wrong_key = wrong_key;
            spec.pod_name = pod;
            // The one place a token is printed: minting it is this command's job.
            println!("{}", mint_from_state_dir(&state_dir, &spec)?);
            Ok(())
        }
        Command::Bench {
            target: BenchTarget::Verify { runs },
        } => {
            let state_root = podiam_e2e::runner::suite::default_state_root();
            let report = podiam_e2e::bench_verify::bench_verify(&state_root, runs).await?;
            println!("{report}");
            Ok(())
        }
        Command::Bench {
            target:
                BenchTarget::Fleet {
                    pods,
                    service_accounts,
                    concurrency,
                    plugins,
                    runs,
                    plugin_args,
                    plugin_stderr,
                },
        } => {
            let state_root = podiam_e2e::runner::suite::default_state_root();
            let report = podiam_e2e::bench_fleet::bench_fleet(
                &state_root,
                podiam_e2e::bench_fleet::FleetBenchOptions {
                    pods,
                    service_accounts,
                    concurrency,
                    plugins,
                    runs,
                    plugin_args,
                },
            )
            .await?;
            if let (Some(path), Some(last)) = (plugin_stderr, report.runs.last()) {
                std::fs::write(&path, &last.stderr)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{report}");
            Ok(())
        }
        Command::Up {
            clouds,
            seed,
            state_dir,
            timeout,
            aws,
        } => {
            let aws_backend = aws.backend()?;
            let lines = tokio::task::spawn_blocking(move || {
                podiam_e2e::sandbox::up(&podiam_e2e::sandbox::UpOptions {
                    state_dir,
                    clouds,
                    seed,
                    aws_backend,
                    timeout: std::time::Duration::from_secs(timeout),
                })
            })
            .await??;
            // Only lines to eval on stdout; no secret among them (credentials are files).
            print!("{lines}");
            Ok(())
        }
        Command::Status { state_dir } => {
            let status = podiam_e2e::sandbox::status(&state_dir)?;
            print!("{status}");
            if !status.healthy() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Down { state_dir } => {
            let report = tokio::task::spawn_blocking(move || podiam_e2e::sandbox::down(&state_dir))
                .await??;
            match (report.daemon, report.cleaned) {
                (Some(pid), _) => eprintln!(
                    "podiam-e2e: sandbox (pid {pid}) stopped in {:.1}s",
                    report.took.as_secs_f64()
                ),
                (None, true) => eprintln!(
                    "podiam-e2e: cleaned what a stopped sandbox left ({:.1}s)",
                    report.took.as_secs_f64()
                ),
                (None, false) => eprintln!("podiam-e2e: no sandbox was up"),
            }
            Ok(())
        }
        Command::SandboxDaemon {
            state_dir,
            clouds,
            seed,
            aws,
        } => {
            podiam_e2e::sandbox::daemon::run(podiam_e2e::sandbox::daemon::DaemonOptions {
                state_dir,
                clouds,
                seed,
                aws_backend: aws.backend()?,
            })
            .await
        }
        Command::Bench {
            target: BenchTarget::Sts { requests },
        } => {
            let report = podiam_e2e::bench::bench_sts(requests).await?;
            println!("{report}");
            Ok(())
        }
    }
}

/// `setup --localstack`: the venv always; the docker image only where Docker runs, said so
/// otherwise (it is then built by the first `localstack-docker` run).
async fn setup_localstack() -> Result<()> {
    let started = std::time::Instant::now();
    let env =
        tokio::task::spawn_blocking(podiam_e2e::localstack_env::LocalStackEnv::ensure).await??;
    eprintln!(
        "podiam-e2e: LocalStack venv ready ({}) in {:.1}s",
        env.dir().display(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(
        podiam_e2e::emulators::localstack_docker::ensure_default_image,
    )
    .await?
    {
        Ok(image) => eprintln!(
            "podiam-e2e: LocalStack image {image} ready in {:.1}s",
            started.elapsed().as_secs_f64()
        ),
        Err(podiam_e2e::emulators::localstack_docker::LocalStackDockerError::NoDocker(why)) => {
            eprintln!(
                "podiam-e2e: no Docker running ({why}): the LocalStack image is built by the first --aws-backend localstack-docker run"
            )
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn cluster_command(action: ClusterAction, state_dir: PathBuf) -> Result<()> {
    use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions, down_detached, status_detached};
    match action {
        ClusterAction::Up { issuer } => {
            let mut options = LocalClusterOptions::new(issuer);
            options.state_dir = state_dir;
            options.keep_running_on_drop = true;
            let cluster = LocalCluster::up(options).await?;
            println!("KUBECONFIG={}", cluster.kubeconfig_path().display());
            eprintln!(
                "podiam-e2e: node Ready in {:.1}s",
                cluster.up_timings().total.as_secs_f64()
            );
        }
        ClusterAction::Down => down_detached(&state_dir)?,
        ClusterAction::Status => {
            let components = status_detached(&state_dir);
            if components.is_empty() {
                println!("no cluster in {}", state_dir.display());
            }
            for (name, pid, running) in components {
                println!(
                    "{name:<24} pid {pid:<8} {}",
                    if running { "running" } else { "stopped" }
                );
            }
        }
    }
    Ok(())
}

async fn emulate_aws(
    state_dir: PathBuf,
    setup: Option<&Path>,
    issuer_path: String,
    signing_key_file: Option<PathBuf>,
) -> Result<()> {
    let setup = match setup {
        Some(file) => CloudSetup::from_file(file)?,
        None => CloudSetup::seed_aws(),
    };
    let emulators = AwsEmulators::start(AwsEmulatorOptions {
        state_dir: Some(state_dir.clone()),
        issuer_path,
        signing_key_file,
        persist_signing_key: true,
        ..AwsEmulatorOptions::default()
    })
    .await?;
    emulators.apply(&setup).await?;
    let env = emulators.env_file_contents();
    let env_file = state_dir.join(ENV_FILE_NAME);
    fs::write(&env_file, &env).with_context(|| format!("writing {}", env_file.display()))?;
    print!("{env}");
    eprintln!(
        "podiam-e2e: settings in {}; Ctrl-C to stop",
        env_file.display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn mint_from_state_dir(state_dir: &Path, spec: &TokenSpec) -> Result<String> {
    let env_file = state_dir.join(ENV_FILE_NAME);
    let env = fs::read_to_string(&env_file).with_context(|| {
        format!(
            "reading {} (is `podiam-e2e emulate aws` running?)",
            env_file.display()
        )
    })?;
    let issuer = env
        .lines()
        .find_map(|line| line.strip_prefix("PODIAM_OIDC_ISSUER="))
        .with_context(|| format!("no PODIAM_OIDC_ISSUER in {}", env_file.display()))?;
    let key = SigningKey::from_file(&state_dir.join(SIGNING_KEY_FILE_NAME))?;
    let wrong_key = if spec.wrong_key {
        Some(SigningKey::generate()?)
    } else {
        None
    };
    mint_token(spec, issuer, &key, wrong_key.as_ref())
}
