//! Serving an axum router over TLS (axum::serve speaks plain HTTP only).

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Accepts TLS connections on `listener` and serves `router` over HTTP/1.1, forever.
pub async fn serve_https(listener: TcpListener, tls: Arc<rustls::ServerConfig>, router: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            // E.g. out of file descriptors: retrying at once would spin a thread of the
            // runtime the AWS gate shares with the issuer (axum::serve waits too).
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            // A client that fails the handshake (e.g. does not trust our CA) is its problem.
            let Ok(tls_stream) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service)
                .await;
        });
    }
}

/// A non-blocking listener on `127.0.0.1:<random>`, to be converted to tokio's inside the
/// runtime that will serve it.
pub fn bind_localhost() -> std::io::Result<StdTcpListener> {
    let listener = StdTcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
