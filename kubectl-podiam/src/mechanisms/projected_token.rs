//! The pod's projected token for a mechanism (IRSA, Pod Identity, AKS): read by exec as the
//! container's own user, else an equivalent token from TokenRequest (same subject, audience and
//! lifetime) with a warning that says why; then its claims against the pod and the cloud. One
//! copy of those decisions and checks; each mechanism names its check ids and fixes.

use super::RuntimeOutcome;
use crate::evidence::{Probe, ReadFailure, RuntimeEnv, Token};
use crate::model::Check;
use crate::subject::PodSubject;
use crate::token_claims::{self, Claims};

/// What a mechanism calls the token's checks, and how it tells the user to fix them.
pub struct TokenChecks<'a> {
    /// Where the token came from (pass, or warn for an equivalent token).
    pub source: &'static str,
    /// Whether the container can read its own token file.
    pub readable: &'static str,
    /// The exchange check, skipped offline, and what the skip says.
    pub exchange: &'static str,
    pub offline: &'static str,
    /// How the file is named in messages, e.g. its path, or the path and its env var.
    pub file: String,
    /// The fix when the container cannot read the file.
    pub denied_fix: &'static str,
    /// The fix when exec was impossible and an equivalent token was used.
    pub exec_fix: &'static str,
    /// Audience and lifetime of an equivalent token.
    pub audience: &'a str,
    pub expiration_seconds: i64,
}

pub async fn obtain(
    pod: &PodSubject,
    probe: &Probe,
    env: Option<&RuntimeEnv>,
    path: &str,
    checks: &TokenChecks<'_>,
    out: &mut RuntimeOutcome,
) -> Option<Token> {
    let fallback_reason = match probe.read_token_file(pod, env, path).await {
        Ok(token) => {
            if matches!(probe, Probe::Live { .. }) {
                out.checks.push(Check::pass(
                    checks.readable,
                    format!(
                        "container {} reads {} as its own user",
                        pod.container, checks.file
                    ),
                ));
            }
            out.checks
                .push(Check::pass(checks.source, token.source.clone()));
            return Some(token);
        }
        Err(ReadFailure::Offline) => {
            out.checks
                .push(Check::skip(checks.exchange, checks.offline));
            return None;
        }
        Err(ReadFailure::Denied(stderr)) => {
            out.checks.push(Check::fail(
                checks.readable,
                format!(
                    "container {} cannot read {}: {stderr}",
                    pod.container, checks.file
                ),
                checks.denied_fix,
            ));
            if matches!(probe, Probe::Offline { .. }) {
                return None;
            }
            format!("the container could not read its token ({stderr})")
        }
        Err(ReadFailure::NoExec(e)) => format!("exec was not possible ({e})"),
    };
    match probe
        .equivalent_token(pod, checks.audience, checks.expiration_seconds)
        .await
    {
        Ok(token) => {
            out.checks.push(Check::warn(
                checks.source,
                format!("{fallback_reason}; used an {}", token.source),
                checks.exec_fix,
            ));
            Some(token)
        }
        Err(e) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                checks.source,
                format!("{fallback_reason}, and TokenRequest failed too: {e}"),
                "allow pods/exec or serviceaccounts/token for your user",
            ));
            None
        }
    }
}

/// How a mechanism explains a token whose claims are not what its cloud accepts.
pub struct ClaimChecks {
    pub id: &'static str,
    /// The audience the cloud requires.
    pub audience: String,
    pub subject_fix: String,
    /// The message when the audience is missing (it names the token's audiences).
    pub audience_message: String,
    pub audience_fix: String,
    pub expired_fix: &'static str,
}

/// The token's own subject, audience and expiry against the pod and the cloud: the first
/// mismatch fails, else a pass that shows the claims.
pub fn claims_check(pod: &PodSubject, claims: &Claims, checks: ClaimChecks) -> Check {
    let sub = claims.sub.clone().unwrap_or_default();
    let expected_sub = pod.subject_claim();
    if sub != expected_sub {
        return Check::fail(
            checks.id,
            format!("the token's sub is {sub:?}, not {expected_sub:?}"),
            checks.subject_fix,
        );
    }
    if !claims.aud.contains(&checks.audience) {
        return Check::fail(checks.id, checks.audience_message, checks.audience_fix);
    }
    let now = token_claims::now();
    if let Some(exp) = claims.exp
        && exp <= now
    {
        return Check::fail(
            checks.id,
            format!("the token expired {}s ago", now - exp),
            checks.expired_fix,
        );
    }
    let summary = format!(
        "iss={} sub={sub} aud={:?} expires in {}s",
        claims.iss.as_deref().unwrap_or("?"),
        claims.aud,
        claims.exp.map_or(0, |e| e - now)
    );
    if let Some(life) = overdue_refresh(claims, now) {
        // Still valid (clouds allow some clock skew past exp too): the exchange may pass now,
        // and the next one, once it has expired, fails.
        return Check::warn(
            checks.id,
            format!(
                "{summary}: past 90% of its {life}s life, and the kubelet refreshes projected \
                 tokens at 80% of their life (or after 24 h), so it was not refreshed"
            ),
            checks.expired_fix,
        );
    }
    Check::pass(checks.id, summary)
}

/// The token's lifetime when it is past 90% of it and expires within the hour: the kubelet
/// would have refreshed a projected token at 80% (or after 24 h), so this one was not, and
/// exchanges fail once it expires. Farther deadlines are not imminent failures.
fn overdue_refresh(claims: &Claims, now: i64) -> Option<i64> {
    let (exp, iat) = (claims.exp?, claims.iat?);
    let life = exp.checked_sub(iat).filter(|l| *l > 0)?;
    let age = now.checked_sub(iat)?;
    (exp - now <= 3600 && age.saturating_mul(10) > life.saturating_mul(9)).then_some(life)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            iss: None,
            sub: None,
            aud: Vec::new(),
            exp: Some(exp),
            iat: Some(iat),
            nbf: None,
            kubernetes: None,
        }
    }

    #[test]
    fn a_token_past_90_percent_of_its_life_was_not_refreshed() {
        let now = 1_000_000;
        // 600 s life, 2 s left: overdue.
        assert_eq!(overdue_refresh(&claims(now - 598, now + 2), now), Some(600));
        // 85%: the kubelet may still be about to refresh it.
        assert_eq!(overdue_refresh(&claims(now - 510, now + 90), now), None);
        // Fresh, or far from its deadline (a year-long token 95% through has weeks left).
        assert_eq!(overdue_refresh(&claims(now, now + 3600), now), None);
        let year = 365 * 24 * 3600;
        assert_eq!(
            overdue_refresh(&claims(now - year * 95 / 100, now + year * 5 / 100), now),
            None
        );
        // Nonsense lifetimes are no finding.
        assert_eq!(overdue_refresh(&claims(now + 10, now + 5), now), None);
        assert_eq!(overdue_refresh(&claims(i64::MIN, i64::MAX), now), None);
    }
}
