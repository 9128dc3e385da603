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

    /// `--context`, `--cluster` or `--user` names what the kubeconfig does not hold: a bad
    /// flag (exit 2), where a kubeconfig that cannot be used is a cluster problem (exit 3).
    #[error("kubeconfig: {0}")]
    KubeconfigName(String),

    #[error("{what}: {message}")]
    Cluster { what: String, message: String },

    #[error("{what}: forbidden: {message}")]
    Forbidden { what: String, message: String },

    /// The apiserver answered 401: it did not accept the kubeconfig's credentials at all
    /// (expired or revoked token, expired client certificate, another cluster's credentials).
    #[error("{what}: unauthorized: {message}")]
    Unauthorized { what: String, message: String },

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
            Error::Usage(_)
            | Error::Input { .. }
            | Error::Read { .. }
            | Error::NotFound { .. }
            | Error::KubeconfigName(_) => Exit::Usage,
            Error::Kubeconfig(_)
            | Error::Cluster { .. }
            | Error::Forbidden { .. }
            | Error::Unauthorized { .. }
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
            kube::Error::Api(status) if status.code == 401 => Error::Unauthorized {
                what,
                message: match CLUSTER_LOCATION.get() {
                    Some(at) => format!(
                        "{} answered 401 ({}) to the credentials of {} from {}: {}; get new credentials (e.g. your cloud's get-credentials command) and try again",
                        at.place(),
                        status.message,
                        at.user
                            .as_deref()
                            .map_or("no user".into(), |u| format!("user {u:?}")),
                        at.kubeconfig,
                        at.credentials_expired.as_deref().unwrap_or(
                            "an expired or revoked token, an expired client certificate, or credentials of another cluster"
                        ),
                    ),
                    None => format!("401 ({})", status.message),
                },
            },
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                what,
                message: status.message.clone(),
            },
            // Not an answer from the API server: name where it was and every cause, as
            // kubectl does ("dial tcp …: connection refused"), not just "client error (Connect)".
            _ => Error::Cluster {
                what,
                message: match CLUSTER_LOCATION.get() {
                    Some(at) => format!("cannot reach {}: {}", at.place(), causes(&err)),
                    None => causes(&err),
                },
            },
        }
    }
}

/// Where the cluster is, once connected: the server URL, the kubeconfig context and user,
/// and the kubeconfig. Set once per process by `kube::client::connect` (a process talks to one
/// cluster), read when a call fails without an answer or is refused as unauthorized.
#[derive(Debug, Clone)]
pub struct ClusterLocation {
    pub server: String,
    pub context: String,
    pub user: Option<String>,
    /// E.g. "kubeconfig /home/me/.kube/config".
    pub kubeconfig: String,
    /// E.g. "its token expired 3d ago" (`kube::credential_expiry`): the token or client
    /// certificate is known to have expired.
    pub credentials_expired: Option<String>,
}

impl ClusterLocation {
    fn place(&self) -> String {
        format!("the cluster at {} (context {})", self.server, self.context)
    }
}

static CLUSTER_LOCATION: std::sync::OnceLock<ClusterLocation> = std::sync::OnceLock::new();

pub fn set_cluster_location(location: ClusterLocation) {
    let _ = CLUSTER_LOCATION.set(location);
}

/// `seconds` as a short duration: "42s", "5m", "3h", "2d".
pub fn duration_text(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
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
