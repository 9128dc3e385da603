//! One HTTP/1.x request read off a socket by the tests' fake servers: the head, then as much
//! body as `Content-Length` says. Included by the support modules that serve HTTP
//! (`#[path = "http_request.rs"] mod http_request;`) and by the pod session's unit tests.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A whole request as received.
pub struct Request {
    pub bytes: Vec<u8>,
    /// Where the head ends (the blank line's `\r\n\r\n` starts here).
    pub head_end: usize,
}

impl Request {
    pub fn head(&self) -> String {
        String::from_utf8_lossy(&self.bytes[..self.head_end]).into_owned()
    }

    pub fn body(&self) -> &[u8] {
        &self.bytes[(self.head_end + 4).min(self.bytes.len())..]
    }
}

/// The next request; None when the connection ends or fails before a whole one came.
pub async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        let Some(head_end) = find(&bytes, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&bytes[..head_end]);
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if bytes.len() >= head_end + 4 + length {
            return Some(Request { bytes, head_end });
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
