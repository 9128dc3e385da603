//! `podiam-e2e bench fleet`: `kubectl podiam verify -A` over a few hundred busybox pods on the
//! local cluster — wall time, peak RSS of the plugin, time per pod, and how many cloud calls the
//! shared answers left (counted in the gate's request log).
//!
//! The fleet: `service_accounts` ServiceAccounts, each with one Deployment of an equal share of
//! the pods. Two fifths are IRSA-wired to a role of their own that trusts them (verified), a
//! fifth to a role that trusts another namespace (AccessDenied), a fifth have an EKS Pod
//! Identity association (the webhook wires them; the agent answers from inside the pod), a
//! fifth are not wired (no mechanism). The summary is checked against this split.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cpu_time;
use crate::runner::environment::{Cluster, Environment};
use crate::runner::plugin_command::plugin_command;
use crate::scenario::PodPhase;
use crate::scenario::schema::{ApplyStep, WaitStep};
use crate::setup::CloudSetup;

const NAMESPACE: &str = "podiam-bench-fleet";
const LABEL: &str = "podiam.dev/bench";

#[derive(Debug, Clone)]
pub struct FleetBenchOptions {
    pub pods: usize,
    pub service_accounts: usize,
    pub concurrency: u16,
    /// Plugin binaries to measure, each on the same fleet; empty: the `kubectl-podiam` next
    /// to this executable (so a debug harness measures the debug plugin).
    pub plugins: Vec<PathBuf>,
    /// Runs of `verify -A` per plugin.
    pub runs: usize,
    /// Extra arguments for every plugin run (e.g. `-v`); stderr of the last run is kept.
    pub plugin_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wiring {
    /// IRSA, role trusts this ServiceAccount.
    Good,
    /// IRSA, role trusts `other:<sa>`.
    WrongNamespace,
    /// EKS Pod Identity association to a role trusting `pods.eks.amazonaws.com`.
    PodIdentity,
    /// No annotation, no association.
    Unwired,
}

fn wiring(index: usize, count: usize) -> Wiring {
    if index < count * 2 / 5 {
        Wiring::Good
    } else if index < count * 3 / 5 {
        Wiring::WrongNamespace
    } else if index < count * 4 / 5 {
        Wiring::PodIdentity
    } else {
        Wiring::Unwired
    }
}

fn replicas(index: usize, options: &FleetBenchOptions) -> usize {
    options.pods / options.service_accounts
        + usize::from(index < options.pods % options.service_accounts)
}

/// The summary `verify -A` must print for the fleet: pods per mechanism, and which fail.
fn expected_summary(options: &FleetBenchOptions) -> serde_json::Value {
    let mut pods = [0usize; 4];
    for i in 0..options.service_accounts {
        let slot = match wiring(i, options.service_accounts) {
            Wiring::Good => 0,
            Wiring::WrongNamespace => 1,
            Wiring::PodIdentity => 2,
            Wiring::Unwired => 3,
        };
        pods[slot] += replicas(i, options);
    }
    let [good, wrong, pod_identity, unwired] = pods;
    let mut by_mechanism = serde_json::Map::new();
    if good + wrong > 0 {
        by_mechanism.insert(
            "aws-irsa".into(),
            serde_json::json!({"pods": good + wrong, "failed": wrong}),
        );
    }
    if pod_identity > 0 {
        by_mechanism.insert(
            "aws-pod-identity".into(),
            serde_json::json!({"pods": pod_identity, "failed": 0}),
        );
    }
    if unwired > 0 {
        by_mechanism.insert(
            "none".into(),
            serde_json::json!({"pods": unwired, "failed": unwired}),
        );
    }
    serde_json::json!({
        "pods": options.pods,
        "passed": good + pod_identity,
        "failed": wrong + unwired,
        "unreachable": 0,
        "byMechanism": by_mechanism,
    })
}

pub struct FleetBenchReport {
    pub options: FleetBenchOptions,
    pub pods_ready: Duration,
    pub runs: Vec<RunMeasurement>,
    /// One bare exec of `true` per pod, same concurrency: the floor under `verify -A`.
    pub exec_floor: Duration,
}

/// One `verify -A` run of one plugin binary.
pub struct RunMeasurement {
    pub plugin: PathBuf,
    pub wall: Duration,
    pub peak_rss_kib: u64,
    /// The plugin's own user + system time.
    pub plugin_cpu: Duration,
    /// CPU spent meanwhile by each cluster component (containerd's shims run every exec) and
    /// by this harness (the in-process emulators).
    pub others_cpu: Vec<(String, Duration)>,
    pub exit_code: Option<i32>,
    pub summary: serde_json::Value,
    pub sts_exchanges: usize,
    pub iam_reads: usize,
    /// The plugin's stderr (kept for `--plugin-arg -v…`).
    pub stderr: String,
}

impl RunMeasurement {
    pub fn pods(&self) -> u64 {
        self.summary["pods"].as_u64().unwrap_or_default()
    }

