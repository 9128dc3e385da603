//! IMDSv2 session tokens: issued by `PUT /latest/api/token` for 1–21600 seconds, valid only
//! on the instance that issued them (here: the namespace's emulated node).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

/// EC2's bounds for `X-aws-ec2-metadata-token-ttl-seconds`.
pub const TTL_RANGE: std::ops::RangeInclusive<u64> = 1..=21600;

/// Why a token request or a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsTokenError {
    #[error("the TTL header is missing or not a number of seconds in 1-21600")]
    BadTtl,
    #[error("no randomness for a token")]
    NoRandomness,
}

struct Issued {
    /// The emulated instance (namespace) it was issued on; `None`: the default node.
    instance: Option<String>,
    expires_at: Instant,
}

#[derive(Default)]
pub struct ImdsTokens {
    issued: Mutex<HashMap<String, Issued>>,
}

impl ImdsTokens {
    /// Parses the TTL header value as EC2 does (an integer in [`TTL_RANGE`]).
    pub fn parse_ttl(header: Option<&str>) -> Result<u64, ImdsTokenError> {
        header
            .and_then(|value| value.trim().parse::<u64>().ok())
            .filter(|ttl| TTL_RANGE.contains(ttl))
            .ok_or(ImdsTokenError::BadTtl)
    }

    /// A new token for `instance`, valid `ttl_seconds`.
    pub fn issue(
        &self,
        instance: Option<&str>,
        ttl_seconds: u64,
    ) -> Result<String, ImdsTokenError> {
        let mut bytes = [0u8; 42];
        getrandom::fill(&mut bytes).map_err(|_| ImdsTokenError::NoRandomness)?;
        let token = base64::engine::general_purpose::STANDARD.encode(bytes);
        crate::emulators::issued_secrets::record(
            crate::emulators::issued_secrets::SecretKind::ImdsSessionToken,
            &token,
        );
        let mut issued = self.lock();
        let now = Instant::now();
        issued.retain(|_, t| t.expires_at > now);
        issued.insert(
            token.clone(),
            Issued {
                instance: instance.map(str::to_owned),
                expires_at: now + Duration::from_secs(ttl_seconds),
            },
        );
        Ok(token)
    }

    /// Whether `token` was issued on `instance` and has not expired.
    pub fn is_valid(&self, token: &str, instance: Option<&str>) -> bool {
        self.lock()
            .get(token)
            .is_some_and(|t| t.expires_at > Instant::now() && t.instance.as_deref() == instance)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert_eq!(ImdsTokens::parse_ttl(Some("1")), Ok(1));
        assert_eq!(ImdsTokens::parse_ttl(Some("21600")), Ok(21600));
        for bad in [
            None,
            Some("0"),
            Some("21601"),
            Some("-5"),
            Some("abc"),
            Some(""),
        ] {
            assert_eq!(
                ImdsTokens::parse_ttl(bad),
                Err(ImdsTokenError::BadTtl),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_belong_to_their_instance_and_expire() {
        let tokens = ImdsTokens::default();
        let token = tokens.issue(Some("ns-a"), 60).expect("issued");
        assert!(tokens.is_valid(&token, Some("ns-a")));
        assert!(!tokens.is_valid(&token, Some("ns-b")));
        assert!(!tokens.is_valid(&token, None));
        assert!(!tokens.is_valid("made-up", Some("ns-a")));
        let other = tokens.issue(Some("ns-a"), 60).expect("issued");
        assert_ne!(token, other);
        let short = tokens.issue(None, 1).expect("issued");
        assert!(tokens.is_valid(&short, None));
        std::thread::sleep(Duration::from_millis(1100));
        assert!(!tokens.is_valid(&short, None));
    }
}
