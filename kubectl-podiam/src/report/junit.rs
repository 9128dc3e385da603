//! JUnit XML for CI: one test suite, one test case per pod; failing checks are the failure text.

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
            Verdict::Pass => TestCaseStatus::success(),
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
        suite.add_test_case(case);
    }
    let mut junit = JUnit::new("podiam");
    junit.add_test_suite(suite);
    junit.to_string().expect("junit serializes")
}
