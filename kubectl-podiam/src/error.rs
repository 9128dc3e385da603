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
            _ => Error::Cluster {
                what,
                message: err.to_string(),
            },
        }
    }
}

fn bullet(lines: &[String]) -> String {
    if lines.is_empty() {
        return " nothing".to_owned();
    }
    lines.iter().map(|l| format!("\n  - {l}")).collect()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
