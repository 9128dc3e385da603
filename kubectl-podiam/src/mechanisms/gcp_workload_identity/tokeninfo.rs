//! `gcp.metadata.tokeninfo`: the email and access token the pod's metadata server returned are
//! checked with Google's tokeninfo from this machine. The pod's answers come through the image's
//! own HTTP client, which a hostile image can replace with one that prints a made-up email and
//! token; only Google can say whether the token is one it issued, and to whom. So the GKE path
//! establishes an identity only when tokeninfo confirms the token and names the account the pod
//! reported.

use crate::cloud::gcp as a;
use crate::exchange::CloudError;
use crate::exchange::gcp_metadata::AccessToken;
use crate::exchange::gcp_tokeninfo::{self, TokenInfo, Verdict};
use crate::model::Check;
use crate::options::VerifyOptions;

pub const ID: &str = "gcp.metadata.tokeninfo";

/// What to look at when the pod's metadata answers are not Google's.
const FORGED_FIX: &str = "find what answers the pod's metadata requests: an HTTP client (wget, curl, python3) earlier on the image's PATH, or GCE_METADATA_HOST naming another server; run the workload from a trusted image";

/// The check, and whether the pod's identity is established by it.
pub struct Judged {
    pub check: Check,
    /// Google confirmed the token and (for a GSA) the email.
    pub confirmed: bool,
    /// No answer from tokeninfo: exit 3 when nothing failed.
    pub unreachable: bool,
}

/// Asks tokeninfo about `token` (bounded by `--request-timeout`) and judges the answer against
/// `claimed`, the email the pod's metadata server gave.
pub async fn verify(options: &VerifyOptions, token: &AccessToken, claimed: &str) -> Judged {
    let url = gcp_tokeninfo::endpoint(options.gcp.tokeninfo_url.as_deref());
    let answer = gcp_tokeninfo::lookup(&super::http(options), &url, token).await;
    tracing::debug!(%url, verdict = ?answer.as_ref().map(kind), "tokeninfo for the pod's access token");
    judge(claimed, &url, answer)
}

fn kind(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Confirmed(_) => "confirmed",
        Verdict::Rejected { .. } => "rejected",
        Verdict::Unavailable(_) => "unavailable",
    }
}

