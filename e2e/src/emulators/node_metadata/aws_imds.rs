//! EC2's instance metadata service as a pod on the node reaches it: IMDSv2 session tokens
//! (`PUT /latest/api/token`, TTL 1–21600 s, 400 otherwise, 403 when proxied with
//! `X-Forwarded-For`), 401 for a missing (with `httpTokens: required`), unknown, expired or
//! other-instance token; the instance profile's role and its credentials minted by moto for a
//! session named after the instance id (`assumed-role/ROLE/i-…`); EC2's HTML error pages.
//!
//! Hop limit: the token response leaves with IP TTL = `HttpPutResponseHopLimit`; a pod sits
//! one hop behind the node, so with 1 the answer never reaches it. The emulator holds such a
//! request without answering and then closes the connection: the pod's SDK times out exactly
//! as on EC2. Only the PUT is affected (IMDSv1 GETs are answered when tokens are optional).

use std::sync::Arc;

use aws_sdk_iam::error::ProvideErrorMetadata;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::super::gcp::ConnectionAddresses;
use super::super::iam_directory::decode_policy_document;
use super::super::moto_web_identity::assume_role_in_moto;
use super::ec2_instance::{Ec2Instance, INSTANCE_TYPE};
use super::ec2_trust::ec2_may_assume;
use super::imds_token::ImdsTokens;
use super::node_setup::{AwsNodeSetup, HttpTokens};
use super::{NodeCaller, NodeMetadata};

pub const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Instance role credentials: an hour, as the gate's other sessions.
const SESSION_SECONDS: i32 = 3600;

