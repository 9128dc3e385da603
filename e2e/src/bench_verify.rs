//! `podiam-e2e bench verify`: wall time of `kubectl podiam whoami` and `verify` on the seed's pod
//! in the local cluster (exec into the container, STS exchange through the gate, S3 checks),
//! the way a user runs them; plus the warm `cluster up` time of the same run. On the same pod in
//! the same run, the manual anchor ([`crate::manual_anchor`]: kubectl exec cat of the token +
//! the AWS CLI's assume-role-with-web-identity + get-caller-identity), and verify's ratio to it.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::awscli_env::AwsCliEnv;
use crate::bench::LatencyStats;
use crate::cluster::default_binaries_dir;
use crate::manual_anchor::{AwsCli, Kubectl, ManualAnchor};
use crate::runner::environment::Environment;
use crate::runner::plugin_command::plugin_command;
use crate::setup::CloudSetup;
use crate::webhooks::ROLE_ARN_ANNOTATION;

const SEED: &str = concat!(
    include_str!("../../examples/aws/serviceaccount.yaml"),
    "\n---\n",
    include_str!("../../examples/aws/pod.yaml")
);
const NAMESPACE: &str = "default";
const POD: &str = "s3-pod";

/// Verify's goals against the anchor (issue 10).
const GOAL_VERIFY_P50_MS: f64 = 200.0;
const GOAL_RATIO: f64 = 2.0;

const WHOAMI_ROW: &str = "kubectl podiam whoami s3-pod";
const VERIFY_ROW: &str = "kubectl podiam verify s3-pod --can/--cannot";
const MANUAL_ROW: &str =
    "manual: kubectl exec cat + aws sts assume-role-with-web-identity + get-caller-identity";

pub struct VerifyBenchReport {
    pub cluster_up: Duration,
    pub whoami: LatencyStats,
    pub verify: LatencyStats,
    pub manual: LatencyStats,
}

impl fmt::Display for VerifyBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "cluster up to node Ready: {:.1}s",
            self.cluster_up.as_secs_f64()
        )?;
        let rows = [
            (WHOAMI_ROW, &self.whoami),
            (VERIFY_ROW, &self.verify),
            (MANUAL_ROW, &self.manual),
        ];
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        writeln!(
            f,
            "{:<width$} {:>6} {:>9} {:>9}",
            "", "runs", "p50 ms", "p99 ms"
        )?;
        for (name, s) in rows {
            writeln!(
                f,
                "{name:<width$} {:>6} {:>9.1} {:>9.1}",
                s.requests,
                ms(s.p50),
                ms(s.p99)
            )?;
        }
        write!(f, "{}", ratio_line(self.verify.p50, self.manual.p50))
    }
}

/// `verify p50 X ms vs manual p50 Y ms: Z× faster (goals: …)`; Z = manual p50 / verify p50.
pub fn ratio_line(verify_p50: Duration, manual_p50: Duration) -> String {
    let verify_ms = verify_p50.as_secs_f64() * 1000.0;
    let manual_ms = manual_p50.as_secs_f64() * 1000.0;
    let ratio = manual_ms / verify_ms;
    format!(
        "verify p50 {verify_ms:.1} ms vs manual p50 {manual_ms:.1} ms: {ratio:.1}× faster \
         (goals: verify ≤ {GOAL_VERIFY_P50_MS:.0} ms, ≥ {GOAL_RATIO:.0}×)"
    )
}

pub async fn bench_verify(state_root: &Path, runs: usize) -> Result<VerifyBenchReport> {
    let plugin = crate::demo::plugin_path()?;
    // Before the cluster: a missing CLI fails fast (`podiam-e2e setup` creates it too).
    let awscli = tokio::task::spawn_blocking(AwsCliEnv::ensure).await??;
    let env = Environment::start_local(state_root).await?;
    let result = measure(&env, &plugin, &awscli, runs).await;
    env.down().await?;
    result
}

