//! Requests the metadata services hold open on purpose — the EC2 hop limit's unanswered token
//! request, the GKE metadata server's start-up delay — end with the scenario of the pod that
//! made them: the runner releases a namespace's holds when its scenario ends, so no connection
//! outlives its scenario into the next one (or into `down`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// The whole duration passed.
    Elapsed,
    /// The namespace's scenario ended first.
    Released,
}

#[derive(Default)]
pub struct HeldRequests {
    namespaces: Mutex<HashMap<String, Arc<Notify>>>,
    held: AtomicUsize,
}

impl HeldRequests {
    /// Waits `duration`, or less if `namespace`'s holds are released meanwhile.
    pub async fn hold(&self, namespace: &str, duration: Duration) -> HoldEnd {
        let notify = self.lock().entry(namespace.to_owned()).or_default().clone();
        let released = notify.notified();
        tokio::pin!(released);
        // Registered before the count is visible, so a release seen after it wakes this hold.
        released.as_mut().enable();
        self.held.fetch_add(1, Ordering::SeqCst);
        let end = tokio::select! {
            () = tokio::time::sleep(duration) => HoldEnd::Elapsed,
            () = released => HoldEnd::Released,
        };
        self.held.fetch_sub(1, Ordering::SeqCst);
        end
    }

    /// Ends every hold of `namespace` now.
    pub fn release(&self, namespace: &str) {
        if let Some(notify) = self.lock().remove(namespace) {
            notify.notify_waiters();
        }
    }

    /// Holds in progress (all namespaces).
    pub fn count(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.namespaces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_release_ends_only_its_namespaces_holds() {
        let holds = Arc::new(HeldRequests::default());
        let hold = |ns: &'static str| {
            let holds = holds.clone();
            tokio::spawn(async move { holds.hold(ns, Duration::from_secs(60)).await })
        };
        let (a1, a2, b) = (hold("a"), hold("a"), hold("b"));
        while holds.count() < 3 {
            tokio::task::yield_now().await;
        }
        holds.release("a");
        assert_eq!(a1.await.unwrap(), HoldEnd::Released);
        assert_eq!(a2.await.unwrap(), HoldEnd::Released);
        assert_eq!(holds.count(), 1, "b still held");
        assert!(!b.is_finished());
        b.abort();
        let short = holds.hold("c", Duration::from_millis(10)).await;
        assert_eq!(short, HoldEnd::Elapsed);
    }
}
