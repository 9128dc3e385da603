//! Access tokens the emulated Google services issued, each with its holder and expiry. Opaque
//! and random like Google's `ya29.` tokens; looked up by the services that accept them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::principal::Principal;

/// What a token stands for.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub principal: Principal,
    pub expires_at: SystemTime,
    /// The granted scopes, space separated (tokeninfo's `scope`).
    pub scope: String,
}

#[derive(Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, IssuedToken>>,
}

impl TokenStore {
    /// A new random token for `principal`, valid for `lifetime`, granting `scope` (space
    /// separated).
    pub fn issue(&self, principal: Principal, lifetime: Duration, scope: &str) -> Result<String> {
        let mut random = [0u8; 48];
        getrandom::fill(&mut random).context("reading random bytes for an access token")?;
        let token = format!("ya29.podiam-{}", URL_SAFE_NO_PAD.encode(random));
        crate::emulators::issued_secrets::record(
            crate::emulators::issued_secrets::SecretKind::GoogleAccessToken,
            &token,
        );
        self.lock().insert(
            token.clone(),
            IssuedToken {
                principal,
                expires_at: SystemTime::now() + lifetime,
                scope: scope.to_owned(),
            },
        );
        Ok(token)
    }

    /// The holder of `token` if it was issued here and has not expired.
    pub fn lookup(&self, token: &str) -> Option<IssuedToken> {
        self.lock()
            .get(token)
            .filter(|issued| issued.expires_at > SystemTime::now())
            .cloned()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, IssuedToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `2026-01-02T03:04:05Z`: the only shape google-auth parses in `expireTime`.
pub fn rfc3339_seconds(at: SystemTime) -> String {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_resolve_to_their_holder() {
        let store = TokenStore::default();
        let sa = Principal::ServiceAccount("a@p.iam.gserviceaccount.com".to_owned());
        let a = store
            .issue(sa.clone(), Duration::from_secs(60), "s")
            .expect("a");
        let b = store
            .issue(sa.clone(), Duration::from_secs(60), "s")
            .expect("b");
        assert_ne!(a, b);
        assert_eq!(store.lookup(&a).map(|t| t.principal), Some(sa.clone()));
        let expired = store.issue(sa, Duration::ZERO, "s").expect("expired");
        assert!(store.lookup(&expired).is_none());
        assert!(store.lookup("ya29.unknown").is_none());
    }

    #[test]
    fn expire_time_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045);
        assert_eq!(rfc3339_seconds(at), "2026-01-02T03:04:05Z");
    }
}