    pub fn per_pod(&self) -> Duration {
        self.wall / u32::try_from(self.pods().max(1)).unwrap_or(u32::MAX)
    }
}

impl fmt::Display for FleetBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fleet: {} pods, {} ServiceAccounts (2/5 IRSA good, 1/5 IRSA wrong-namespace trust, 1/5 Pod Identity, 1/5 unwired); {:.1}s until all Running",
            self.options.pods,
            self.options.service_accounts,
            self.pods_ready.as_secs_f64()
        )?;
        for (i, run) in self.runs.iter().enumerate() {
            writeln!(
                f,
                "run {}: {} verify -A -o json --concurrency {}{}: exit {:?}",
                i + 1,
                run.plugin.display(),
                self.options.concurrency,
                self.options
                    .plugin_args
                    .iter()
                    .map(|a| format!(" {a}"))
                    .collect::<String>(),
                run.exit_code
            )?;
            writeln!(
                f,
                "  wall time     {:>8.2} s   (target < 10 s)",
                run.wall.as_secs_f64()
            )?;
            writeln!(
                f,
                "  exec floor    {:>8.2} s   (one bare exec of `true` per pod, same concurrency; verify -A = {:.2}x, target <= 1.3x)",
                self.exec_floor.as_secs_f64(),
                run.wall.as_secs_f64() / self.exec_floor.as_secs_f64().max(f64::EPSILON)
            )?;
            writeln!(
                f,
                "  per pod       {:>8.1} ms  ({} pods judged)",
                run.per_pod().as_secs_f64() * 1000.0,
                run.pods()
            )?;
            writeln!(
                f,
                "  peak RSS      {:>8.1} MB  (target < 100 MB)",
                run.peak_rss_kib as f64 / 1024.0
            )?;
            let others: Vec<String> = run
                .others_cpu
                .iter()
                .filter(|(_, t)| !t.is_zero())
                .map(|(name, t)| format!("{name} {:.1}s", t.as_secs_f64()))
                .collect();
            writeln!(
                f,
                "  CPU           plugin {:.1}s; {}",
                run.plugin_cpu.as_secs_f64(),
                others.join(", ")
            )?;
            writeln!(
                f,
                "  cloud calls   {} AssumeRoleWithWebIdentity, {} IAM reads (shared answers)",
                run.sts_exchanges, run.iam_reads
            )?;
            writeln!(f, "  summary       {}", run.summary)?;
        }
        Ok(())
    }
}

pub async fn bench_fleet(
    state_root: &Path,
    options: FleetBenchOptions,
) -> Result<FleetBenchReport> {
    if options.service_accounts < 4 || options.pods < options.service_accounts {
        bail!("bench fleet needs at least 4 ServiceAccounts and one pod per ServiceAccount");
    }
    let plugins = if options.plugins.is_empty() {
        vec![crate::demo::plugin_path()?]
    } else {
        options.plugins.clone()
    };
    for plugin in &plugins {
        if !plugin.is_file() {
            bail!("plugin {} not found", plugin.display());
        }
    }
    let env = Environment::start_local(state_root).await?;
    let result = measure(&env, &plugins, options).await;
    env.down().await?;
    result
}

fn cloud_setup(options: &FleetBenchOptions) -> Result<CloudSetup> {
    let mut roles = String::new();
    let mut associations = String::new();
    for i in 0..options.service_accounts {
        let trusted = match wiring(i, options.service_accounts) {
            Wiring::Good => format!("system:serviceaccount:{NAMESPACE}:sa-{i:02}"),
            Wiring::WrongNamespace => format!("system:serviceaccount:other:sa-{i:02}"),
            Wiring::PodIdentity => {
                roles.push_str(&format!(
                    r#"
    - name: fleet-role-{i:02}
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: pods.eks.amazonaws.com}}
            Action: [sts:AssumeRole, sts:TagSession]
"#
                ));
                associations.push_str(&format!(
                    "\n    - {{namespace: {NAMESPACE}, serviceAccount: sa-{i:02}, roleName: fleet-role-{i:02}}}"
                ));
                continue;
            }
            Wiring::Unwired => continue,
        };
        roles.push_str(&format!(
            r#"
    - name: fleet-role-{i:02}
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Federated: "arn:aws:iam::${{ACCOUNT_ID}}:oidc-provider/${{ISSUER_HOSTPATH}}"}}
            Action: sts:AssumeRoleWithWebIdentity
            Condition:
              StringEquals:
                "${{ISSUER_HOSTPATH}}:sub": {trusted}
                "${{ISSUER_HOSTPATH}}:aud": sts.amazonaws.com