/// The verdict on `claimed` from tokeninfo's `answer` at `url`.
pub fn judge(claimed: &str, url: &str, answer: Result<Verdict, CloudError>) -> Judged {
    // A KSA without GSA: the metadata server names the pool and returns a federated token,
    // which belongs to no account; Google does not document tokeninfo for those.
    let pool = claimed.ends_with(a::POOL_SUFFIX);
    let not_confirmed = |check| Judged {
        check,
        confirmed: false,
        unreachable: false,
    };
    match answer {
        Ok(Verdict::Confirmed(TokenInfo { email, expires_in })) => {
            let expiry = expires_in.map_or(String::new(), |s| format!(", expires in {s}s"));
            match email {
                Some(actual) if actual.eq_ignore_ascii_case(claimed) => Judged {
                    check: Check::pass(
                        ID,
                        format!(
                            "Google's tokeninfo ({url}) confirms the pod's access token: it belongs to {actual}{expiry}"
                        ),
                    ),
                    confirmed: true,
                    unreachable: false,
                },
                Some(actual) => not_confirmed(Check::fail(
                    ID,
                    format!(
                        "the pod's metadata server says the pod acts as {claimed}, but Google's tokeninfo ({url}) says its access token belongs to {actual}: the metadata answers inside the pod are forged or not Google's"
                    ),
                    FORGED_FIX,
                )),
                None if pool => Judged {
                    check: Check::pass(
                        ID,
                        format!(
                            "Google's tokeninfo ({url}) confirms the pod's access token (a federated token of {claimed}, which names no account){expiry}"
                        ),
                    ),
                    confirmed: true,
                    unreachable: false,
                },
                None => not_confirmed(Check::warn(
                    ID,
                    format!(
                        "Google's tokeninfo ({url}) confirms the pod's access token but names no account (the token lacks the userinfo.email scope), so {claimed} is not confirmed"
                    ),
                    "on GKE the metadata server's tokens carry userinfo.email; check GCE_METADATA_HOST and the node pool's metadata mode (GKE_METADATA)",
                )),
            }
        }
        Ok(Verdict::Rejected { code, message }) if pool => not_confirmed(Check::warn(
            ID,
            format!(
                "Google's tokeninfo ({url}) does not confirm the federated token of {claimed} the pod's metadata server returned ({code}: {message}); Google does not document tokeninfo for federated tokens, so the pod's identity is not confirmed"
            ),
            format!("if the image is trusted, confirm access with --can gcs:…; else {FORGED_FIX}"),
        )),
        Ok(Verdict::Rejected { code, message }) => not_confirmed(Check::fail(
            ID,
            format!(
                "Google's tokeninfo ({url}) rejects the access token the pod's metadata server returned for {claimed} ({code}: {message}): the metadata answers inside the pod are forged or not Google's"
            ),
            FORGED_FIX,
        )),
        Ok(Verdict::Unavailable(why)) | Err(CloudError::Unreachable(why)) => Judged {
            check: Check::warn(
                ID,
                format!(
                    "Google's tokeninfo ({url}) gave no usable answer from this machine ({why}), so the pod's metadata answers ({claimed} and its token) are not confirmed"
                ),
                "check network access to oauth2.googleapis.com from this machine (or --gcp-tokeninfo-url / PODIAM_GCP_TOKENINFO_URL)",
            ),
            confirmed: false,
            unreachable: true,
        },
        Err(CloudError::Rejected { code, message }) => not_confirmed(Check::fail(
            ID,
            format!(
                "Google's tokeninfo ({url}) rejects the access token the pod's metadata server returned for {claimed} ({code}: {message})"
            ),
            FORGED_FIX,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
    const URL: &str = "https://oauth2.googleapis.com/tokeninfo";

    fn confirmed(email: Option<&str>) -> Result<Verdict, CloudError> {
        Ok(Verdict::Confirmed(TokenInfo {
            email: email.map(str::to_string),
            expires_in: Some(3599),
        }))
    }

    #[test]
    fn the_account_google_names_must_be_the_one_the_pod_reported() {
        let ok = judge(GSA, URL, confirmed(Some(&GSA.to_uppercase())));
        assert_eq!((ok.check.status, ok.confirmed), (Status::Pass, true));
        assert!(ok.check.message.contains("expires in 3599s"));

        let other = judge(
            GSA,
            URL,
            confirmed(Some("other@my-project.iam.gserviceaccount.com")),
        );
        assert_eq!((other.check.status, other.confirmed), (Status::Fail, false));
        assert!(other.check.message.contains("forged or not Google's"));
        assert!(other.check.message.contains("other@my-project"));
    }

    #[test]
    fn a_token_google_rejects_fails_the_pod() {
        let j = judge(
            GSA,
            URL,
            Ok(Verdict::Rejected {
                code: "invalid_token".into(),
                message: "Invalid Value".into(),
            }),
        );
        assert_eq!(
            (j.check.status, j.confirmed, j.unreachable),
            (Status::Fail, false, false)
        );
        assert!(
            j.check
                .message
                .contains("rejects the access token the pod's metadata server returned")
        );
        assert!(j.check.message.contains("invalid_token: Invalid Value"));
        assert!(
            j.check
                .remediation
                .as_deref()
                .unwrap_or("")
                .contains("PATH")
        );
    }

    #[test]
    fn unreachable_tokeninfo_warns_and_establishes_nothing() {
        for answer in [
            Err(CloudError::Unreachable("connection refused".into())),
            Ok(Verdict::Unavailable("answered 503".into())),
        ] {
            let j = judge(GSA, URL, answer);
            assert_eq!(
                (j.check.status, j.confirmed, j.unreachable),
                (Status::Warn, false, true)
            );
            assert!(j.check.message.contains("not confirmed"));
        }
    }

    #[test]
    fn a_gsa_token_without_email_is_not_confirmed() {
        let j = judge(GSA, URL, confirmed(None));
        assert_eq!(
            (j.check.status, j.confirmed, j.unreachable),
            (Status::Warn, false, false)
        );
    }

    #[test]
    fn a_pools_federated_token_names_no_account() {
        let pool = "my-project.svc.id.goog";
        let ok = judge(pool, URL, confirmed(None));
        assert_eq!((ok.check.status, ok.confirmed), (Status::Pass, true));
        // Google may not describe federated tokens: not a proof of forgery, but no identity.
        let rejected = judge(
            pool,
            URL,
            Ok(Verdict::Rejected {
                code: "invalid_token".into(),
                message: "Invalid Value".into(),
            }),
        );
        assert_eq!(
            (rejected.check.status, rejected.confirmed),
            (Status::Warn, false)
        );
        // A pool's claim answered with an account's token is a mismatch.
        let other = judge(pool, URL, confirmed(Some(GSA)));
        assert_eq!(other.check.status, Status::Fail);
    }
}
