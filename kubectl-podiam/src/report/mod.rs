//! Renderers. They format; they never compute a verdict.

pub mod junit;
pub mod summary;
pub mod text;

use serde::Serialize;

use crate::error::Result;
use crate::model::{ReportItem, Verdict};

pub const API_VERSION: &str = "podiam.dev/v1alpha1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReportKind {
    VerifyReport,
    WhoamiReport,
}

/// The versioned document of the output contract.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: &'static str,
    pub kind: ReportKind,
    pub items: Vec<ReportItem>,
    pub verdict: Verdict,
    /// Fleet verification only (`-A`, `-l`, a whole namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<summary::Summary>,
}

impl Report {
    pub fn new(kind: ReportKind, items: Vec<ReportItem>) -> Self {
        // As the exit code: any failure fails the report; else anything incomplete makes it so.
        let verdict = if items.iter().any(|i| i.verdict == Verdict::Fail) {
            Verdict::Fail
        } else if items.iter().any(|i| i.verdict == Verdict::Incomplete) {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        };
        Report {
            api_version: API_VERSION,
            kind,
            items,
            verdict,
            summary: None,
        }
    }

    /// Adds the fleet summary of the items.
    pub fn with_summary(mut self) -> Self {
        self.summary = Some(summary::Summary::of(&self.items));
        self
    }
}

/// `verbose` (`-v`) shows `info` checks in text output; JSON, YAML and JUnit always carry them.
pub fn render(report: &Report, format: Format, color: bool, verbose: bool) -> Result<String> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("report serializes");
            s.push('\n');
            s
        }
        Format::Yaml => serde_saphyr::to_string(report).expect("report serializes"),
        Format::Junit => junit::render(report),
        Format::Text => match report.kind {
            ReportKind::VerifyReport => text::verify(report, color, verbose),
            ReportKind::WhoamiReport => text::whoami(report, color),
        },
    })
}
