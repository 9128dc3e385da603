//! The fleet summary: how many pods passed, failed or could not be reached, by mechanism and by
//! failing check. Categories are exclusive and follow the exit code's precedence: a pod with a
//! failing check is `failed`; else one whose evidence could not be gathered is `unreachable`;
//! else one whose identity (or an expectation) could not be established is `incomplete`; else
//! it `passed`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{ReportItem, Status, Verdict};
use crate::unjudged::NOT_RUNNING;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub pods: usize,
    pub passed: usize,
    pub failed: usize,
    pub unreachable: usize,
    /// No check failed, but the identity or an expectation could not be established.
    pub incomplete: usize,
    /// Pods not Running (Pending, Succeeded, Failed), judged from their spec only.
    pub not_running: usize,
    pub by_mechanism: BTreeMap<&'static str, MechanismTally>,
    /// Failing check id → number of pods failing it.
    pub by_failing_check: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MechanismTally {
    pub pods: usize,
    pub failed: usize,
}

impl Summary {
    pub fn of(items: &[ReportItem]) -> Self {
        // Every container of a pod is its own item; the summary counts pods.
        let pods = by_pod(items);
        let mut s = Summary {
            pods: pods.len(),
            ..Default::default()
        };
        for containers in pods {
            let failed = containers.iter().any(|i| i.verdict == Verdict::Fail);
            if failed {
                s.failed += 1;
            } else if containers.iter().any(|i| i.unreachable) {
                s.unreachable += 1;
            } else if containers.iter().any(|i| i.verdict == Verdict::Incomplete) {
                s.incomplete += 1;
            } else {
                s.passed += 1;
            }
            if containers
                .iter()
                .any(|i| i.checks.iter().any(|c| c.id == NOT_RUNNING))
            {
                s.not_running += 1;
            }
            let mut mechanisms: Vec<&'static str> =
                containers.iter().map(|i| i.mechanism.as_str()).collect();
            mechanisms.sort_unstable();
            mechanisms.dedup();
            for mechanism in mechanisms {
                let tally = s.by_mechanism.entry(mechanism).or_default();
                tally.pods += 1;
                tally.failed += usize::from(
                    containers
                        .iter()
                        .any(|i| i.mechanism.as_str() == mechanism && i.verdict == Verdict::Fail),
                );
            }
            let mut ids: Vec<&'static str> = containers
                .iter()
                .flat_map(|i| i.checks.iter())
                .filter(|c| c.status == Status::Fail)
                .map(|c| c.id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                *s.by_failing_check.entry(id).or_default() += 1;
            }
        }
        s
    }
}

