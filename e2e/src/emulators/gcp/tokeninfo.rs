//! Google's tokeninfo endpoint for access tokens (`GET|POST
//! https://oauth2.googleapis.com/tokeninfo?access_token=…`, or the token in a POST form), served
//! on the OAuth listener beside `/token`. Strict: only tokens these emulators issued (metadata
//! server, IAM Credentials, STS, the OAuth token endpoint) and have not expired are described.
//!
//! Google's answer for a valid access token (v3 shape, as documented for google-auth-library's
//! `TokenInfo` and seen from the endpoint; numbers and booleans come as strings):
//! `{"azp": ID, "aud": ID, "scope": "…", "exp": "1712345678", "expires_in": "3599",
//!   "email": "…", "email_verified": "true", "access_type": "online"}` — `email` and
//! `email_verified` only when the token carries the email scope
//! (`https://www.googleapis.com/auth/userinfo.email`). Any other token (unknown, expired,
//! malformed, missing): HTTP 400 `{"error": "invalid_token", "error_description": "Invalid
//! Value"}`. A federated token (STS) is described without an account: Google does not document
//! tokeninfo for those, and a pool's principal has no email or client id.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::principal::{Principal, unique_id};
use super::state::GcpState;
use super::token_store::IssuedToken;

const EMAIL_SCOPES: [&str; 2] = ["https://www.googleapis.com/auth/userinfo.email", "email"];

pub async fn tokeninfo(
    State(state): State<Arc<GcpState>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = access_token(query.as_deref(), &method, &headers, &body);
    let issued = token.as_deref().and_then(|t| state.tokens.lookup(t));
    let (who, outcome) = match &issued {
        Some(issued) => (format!(" {}", issued.principal.display()), "200"),
        None => (String::new(), "invalid_token"),
    };
    state.record(
        method.as_str(),
        "/tokeninfo",
        format!("oauth2:tokeninfo{who}"),
        outcome.to_owned(),
    );
    match issued {
        Some(issued) => {
            (StatusCode::OK, Json(describe(&issued, SystemTime::now()))).into_response()
        }
        None => invalid_token(),
    }
}

/// `access_token` from the query string, else (POST) from a form body.
fn access_token(
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<String> {
    let from = |bytes: &[u8]| {
        url::form_urlencoded::parse(bytes)
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(token) = query.and_then(|q| from(q.as_bytes())) {
        return Some(token);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    (*method == Method::POST && is_form)
        .then(|| from(body))
        .flatten()
}

fn invalid_token() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_token", "error_description": "Invalid Value"})),
    )
        .into_response()
}

/// The 200 body for a live token, as of `now`.
fn describe(issued: &IssuedToken, now: SystemTime) -> Value {
    let exp = issued
        .expires_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let expires_in = issued
        .expires_at
        .duration_since(now)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut body = Map::new();
    let email = match &issued.principal {
        Principal::User(email) | Principal::ServiceAccount(email) => {
            let id = unique_id(email);
            body.insert("azp".into(), id.clone().into());
            body.insert("aud".into(), id.into());
            Some(email)
        }
        Principal::Federated { .. } => None,
    };
    body.insert("scope".into(), issued.scope.clone().into());
    body.insert("exp".into(), exp.to_string().into());
    body.insert("expires_in".into(), expires_in.to_string().into());
    let email_scope = issued
        .scope
        .split_whitespace()
        .any(|s| EMAIL_SCOPES.contains(&s));
    if let Some(email) = email.filter(|_| email_scope) {
        body.insert("email".into(), email.clone().into());
        body.insert("email_verified".into(), "true".into());
    }
    body.insert("access_type".into(), "online".into());
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn issued(principal: Principal, scope: &str) -> IssuedToken {
        IssuedToken {
            principal,
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(10_003_600),
            scope: scope.to_owned(),
        }
    }

    #[test]
    fn service_account_token_with_the_email_scope_names_the_account() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        let body = describe(
            &issued(
                Principal::ServiceAccount("a@p.iam.gserviceaccount.com".into()),
                "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email",
            ),
            now,
        );
        assert_eq!(body["email"], "a@p.iam.gserviceaccount.com");
        assert_eq!(body["email_verified"], "true");
        assert_eq!(body["exp"], "10003600");
        assert_eq!(body["expires_in"], "3600");
        assert_eq!(body["azp"], body["aud"]);
        assert_eq!(body["access_type"], "online");
    }

    #[test]
    fn without_the_email_scope_or_an_account_no_email() {
        let now = SystemTime::UNIX_EPOCH;
        let sa = describe(
            &issued(
                Principal::ServiceAccount("a@p.iam.gserviceaccount.com".into()),
                "https://www.googleapis.com/auth/cloud-platform",
            ),
            now,
        );
        assert!(sa.get("email").is_none());
        let federated = describe(
            &issued(
                Principal::federated("1", "p.svc.id.goog", "ns/a/sa/b"),
                "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email",
            ),
            now,
        );
        assert!(federated.get("email").is_none());
        assert!(federated.get("azp").is_none());
    }

    #[test]
    fn token_from_query_or_post_form_only() {
        let form = {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded".parse().unwrap(),
            );
            h
        };
        let none = Bytes::new();
        assert_eq!(
            access_token(
                Some("access_token=ya29.x"),
                &Method::GET,
                &HeaderMap::new(),
                &none
            ),
            Some("ya29.x".into())
        );
        let body = Bytes::from_static(b"access_token=ya29.y");
        assert_eq!(
            access_token(None, &Method::POST, &form, &body),
            Some("ya29.y".into())
        );
        assert_eq!(access_token(None, &Method::GET, &form, &body), None);
        assert_eq!(
            access_token(None, &Method::POST, &HeaderMap::new(), &body),
            None
        );
        assert_eq!(
            access_token(Some("access_token="), &Method::GET, &form, &none),
            None
        );
    }
}
