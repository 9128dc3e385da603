//! S3 authorization by the gate, for backends that enforce none (LocalStack community: IAM
//! enforcement is a paid feature). moto, with IAM enforced, decides S3 itself.
//!
//! What is modelled: the request's IAM action and resource (path-style and virtual-hosted
//! requests, the subresources the SDKs send), and the caller's identity policies, read by
//! `identity_policy` (as in `role_chaining`, statements with a `Condition` are not evaluated:
//! an Allow with one grants nothing, a Deny with one denies). Bucket policies, ACLs, session policies and boundaries are not modelled.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::identity_policy::{Conditions, evaluate};
use super::ids::uuid_like;
use super::sts_error::xml_escape;

/// The IAM action and resource an S3 request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Permission {
    pub action: String,
    /// `arn:aws:s3:::BUCKET`, `arn:aws:s3:::BUCKET/KEY` or `*` (ListAllMyBuckets).
    pub resource: String,
}

/// The permission an S3 REST request needs.
pub fn required_permission(
    method: &Method,
    host: &str,
    path: &str,
    query: &[(String, String)],
) -> S3Permission {
    let path = percent_decode_str(path).decode_utf8_lossy().into_owned();
    let path = path.trim_start_matches('/');
    let (bucket, key) = match virtual_host_bucket(host) {
        Some(bucket) => (bucket.to_owned(), path.to_owned()),
        None => match path.split_once('/') {
            Some((bucket, key)) => (bucket.to_owned(), key.to_owned()),
            None => (path.to_owned(), String::new()),
        },
    };
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let object = |action: &str| S3Permission {
        action: format!("s3:{action}"),
        resource: format!("arn:aws:s3:::{bucket}/{key}"),
    };
    let on_bucket = |action: &str| S3Permission {
        action: format!("s3:{action}"),
        resource: format!("arn:aws:s3:::{bucket}"),
    };
    if bucket.is_empty() {
        return S3Permission {
            action: "s3:ListAllMyBuckets".to_owned(),
            resource: "*".to_owned(),
        };
    }
    let is_get = *method == Method::GET || *method == Method::HEAD;
    if !key.is_empty() {
        return match () {
            _ if is_get && has("acl") => object("GetObjectAcl"),
            _ if is_get && has("tagging") => object("GetObjectTagging"),
            _ if is_get && has("uploadId") => object("ListMultipartUploadParts"),
            _ if is_get => object("GetObject"),
            _ if *method == Method::PUT && has("acl") => object("PutObjectAcl"),
            _ if *method == Method::PUT && has("tagging") => object("PutObjectTagging"),
            _ if *method == Method::DELETE && has("uploadId") => object("AbortMultipartUpload"),
            _ if *method == Method::DELETE && has("tagging") => object("DeleteObjectTagging"),
            _ if *method == Method::DELETE => object("DeleteObject"),
            _ if *method == Method::POST && has("restore") => object("RestoreObject"),
            // PUT (uploads, parts, copies) and multipart POSTs.
            _ => object("PutObject"),
        };
    }
    let sub = [
        "policy",
        "acl",
        "versioning",
        "tagging",
        "location",
        "versions",
        "uploads",
        "cors",
        "lifecycle",
        "encryption",
        "website",
        "notification",
        "delete",
    ]
    .into_iter()
    .find(|name| has(name));
    match (method.as_str(), sub) {
        ("GET" | "HEAD", Some("location")) => on_bucket("GetBucketLocation"),
        ("GET" | "HEAD", Some("versions")) => on_bucket("ListBucketVersions"),
        ("GET" | "HEAD", Some("uploads")) => on_bucket("ListBucketMultipartUploads"),
        ("GET" | "HEAD", Some(name)) => on_bucket(&format!("GetBucket{}", capitalized(name))),
        // HEAD bucket and every listing (ListObjects, ListObjectsV2).
        ("GET" | "HEAD", None) => on_bucket("ListBucket"),
        ("PUT", None) => on_bucket("CreateBucket"),
        ("PUT", Some(name)) => on_bucket(&format!("PutBucket{}", capitalized(name))),
        ("DELETE", None) => on_bucket("DeleteBucket"),
        ("DELETE", Some(name)) => on_bucket(&format!("DeleteBucket{}", capitalized(name))),
        ("POST", Some("delete")) => S3Permission {
            action: "s3:DeleteObject".to_owned(),
            resource: format!("arn:aws:s3:::{bucket}/*"),
        },
        (other, _) => on_bucket(&format!("{}Bucket", capitalized(&other.to_lowercase()))),
    }
}

