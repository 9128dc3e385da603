//! Every error the plugin can end with, and the one place they become exit codes.

use std::path::PathBuf;

/// Exit codes of the output contract (docs/architecture.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Verified; warnings allowed.
    Verified = 0,
    /// At least one check failed.
    VerificationFailed = 1,
    /// Bad flags or bad input files.
    Usage = 2,
    /// Cluster or cloud unreachable, or the caller is not permitted.
    Unreachable = 3,
    /// Nothing failed, but a pod's cloud identity could not be established, or an expectation
    /// (`--expect-*`, `--can`, `--cannot`) could not be judged and `--allow-skip` was not given.
    Incomplete = 4,
}

impl Exit {
    /// The exit code of a run that judged pods: 1 if any failed; else 3 if any call was
    /// unreachable or forbidden; else 4 if any is incomplete; else 0.
    pub fn of_items(items: &[crate::model::ReportItem]) -> Exit {
        use crate::model::Verdict;
        if items.iter().any(|i| i.verdict == Verdict::Fail) {
            Exit::VerificationFailed
        } else if items.iter().any(|i| i.unreachable) {
            Exit::Unreachable
        } else if items.iter().any(|i| i.verdict == Verdict::Incomplete) {
            Exit::Incomplete
        } else {
            Exit::Verified
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("kubeconfig: {0}")]
    Kubeconfig(String),

    #[error("{what}: {message}")]
    Cluster { what: String, message: String },

    #[error("{what}: forbidden: {message}")]
    Forbidden { what: String, message: String },

    #[error("{what}: not found")]
    NotFound { what: String },

    #[error("{0}")]
    Cloud(String),

    /// `bind` will not act: a precondition is not met (the message says how to meet it).
    #[error("refused: {0}")]
    Refused(String),

    /// `bind` stopped midway: what was changed, what failed, what was not done.
    #[error(
        "{failed}\nchanged before the failure:{}\nnot done:{}\nto finish, fix the cause and run the same bind again (what is done is skipped); or undo the changes above",
        bullet(done),
        bullet(remaining)
    )]
    PartialBind {
        failed: String,
        done: Vec<String>,
        remaining: Vec<String>,
    },

    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Input { .. } | Error::Read { .. } | Error::NotFound { .. } => {
                Exit::Usage
            }
            Error::Kubeconfig(_)
            | Error::Cluster { .. }
            | Error::Forbidden { .. }
            | Error::Cloud(_) => Exit::Unreachable,
            Error::Output(_) => Exit::Usage,
            Error::Refused(_) => Exit::VerificationFailed,
            Error::PartialBind { .. } => Exit::Unreachable,
        }
    }

    /// Classifies a kube-rs error for `what` (e.g. "get pod default/s3-pod").
    pub fn from_kube(what: impl Into<String>, err: kube::Error) -> Self {
        let what = what.into();
        match &err {
            kube::Error::Api(status) if status.code == 404 => Error::NotFound { what },
            kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
                Error::Forbidden {
                    what,
                    message: status.message.clone(),
                }
            }
            // Not an answer from the API server: name where it was and every cause, as
            // kubectl does ("dial tcp …: connection refused"), not just "client error (Connect)".
            _ => Error::Cluster {
                what,
                message: match CLUSTER_LOCATION.get() {
                    Some(location) => format!("cannot reach {location}: {}", causes(&err)),
                    None => causes(&err),
                },
            },
        }
    }
}

/// Where the cluster is, once connected: the server URL and the kubeconfig context. Set once
/// per process by `kube::client::connect` (a process talks to one cluster), read when a call
/// fails without an answer.
static CLUSTER_LOCATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_cluster_location(location: String) {
    let _ = CLUSTER_LOCATION.set(location);
}

/// An error and its sources, outermost first, repeated texts dropped.
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

fn bullet(lines: &[String]) -> String {
    if lines.is_empty() {
        return " nothing".to_owned();
    }
    lines.iter().map(|l| format!("\n  - {l}")).collect()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
