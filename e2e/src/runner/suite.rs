//! `podiam-e2e run`: load scenarios, start the environment once, run each scenario in its own
//! namespace, print a summary, write JUnit, tear everything down.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::environment::{Environment, ProviderOptions};
use super::{RunContext, ScenarioOutcome};
use crate::scenario::Scenario;

#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub paths: Vec<PathBuf>,
    pub junit: Option<PathBuf>,
    pub keep: bool,
    /// Where the emulators' and the cluster's state go.
    pub state_root: PathBuf,
    /// The built `kubectl-podiam`.
    pub plugin: PathBuf,
    pub provider: ProviderOptions,
    /// Scenarios run at once (each set of emulators runs one scenario at a time).
    pub jobs: usize,
}

pub fn default_state_root() -> PathBuf {
    std::env::var_os("PODIAM_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/podiam")))
        .unwrap_or_else(std::env::temp_dir)
        .join("e2e")
}

pub async fn run_suite(options: &SuiteOptions) -> Result<Vec<ScenarioOutcome>> {
    // Validate every file before starting anything: a typo fails in a second, not a minute.
    let all = Scenario::load_all(&options.paths)?;
    if all.is_empty() {
        bail!("no scenarios found in {:?}", options.paths);
    }
    // Scenarios this provider cannot run are reported as skipped, with the reason.
    let provider = options.provider.provider;
    let (scenarios, skipped): (Vec<Scenario>, Vec<Scenario>) = all
        .into_iter()
        .partition(|s| super::provider_support::unsupported(s, provider).is_none());
    let skipped: Vec<ScenarioOutcome> = skipped
        .into_iter()
        .map(|s| ScenarioOutcome {
            name: s.metadata.name.clone(),
            file: s.path.clone(),
            duration: std::time::Duration::ZERO,
            failure: None,
            diagnostics: String::new(),
            skipped: super::provider_support::unsupported(&s, provider),
        })
        .collect();
    for outcome in &skipped {
        report(outcome);
    }
    if scenarios.is_empty() {
        bail!("every scenario given is unsupported on --provider {provider:?}: nothing would run");
    }
    let started = Instant::now();
    eprintln!(
        "podiam-e2e: starting emulators, {:?} cluster and webhook",
        options.provider.provider
    );
    let mut env = Environment::start(&options.provider, &options.state_root).await?;
    let jobs = options.jobs.clamp(1, scenarios.len());
    env.add_workers(jobs - 1, &options.state_root).await?;
    for (what, took) in &env.timings {
        eprintln!("podiam-e2e:   {what}: {:.1}s", took.as_secs_f64());
    }
    let issuer = env.issuer.clone();
    let contexts: Vec<RunContext> = env
        .emulator_sets()
        .into_iter()
        .enumerate()
        .map(|(k, aws)| RunContext {
            client: env.client.clone(),
            kubeconfig: env.kubeconfig.clone(),
            plugin: options.plugin.clone(),
            plugin_args: env.plugin_args.clone(),
            aws,
            gcp: (k == 0).then_some(&env.gcp),
            azure: &env.azure,
            issuer: issuer.clone(),
            keep: options.keep,
            webhook: env.webhook.as_ref(),
            azure_webhook: env.azure_webhook.as_ref(),
            pod_identity_agent: env.pod_identity_agent.as_ref(),
            node_metadata: Some(env.gcp.node_metadata()),
            cloud_front: env.cloud_front.as_ref(),
            egress_faults: env.egress_faults.as_ref(),
            kind: match &env.cluster {
                Some(super::environment::Cluster::Kind(kind)) => Some(kind.as_ref()),
                _ => None,
            },
        })
        .collect();
    let schedule = super::schedule::plan(&scenarios, jobs);
    let workers = contexts.iter().zip(&schedule.parallel).map(|(ctx, mine)| {
        let scenarios = &scenarios;
        async move {
            let mut outcomes = Vec::new();
            for &i in mine {
                let outcome = super::run(&scenarios[i], ctx).await;
                report(&outcome);
                outcomes.push((i, outcome));
            }
            outcomes
        }
    });
    let mut indexed: Vec<(usize, ScenarioOutcome)> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    for &(i, worker) in &schedule.alone {
        let outcome = super::run(&scenarios[i], &contexts[worker]).await;
        report(&outcome);
        indexed.push((i, outcome));
    }
    indexed.sort_by_key(|(i, _)| *i);
    let mut outcomes: Vec<ScenarioOutcome> = indexed.into_iter().map(|(_, o)| o).collect();
    outcomes.extend(skipped);
    drop(contexts);
    if let Some(path) = &options.junit {
        write_junit(path, &outcomes)?;
    }
    if !options.keep {
        env.down().await?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
    if skipped == 0 {
        println!("{} passed, {} failed", outcomes.len() - failed, failed);
    } else {
        println!(
            "{} passed, {} failed, {skipped} skipped (unsupported on {provider:?})",
            outcomes.len() - failed - skipped,
            failed
        );
    }
    eprintln!("podiam-e2e: {:.1}s in all", started.elapsed().as_secs_f64());
    Ok(outcomes)
}

fn report(outcome: &ScenarioOutcome) {
    eprint!("{}", report_text(outcome));
}

/// What `run` prints on stderr for one scenario: its verdict, and on failure the error and the
/// `catch` diagnostics.
pub fn report_text(outcome: &ScenarioOutcome) -> String {
    if let Some(reason) = &outcome.skipped {
        return format!("SKIP {}: {reason}\n", outcome.name);
    }
    let mut text = format!(
        "{} {} ({:.1}s)\n",
        if outcome.passed() { "PASS" } else { "FAIL" },
        outcome.name,
        outcome.duration.as_secs_f64()
    );
    if let Some(failure) = &outcome.failure {
        text.push_str(&format!("  {}\n", failure.replace('\n', "\n  ")));
        if !outcome.diagnostics.is_empty() {
            text.push_str(&format!(
                "  diagnostics:\n  {}\n",
                outcome.diagnostics.replace('\n', "\n  ")
            ));
        }
    }
    text
}

/// The `--junit` file: one test case per scenario, failures with their diagnostics.
pub fn write_junit(path: &Path, outcomes: &[ScenarioOutcome]) -> Result<()> {
    let mut suite = TestSuite::new("podiam-e2e scenarios");
    for o in outcomes {
        let status = match &o.failure {
            None if o.skipped.is_some() => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(o.skipped.clone().unwrap_or_default());
                s
            }
            None => TestCaseStatus::success(),
            Some(f) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(f.lines().next().unwrap_or_default().to_string());
                s.set_description(format!("{f}\n{}", o.diagnostics));
                s
            }
        };
        let mut case = TestCase::new(o.name.clone(), status);
        case.set_classname(o.file.display().to_string());
        case.set_time(o.duration);
        suite.add_test_case(case);
    }
    let mut report = Report::new("podiam-e2e");
    report.add_test_suite(suite);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, report.to_string()?)
        .with_context(|| format!("writing JUnit to {}", path.display()))?;
    Ok(())
}
