//! JUnit XML for CI: one test suite, one test case per judged container of each pod (or
//! template); failing checks are the failure text; a pod that could not be verified (fleet runs)
//! or whose identity could not be established is an error; one whose expectations could not be
//! judged (`incomplete` with an identity) is skipped, with the reason. `info`
//! checks go to the case's system-out.

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::model::{Status, Verdict};

pub fn render(report: &Report) -> String {
    let mut suite = TestSuite::new("podiam verify");
    for item in &report.items {
        let name = format!(
            "{}/{}/{} [{}]",
            item.pod.namespace,
            item.pod.name,
            item.pod.container,
            item.mechanism.as_str()
        );
        let status = match item.verdict {
            // Fleet runs: a pod that could not be verified is an error, not a pass.
            Verdict::Pass | Verdict::Incomplete if item.unreachable => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                let warned: Vec<String> = item
                    .checks
                    .iter()
                    .filter(|c| c.status == Status::Warn)
                    .map(|c| format!("{}: {}", c.id, c.message))
                    .collect();
                s.set_message(warned.first().cloned().unwrap_or_default());
                s.set_description(warned.join("\n"));
                s
            }
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Incomplete => {
                // No identity established: an error, so CI gates that count failures and
                // errors never show it green; only skipped expectations are "skipped".
                let mut s = if item.identity.is_none() {
                    TestCaseStatus::non_success(NonSuccessKind::Error)
                } else {
                    TestCaseStatus::skipped()
                };
                let skipped: Vec<String> = item
                    .checks
                    .iter()
                    .filter(|c| matches!(c.status, Status::Skip | Status::Warn))
                    .map(|c| format!("{}: {}", c.id, c.message))
                    .collect();
                s.set_message(if item.identity.is_none() {
                    "incomplete: no cloud identity was established".to_string()
                } else {
                    "incomplete: an expectation could not be judged".to_string()
                });
                s.set_description(skipped.join("\n"));
                s
            }
            Verdict::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let failed: Vec<String> = item
                    .checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                    .map(|c| {
                        format!(
                            "{}: {} (fix: {})",
                            c.id,
                            c.message,
                            c.remediation.as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                s.set_message(failed.first().cloned().unwrap_or_default());
                s.set_description(failed.join("\n"));
                s
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("podiam.{}", item.mechanism.as_str()));
        let infos: Vec<String> = item
            .checks
            .iter()
            .filter(|c| c.status == Status::Info)
            .map(|c| format!("info {}: {}", c.id, c.message))
            .collect();
        if !infos.is_empty() {
            case.set_system_out(infos.join("\n"));
        }
        suite.add_test_case(case);
    }
    let mut junit = JUnit::new("podiam");
    junit.add_test_suite(suite);
    junit.to_string().expect("junit serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportKind;

    #[test]
    fn one_case_per_pod_and_unreachable_pods_are_errors() {
        let pod = |name: &str| {
            serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(serde_json::json!({
                "metadata": {"namespace": "ns", "name": name},
                "spec": {"containers": [{"name": "app"}]}
            }))
            .unwrap()
        };
        let gone = crate::unjudged::unreachable_item(&pod("gone"), None, "pod vanished");
        let mut fine = crate::unjudged::unreachable_item(&pod("fine"), None, "x");
        fine.unreachable = false;
        fine.checks.clear();
        fine.identity = Some(crate::model::Identity {
            provider: "aws",
            principal: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
            source: "test".into(),
        });
        fine.verdict = Verdict::Pass;
        let report = Report::new(ReportKind::VerifyReport, vec![fine, gone]).with_summary();
        let xml = render(&report);
        assert!(xml.contains("tests=\"2\""), "{xml}");
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(xml.contains("failures=\"0\""), "{xml}");
        assert!(xml.contains("pod vanished"), "{xml}");
    }

    #[test]
    fn incomplete_pods_are_skipped_and_info_goes_to_system_out() {
        use crate::model::Check;
        let pod = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "offline"},
            "spec": {"containers": [{"name": "app"}]}
        }))
        .unwrap();
        let mut item = crate::unjudged::unreachable_item(&pod, None, "x");
        item.unreachable = false;
        item.checks = vec![
            Check::skip("aws.pod-identity.exchange", "no cluster name"),
            Check::info("k8s.token.automount", "token mounted", "opt out"),
        ];
        // No identity established: an error, never a skip a CI gate would show green.
        item.verdict = crate::model::ReportItem::verdict_of(&item.checks, None, false);
        assert_eq!(item.verdict, Verdict::Incomplete);
        let xml = render(&Report::new(ReportKind::VerifyReport, vec![item.clone()]));
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(xml.contains("skipped=\"0\""), "{xml}");
        // An identity, but an expectation not judged: skipped.
        item.checks.push(Check::skip(
            crate::expectations::EXPECTED_ROLE,
            "expected role: not judged",
        ));
        let identity = crate::model::Identity {
            provider: "aws",
            principal: "arn:aws:iam::123456789012:role/r".into(),
            source: "configured (not exchanged) — test".into(),
        };
        item.verdict = crate::model::ReportItem::verdict_of(&item.checks, Some(&identity), false);
        item.identity = Some(identity);
        assert_eq!(item.verdict, Verdict::Incomplete);
        let xml = render(&Report::new(ReportKind::VerifyReport, vec![item]));
        assert!(xml.contains("skipped=\"1\""), "{xml}");
        assert!(xml.contains("no cluster name"), "{xml}");
        assert!(
            xml.contains("<system-out>info k8s.token.automount: token mounted"),
            "{xml}"
        );
    }
}
