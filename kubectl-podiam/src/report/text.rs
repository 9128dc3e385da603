//! Human output: one block per pod, failures first, each with its one-line cause and fix.

use std::fmt::Write;

use super::Report;
use super::summary::Summary;
use crate::model::{Check, ReportItem, Status, Verdict};

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn status_word(status: Status, color: bool) -> String {
    let (word, code) = match status {
        Status::Fail => ("FAIL", "31;1"),
        Status::Warn => ("WARN", "33"),
        Status::Pass => ("PASS", "32"),
        Status::Info => ("INFO", "36"),
        Status::Skip => ("SKIP", "2"),
    };
    paint(&format!("{word:<4}"), code, color)
}

fn verdict_word(verdict: Verdict, color: bool) -> String {
    match verdict {
        Verdict::Pass => paint("VERIFIED", "32;1", color),
        Verdict::Fail => paint("FAILED", "31;1", color),
        Verdict::Incomplete => paint("INCOMPLETE", "33;1", color),
    }
}

/// Why a pod that failed nothing is not verified.
fn incomplete_reason(item: &ReportItem) -> &'static str {
    if item.identity.is_none() {
        "no cloud identity was established (see the skipped and warned checks)"
    } else {
        "an expectation could not be judged (see the skipped checks; --allow-skip accepts that)"
    }
}

/// Failures first, then pods not verified, then verified ones.
fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Fail => 0,
        Verdict::Incomplete => 1,
        Verdict::Pass => 2,
    }
}

fn header(item: &ReportItem) -> String {
    let what = if item.pod.kind == "Pod" {
        format!("pod {}/{}", item.pod.namespace, item.pod.name)
    } else {
        format!("{} {}/{}", item.pod.kind, item.pod.namespace, item.pod.name)
    };
    format!(
        "{what} (container {}, serviceaccount {}, mechanism {})",
        item.pod.container,
        item.service_account,
        item.mechanism.as_str()
    )
}

fn checks(out: &mut String, checks: &[Check], color: bool) {
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in checks {
        let _ = writeln!(
            out,
            "  {}  {:<width$}  {}",
            status_word(c.status, color),
            c.id,
            c.message
        );
        if let Some(fix) = &c.remediation
            && matches!(c.status, Status::Fail | Status::Warn)
        {
            let _ = writeln!(out, "        {:<width$}  fix: {fix}", "");
        } else if let Some(hint) = &c.remediation
            && c.status == Status::Info
        {
            let _ = writeln!(out, "        {:<width$}  hint: {hint}", "");
        }
    }
}

/// `verbose`: `info` checks are listed too (they never change a verdict).
pub fn verify(report: &Report, color: bool, verbose: bool) -> String {
    if let Some(summary) = &report.summary {
        return fleet(report, summary, color);
    }
    let mut out = String::new();
    // A pod's containers stay together; pods in verdict order (failed, incomplete, verified).
    let mut pods = super::summary::by_pod(&report.items);
    pods.sort_by_key(|p| p.iter().map(|i| rank(i.verdict)).min());
    for item in pods.into_iter().flatten() {
        let _ = writeln!(
            out,
            "{}  {}",
            verdict_word(item.verdict, color),
            header(item)
        );
        if let Some(id) = &item.identity {
            let _ = writeln!(out, "  identity: {} ({})", id.principal, id.source);
        }
        if item.verdict == Verdict::Incomplete {
            let _ = writeln!(out, "  incomplete: {}", incomplete_reason(item));
        }
        let shown: Vec<Check> = item
            .checks
            .iter()
            .filter(|c| verbose || c.status != Status::Info)
            .cloned()
            .collect();
        checks(&mut out, &shown, color);
        out.push('\n');
    }
    // Counted by pod, as the fleet summary is: a pod is as bad as its worst container.
    let pods = super::summary::by_pod(&report.items);
    let pod_verdict = |p: &Vec<&ReportItem>| {
        p.iter()
            .map(|i| i.verdict)
            .min_by_key(|v| rank(*v))
            .unwrap_or(Verdict::Pass)
    };
    let count = |v: Verdict| pods.iter().filter(|p| pod_verdict(p) == v).count();
    let _ = writeln!(
        out,
        "{} verified, {} failed, {} incomplete",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Incomplete)
    );
    out
}