"#
        ));
    }
    let associations = if associations.is_empty() {
        String::new()
    } else {
        format!("\n  podIdentityAssociations:{associations}")
    };
    CloudSetup::from_yaml(&format!(
        "aws:\n  oidcProviders:\n    - url: ${{ISSUER}}\n      clientIds: [sts.amazonaws.com]\n  roles:{roles}{associations}"
    ))
}

fn manifests(options: &FleetBenchOptions) -> String {
    let mut docs = Vec::new();
    for i in 0..options.service_accounts {
        let annotation = match wiring(i, options.service_accounts) {
            Wiring::Unwired | Wiring::PodIdentity => String::new(),
            Wiring::Good | Wiring::WrongNamespace => format!(
                "\n  annotations: {{eks.amazonaws.com/role-arn: \"arn:aws:iam::123456789012:role/fleet-role-{i:02}\"}}"
            ),
        };
        let replicas = replicas(i, options);
        docs.push(format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i:02}{annotation}"
        ));
        docs.push(format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i:02}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: app-{i:02}}}}}
  template:
    metadata: {{labels: {{app: app-{i:02}, {LABEL}: fleet}}}}
    spec:
      serviceAccountName: sa-{i:02}
      terminationGracePeriodSeconds: 0
      containers: [{{name: app, image: busybox, command: [sleep, "36000"]}}]"#
        ));
    }
    docs.join("\n---\n")
}

async fn measure(
    env: &Environment,
    plugins: &[PathBuf],
    options: FleetBenchOptions,
) -> Result<FleetBenchReport> {
    let setup = cloud_setup(&options)?;
    env.aws.apply(&setup).await?;
    // The webhook wires pods of associated ServiceAccounts (as the runner does for scenarios).
    let webhook = env
        .webhook
        .as_ref()
        .context("bench fleet needs the webhook stand-in (local provider)")?;
    for association in &setup.aws.pod_identity_associations {
        webhook.associate_pod_identity(&association.namespace, &association.service_account);
    }
    let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )?;
    if namespaces.get_opt(NAMESPACE).await?.is_none() {
        namespaces.create(&Default::default(), &ns).await?;
    }
    wait_for_default_service_account(&env.client).await?;
    let started = Instant::now();
    let step = ApplyStep {
        file: None,
        manifests: Some(manifests(&options)),
    };
    crate::runner::apply::apply(&env.client, NAMESPACE, Path::new("."), &step).await?;
    let wait = WaitStep {
        pod: None,
        selector: Some(format!("{LABEL}=fleet")),
        count: Some(options.pods),
        phase: PodPhase::Running,
        timeout_seconds: 900,
    };
    crate::runner::wait::wait(&env.client, NAMESPACE, &wait)
        .await
        .context("waiting for the fleet's pods")?;
    let pods_ready = started.elapsed();

    let (exec_floor, _) = crate::bench_exec_floor::exec_floor(
        &env.client,
        NAMESPACE,
        &format!("{LABEL}=fleet"),
        usize::from(options.concurrency),
    )
    .await?;
    let mut runs = Vec::new();
    for plugin in plugins {
        for _ in 0..options.runs.max(1) {
            runs.push(measure_run(env, plugin, &options).await?);
        }
    }
    Ok(FleetBenchReport {
        options,
        pods_ready,
        runs,
        exec_floor,
    })
}

