//! Cloud Storage JSON API in front of the object store: every request's bearer token is
//! mapped to its principal and held to the bucket's IAM bindings before data is touched.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::google_error::StorageError;
use super::iam_roles::{StoragePermission, has_storage_permission};
use super::object_store::object_resource;
use super::principal::Principal;
use super::state::GcpState;
use super::token_store::bearer_token;

/// Router state: the shared state and this front's own base URL (for `selfLink`s).
#[derive(Clone)]
struct Front {
    state: Arc<GcpState>,
    base_url: Arc<str>,
}

pub fn router(state: Arc<GcpState>, base_url: &str) -> Router {
    Router::new()
        .route("/storage/v1/b/{bucket}/o", get(list_objects))
        .route(
            "/storage/v1/b/{bucket}/o/{object}",
            get(get_object).delete(delete_object),
        )
        .route("/upload/storage/v1/b/{bucket}/o", post(upload_object))
        .route(
            "/download/storage/v1/b/{bucket}/o/{object}",
            get(get_object),
        )
        .with_state(Front {
            state,
            base_url: Arc::from(base_url),
        })
}

async fn list_objects(
    State(front): State<Front>,
    Path(bucket): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/storage/v1/b/{bucket}/o");
    let outcome = authorize(&front.state, &headers, &bucket, StoragePermission::List).map(|_| {
        let prefix = query.get("prefix").map(String::as_str).unwrap_or_default();
        let items: Vec<_> = front
            .state
            .project
            .objects
            .list(&bucket, prefix)
            .iter()
            .map(|(name, object)| object_resource(&front.base_url, &bucket, name, object))
            .collect();
        let mut body = json!({ "kind": "storage#objects" });
        if !items.is_empty() {
            body["items"] = json!(items);
        }
        Json(body).into_response()
    });
    finish(&front.state, "GET", &path, StoragePermission::List, outcome)
}

async fn get_object(
    State(front): State<Front>,
    Path((bucket, object)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/storage/v1/b/{bucket}/o/{object}");
    let outcome =
        authorize(&front.state, &headers, &bucket, StoragePermission::Get).and_then(|_| {
            let stored = front
                .state
                .project
                .objects
                .get(&bucket, &object)
                .ok_or_else(|| {
                    StorageError::new(
                        StatusCode::NOT_FOUND,
                        "notFound",
                        format!("No such object: {bucket}/{object}"),
                    )
                })?;
            if query.get("alt").map(String::as_str) == Some("media") {
                let mut response = stored.data.clone().into_response();
                if let Ok(value) = HeaderValue::from_str(&stored.content_type) {
                    response.headers_mut().insert(header::CONTENT_TYPE, value);
                }
                Ok(response)
            } else {
                Ok(
                    Json(object_resource(&front.base_url, &bucket, &object, &stored))
                        .into_response(),
                )
            }
        });
    finish(&front.state, "GET", &path, StoragePermission::Get, outcome)
}

async fn delete_object(
    State(front): State<Front>,
    Path((bucket, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/storage/v1/b/{bucket}/o/{object}");
    let outcome =
        authorize(&front.state, &headers, &bucket, StoragePermission::Delete).and_then(|_| {
            if front.state.project.objects.delete(&bucket, &object) {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(StorageError::new(
                    StatusCode::NOT_FOUND,
                    "notFound",
                    format!("No such object: {bucket}/{object}"),
                ))
            }
        });
    finish(
        &front.state,
        "DELETE",
        &path,
        StoragePermission::Delete,
        outcome,
    )
}

/// `uploadType=media&name=…` (simple upload), the body being the object's content.
async fn upload_object(
    State(front): State<Front>,
    Path(bucket): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/upload/storage/v1/b/{bucket}/o");
    let outcome =
        authorize(&front.state, &headers, &bucket, StoragePermission::Create).and_then(|_| {
            if query.get("uploadType").map(String::as_str) != Some("media") {
                return Err(StorageError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Only uploadType=media is emulated.",
                ));
            }
            let name = query.get("name").filter(|n| !n.is_empty()).ok_or_else(|| {
                StorageError::new(StatusCode::BAD_REQUEST, "required", "Required")
            })?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream");
            let stored =
                front
                    .state
                    .project
                    .objects
                    .put(&bucket, name, body.to_vec(), content_type);
            Ok(Json(object_resource(&front.base_url, &bucket, name, &stored)).into_response())
        });
    finish(
        &front.state,
        "POST",
        &path,
        StoragePermission::Create,
        outcome,
    )
}

/// The caller, if its token is valid and the bucket's policy grants `permission`.
fn authorize(
    state: &GcpState,
    headers: &HeaderMap,
    bucket: &str,
    permission: StoragePermission,
) -> Result<Principal, StorageError> {
    let permission_name = permission.name();
    let resource_phrase = "the Google Cloud Storage bucket";
    let Some(token) = bearer_token(headers) else {
        return Err(StorageError::new(
            StatusCode::UNAUTHORIZED,
            "required",
            format!(
                "Anonymous caller does not have {permission_name} access to {resource_phrase}. Permission '{permission_name}' denied on resource (or it may not exist)."
            ),
        ));
    };
    let principal = state
        .tokens
        .lookup(token)
        .ok_or_else(|| {
            StorageError::new(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials")
        })?
        .principal;
    let denied = || {
        StorageError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} does not have {permission_name} access to {resource_phrase}. Permission '{permission_name}' denied on resource (or it may not exist).",
                principal.display()
            ),
        )
    };
    let Some(policy) = state.project.bucket(bucket) else {
        // Google answers 404 for a missing bucket only to callers who could have seen it.
        return Err(StorageError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            "The specified bucket does not exist.",
        ));
    };
    if !has_storage_permission(&policy.bindings, &principal, permission) {
        return Err(denied());
    }
    Ok(principal)
}

fn finish(
    state: &GcpState,
    method: &str,
    path: &str,
    permission: StoragePermission,
    outcome: Result<Response, StorageError>,
) -> Response {
    let (logged, response) = match outcome {
        Ok(response) => (response.status().as_u16().to_string(), response),
        Err(error) => (
            format!("{} {}", error.code.as_u16(), error.reason),
            error.into_response(),
        ),
    };
    state.record(
        method,
        path,
        format!("storage:{}", permission.name()),
        logged,
    );
    response
}