/// Many pods: a block for each pod that failed or could not be verified (failures first), one
/// line for each verified pod, then the summary tables.
fn fleet(report: &Report, summary: &Summary, color: bool) -> String {
    let mut out = String::new();
    // A pod's containers stay together: a pod with a failing, unreachable or incomplete
    // container gets a block per such container and a line per verified one; pods verified in
    // every container get a line per container after them. Order: the exit code's precedence
    // (failed, unreachable, incomplete).
    let problem = |i: &ReportItem| i.verdict != Verdict::Pass || i.unreachable;
    let mut pods = super::summary::by_pod(&report.items);
    pods.sort_by_key(|p| {
        (
            !p.iter().any(|i| i.verdict == Verdict::Fail),
            !p.iter().any(|i| i.unreachable),
            p.iter().map(|i| rank(i.verdict)).min(),
        )
    });
    let (troubled, verified): (Vec<_>, Vec<_>) =
        pods.into_iter().partition(|p| p.iter().any(|i| problem(i)));
    for item in troubled.iter().flatten() {
        if !problem(item) {
            verified_line(&mut out, item, color);
            continue;
        }
        let word = if item.verdict == Verdict::Fail {
            verdict_word(item.verdict, color)
        } else if item.unreachable {
            paint("UNREACHABLE", "33;1", color)
        } else {
            verdict_word(item.verdict, color)
        };
        let _ = writeln!(out, "{word}  {}", header(item));
        if let Some(id) = &item.identity {
            let _ = writeln!(out, "  identity: {} ({})", id.principal, id.source);
        }
        if item.verdict == Verdict::Incomplete && !item.unreachable {
            let _ = writeln!(out, "  incomplete: {}", incomplete_reason(item));
        }
        // Problems, and the skipped expectations that left the pod incomplete.
        let problems: Vec<Check> = item
            .checks
            .iter()
            .filter(|c| {
                matches!(c.status, Status::Fail | Status::Warn)
                    || (c.status == Status::Skip && crate::expectations::is_expectation(c.id))
            })
            .cloned()
            .collect();
        checks(&mut out, &problems, color);
        out.push('\n');
    }
    for item in verified.iter().flatten() {
        verified_line(&mut out, item, color);
    }
    if !verified.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} pods: {} verified, {} failed, {} unreachable, {} incomplete{}",
        summary.pods,
        summary.passed,
        summary.failed,
        summary.unreachable,
        summary.incomplete,
        if summary.not_running > 0 {
            format!(" ({} not running, judged statically)", summary.not_running)
        } else {
            String::new()
        }
    );
    if !summary.by_mechanism.is_empty() {
        let width = summary
            .by_mechanism
            .keys()
            .map(|k| k.len())
            .max()
            .unwrap_or(0)
            .max("MECHANISM".len());
        let _ = writeln!(
            out,
            "\n{:<width$}  {:>5}  {:>6}",
            "MECHANISM", "PODS", "FAILED"
        );
        for (mechanism, tally) in &summary.by_mechanism {
            let _ = writeln!(
                out,
                "{mechanism:<width$}  {:>5}  {:>6}",
                tally.pods, tally.failed
            );
        }
    }
    if !summary.by_failing_check.is_empty() {
        let width = summary
            .by_failing_check
            .keys()
            .map(|k| k.len())
            .max()
            .unwrap_or(0)
            .max("FAILING CHECK".len());
        let _ = writeln!(out, "\n{:<width$}  {:>5}", "FAILING CHECK", "PODS");
        let mut rows: Vec<_> = summary.by_failing_check.iter().collect();
        // Most common cause first; ties by id, so the order is stable.
        rows.sort_by_key(|(id, n)| (std::cmp::Reverse(**n), **id));
        for (id, n) in rows {
            let _ = writeln!(out, "{id:<width$}  {n:>5}");
        }
    }
    out
}

