//! Every secret this process's emulators issued or were handed: AWS session credentials (key
//! ids, secret keys, session tokens from moto, for web identity, role chaining, EKS Auth and the
//! node's instance role), the admin's key, Entra access tokens and the operator's client
//! secret, Google access tokens, client secrets and refresh tokens, IMDSv2 session tokens, the
//! service-account tokens the harness minted, and the cluster's projected tokens presented to
//! STS, EKS Auth, Google STS and Entra. Kept in memory only — never written, never printed
//! (`Debug` is redacted) — so a redaction test can scan every output for each one exactly
//! (`e2e/tests/secrets_never_leak.rs`).
//!
//! One registry per process rather than one per emulator set: the same issuing code (moto's
//! sessions, Google's token store, Entra's signer) serves every set and the node's metadata
//! services, and the harness process is what must not leak them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Values shorter than this are fixed placeholders (`unused`, `bootstrap`), not secrets.
const MIN_LENGTH: usize = 16;

/// Beyond this many the registry stops growing (benchmarks mint thousands of tokens) and
/// counts what it dropped, so a scan can tell it is incomplete.
const CAPACITY: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretKind {
    AwsAccessKeyId,
    AwsSecretAccessKey,
    AwsSessionToken,
    /// A service-account token: minted by the harness or projected by the cluster.
    ServiceAccountToken,
    EntraAccessToken,
    EntraClientSecret,
    GoogleAccessToken,
    GoogleClientSecret,
    GoogleRefreshToken,
    ImdsSessionToken,
}

/// One issued secret; its value is readable, never displayed.
#[derive(Clone)]
pub struct IssuedSecret {
    pub kind: SecretKind,
    value: String,
}

impl IssuedSecret {
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[derive(Default)]
struct Registry {
    by_value: HashMap<String, SecretKind>,
    dropped: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Remembers `value` as a secret of `kind` (placeholders shorter than 16 bytes are ignored).
pub fn record(kind: SecretKind, value: &str) {
    if value.len() < MIN_LENGTH {
        return;
    }
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let registry = guard.get_or_insert_with(Registry::default);
    if registry.by_value.contains_key(value) {
        return;
    }
    if registry.by_value.len() >= CAPACITY {
        registry.dropped += 1;
        return;
    }
    registry.by_value.insert(value.to_owned(), kind);
}

/// Every secret recorded so far in this process.
pub fn issued_secrets() -> Vec<IssuedSecret> {
    let guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .as_ref()
        .map(|r| {
            r.by_value
                .iter()
                .map(|(value, kind)| IssuedSecret {
                    kind: *kind,
                    value: value.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many secrets were not recorded because the registry was full (0 for a complete scan).
pub fn dropped() -> usize {
    let guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map_or(0, |r| r.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_secrets_once_ignores_placeholders_and_never_prints_them() {
        let value = "a-secret-value-of-some-length-0123";
        record(SecretKind::GoogleRefreshToken, value);
        record(SecretKind::GoogleRefreshToken, value);
        record(SecretKind::AwsSecretAccessKey, "unused");
        let all = issued_secrets();
        let mine: Vec<&IssuedSecret> = all.iter().filter(|s| s.value() == value).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].kind, SecretKind::GoogleRefreshToken);
        assert!(all.iter().all(|s| s.value() != "unused"));
        let shown = format!("{:?}", mine[0]);
        assert!(!shown.contains(value), "{shown}");
        assert!(shown.contains("GoogleRefreshToken"));
    }
}
