//! Every request's whole body read before it is answered. axum answers an unknown path (404),
//! a wrong method (405) or a wrong content type (415) without reading the body; a connection
//! then closed with body bytes unread is reset by the kernel, and the client loses the answer
//! and sees a dropped request (`scripts/fuzz 10 20261204` found it: a 270 KB form sent with
//! GET to an unknown Entra path). Real services answer those requests: so do the emulators.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// A body larger than this is refused (413); the services the emulators stand for refuse far
/// smaller ones.
const LIMIT: usize = 4 * 1024 * 1024;

/// `router` with a 404 for unknown paths and every body read before routing.
pub fn read_first(router: Router) -> Router {
    router
        .fallback(not_found)
        .layer(middleware::from_fn(read_body))
}

async fn read_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    }
}

async fn not_found(_body: Bytes) -> StatusCode {
    StatusCode::NOT_FOUND
}
