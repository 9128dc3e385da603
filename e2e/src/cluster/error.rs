//! What can go wrong bringing a local cluster up or down, each naming what to look at.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Something the machine must provide first (a binary, root, a free port).
    #[error("missing prerequisite: {what}\n  fix: {fix}")]
    MissingPrerequisite { what: String, fix: String },

    /// A component exited, or did not become ready in time; `tail` is the end of its log.
    #[error("{component}: {message}\n--- last lines of {} ---\n{tail}", log.display())]
    Component {
        component: String,
        message: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

impl ClusterError {
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    /// The component this error is about, if any.
    pub fn component(&self) -> Option<&str> {
        match self {
            Self::Component { component, .. } => Some(component),
            _ => None,
        }
    }
}

pub(crate) type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// `.io_context("reading x")` for `std::io::Result`.
pub(crate) trait IoContext<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ClusterError::Io {
            context: context(),
            source,
        })
    }
}
