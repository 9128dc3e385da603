//! Answers shared by pods whose answer cannot differ, so `verify -A` over many pods of the same
//! ServiceAccount makes one cloud exchange, not one per pod.
//!
//! The rule (docs/architecture.md, "Fleet verification"): a cloud answer is keyed by everything
//! the cloud decides it on, never by pod identity. Exec evidence (the token file, the runtime
//! environment) is always read per pod, since drift, a preset env or an unreadable token is per
//! pod; only what the cloud answers for the same inputs is reused:
//! - the token exchange, keyed by mechanism, principal (role ARN, GSA, client id), the token's
//!   iss/sub/aud, its signing key id (JWT header) and whether it has expired, and the region;
//! - the read of trust policies with the operator's credentials, keyed the same way;
//! - `--can`/`--cannot` results, keyed by the principal the exchange returned and the
//!   expectation.
//!
//! Concurrent askers of the same key wait for the first one (single flight), so a burst of
//! pods of one Deployment still makes one call.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

type Slot = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

/// How often answers of one kind were computed and reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub computed: usize,
    pub reused: usize,
}

#[derive(Default)]
struct Inner {
    slots: Mutex<HashMap<(&'static str, String), Slot>>,
    tallies: Mutex<BTreeMap<&'static str, Tally>>,
}

/// Cheap to clone; clones share the answers.
#[derive(Clone, Default)]
pub struct AnswerCache {
    inner: Arc<Inner>,
}

/// Joins key parts unambiguously (a part never contains the unit separator in practice, and a
/// collision would need it in an issuer, subject or ARN).
fn join(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

impl AnswerCache {
    /// The answer of `kind` for `key`, computing it once. One value type per `kind`.
    pub async fn get_or_compute<V, F, Fut>(&self, kind: &'static str, key: &[&str], compute: F) -> V
    where
        V: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let slot = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((kind, join(key)))
            .or_default()
            .clone();
        let mut computed = false;
        let value = slot
            .get_or_init(|| async {
                computed = true;
                Arc::new(compute().await) as Arc<dyn Any + Send + Sync>
            })
            .await
            .clone();
        {
            let mut tallies = self.inner.tallies.lock().unwrap_or_else(|p| p.into_inner());
            let tally = tallies.entry(kind).or_default();
            if computed {
                tally.computed += 1;
            } else {
                tally.reused += 1;
            }
        }
        value
            .downcast_ref::<V>()
            .unwrap_or_else(|| panic!("answer cache kind {kind} holds another value type"))
            .clone()
    }

    /// Per kind: computed and reused counts so far.
    pub fn tallies(&self) -> BTreeMap<&'static str, Tally> {
        self.inner
            .tallies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys hold subjects and ARNs, never tokens; still, only the tallies are shown.
        f.debug_struct("AnswerCache")
            .field("tallies", &self.tallies())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_askers_of_one_key_share_one_computation() {
        let cache = AnswerCache::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let asks = (0..8).map(|_| {
            let cache = cache.clone();
            let calls = calls.clone();
            async move {
                cache
                    .get_or_compute("sts", &["role-a", "sub-a"], || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        "answer-a".to_string()
                    })
                    .await
            }
        });
        let answers = futures::future::join_all(asks).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == "answer-a"));
        assert_eq!(
            cache.tallies()["sts"],
            Tally {
                computed: 1,
                reused: 7
            }
        );
    }

    #[tokio::test]
    async fn different_keys_and_kinds_never_share() {
        let cache = AnswerCache::default();
        let a = cache
            .get_or_compute("sts", &["role-a", "sub"], || async { 1u32 })
            .await;
        let b = cache
            .get_or_compute("sts", &["role-b", "sub"], || async { 2u32 })
            .await;
        // Same parts, other split: must not collide with ["role-a", "sub"].
        let c = cache
            .get_or_compute("sts", &["role-asub"], || async { 3u32 })
            .await;
        let d = cache
            .get_or_compute("access", &["role-a", "sub"], || async { 4u32 })
            .await;
        assert_eq!((a, b, c, d), (1, 2, 3, 4));
        assert_eq!(cache.tallies()["sts"].computed, 3);
        assert_eq!(cache.tallies()["sts"].reused, 0);
    }

    #[tokio::test]
    async fn a_cancelled_computation_lets_the_next_asker_compute() {
        let cache = AnswerCache::default();
        let slow = cache.get_or_compute("sts", &["k"], || async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            0u8
        });
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), slow)
                .await
                .is_err()
        );
        let v = cache.get_or_compute("sts", &["k"], || async { 7u8 }).await;
        assert_eq!(v, 7);
    }
}
