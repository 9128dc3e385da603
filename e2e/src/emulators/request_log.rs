//! What passed through the gate, for scenario diagnostics. Never tokens or credentials.

use std::sync::{Arc, Mutex};

/// One request seen by the AWS gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogEntry {
    pub method: String,
    pub path: String,
    /// Query-protocol `Action` when there is one (STS, IAM), else empty.
    pub action: String,
    /// `200`-style status for passed-through requests, or the AWS error code the gate answered.
    pub outcome: String,
}

/// Shared, append-only request log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RequestLogEntry>>>,
}

impl RequestLog {
    pub fn record(&self, entry: RequestLogEntry) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(entry);
    }

    /// A copy of every entry so far, oldest first.
    pub fn entries(&self) -> Vec<RequestLogEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
