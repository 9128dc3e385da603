//! `podiam-e2e bench sts`: what the strict gate costs over plain moto.
//!
//! Both sides get the same client (aws-sdk-sts, sequential, one connection pool) and the
//! same valid token, in the same run, in alternating blocks so drift hits both equally:
//! - baseline: a second moto with IAM enforcement off, answering AssumeRoleWithWebIdentity
//!   directly (it checks nothing);
//! - gate: the gate validating the token (JWKS cached after warm-up, IAM reads cached) and
//!   then asking the enforcing moto for the role session with a SigV4-signed call;
//! - gate validation only: a token from another namespace, which passes every check up to
//!   the trust policy and is denied there: the gate's own cost, without moto.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::emulators::{AwsEmulatorOptions, AwsEmulators, MotoAuth, MotoServer, TokenSpec};
use crate::python_env::PythonEnv;
use crate::setup::CloudSetup;

const WARM_UP_REQUESTS: usize = 20;
const BLOCK: usize = 50;

/// Latency distribution of one side.
#[derive(Debug, Clone)]
pub struct LatencyStats {
    pub requests: usize,
    pub total: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl LatencyStats {
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)];
        Self {
            requests: samples.len(),
            total: samples.iter().sum(),
            p50: at(0.50),
            p99: at(0.99),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.total.as_secs_f64()
    }
}

#[derive(Debug, Clone)]
pub struct StsBenchReport {
    pub baseline: LatencyStats,
    pub gate: LatencyStats,
    pub gate_validation_only: LatencyStats,
}

impl fmt::Display for StsBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "AssumeRoleWithWebIdentity, aws-sdk-sts, sequential, {} requests each",
            self.gate.requests
        )?;
        writeln!(
            f,
            "{:<34} {:>10} {:>9} {:>9}",
            "", "req/s", "p50 ms", "p99 ms"
        )?;
        for (name, stats) in [
            ("moto direct (no checks)", &self.baseline),
            ("gate (strict) -> moto (enforcing)", &self.gate),
            ("gate validation only (denied)", &self.gate_validation_only),
        ] {
            writeln!(
                f,
                "{:<34} {:>10.0} {:>9.2} {:>9.2}",
                name,
                stats.per_second(),
                ms(stats.p50),
                ms(stats.p99)
            )?;
        }
        write!(
            f,
            "added latency at p50: {:.2} ms",
            ms(self.gate.p50) - ms(self.baseline.p50)
        )
    }
}

/// Runs `requests` AssumeRoleWithWebIdentity calls against each side.
pub async fn bench_sts(requests: usize) -> Result<StsBenchReport> {
    let emulators = AwsEmulators::start(AwsEmulatorOptions::default()).await?;
    emulators.apply(&CloudSetup::seed_aws()).await?;
    let python = tokio::task::spawn_blocking(PythonEnv::ensure).await??;
    let open_moto = MotoServer::start(&python, MotoAuth::Open).await?;

    let token = emulators.mint_token(&TokenSpec::new("default", "s3-reader"))?;
    let untrusted_token = emulators.mint_token(&TokenSpec::new("other", "s3-reader"))?;
    let role_arn = emulators.role_arn("my-pod-role");
    let gate = sts_client(emulators.gate_url());
    let baseline = sts_client(open_moto.url());

    for _ in 0..WARM_UP_REQUESTS {
        assume(&gate, &role_arn, &token).await?;
        assume(&baseline, &role_arn, &token).await?;
    }
    let mut gate_samples = Vec::with_capacity(requests);
    let mut baseline_samples = Vec::with_capacity(requests);
    let mut validation_samples = Vec::with_capacity(requests);
    while gate_samples.len() < requests {
        let block = BLOCK.min(requests - gate_samples.len());
        for _ in 0..block {
            baseline_samples.push(assume(&baseline, &role_arn, &token).await?);
        }
        for _ in 0..block {
            gate_samples.push(assume(&gate, &role_arn, &token).await?);
        }
        for _ in 0..block {
            validation_samples.push(denied(&gate, &role_arn, &untrusted_token).await?);
        }
    }
    Ok(StsBenchReport {
        baseline: LatencyStats::from_samples(baseline_samples),
        gate: LatencyStats::from_samples(gate_samples),
        gate_validation_only: LatencyStats::from_samples(validation_samples),
    })
}

fn sts_client(endpoint: &str) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

async fn assume(client: &aws_sdk_sts::Client, role_arn: &str, token: &str) -> Result<Duration> {
    let started = Instant::now();
    client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name("bench")
        .web_identity_token(token)
        .send()
        .await
        .context("AssumeRoleWithWebIdentity during the bench")?;
    Ok(started.elapsed())
}

/// Times a call that must end in AccessDenied (anything else is a bench failure).
async fn denied(client: &aws_sdk_sts::Client, role_arn: &str, token: &str) -> Result<Duration> {
    let started = Instant::now();
    let result = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name("bench")
        .web_identity_token(token)
        .send()
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(err)
            if err.as_service_error().and_then(|e| e.meta().code()) == Some("AccessDenied") =>
        {
            Ok(elapsed)
        }
        // Never format the Ok value: it holds credentials.
        Ok(_) => anyhow::bail!("expected AccessDenied, got credentials"),
        Err(err) => anyhow::bail!(
            "expected AccessDenied, got {:?}",
            err.as_service_error().and_then(|e| e.meta().code())
        ),
    }
}