/// `BUCKET` of `BUCKET.s3.REGION.amazonaws.com`, `BUCKET.s3.amazonaws.com`,
/// `BUCKET.s3-REGION.amazonaws.com` or LocalStack's `BUCKET.s3.localhost.localstack.cloud`.
fn virtual_host_bucket(host: &str) -> Option<&str> {
    let host = host.split(':').next().unwrap_or(host);
    let is_s3_name =
        host.ends_with(".amazonaws.com") || host.ends_with(".localhost.localstack.cloud");
    if !is_s3_name {
        return None;
    }
    let at = host.find(".s3.").or_else(|| host.find(".s3-"))?;
    Some(&host[..at]).filter(|bucket| !bucket.is_empty())
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

pub use super::identity_policy::PolicyDecision;

/// Evaluates identity policies (JSON texts) for `permission`; conditions are not modelled.
pub fn evaluate_identity_policies(
    policies: &[String],
    permission: &S3Permission,
) -> PolicyDecision {
    evaluate(
        policies,
        &permission.action,
        &permission.resource,
        Conditions::NotModelled,
    )
}

/// An S3 error in S3's REST XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl S3Error {
    /// AWS's words for an identity-policy refusal.
    pub fn access_denied(
        caller_arn: &str,
        permission: &S3Permission,
        decision: PolicyDecision,
    ) -> Self {
        let why = match decision {
            PolicyDecision::ExplicitDeny => "with an explicit deny in an identity-based policy",
            _ => "because no identity-based policy allows the",
        };
        let tail = match decision {
            PolicyDecision::ExplicitDeny => String::new(),
            _ => format!(" {} action", permission.action),
        };
        Self {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied",
            message: format!(
                "User: {caller_arn} is not authorized to perform: {} on resource: \"{}\" {why}{tail}",
                permission.action, permission.resource
            ),
        }
    }

    /// An unsigned request (no bucket policy grants anonymous access here).
    pub fn anonymous() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied",
            message: "Access Denied".to_owned(),
        }
    }

    pub fn invalid_access_key_id() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "InvalidAccessKeyId",
            message: "The AWS Access Key Id you provided does not exist in our records.".to_owned(),
        }
    }

    /// The gate could not decide (IAM unreadable): refuse rather than allow.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalError",
            message: message.into(),
        }
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let request_id = uuid_like();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
            self.code,
            xml_escape(&self.message)
        );
        let mut response = (self.status, body).into_response();
        let headers: &mut HeaderMap = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(method: Method, host: &str, path: &str, query: &[&str]) -> S3Permission {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|k| ((*k).to_owned(), String::new()))
            .collect();
        required_permission(&method, host, path, &query)
    }

    #[test]
    fn maps_requests_to_actions_and_resources() {
        let p = permission(Method::GET, "127.0.0.1:1", "/my-bucket/a%20b/c.txt", &[]);
        assert_eq!(p.action, "s3:GetObject");
        assert_eq!(p.resource, "arn:aws:s3:::my-bucket/a b/c.txt");
        let p = permission(Method::GET, "127.0.0.1:1", "/my-bucket", &["list-type"]);
        assert_eq!(
            (p.action.as_str(), p.resource.as_str()),
            ("s3:ListBucket", "arn:aws:s3:::my-bucket")
        );
        let p = permission(
            Method::PUT,
            "my-bucket.s3.us-east-1.amazonaws.com",
            "/x",
            &[],
        );
        assert_eq!(
            (p.action.as_str(), p.resource.as_str()),
            ("s3:PutObject", "arn:aws:s3:::my-bucket/x")
        );
        let p = permission(Method::GET, "s3.us-east-1.amazonaws.com", "/b/k", &[]);
        assert_eq!(p.resource, "arn:aws:s3:::b/k");
        assert_eq!(
            permission(Method::PUT, "h", "/b", &[]).action,
            "s3:CreateBucket"
        );
        assert_eq!(
            permission(Method::GET, "h", "/b", &["location"]).action,
            "s3:GetBucketLocation"
        );
        assert_eq!(
            permission(Method::GET, "h", "/", &[]).action,
            "s3:ListAllMyBuckets"
        );
        assert_eq!(
            permission(Method::DELETE, "h", "/b/k", &[]).action,
            "s3:DeleteObject"
        );
    }

    #[test]
    fn identity_policies_allow_deny_and_ignore_conditions() {
        let read = r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::my-bucket","arn:aws:s3:::my-bucket/*"]}]}"#.to_owned();
        let get = permission(Method::GET, "h", "/my-bucket/hello.txt", &[]);
        let put = permission(Method::PUT, "h", "/my-bucket/x", &[]);
        let other = permission(Method::GET, "h", "/other/hello.txt", &[]);
        let policies = [read.clone()];
        assert_eq!(
            evaluate_identity_policies(&policies, &get),
            PolicyDecision::Allowed
        );
        assert_eq!(
            evaluate_identity_policies(&policies, &put),
            PolicyDecision::NoAllow
        );
        assert_eq!(
            evaluate_identity_policies(&policies, &other),
            PolicyDecision::NoAllow
        );
        let deny = r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}"#.to_owned();
        assert_eq!(
            evaluate_identity_policies(&[read.clone(), deny], &get),
            PolicyDecision::ExplicitDeny
        );
        let conditional = r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#.to_owned();
        assert_eq!(
            evaluate_identity_policies(&[conditional], &put),
            PolicyDecision::NoAllow
        );
        let not_action =
            r#"{"Statement":{"Effect":"Allow","NotAction":"s3:PutObject","Resource":"*"}}"#
                .to_owned();
        assert_eq!(
            evaluate_identity_policies(std::slice::from_ref(&not_action), &get),
            PolicyDecision::Allowed
        );
        assert_eq!(
            evaluate_identity_policies(&[not_action], &put),
            PolicyDecision::NoAllow
        );
    }

    #[test]
    fn access_denied_names_caller_action_and_resource() {
        let put = permission(Method::PUT, "h", "/my-bucket/x", &[]);
        let error = S3Error::access_denied(
            "arn:aws:sts::123456789012:assumed-role/r/s",
            &put,
            PolicyDecision::NoAllow,
        );
        assert_eq!(
            error.message,
            "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::my-bucket/x\" because no identity-based policy allows the s3:PutObject action"
        );
    }
}