async fn measure(
    env: &Environment,
    plugin: &Path,
    awscli: &AwsCliEnv,
    runs: usize,
) -> Result<VerifyBenchReport> {
    let cluster_up = env
        .timings
        .iter()
        .find(|(what, _)| what.starts_with("cluster up"))
        .map(|(_, d)| *d)
        .unwrap_or_default();
    env.aws.apply(&CloudSetup::seed_aws()).await?;
    env.create_pods(NAMESPACE, SEED, &[POD]).await?;
    let whoami = ["whoami", "s3-pod", "-o", "json"];
    let verify = [
        "verify",
        "s3-pod",
        "-o",
        "json",
        "--can",
        "s3:ListBucket=my-bucket",
        "--cannot",
        "s3:PutObject=my-bucket/x",
    ];
    let anchor = ManualAnchor {
        kubectl: Kubectl {
            kubectl: default_binaries_dir().join("kubectl"),
            kubeconfig: env.kubeconfig.clone(),
        },
        // The endpoint and region the plugin is given on this machine (plugin_command).
        aws: AwsCli {
            aws: awscli.aws(),
            endpoint_url: env.aws.gate_url().to_owned(),
            region: env.aws.region().to_owned(),
        },
        namespace: NAMESPACE.to_owned(),
        pod: POD.to_owned(),
        role_arn: seed_role_arn()?,
    };
    Ok(VerifyBenchReport {
        cluster_up,
        whoami: time_runs(env, plugin, &whoami, runs).await?,
        verify: time_runs(env, plugin, &verify, runs).await?,
        manual: time_anchor(&anchor, runs).await?,
    })
}

/// The role a user reads from the ServiceAccount's annotation.
fn seed_role_arn() -> Result<String> {
    let prefix = format!("{ROLE_ARN_ANNOTATION}:");
    SEED.lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .map(|arn| arn.trim().to_owned())
        .ok_or_else(|| anyhow::anyhow!("the seed ServiceAccount has no {ROLE_ARN_ANNOTATION}"))
}

/// Like [`time_runs`], each run the three commands end to end.
async fn time_anchor(anchor: &ManualAnchor, runs: usize) -> Result<LatencyStats> {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let started = Instant::now();
        anchor.run().await?;
        let took = started.elapsed();
        // As for the plugin, the first two runs warm caches and are not counted.
        if i >= 2 {
            samples.push(took);
        }
    }
    Ok(LatencyStats::from_samples(samples))
}

async fn time_runs(
    env: &Environment,
    plugin: &Path,
    args: &[&str],
    runs: usize,
) -> Result<LatencyStats> {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let started = Instant::now();
        let out = plugin_command(plugin, &env.kubeconfig, &env.aws, &env.azure, args)
            .args(args)
            .output()
            .await?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!(
                "kubectl podiam {} exited {:?}: {}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The first two runs warm caches (page cache, connection setup); they are not counted.
        if i >= 2 {
            samples.push(took);
        }
    }
    Ok(LatencyStats::from_samples(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(p50_ms: u64, p99_ms: u64) -> LatencyStats {
        LatencyStats::from_samples(vec![
            Duration::from_millis(p50_ms),
            Duration::from_millis(p99_ms),
        ])
    }

    #[test]
    fn the_ratio_is_the_anchors_p50_over_verifys() {
        let line = ratio_line(Duration::from_millis(150), Duration::from_millis(1200));
        assert_eq!(
            line,
            "verify p50 150.0 ms vs manual p50 1200.0 ms: 8.0× faster \
             (goals: verify ≤ 200 ms, ≥ 2×)"
        );
        let slower = ratio_line(Duration::from_millis(400), Duration::from_millis(300));
        assert!(slower.contains(": 0.8× faster"), "{slower}");
    }

    #[test]
    fn the_report_has_three_rows_and_the_ratio() {
        let report = VerifyBenchReport {
            cluster_up: Duration::from_secs(3),
            whoami: stats(90, 120),
            verify: stats(110, 130),
            manual: stats(990, 1500),
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[4].starts_with(MANUAL_ROW), "{text}");
        assert!(lines[4].ends_with("990.0    1500.0"), "{text}");
        // The columns line up although the anchor's name is the longest.
        let p50_column = |l: &str| l.find("110.0").or_else(|| l.find("990.0"));
        assert_eq!(p50_column(lines[3]), p50_column(lines[4]), "{text}");
        assert_eq!(
            lines[5],
            ratio_line(Duration::from_millis(110), Duration::from_millis(990))
        );
    }

    #[test]
    fn the_anchor_assumes_the_role_of_the_seed_service_account() {
        assert_eq!(
            seed_role_arn().expect("annotated"),
            "arn:aws:iam::123456789012:role/my-pod-role"
        );
    }
}
