//! Values the pod shows us that must never be shown back. A container controls what exec
//! returns, and charts put tokens in the wrong variable: any value read from a pod (env, a
//! file, a call's answer) may be a secret, whatever its name. Report text quotes a pod's value
//! only when it has no secret's shape, and every check leaves `judge` with JWT-shaped strings
//! replaced (the last line of defence for a value quoted by a message we did not foresee).

use std::sync::LazyLock;

use regex::Regex;

use crate::model::Check;

/// A compact JWT (header.payload[.signature]): the shape of every ServiceAccount token.
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*)?").expect("regex")
});

/// A long run of base64 characters without the separators identifiers have: an AWS secret key
/// (40), a session token, an access token, a private key's body. Mixed case is required, so
/// hex digests (image digests, hashed volume names) are not secrets.
static LONG_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/=_]{32,}").expect("regex"));

/// What replaces a JWT-shaped string in report text.
pub const JWT_SHOWN_AS: &str = "<a JWT, not shown>";

/// True when `value` looks like a token or a secret key rather than a name, ARN or URL.
pub fn is_secret_shaped(value: &str) -> bool {
    JWT.is_match(value)
        || LONG_SECRET.find_iter(value).any(|m| {
            let run = m.as_str();
            run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
        })
}

/// `value` quoted for a message, or its length only when it is secret-shaped.
pub fn shown(value: &str) -> String {
    if is_secret_shaped(value) {
        format!(
            "<a secret-shaped value of {} characters, not shown>",
            value.chars().count()
        )
    } else {
        format!("{value:?}")
    }
}

/// `text` with every JWT-shaped string replaced.
pub fn scrub(text: &str) -> String {
    JWT.replace_all(text, JWT_SHOWN_AS).into_owned()
}

/// A check's message and remediation scrubbed in place.
pub fn scrub_check(check: &mut Check) {
    if JWT.is_match(&check.message) {
        check.message = scrub(&check.message);
    }
    if let Some(fix) = &mut check.remediation
        && JWT.is_match(fix)
    {
        *fix = scrub(fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT_TEXT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";

    #[test]
    fn tokens_and_keys_are_secret_shaped_names_and_arns_are_not() {
        assert!(is_secret_shaped(JWT_TEXT));
        assert!(is_secret_shaped("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYzz"));
        assert!(is_secret_shaped(&format!("prefix {JWT_TEXT} suffix")));
        for ok in [
            "arn:aws:iam::123456789012:role/my-pod-role",
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            "azure-workload-identity-reserved-0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_secret_shaped(ok), "{ok}");
        }
    }

    #[test]
    fn shown_quotes_names_and_hides_secrets() {
        assert_eq!(shown("us-east-1"), "\"us-east-1\"");
        let hidden = shown(JWT_TEXT);
        assert!(!hidden.contains("eyJ"), "{hidden}");
        assert!(hidden.contains(&JWT_TEXT.len().to_string()), "{hidden}");
    }

    #[test]
    fn scrub_replaces_every_jwt_in_a_check() {
        let mut check = Check::fail(
            "x",
            format!("role {JWT_TEXT:?} and again {JWT_TEXT}"),
            format!("set it to {JWT_TEXT}"),
        );
        scrub_check(&mut check);
        assert!(!check.message.contains("eyJ"), "{}", check.message);
        assert_eq!(check.message.matches(JWT_SHOWN_AS).count(), 2);
        assert!(!check.remediation.unwrap().contains("eyJ"));
    }
}
