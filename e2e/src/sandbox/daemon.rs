//! `podiam-e2e sandbox-daemon` (hidden; started by `up` in its own session): builds the
//! environment a scenario run builds ([`Environment::start`]), creates the seed's pods with
//! `--seed`, writes the eval lines, `sandbox.json` and then the ready file, and stays until
//! SIGTERM or SIGINT, when it tears everything down as a scenario run does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use super::eval_lines::{link_binaries, write_shell_env};
use super::processes::{RecordedProcess, descendants};
use super::state::{Endpoint, SandboxState, write_atomically};
use super::{Clouds, ENV_FILE, READY_FILE};
use crate::runner::environment::{Cluster, Environment, Provider, ProviderOptions};

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub state_dir: PathBuf,
    pub clouds: Clouds,
    pub seed: bool,
    pub aws_backend: crate::emulators::AwsBackend,
}

/// The environment the sandbox runs: the local provider, as `run` and `demo` start it. The
/// one place options that `up` passes through (a cloud backend, say) reach the environment.
pub fn environment_options(options: &DaemonOptions) -> ProviderOptions {
    let mut provider = ProviderOptions::new(Provider::Local);
    provider.aws_backend = options.aws_backend.clone();
    provider
}

/// Where the environment keeps its own state (cluster, emulators) inside the sandbox's.
pub fn environment_root(state_dir: &Path) -> PathBuf {
    state_dir.join("env")
}

pub async fn run(options: DaemonOptions) -> Result<()> {
    close_inherited_descriptors();
    // Installed before anything starts, so a SIGTERM during start-up still tears down.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let state_dir = &options.state_dir;
    let plugin = crate::demo::plugin_path()?;
    let kubectl = crate::cluster::default_binaries_dir().join("kubectl");
    eprintln!("podiam-e2e sandbox: setup (cached: host packages, Kubernetes, etcd, moto venv)");
    tokio::task::spawn_blocking(crate::prerequisites::ensure_all).await??;
    if !kubectl.is_file() {
        anyhow::bail!(
            "{} missing: run e2e/k8s/build.sh (it builds kubectl with the other Kubernetes binaries)",
            kubectl.display()
        );
    }
    eprintln!("podiam-e2e sandbox: starting the emulators, the local cluster and the webhooks");
    let env =
        Environment::start(&environment_options(&options), &environment_root(state_dir)).await?;
    for (what, took) in &env.timings {
        eprintln!("podiam-e2e sandbox:   {what}: {:.1}s", took.as_secs_f64());
    }
    let prepared = tokio::select! {
        prepared = prepare(&env, &options, &kubectl, &plugin) => prepared,
        _ = terminate.recv() => Ok(()),
        _ = interrupt.recv() => Ok(()),
    };
    if prepared.is_ok() && state_dir.join(READY_FILE).exists() {
        eprintln!("podiam-e2e sandbox: ready; SIGTERM stops it");
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
    eprintln!("podiam-e2e sandbox: stopping");
    let _ = std::fs::remove_file(state_dir.join(READY_FILE));
    let down = env.down().await;
    eprintln!("podiam-e2e sandbox: stopped");
    prepared.and(down)
}

/// Seed, credentials and eval lines, state, then the ready file (last).
async fn prepare(
    env: &Environment,
    options: &DaemonOptions,
    kubectl: &Path,
    plugin: &Path,
) -> Result<()> {
    let state_dir = &options.state_dir;
    if options.seed {
        eprintln!(
            "podiam-e2e sandbox: creating the seed's pods ({})",
            options.clouds
        );
        crate::demo::create_seed(env, options.clouds, "", &[]).await?;
    }
    link_binaries(state_dir, kubectl, plugin)?;
    let lines = write_shell_env(env, state_dir, options.clouds)?;
    write_atomically(&state_dir.join(ENV_FILE), lines.as_bytes())?;
    let me = std::process::id();
    let state = SandboxState {
        daemon: RecordedProcess::of(me).context("reading the daemon's own /proc entry")?,
        clouds: options.clouds,
        seeded: options.seed,
        aws_backend: options.aws_backend.to_string(),
        kubeconfig: env.kubeconfig.clone(),
        cluster_state_dir: environment_root(state_dir).join("cluster"),
        api_server: match &env.cluster {
            Some(Cluster::Local(c)) => c.api_server_url(),
            _ => String::new(),
        },
        endpoints: endpoints(env),
        processes: descendants(me)
            .into_iter()
            .filter_map(RecordedProcess::of)
            .collect(),
    };
    state.write(state_dir)?;
    write_atomically(&state_dir.join(READY_FILE), b"ready\n")?;
    Ok(())
}

/// Every address the sandbox serves, for `status`.
fn endpoints(env: &Environment) -> Vec<Endpoint> {
    let mut list = vec![
        ("AWS STS/IAM/S3 gate", env.aws.gate_url().to_owned()),
        ("AWS OIDC issuer", env.aws.issuer_url().to_owned()),
        ("moto", env.aws.moto_url().to_owned()),
        ("GKE metadata server", env.gcp.metadata_url()),
        ("Google STS", env.gcp.sts_url().to_owned()),
        (
            "Google IAM Credentials",
            env.gcp.iam_credentials_url().to_owned(),
        ),
        ("Google IAM", env.gcp.iam_url().to_owned()),
        ("Cloud Storage", env.gcp.gcs_url().to_owned()),
        ("Entra ID", env.azure.entra_url().to_owned()),
        ("Azure Blob", env.azure.blob_endpoint().to_owned()),
        ("Microsoft Graph", env.azure.graph_endpoint().to_owned()),
    ];
    if let Some(webhook) = &env.webhook {
        list.push(("EKS pod-identity webhook", webhook.url().to_owned()));
    }
    if let Some(webhook) = &env.azure_webhook {
        list.push(("Azure workload identity webhook", webhook.url().to_owned()));
    }
    if let Some(agent) = &env.pod_identity_agent {
        list.push((
            "EKS Pod Identity Agent",
            format!(
                "{} (pods: {}:80)",
                agent.address(),
                crate::cluster::POD_IDENTITY_AGENT_IP
            ),
        ));
    }
    if let Some(front) = &env.cloud_front {
        list.push((
            "cloud front (clouds' real names)",
            front.address().to_string(),
        ));
    }
    list.into_iter()
        .map(|(name, address)| Endpoint {
            name: name.to_owned(),
            address,
        })
        .collect()
}

/// Descriptors `up`'s caller left open (no close-on-exec: everything this process opened has
/// it): a CI step's pipe or the `flock` of `flock LOCK podiam-e2e up` would otherwise stay held
/// as long as the sandbox runs (a later `flock LOCK podiam-e2e down` would wait forever).
fn close_inherited_descriptors() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<libc::c_int> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl/close on a descriptor number; a closed or invalid one returns -1.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags != -1 && flags & libc::FD_CLOEXEC == 0 {
                libc::close(fd);
            }
        }
    }
}