async fn measure_run(
    env: &Environment,
    plugin: &Path,
    options: &FleetBenchOptions,
) -> Result<RunMeasurement> {
    let log_before = env.aws.request_log().len();
    let mut cmd = plugin_command(plugin, &env.kubeconfig, &env.aws, &env.azure, &["verify"]);
    cmd.args(["verify", "-A", "-o", "json", "--concurrency"])
        .arg(options.concurrency.to_string())
        .args(&options.plugin_args);
    let std_cmd = std::mem::replace(cmd.as_std_mut(), std::process::Command::new("/nonexistent"));
    let cpu_before = others_cpu(env);
    let run = tokio::task::spawn_blocking(move || run_measured(std_cmd)).await??;
    let cpu_after = others_cpu(env);
    let log: Vec<_> = env.aws.request_log().into_iter().skip(log_before).collect();
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).with_context(|| {
        format!(
            "verify -A printed no JSON; stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    })?;
    let summary = report["summary"].clone();
    let expected = expected_summary(options);
    for field in ["pods", "passed", "failed", "unreachable", "byMechanism"] {
        if summary[field] != expected[field] {
            bail!(
                "verify -A summary {field} is {}, expected {} (summary {summary})",
                summary[field],
                expected[field]
            );
        }
    }
    Ok(RunMeasurement {
        plugin: plugin.to_path_buf(),
        wall: run.wall,
        peak_rss_kib: run.peak_rss_kib,
        plugin_cpu: run.cpu,
        others_cpu: cpu_after
            .into_iter()
            .map(|(name, after)| {
                let before = cpu_before
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(Duration::ZERO, |(_, t)| *t);
                (name, after.saturating_sub(before))
            })
            .collect(),
        exit_code: run.exit_code,
        summary,
        sts_exchanges: log
            .iter()
            .filter(|e| e.action == "AssumeRoleWithWebIdentity")
            .count(),
        iam_reads: log
            .iter()
            .filter(|e| {
                matches!(
                    e.action.as_str(),
                    "GetRole" | "ListOpenIDConnectProviders" | "GetOpenIDConnectProvider"
                )
            })
            .count(),
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
    })
}

/// CPU time so far of each local-cluster component, of containerd's shims (with their reaped
/// children: every exec's runc and command), and of this harness.
fn others_cpu(env: &Environment) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    if let Some(Cluster::Local(cluster)) = &env.cluster {
        let status = cluster.status();
        for c in &status.components {
            out.push((
                c.name.clone(),
                cpu_time::of_process(c.pid).unwrap_or_default(),
            ));
        }
        let shims = cluster.shim_pids();
        out.push((
            "shims+execs".into(),
            shims.iter().filter_map(|p| cpu_time::of_process(*p)).sum(),
        ));
    }
    out.push(("harness".into(), cpu_time::of_self().unwrap_or_default()));
    out
}

async fn wait_for_default_service_account(client: &kube::Client) -> Result<()> {
    let sas = kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        client.clone(),
        NAMESPACE,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sas.get_opt("default").await?.is_none() {
        if Instant::now() > deadline {
            bail!("the default ServiceAccount never appeared in {NAMESPACE}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

struct MeasuredRun {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    exit_code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `cmd` to completion; its peak RSS comes from `wait4`'s rusage of exactly this child
/// (not RUSAGE_CHILDREN, which would mix in the cluster processes this harness started).
fn run_measured(mut cmd: std::process::Command) -> Result<MeasuredRun> {
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting kubectl-podiam")?;
    let pid = child.id() as libc::pid_t;
    // Drain both pipes while the child runs, so a large report never blocks it.
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call; `status` and `usage` are valid for writes, `pid` is our child,
    // which nothing else waits for (std's Child is never waited on after this).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if waited != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(MeasuredRun {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: usage.ru_maxrss as u64,
        exit_code,
        stdout,
        stderr,
    })
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_splits_the_fleet() {
        let w: Vec<Wiring> = (0..20).map(|i| wiring(i, 20)).collect();
        let count = |k: Wiring| w.iter().filter(|x| **x == k).count();
        assert_eq!(count(Wiring::Good), 8);
        assert_eq!(count(Wiring::WrongNamespace), 4);
        assert_eq!(count(Wiring::PodIdentity), 4);
        assert_eq!(count(Wiring::Unwired), 4);
    }

    #[test]
    fn manifests_and_setup_cover_every_pod() {
        let options = FleetBenchOptions {
            pods: 203,
            service_accounts: 20,
            concurrency: 16,
            plugins: Vec::new(),
            runs: 1,
            plugin_args: Vec::new(),
        };
        let text = manifests(&options);
        let replicas: usize = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("replicas: "))
            .map(|n| n.parse::<usize>().unwrap())
            .sum();
        assert_eq!(replicas, 203);
        assert_eq!(text.matches("kind: ServiceAccount").count(), 20);
        assert_eq!(text.matches("eks.amazonaws.com/role-arn").count(), 12);
        let setup = cloud_setup(&options).unwrap();
        assert_eq!(setup.aws.roles.len(), 16);
        assert_eq!(setup.aws.pod_identity_associations.len(), 4);
        assert_eq!(
            setup.aws.pod_identity_associations[0].service_account,
            "sa-12"
        );
        // 203 pods: sa-00, sa-01, sa-02 have 11 replicas, the others 10.
        let expected = expected_summary(&options);
        assert_eq!(expected["pods"], 203);
        assert_eq!(expected["byMechanism"]["aws-irsa"]["pods"], 123);
        assert_eq!(expected["byMechanism"]["aws-irsa"]["failed"], 40);
        assert_eq!(expected["byMechanism"]["aws-pod-identity"]["pods"], 40);
        assert_eq!(expected["byMechanism"]["none"]["pods"], 40);
        assert_eq!(expected["passed"], 83 + 40);
        assert_eq!(expected["failed"], 80);
    }
}
