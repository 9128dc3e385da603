//! A fake Kubernetes API server for tests whose API side must misbehave on cue: plain HTTP on
//! 127.0.0.1, one request per connection, each answered by the test's [`Routes`] — or held
//! without an answer, or refused while an [`Outage`] lasts. Included by the tests that use it
//! (`#[path = "support/fake_api_server.rs"] mod fake_api_server;`).
// Each test uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

// A test that includes both support servers loads this twice, once in each.
#[allow(clippy::duplicate_mod)]
#[path = "http_request.rs"]
mod http_request;

/// What one request gets.
pub enum Reply {
    /// A JSON body with this status code (a 503 also carries `Retry-After: 1`).
    Json(u16, Value),
    /// Accepted, never answered: the connection stays open until the client drops it.
    Hold,
}

/// The test's answers.
pub trait Routes: Send + Sync + 'static {
    /// `path` includes the query string.
    fn reply(&self, method: &str, path: &str, body: &[u8]) -> Reply;
}

/// A `Status` failure, as kube-apiserver writes it.
pub fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::Json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// The listener closed (connections refused), as while kube-apiserver restarts.
pub struct Outage {
    /// Notified by the routes when the outage should begin.
    pub begin: Notify,
    /// Listening again after this long; None: never.
    pub lasts: Option<Duration>,
}

impl Outage {
    pub fn new(lasts: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            begin: Notify::new(),
            lasts,
        })
    }
}

/// Starts the server; returns a kubeconfig file (in `dir`) whose context points at it with
/// `namespace` as its default.
pub async fn start(
    routes: Arc<dyn Routes>,
    outage: Option<Arc<Outage>>,
    namespace: &str,
    dir: &Path,
) -> PathBuf {
    let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let never = Notify::new();
        loop {
            let begin = outage.as_ref().map_or(&never, |o| &o.begin);
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, _)) = accepted else { return };
                    tokio::spawn(serve(routes.clone(), socket));
                }
                () = begin.notified() => {
                    drop(listener);
                    let Some(lasts) = outage.as_ref().and_then(|o| o.lasts) else { return };
                    tokio::time::sleep(lasts).await;
                    listener = TcpListener::bind(address).await.unwrap();
                }
            }
        }
    });
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://{address}'}}}}]\nusers: [{{name: u, user: {{token: placeholder}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: {namespace}}}}}]\ncurrent-context: x\n"),
    )
    .unwrap();
    kubeconfig
}

async fn serve(routes: Arc<dyn Routes>, mut socket: TcpStream) {
    let Some(request) = http_request::read_request(&mut socket).await else {
        return;
    };
    let head = request.head();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let body = request.body();
    let (code, body) = match routes.reply(&method, &path, body) {
        Reply::Json(code, body) => (code, body),
        Reply::Hold => {
            // Open until the client gives up or is killed: whatever it sends is read, never
            // answered.
            let mut chunk = [0u8; 8192];
            while socket.read(&mut chunk).await.is_ok_and(|n| n > 0) {}
            return;
        }
    };
    let body = serde_json::to_vec(&body).unwrap();
    let retry_after = if code == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n{retry_after}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(&body).await;
    let _ = socket.shutdown().await;
}
