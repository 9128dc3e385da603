//! What passed through an emulator, for scenario diagnostics: each request when it arrives and
//! again when it is answered (outcome, elapsed time), so a request that never completes is
//! visible. Never tokens or credentials: an entry holds the method, path, operation, the
//! namespace named by the request's token, and the outcome (a status or an error code).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{SecondsFormat, Utc};

/// Which half of a request an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Arrived,
    Answered,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<8}` lines entries up.
        f.pad(match self {
            Phase::Arrived => "arrived",
            Phase::Answered => "answered",
        })
    }
}

/// One event of one request seen by an emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogEntry {
    /// When this entry was recorded: UTC, RFC 3339 with milliseconds.
    pub time: String,
    /// Links a request's arrival and answer; 0 for emulators that log answers only.
    pub request_id: u64,
    pub phase: Phase,
    /// The namespace of the ServiceAccount token the request carried (unverified), else empty.
    pub namespace: String,
    pub method: String,
    pub path: String,
    /// The operation: query-protocol `Action` (STS, IAM), the API call's name, else empty.
    pub action: String,
    /// Empty on arrival; when answered, `200`-style status or the error code the emulator
    /// answered.
    pub outcome: String,
    /// Answered only: milliseconds since the arrival.
    pub elapsed_ms: Option<u64>,
}

impl RequestLogEntry {
    /// An answered request whose arrival was not recorded (emulators that log on answer only).
    pub fn answered(method: &str, path: &str, action: String, outcome: String) -> Self {
        Self {
            time: now_rfc3339(),
            request_id: 0,
            phase: Phase::Answered,
            namespace: String::new(),
            method: method.to_owned(),
            path: path.to_owned(),
            action,
            outcome,
            elapsed_ms: None,
        }
    }
}

/// `TIME #ID PHASE ns=NAMESPACE METHOD PATH ACTION[ -> OUTCOME in N ms]`, one line.
impl fmt::Display for RequestLogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let namespace = if self.namespace.is_empty() {
            "-"
        } else {
            &self.namespace
        };
        write!(
            f,
            "{} #{} {:<8} ns={namespace} {} {}",
            self.time, self.request_id, self.phase, self.method, self.path
        )?;
        if !self.action.is_empty() {
            write!(f, " {}", self.action)?;
        }
        if self.phase == Phase::Answered {
            write!(f, " -> {}", self.outcome)?;
            if let Some(ms) = self.elapsed_ms {
                write!(f, " in {ms} ms")?;
            }
        }
        Ok(())
    }
}

/// What a request is, as far as the log is concerned, once it has arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSummary {
    pub method: String,
    pub path: String,
    pub action: String,
    pub namespace: String,
}

#[derive(Default)]
struct Entries {
    entries: Vec<RequestLogEntry>,
    last_id: u64,
}

/// Shared, append-only request log.
#[derive(Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Entries>>,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLog")
            .field("entries", &self.lock().entries.len())
            .finish()
    }
}

impl RequestLog {
    /// Records a finished entry as is (emulators that log on answer only).
    pub fn record(&self, entry: RequestLogEntry) {
        self.lock().entries.push(entry);
    }

    /// Records the request's arrival now; the returned guard records its answer (or, if
    /// dropped unanswered, that it was abandoned).
    pub fn arrive(&self, summary: RequestSummary) -> PendingRequest {
        let request_id = {
            let mut inner = self.lock();
            inner.last_id += 1;
            let request_id = inner.last_id;
            inner.entries.push(entry(
                &summary,
                request_id,
                Phase::Arrived,
                String::new(),
                None,
            ));
            request_id
        };
        PendingRequest {
            log: self.clone(),
            summary,
            request_id,
            started: Instant::now(),
            answered: false,
        }
    }

    /// Every entry so far, arrivals and answers, oldest first.
    pub fn entries(&self) -> Vec<RequestLogEntry> {
        self.lock().entries.clone()
    }

    /// One entry per answered request, oldest answer first.
    pub fn answered(&self) -> Vec<RequestLogEntry> {
        self.lock()
            .entries
            .iter()
            .filter(|e| e.phase == Phase::Answered)
            .cloned()
            .collect()
    }

    /// Arrivals not answered yet: requests still in progress (or stuck).
    pub fn unanswered(&self) -> Vec<RequestLogEntry> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|arrival| {
                arrival.phase == Phase::Arrived
                    && !inner.entries.iter().any(|answer| {
                        answer.phase == Phase::Answered && answer.request_id == arrival.request_id
                    })
            })
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request that has arrived and is not answered yet.
#[must_use = "answer the request, or it is logged as abandoned"]
pub struct PendingRequest {
    log: RequestLog,
    summary: RequestSummary,
    request_id: u64,
    started: Instant,
    answered: bool,
}