/// One line for a verified container of a fleet run.
fn verified_line(out: &mut String, item: &ReportItem, color: bool) {
    let principal = item
        .identity
        .as_ref()
        .map_or_else(String::new, |id| format!(" → {}", id.principal));
    let _ = writeln!(
        out,
        "{}  {}{principal}",
        verdict_word(Verdict::Pass, color),
        header(item)
    );
}

pub fn whoami(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for item in &report.items {
        let _ = writeln!(out, "{}", header(item));
        let _ = writeln!(out, "  kubernetes:  {}", item.kubernetes.username);
        let _ = writeln!(out, "  groups:      {}", item.kubernetes.groups.join(", "));
        let _ = writeln!(
            out,
            "  api token:   {}",
            if item.kubernetes.automount_token {
                "automounted"
            } else {
                "not mounted (automountServiceAccountToken: false)"
            }
        );
        match &item.identity {
            Some(id) => {
                let _ = writeln!(out, "  cloud:       {} {}", id.provider, id.principal);
                let _ = writeln!(out, "  evidence:    {}", id.source);
            }
            None => {
                let _ = writeln!(out, "  cloud:       none established");
            }
        }
        let problems: Vec<Check> = item
            .checks
            .iter()
            .filter(|c| {
                matches!(c.status, Status::Fail | Status::Warn)
                    || (c.status == Status::Skip && crate::expectations::is_expectation(c.id))
            })
            .cloned()
            .collect();
        if item.verdict == Verdict::Incomplete {
            let _ = writeln!(out, "  incomplete:  {}", incomplete_reason(item));
        }
        if !problems.is_empty() {
            let _ = writeln!(out, "  problems:");
            checks(&mut out, &problems, color);
        }
    }
    out
}

#[cfg(test)]
mod fleet_tests {
    use super::*;
    use crate::model::{Identity, MechanismId, PodRef};
    use crate::report::ReportKind;

    fn item(name: &str, checks: Vec<Check>, unreachable: bool) -> ReportItem {
        let identity = Some(Identity {
            provider: "aws",
            principal: format!("arn:aws:sts::1:assumed-role/r/podiam-{name}"),
            source: "exec".into(),
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
            mechanism: MechanismId::AwsIrsa,
            verdict: ReportItem::verdict_of(&checks, identity.as_ref(), false),
            identity,
            checks,
            unreachable,
        }
    }

    #[test]
    fn fleet_text_has_blocks_for_problems_lines_for_the_rest_and_tables() {
        let report = Report::new(
            ReportKind::VerifyReport,
            vec![
                item(
                    "a-good",
                    vec![Check::pass("aws.sts.assume-role", "fine")],
                    false,
                ),
                item(
                    "b-bad",
                    vec![
                        Check::fail("aws.sts.assume-role", "AccessDenied", "trust it"),
                        Check::pass("aws.token.claims", "ok"),
                    ],
                    false,
                ),
                item(
                    "c-gone",
                    vec![Check::warn("k8s.pod.reachable", "vanished", "check")],
                    true,
                ),
            ],
        )
        .with_summary();
        let text = verify(&report, false, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FAILED  pod ns/b-bad"), "{text}");
        // Only problems are listed in a failing pod's block.
        assert!(!text.contains("aws.token.claims"), "{text}");
        assert!(text.contains("UNREACHABLE  pod ns/c-gone"), "{text}");
        assert!(
            text.contains("VERIFIED  pod ns/a-good (container app, serviceaccount sa, mechanism aws-irsa) → arn:aws:sts::1:assumed-role/r/podiam-a-good"),
            "{text}"
        );
        assert!(
            text.contains("3 pods: 1 verified, 1 failed, 1 unreachable, 0 incomplete"),
            "{text}"
        );
        assert!(text.contains("\naws-irsa       3       1\n"), "{text}");
        assert!(text.contains("\naws.sts.assume-role      1\n"), "{text}");
    }
}
