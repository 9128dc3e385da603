//! The human rendering of a bind plan or result.

use std::fmt::Write as _;

use super::plan::{BindReport, ChangeStatus, DryRun};

pub fn render(report: &BindReport) -> String {
    let mut out = String::new();
    let heading = match report.dry_run {
        DryRun::Client => "Plan (dry run, nothing changed)",
        DryRun::Server => "Server dry run (Kubernetes changes validated, nothing persisted)",
        DryRun::None => "Bound",
    };
    let _ = writeln!(
        out,
        "{heading}: ServiceAccount {} → {} ({})",
        report.service_account, report.identity, report.mechanism
    );
    let _ = writeln!(out, "  issuer: {}", report.issuer);
    if report.changes.is_empty() {
        let _ = writeln!(out, "  nothing to change: the binding is already in place");
    }
    for change in &report.changes {
        let status = match change.status {
            ChangeStatus::Planned => "",
            ChangeStatus::ValidatedByServer => "  [validated by server]",
            ChangeStatus::NotValidated => "  [not validated: the cloud API has no dry run]",
            ChangeStatus::Applied => "  [done]",
            ChangeStatus::Failed => "  [FAILED]",
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<8} {}: {}{status}",
            change.system.as_str(),
            change.action,
            change.resource,
            change.detail
        );
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    if !report.stale_pods.is_empty() {
        let _ = writeln!(
            out,
            "Pods created before this binding keep their old identity (webhooks mutate pods only at creation):"
        );
        for pod in &report.stale_pods {
            let owner = pod
                .owner
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {}{owner}: {}", pod.name, pod.action);
        }
    }
    out
}
