//! `podiam-e2e bench verify`: wall time of `kubectl podiam whoami` and `verify` on the seed's pod
//! in the local cluster (exec into the container, STS exchange through the gate, S3 checks),
//! the way a user runs them; plus the warm `cluster up` time of the same run.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::bench::LatencyStats;
use crate::runner::environment::Environment;
use crate::runner::plugin_command::plugin_command;
use crate::setup::CloudSetup;

const SEED: &str = concat!(
    include_str!("../../examples/aws/serviceaccount.yaml"),
    "\n---\n",
    include_str!("../../examples/aws/pod.yaml")
);

pub struct VerifyBenchReport {
    pub cluster_up: Duration,
    pub whoami: LatencyStats,
    pub verify: LatencyStats,
}

impl fmt::Display for VerifyBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "cluster up to node Ready: {:.1}s",
            self.cluster_up.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<40} {:>6} {:>9} {:>9}",
            "", "runs", "p50 ms", "p99 ms"
        )?;
        for (name, s) in [
            ("kubectl podiam whoami s3-pod", &self.whoami),
            ("kubectl podiam verify s3-pod --can/--cannot", &self.verify),
        ] {
            writeln!(
                f,
                "{name:<40} {:>6} {:>9.1} {:>9.1}",
                s.requests,
                ms(s.p50),
                ms(s.p99)
            )?;
        }
        Ok(())
    }
}

pub async fn bench_verify(state_root: &Path, runs: usize) -> Result<VerifyBenchReport> {
    let plugin = crate::demo::plugin_path()?;
    let env = Environment::start_local(state_root).await?;
    let result = measure(&env, &plugin, runs).await;
    env.down().await?;
    result
}

async fn measure(env: &Environment, plugin: &Path, runs: usize) -> Result<VerifyBenchReport> {
    let cluster_up = env
        .timings
        .iter()
        .find(|(what, _)| what.starts_with("cluster up"))
        .map(|(_, d)| *d)
        .unwrap_or_default();
    env.aws.apply(&CloudSetup::seed_aws()).await?;
    env.create_pods("default", SEED, &["s3-pod"]).await?;
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
    Ok(VerifyBenchReport {
        cluster_up,
        whoami: time_runs(env, plugin, &whoami, runs).await?,
        verify: time_runs(env, plugin, &verify, runs).await?,
    })
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
        let out = plugin_command(plugin, &env.kubeconfig, &env.aws, &env.azure)
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