/// The items of each pod (namespace, name, kind), in order of first appearance.
pub fn by_pod(items: &[ReportItem]) -> Vec<Vec<&ReportItem>> {
    let mut pods: Vec<Vec<&ReportItem>> = Vec::new();
    for item in items {
        let same = |other: &&ReportItem| {
            (&other.pod.namespace, &other.pod.name, &other.pod.kind)
                == (&item.pod.namespace, &item.pod.name, &item.pod.kind)
        };
        match pods.iter_mut().find(|p| p.first().is_some_and(same)) {
            Some(p) => p.push(item),
            None => pods.push(vec![item]),
        }
    }
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Identity, MechanismId, PodRef};

    fn item(
        name: &str,
        mechanism: MechanismId,
        checks: Vec<Check>,
        unreachable: bool,
    ) -> ReportItem {
        // Every pod here got an identity except the unreachable and "offline" ones.
        let identity = (!unreachable && name != "offline").then(|| Identity {
            provider: "aws",
            principal: "arn:aws:sts::1:assumed-role/r/s".into(),
            source: "test".into(),
        });
        ReportItem {
            pod: PodRef {
                namespace: "ns".into(),
                name: name.into(),
                container: "app".into(),
                kind: "Pod".into(),
            },
            service_account: "sa".into(),
            kubernetes: crate::judge::kubernetes_identity(&Default::default()),
            mechanism,
            verdict: ReportItem::verdict_of(&checks, identity.as_ref(), false),
            identity,
            checks,
            unreachable,
        }
    }

    #[test]
    fn counts_are_exclusive_and_grouped() {
        let fail = |id| Check::fail(id, "m", "f");
        let items = vec![
            item(
                "good-1",
                MechanismId::AwsIrsa,
                vec![Check::pass("aws.sts.assume-role", "ok")],
                false,
            ),
            item(
                "good-2",
                MechanismId::AwsIrsa,
                vec![Check::pass("aws.sts.assume-role", "ok")],
                false,
            ),
            item(
                "trust",
                MechanismId::AwsIrsa,
                // The same id twice in one pod counts the pod once.
                vec![
                    fail("aws.sts.assume-role"),
                    fail("aws.iam.trust-policy"),
                    fail("aws.iam.trust-policy"),
                ],
                false,
            ),
            item(
                "bare",
                MechanismId::None,
                vec![fail("identity.mechanism")],
                false,
            ),
            // Failed and unreachable: failed wins, as in the exit code.
            item(
                "both",
                MechanismId::AwsIrsa,
                vec![fail("aws.sts.assume-role")],
                true,
            ),
            item(
                "gone",
                MechanismId::None,
                vec![Check::warn(crate::unjudged::UNREACHABLE, "m", "f")],
                true,
            ),
            item(
                "pending",
                MechanismId::AwsIrsa,
                vec![crate::unjudged::not_running_check("Pending")],
                false,
            ),
            item(
                "offline",
                MechanismId::AwsPodIdentity,
                vec![Check::skip("aws.pod-identity.exchange", "no cluster name")],
                false,
            ),
        ];
        let s = Summary::of(&items);
        assert_eq!(
            (
                s.pods,
                s.passed,
                s.failed,
                s.unreachable,
                s.incomplete,
                s.not_running
            ),
            (8, 3, 3, 1, 1, 1)
        );
        assert_eq!(
            s.by_mechanism["aws-irsa"],
            MechanismTally { pods: 5, failed: 2 }
        );
        assert_eq!(
            s.by_mechanism["none"],
            MechanismTally { pods: 2, failed: 1 }
        );
        assert_eq!(s.by_failing_check["aws.sts.assume-role"], 2);
        assert_eq!(s.by_failing_check["aws.iam.trust-policy"], 1);
        assert_eq!(s.by_failing_check["identity.mechanism"], 1);
        assert_eq!(s.by_failing_check.len(), 3);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["byMechanism"]["aws-irsa"]["failed"], 2);
        assert_eq!(json["byFailingCheck"]["identity.mechanism"], 1);
        assert_eq!(json["notRunning"], 1);
        assert_eq!(json["incomplete"], 1);
    }

    #[test]
    fn empty_fleet() {
        let s = Summary::of(&[]);
        assert_eq!(s, Summary::default());
    }

    #[test]
    fn the_containers_of_a_pod_count_as_one_pod() {
        let mut side = item(
            "p",
            MechanismId::AwsIrsa,
            vec![Check::fail("aws.sts.assume-role", "m", "f")],
            false,
        );
        side.pod.container = "side".into();
        let items = vec![
            item(
                "p",
                MechanismId::AwsIrsa,
                vec![Check::pass("aws.sts.assume-role", "ok")],
                false,
            ),
            side,
            item("q", MechanismId::None, vec![], false),
        ];
        let s = Summary::of(&items);
        assert_eq!((s.pods, s.passed, s.failed), (2, 1, 1));
        assert_eq!(
            s.by_mechanism["aws-irsa"],
            MechanismTally { pods: 1, failed: 1 }
        );
        assert_eq!(s.by_failing_check["aws.sts.assume-role"], 1);
        assert_eq!(by_pod(&items).len(), 2);
    }
}
