//! Which worker runs which scenario, and which scenarios run alone.
//!
//! Worker k runs scenarios k, k+jobs, …, one at a time: each worker's emulated AWS account is
//! emptied between its scenarios; namespaces keep the Kubernetes side apart. GCP and Azure
//! scenarios all run on worker 0: their emulators are one set (the GKE metadata server has a
//! fixed address).
//!
//! A scenario with a `webhook` step changes what the whole cluster admits (the webhook
//! configurations are cluster-scoped): a pod another worker creates meanwhile is admitted
//! unmutated. Such scenarios run after every other one has finished, one at a time (CI
//! 2026-12-04: aws-pod-identity-agent-blocked's pod was created while aws-irsa-webhook-down,
//! on the other worker, had the EKS webhook pointed at a Service with no endpoint).

use crate::scenario::{Cloud, Scenario, Step};

/// Scenario indices by phase.
#[derive(Debug, PartialEq, Eq)]
pub struct Schedule {
    /// `parallel[k]`: worker k's scenarios, run in order while the other workers run theirs.
    pub parallel: Vec<Vec<usize>>,
    /// (scenario, worker) pairs run one after another once `parallel` is done.
    pub alone: Vec<(usize, usize)>,
}

/// Whether the scenario changes state every namespace shares, so nothing may run beside it.
pub fn must_run_alone(scenario: &Scenario) -> bool {
    scenario
        .spec
        .steps
        .iter()
        .any(|step| matches!(step, Step::Webhook(_)))
}

pub fn plan(scenarios: &[Scenario], jobs: usize) -> Schedule {
    let jobs = jobs.max(1);
    let worker_of = |i: usize, scenario: &Scenario| {
        if matches!(scenario.spec.cloud, Cloud::Gcp | Cloud::Azure) {
            0
        } else {
            i % jobs
        }
    };
    let mut schedule = Schedule {
        parallel: vec![Vec::new(); jobs],
        alone: Vec::new(),
    };
    for (i, scenario) in scenarios.iter().enumerate() {
        let worker = worker_of(i, scenario);
        if must_run_alone(scenario) {
            schedule.alone.push((i, worker));
        } else {
            schedule.parallel[worker].push(i);
        }
    }
    schedule
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scenario(name: &str, cloud: &str, webhook_step: bool) -> Scenario {
        let webhook = if webhook_step {
            "    - apply:\n        manifests: |\n          apiVersion: v1\n          kind: Service\n          metadata: {name: hook}\n          spec: {ports: [{port: 443}]}\n    - webhook: {name: eks, state: down, service: hook}\n"
        } else {
            ""
        };
        let text = format!(
            "apiVersion: podiam.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: {name}\nspec:\n  cloud: {cloud}\n  steps:\n{webhook}    - podiam:\n        args: [verify, -A]\n"
        );
        Scenario::from_yaml(Path::new("test.yaml"), &text).expect("a valid scenario")
    }

    #[test]
    fn a_scenario_taking_a_webhook_down_never_runs_beside_another() {
        let scenarios = vec![
            scenario("a", "aws", false),
            scenario("webhook-down", "aws", true),
            scenario("c", "aws", false),
            scenario("d", "aws", false),
        ];
        let schedule = plan(&scenarios, 2);
        assert_eq!(schedule.parallel, vec![vec![0, 2], vec![3]]);
        assert_eq!(schedule.alone, vec![(1, 1)]);
    }

    #[test]
    fn gcp_and_azure_stay_on_worker_zero_alone_or_not() {
        let scenarios = vec![
            scenario("aws", "aws", false),
            scenario("gcp", "gcp", false),
            scenario("azure-unregistered", "azure", true),
            scenario("aws-2", "aws", false),
        ];
        let schedule = plan(&scenarios, 2);
        assert_eq!(schedule.parallel, vec![vec![0, 1], vec![3]]);
        assert_eq!(schedule.alone, vec![(2, 0)]);
    }

    #[test]
    fn every_scenario_is_scheduled_once() {
        let scenarios: Vec<Scenario> = (0..7)
            .map(|i| scenario(&format!("s{i}"), "aws", i % 3 == 0))
            .collect();
        for jobs in [0, 1, 2, 5] {
            let schedule = plan(&scenarios, jobs);
            let mut seen: Vec<usize> = schedule.parallel.concat();
            seen.extend(schedule.alone.iter().map(|(i, _)| *i));
            seen.sort_unstable();
            assert_eq!(seen, (0..7).collect::<Vec<_>>(), "jobs {jobs}");
        }
    }
}
