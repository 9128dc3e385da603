//! A proxy in front of the strict AWS gate, for faults of the cloud side: the requests whose
//! text holds `Rule::matching` (e.g. `Action=CreateRole`) get the rule's fault, every other
//! request is relayed unchanged (the SigV4 signature still holds: the bytes, Host included,
//! are those the client signed). Included by the tests that use it
//! (`#[path = "support/gate_proxy.rs"] mod gate_proxy;`).
// Each test uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// A test that includes both support servers loads this twice, once in each.
#[allow(clippy::duplicate_mod)]
#[path = "http_request.rs"]
mod http_request;
use http_request::Request;

/// What the matching requests get.
#[derive(Clone, Copy)]
pub enum Fault {
    /// The first `times` matching requests are answered with `response` (a whole HTTP
    /// answer saying `Connection: close`) in the upstream's place; later ones are relayed.
    Answer {
        response: &'static str,
        times: usize,
    },
    /// Relayed, so the upstream applies the request, and its answer is never passed back: the
    /// caller is cut off between a cloud write and its answer.
    SwallowAnswer,
}

#[derive(Clone, Copy)]
pub struct Rule {
    pub matching: &'static str,
    pub fault: Fault,
    /// Each matching request is held this long first (a slow service).
    pub delay: Duration,
}

/// Starts the proxy; returns its URL and the count of matching requests it received (for
/// [`Fault::SwallowAnswer`], counted once the upstream has answered).
pub async fn start(upstream: &str, rule: Rule) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let matched = Arc::new(AtomicUsize::new(0));
    let seen = matched.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (upstream, seen) = (upstream.clone(), seen.clone());
            tokio::spawn(async move {
                let _ = serve(socket, &upstream, rule, &seen).await;
            });
        }
    });
    (url, matched)
}

/// One request per connection (every answer says `Connection: close`).
async fn serve(
    mut socket: TcpStream,
    upstream: &str,
    rule: Rule,
    seen: &AtomicUsize,
) -> std::io::Result<()> {
    let Some(request) = http_request::read_request(&mut socket).await else {
        return Ok(());
    };
    let matches = String::from_utf8_lossy(&request.bytes).contains(rule.matching);
    if !matches {
        let answer = relay(upstream, &request).await?;
        socket.write_all(&answer).await?;
        return socket.shutdown().await;
    }
    tokio::time::sleep(rule.delay).await;
    match rule.fault {
        Fault::Answer { response, times } => {
            if seen.fetch_add(1, Ordering::SeqCst) < times {
                socket.write_all(response.as_bytes()).await?;
                return socket.shutdown().await;
            }
            let answer = relay(upstream, &request).await?;
            socket.write_all(&answer).await?;
            socket.shutdown().await
        }
        Fault::SwallowAnswer => {
            let _applied = relay(upstream, &request).await?;
            seen.fetch_add(1, Ordering::SeqCst);
            // Hold the caller's connection open and silent until it goes away.
            let mut rest = [0u8; 1024];
            while socket.read(&mut rest).await? > 0 {}
            Ok(())
        }
    }
}

/// The request to the upstream, asking it to close; its whole answer.
async fn relay(upstream: &str, request: &Request) -> std::io::Result<Vec<u8>> {
    let text = request.head();
    let mut head: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("keep-alive:")
        })
        .collect();
    head.push("Connection: close");
    let mut forwarded = head.join("\r\n").into_bytes();
    forwarded.extend_from_slice(b"\r\n\r\n");
    forwarded.extend_from_slice(request.body());
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&forwarded).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    Ok(answer)
}