pub async fn handle(
    State(state): State<Arc<NodeMetadata>>,
    ConnectInfo(addresses): ConnectInfo<ConnectionAddresses>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let caller = match state.caller(addresses).await {
        Ok(caller) => caller,
        Err(err) => {
            tracing::warn!("IMDS could not identify {}: {err:#}", addresses.peer);
            return page(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let aws = caller
        .route
        .as_ref()
        .and_then(|route| route.node.aws.clone())
        .unwrap_or_default();
    let who = format!("imds from {} ({})", addresses.peer.ip(), caller.describe());
    if path == "/latest/api/token" {
        if method != Method::PUT {
            return record(
                &state,
                &method,
                &path,
                who,
                page(StatusCode::METHOD_NOT_ALLOWED),
            );
        }
        if caller.is_pod() && aws.hop_limit < 2 {
            state.record(method.as_str(), &path, who, "no answer (hop limit 1)");
            let namespace = caller.pod_namespace().unwrap_or_default();
            return dropped(&state, namespace).await;
        }
        let response = token(&state, &caller, &headers);
        return record(&state, &method, &path, who, response);
    }
    if method != Method::GET && method != Method::HEAD {
        return record(
            &state,
            &method,
            &path,
            who,
            page(StatusCode::METHOD_NOT_ALLOWED),
        );
    }
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let authorized = match token {
        Some(token) => state.tokens.is_valid(token, caller.namespace.as_deref()),
        None => aws.http_tokens == HttpTokens::Optional,
    };
    let response = if authorized {
        metadata(&state, &caller, &aws, &path).await
    } else {
        page(StatusCode::UNAUTHORIZED)
    };
    record(&state, &method, &path, who, response)
}

fn record(
    state: &NodeMetadata,
    method: &Method,
    path: &str,
    who: String,
    response: Response,
) -> Response {
    state.record(method.as_str(), path, who, response.status().as_u16());
    response
}

fn token(state: &NodeMetadata, caller: &NodeCaller, headers: &HeaderMap) -> Response {
    // IMDS refuses token requests that went through a proxy.
    if headers.contains_key("x-forwarded-for") {
        return page(StatusCode::FORBIDDEN);
    }
    let ttl_header = headers.get(TOKEN_TTL_HEADER).and_then(|v| v.to_str().ok());
    let Ok(ttl) = ImdsTokens::parse_ttl(ttl_header) else {
        return page(StatusCode::BAD_REQUEST);
    };
    match state.tokens.issue(caller.namespace.as_deref(), ttl) {
        Ok(token) => {
            let mut response = text(token);
            if let Ok(value) = HeaderValue::from_str(&ttl.to_string()) {
                response.headers_mut().insert(TOKEN_TTL_HEADER, value);
            }
            response
        }
        Err(_) => page(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn metadata(
    state: &NodeMetadata,
    caller: &NodeCaller,
    aws: &AwsNodeSetup,
    path: &str,
) -> Response {
    let backend = caller.route.as_ref().and_then(|r| r.aws.as_ref());
    let instance = Ec2Instance::new(
        caller.namespace.as_deref(),
        backend.map_or(super::super::REGION, |b| b.region.as_str()),
        backend.map_or(super::super::ACCOUNT_ID, |b| b.account_id.as_str()),
    );
    let role = aws.instance_role.as_deref();
    let rest = path.trim_start_matches("/latest").trim_start_matches('/');
    match rest {
        "" => text("dynamic\nmeta-data\n"),
        "meta-data" | "meta-data/" => {
            let iam = if role.is_some() { "iam/\n" } else { "" };
            text(format!(
                "ami-id\n{iam}instance-id\ninstance-type\nplacement/"
            ))
        }
        "meta-data/instance-id" => text(instance.instance_id.clone()),
        "meta-data/instance-type" => text(INSTANCE_TYPE),
        "meta-data/placement" | "meta-data/placement/" => text("availability-zone\nregion"),
        "meta-data/placement/region" => text(instance.region.clone()),
        "meta-data/placement/availability-zone" => text(instance.availability_zone()),
        "dynamic" | "dynamic/" => text("instance-identity/"),
        "dynamic/instance-identity" | "dynamic/instance-identity/" => text("document"),
        "dynamic/instance-identity/document" => text(instance.identity_document()),
        _ => match (role, rest) {
            (Some(_), "meta-data/iam" | "meta-data/iam/") => text("info\nsecurity-credentials/"),
            (Some(role), "meta-data/iam/info") => iam_info(&instance, role),
            (
                Some(role),
                "meta-data/iam/security-credentials" | "meta-data/iam/security-credentials/",
            ) => text(role),
            (Some(role), other)
                if other.strip_prefix("meta-data/iam/security-credentials/") == Some(role) =>
            {
                credentials(state, caller, &instance, role).await
            }
            _ => page(StatusCode::NOT_FOUND),
        },
    }
}

fn iam_info(instance: &Ec2Instance, role: &str) -> Response {
    text(pretty(&[
        ("Code", "Success"),
        ("LastUpdated", &now_iso()),
        (
            "InstanceProfileArn",
            &format!(
                "arn:aws:iam::{}:instance-profile/{role}",
                instance.account_id
            ),
        ),
        ("InstanceProfileId", "AIPAEMULATEDINSTANCEPR"),
    ]))
}

/// The instance role's credentials, or EC2's `AssumeRoleUnauthorizedAccess` when the role is
/// gone or does not trust `ec2.amazonaws.com`.
async fn credentials(
    state: &NodeMetadata,
    caller: &NodeCaller,
    instance: &Ec2Instance,
    role: &str,
) -> Response {
    let Some(backend) = caller.route.as_ref().and_then(|r| r.aws.as_ref()) else {
        tracing::warn!("IMDS: node role {role} declared without an AWS account behind it");
        return page(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let unauthorized = || {
        text(pretty(&[
            ("Code", "AssumeRoleUnauthorizedAccess"),
            ("Message", &format!("EC2 cannot assume the role {role}.")),
            ("LastUpdated", &now_iso()),
        ]))
    };
    let iam = backend.admin.iam_client(&backend.moto_url);
    let trust = match iam.get_role().role_name(role).send().await {
        Ok(out) => out
            .role()
            .and_then(|r| r.assume_role_policy_document())
            .map(decode_policy_document)
            .unwrap_or_default(),
        Err(err) if err.code() == Some("NoSuchEntity") => return unauthorized(),
        Err(err) => {
            tracing::warn!("IMDS: reading role {role}: {err}");
            return page(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    if !ec2_may_assume(&trust) {
        return unauthorized();
    }
    let role_arn = format!("arn:aws:iam::{}:role/{role}", backend.account_id);
    let minted = assume_role_in_moto(
        &state.http,
        &backend.moto_url,
        &backend.admin,
        &role_arn,
        &instance.instance_id,
        SESSION_SECONDS,
    )
    .await;
    match minted {
        Ok(session) => text(pretty(&[
            ("Code", "Success"),
            ("LastUpdated", &now_iso()),
            ("Type", "AWS-HMAC"),
            ("AccessKeyId", &session.access_key_id),
            ("SecretAccessKey", &session.secret_access_key),
            ("Token", &session.session_token),
            ("Expiration", &iso_seconds(&session.expiration)),
        ])),
        Err(err) => {
            tracing::warn!("IMDS: minting credentials for {role}: {err:#}");
            page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// IMDS's JSON layout (`{\n  "Key" : "value",\n …}`); values are JSON-escaped.
fn pretty(fields: &[(&str, &str)]) -> String {
    let lines: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            format!(
                "  \"{key}\" : {}",
                serde_json::to_string(value).unwrap_or_default()
            )
        })
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// moto's expiration, in IMDS's whole-second form.
fn iso_seconds(timestamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| timestamp.to_owned())
}

fn text(body: impl Into<String>) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    set_common_headers(&mut response, "text/plain");
    response
}

/// EC2's HTML error page for `status`.
fn page(status: StatusCode) -> Response {
    let title = format!(
        "{} - {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    );
    let mut response = (status, body).into_response();
    set_common_headers(&mut response, "text/html");
    response
}

fn set_common_headers(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::SERVER, HeaderValue::from_static("EC2ws"));
}

/// No answer: after the drop hold (or when the pod's scenario ends), the response body fails
/// before its head is written, so the server closes the connection without sending a byte
/// (the pod's view of a dropped reply).
async fn dropped(state: &NodeMetadata, namespace: &str) -> Response {
    state.hold(namespace, state.drop_hold).await;
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by the hop limit"))
    });
    Response::new(Body::from_stream(failing))
}
