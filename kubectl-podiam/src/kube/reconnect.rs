//! Riding out an API server restart. A restarting kube-apiserver refuses connections for
//! seconds; kube's own retry layer retries only answers (429/503/504), so without this every
//! pod judged during the gap would be lost to "connection refused". Once the server has
//! answered this process, a refused connection is retried with backoff until the request
//! timeout (`--request-timeout`, 30 s by default) has passed since the first refusal:
//! - a refused connection never reached the server, so any request may be sent again;
//! - a connection reset mid-request is retried for GET only, as client-go does: a write
//!   may have landed.
//!
//! A server that never answered is not retried: an unreachable cluster fails at once, as
//! kubectl does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use tokio::time::Instant;
use tower::BoxError;
use tower::retry::Policy;

/// First wait after a refusal; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// How a request failed before any answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The connection was refused: the request never reached the server.
    Refused,
    /// The connection was reset or closed mid-request: the server may have acted on it.
    Reset,
}

/// Per-request retry state; the `answered` flag is shared by every request of one client.
#[derive(Clone)]
pub struct ReconnectPolicy {
    answered: Arc<AtomicBool>,
    budget: Duration,
    first_failure: Option<Instant>,
    retries: u32,
}

impl ReconnectPolicy {
    /// `budget`: how long after the first refusal a request is still sent again.
    pub fn new(budget: Duration) -> Self {
        Self {
            answered: Arc::new(AtomicBool::new(false)),
            budget,
            first_failure: None,
            retries: 0,
        }
    }

    /// The wait before retry number `retries + 1`, or None once it would pass the budget.
    fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let first = *self.first_failure.get_or_insert(now);
        let delay = FIRST_DELAY
            .saturating_mul(1 << self.retries.min(8))
            .min(MAX_DELAY);
        if now.duration_since(first) + delay > self.budget {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }
}

/// Whether `error` is a dropped connection, and which kind, from the I/O error at its root.
pub fn dropped(error: &(dyn std::error::Error + 'static)) -> Option<Dropped> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(Dropped::Refused),
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => return Some(Dropped::Reset),
                _ => {}
            }
        }
        current = e.source();
    }
    None
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for ReconnectPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let error = match result {
            Ok(_) => {
                self.answered.store(true, Ordering::Relaxed);
                return None;
            }
            Err(error) => error,
        };
        if !self.answered.load(Ordering::Relaxed) {
            return None;
        }
        let what = match dropped(error.as_ref())? {
            Dropped::Refused => "refused the connection of",
            Dropped::Reset if request.method() == Method::GET => "reset the connection of",
            Dropped::Reset => return None,
        };
        let delay = self.next_delay(Instant::now())?;
        tracing::info!(
            "the API server {what} {} {}; it answered before, so it is probably \
             restarting: retry {} in {delay:?}",
            request.method(),
            request.uri().path(),
            self.retries,
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        // Streaming bodies cannot be sent twice; kube's request bodies are buffered.
        let body = request.body().try_clone()?;
        let mut copy = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> BoxError {
        Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    fn reset() -> BoxError {
        Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    fn request(method: Method) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri("https://127.0.0.1:6443/api/v1/pods")
            .body(Body::empty())
            .unwrap()
    }

    fn ok() -> Result<Response<()>, BoxError> {
        Ok(Response::new(()))
    }

    /// A wrapped I/O error, as hyper's client reports it.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn the_root_io_error_decides() {
        let wrapped = Wrapped(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(dropped(&wrapped), Some(Dropped::Refused));
        let wrapped = Wrapped(std::io::ErrorKind::UnexpectedEof.into());
        assert_eq!(dropped(&wrapped), Some(Dropped::Reset));
        let wrapped = Wrapped(std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(dropped(&wrapped), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answered_is_not_retried() {
        let mut policy = ReconnectPolicy::new(Duration::from_secs(30));
        assert!(
            policy
                .retry(
                    &mut request(Method::GET),
                    &mut Err::<Response<()>, _>(refused())
                )
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_after_an_answer_are_retried_with_backoff_until_the_budget() {
        let mut first = ReconnectPolicy::new(Duration::from_secs(2));
        assert!(first.retry(&mut request(Method::GET), &mut ok()).is_none());
        // A later request shares the flag.
        let mut policy = first.clone();
        let mut delays = Vec::new();
        let started = Instant::now();
        while let Some(sleep) = policy.retry(
            &mut request(Method::POST),
            &mut Err::<Response<()>, _>(refused()),
        ) {
            delays.push(sleep.deadline() - Instant::now());
            sleep.await;
        }
        assert_eq!(
            delays,
            [250, 500, 1000].map(Duration::from_millis),
            "doubling, and none that would end past the 2 s budget"
        );
        assert!(started.elapsed() <= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_is_retried_for_reads_only() {
        let mut policy = ReconnectPolicy::new(Duration::from_secs(30));
        assert!(policy.retry(&mut request(Method::GET), &mut ok()).is_none());
        assert!(
            policy
                .clone()
                .retry(
                    &mut request(Method::GET),
                    &mut Err::<Response<()>, _>(reset())
                )
                .is_some()
        );
        assert!(
            policy
                .clone()
                .retry(
                    &mut request(Method::PATCH),
                    &mut Err::<Response<()>, _>(reset())
                )
                .is_none(),
            "a write may have landed"
        );
    }

    #[test]
    fn the_delay_is_capped() {
        let mut policy = ReconnectPolicy::new(Duration::from_secs(3600));
        let now = Instant::now();
        let delays: Vec<_> = (0..7).map(|_| policy.next_delay(now).unwrap()).collect();
        assert_eq!(delays[4], Duration::from_secs(4));
        assert_eq!(delays[6], Duration::from_secs(4));
    }
}