/// What an answer entry says of a request dropped before it was answered (its client went
/// away, or the server stopped).
pub const ABANDONED: &str = "abandoned";

impl PendingRequest {
    /// Records the answer: `outcome` is the status or the error code.
    pub fn answer(mut self, outcome: impl Into<String>) {
        self.record_answer(outcome.into());
    }

    pub fn summary(&self) -> &RequestSummary {
        &self.summary
    }

    fn record_answer(&mut self, outcome: String) {
        self.answered = true;
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.log.record(entry(
            &self.summary,
            self.request_id,
            Phase::Answered,
            outcome,
            Some(elapsed),
        ));
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        if !self.answered {
            self.record_answer(ABANDONED.to_owned());
        }
    }
}

fn entry(
    summary: &RequestSummary,
    request_id: u64,
    phase: Phase,
    outcome: String,
    elapsed_ms: Option<u64>,
) -> RequestLogEntry {
    RequestLogEntry {
        time: now_rfc3339(),
        request_id,
        phase,
        namespace: summary.namespace.clone(),
        method: summary.method.clone(),
        path: summary.path.clone(),
        action: summary.action.clone(),
        outcome,
        elapsed_ms,
    }
}

/// `2026-12-03T10:11:12.345Z`
fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RequestSummary {
        RequestSummary {
            method: "GET".to_owned(),
            path: "/v1/credentials".to_owned(),
            action: "GetCredentials".to_owned(),
            namespace: "apps".to_owned(),
        }
    }

    #[test]
    fn records_arrival_then_answer_with_elapsed_time() {
        let log = RequestLog::default();
        let pending = log.arrive(summary());
        let arrived = log.entries();
        assert_eq!(arrived.len(), 1);
        assert_eq!(arrived[0].phase, Phase::Arrived);
        assert_eq!(arrived[0].namespace, "apps");
        assert_eq!(arrived[0].outcome, "");
        assert_eq!(log.unanswered().len(), 1, "visible before it completes");
        assert!(log.answered().is_empty());

        std::thread::sleep(std::time::Duration::from_millis(20));
        pending.answer("200");
        let entries = log.entries();
        assert_eq!(entries.len(), 2);
        let answer = &entries[1];
        assert_eq!(answer.phase, Phase::Answered);
        assert_eq!(answer.request_id, entries[0].request_id);
        assert_eq!(answer.outcome, "200");
        assert!(answer.elapsed_ms.is_some_and(|ms| ms >= 20), "{answer:?}");
        assert!(log.unanswered().is_empty());
        assert_eq!(log.answered(), vec![answer.clone()]);
    }

    #[test]
    fn a_dropped_request_is_logged_as_abandoned() {
        let log = RequestLog::default();
        drop(log.arrive(summary()));
        let answered = log.answered();
        assert_eq!(answered.len(), 1);
        assert_eq!(answered[0].outcome, ABANDONED);
    }

    #[test]
    fn requests_get_distinct_ids() {
        let log = RequestLog::default();
        let first = log.arrive(summary());
        let second = log.arrive(summary());
        second.answer("404");
        assert_eq!(log.unanswered().len(), 1);
        assert_eq!(log.unanswered()[0].request_id, 1);
        first.answer("200");
        let ids: Vec<u64> = log.answered().iter().map(|e| e.request_id).collect();
        assert_eq!(ids, [2, 1]);
    }

    #[test]
    fn times_are_utc_rfc3339_with_milliseconds() {
        let log = RequestLog::default();
        log.arrive(summary()).answer("200");
        for entry in log.entries() {
            let parsed = chrono::DateTime::parse_from_rfc3339(&entry.time).expect("RFC 3339");
            assert_eq!(parsed.offset().local_minus_utc(), 0);
            // `…T10:11:12.345Z`: milliseconds, Z.
            let fraction = entry.time.rsplit('.').next().unwrap();
            assert_eq!(fraction.len(), 4, "{}", entry.time);
            assert!(fraction.ends_with('Z'));
        }
    }

    #[test]
    fn the_line_shows_time_namespace_phase_outcome_and_elapsed() {
        let log = RequestLog::default();
        log.arrive(summary()).answer("500");
        let entries = log.entries();
        let arrival = entries[0].to_string();
        assert!(
            arrival.ends_with("#1 arrived  ns=apps GET /v1/credentials GetCredentials"),
            "{arrival}"
        );
        assert!(arrival.starts_with(&entries[0].time));
        let answer = entries[1].to_string();
        assert!(
            answer.contains("#1 answered ns=apps GET /v1/credentials GetCredentials -> 500 in "),
            "{answer}"
        );
        assert!(answer.ends_with(" ms"), "{answer}");
        let unnamed = RequestLogEntry::answered("POST", "/", String::new(), "200".to_owned());
        assert!(
            unnamed.to_string().contains(" ns=- POST / -> 200"),
            "{unnamed}"
        );
    }
}
