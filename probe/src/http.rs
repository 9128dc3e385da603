//! One HTTP/1.1 request as the pod's SDK makes it: the pod's resolver, its proxy variables
//! (Go's rules, which most distroless workloads are built with), the CA roots its client
//! trusts, a deadline. A call that gets no HTTP answer fails with a named cause.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::dns::{DnsError, Resolver};
use crate::endpoints::proxy::{self, ProxyChoice, ProxyClient};
use crate::target::Target;
use crate::tls::{self, Roots};
use crate::url::Url;

/// Largest answer read: a token answer is a few KB.
const MAX_ANSWER: usize = 1024 * 1024;
/// Longest message of a failure kept: enough for a cause, never a body.
const DETAIL_CHARS: usize = 300;

pub struct Request {
    pub method: &'static str,
    pub url: String,
    /// May hold a secret (a bearer token): never printed.
    pub headers: Vec<(String, String)>,
    /// May hold a secret (a token in a form): never printed.
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl Request {
    pub fn get(url: impl Into<String>, timeout: Duration) -> Request {
        Request {
            method: "GET",
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout,
        }
    }

    pub fn post(
        url: impl Into<String>,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Request {
        Request {
            method: "POST",
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            ..Request::get(url, timeout)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An HTTP answer. Its body may hold credentials: never Debug-printed.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Response {{ status: {}, body_bytes: {} }}",
            self.status,
            self.body.len()
        )
    }
}

/// Why no HTTP answer came back. The names ([`Failure::cause`]) are the plugin's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NoRoute(String),
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("{0}")]
    TlsUntrusted(String),
    #[error("{0}")]
    TlsName(String),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Proxy(String),
    #[error("{0}")]
    Other(String),
}

impl Failure {
    /// dns, refused, no-route, timeout, tls-untrusted, tls-name, tls, proxy, other.
    pub fn cause(&self) -> &'static str {
        match self {
            Failure::Dns(_) => "dns",
            Failure::Refused(_) => "refused",
            Failure::NoRoute(_) => "no-route",
            Failure::Timeout(_) => "timeout",
            Failure::TlsUntrusted(_) => "tls-untrusted",
            Failure::TlsName(_) => "tls-name",
            Failure::Tls(_) => "tls",
            Failure::Proxy(_) => "proxy",
            Failure::Other(_) => "other",
        }
    }

    pub fn detail(&self) -> String {
        self.to_string().chars().take(DETAIL_CHARS).collect()
    }
}

/// How the pod's client reaches the network.
pub struct Client<'a> {
    pub target: &'a Target,
    pub resolver: &'a Resolver,
}

/// What a call went through, for the report.
pub struct Route {
    /// `http://proxy:3128 (HTTPS_PROXY …)`, None when direct.
    pub proxy: Option<String>,
    /// Where the trusted roots came from (https only).
    pub ca: Option<String>,
}

impl Client<'_> {
    /// The proxy the pod's client uses for `url`, as the report shows it (no credentials).
    pub fn proxy_for(&self, url: &str) -> Option<(String, String)> {
        let lookup = |name: &str| self.target.var(name);
        match proxy::proxy_for(&lookup, url, ProxyClient::Go) {
            Ok(ProxyChoice::Via { proxy_url, because }) => Some((proxy_url, because)),
            _ => None,
        }
    }

    pub fn send(&self, request: &Request, roots: &Roots) -> (Route, Result<Response, Failure>) {
        let deadline = Instant::now() + request.timeout;
        let proxy = self.proxy_for(&request.url);
        let route = Route {
            proxy: proxy
                .as_ref()
                .map(|(url, because)| format!("{url} ({because})")),
            ca: request
                .url
                .starts_with("https://")
                .then(|| roots.origin.clone()),
        };
        let result = Url::parse(&request.url)
            .map_err(|e| Failure::Other(e.to_string()))
            .and_then(|url| {
                let proxy = match &proxy {
                    Some((p, _)) => Some(Url::parse(p).map_err(|e| Failure::Proxy(e.to_string()))?),
                    None => None,
                };
                self.exchange(request, &url, proxy.as_ref(), roots, deadline)
            });
        (route, result)
    }

    fn exchange(
        &self,
        request: &Request,
        url: &Url,
        proxy: Option<&Url>,
        roots: &Roots,
        deadline: Instant,
    ) -> Result<Response, Failure> {
        let timeout = request.timeout;
        let mut stream = match proxy {
            Some(p) => self.connect(&p.host, p.port, deadline, timeout, true)?,
            None => self.connect(&url.host, url.port, deadline, timeout, false)?,
        };
        let request_target = match proxy {
            Some(_) if !url.https => format!("http://{}{}", url.authority(), url.path),
            _ => url.path.clone(),
        };
        if proxy.is_some() && url.https {
            tunnel(&mut stream, url, deadline, timeout)?;
        }
        let head = head(request, url, &request_target);
        if url.https {
            let config = tls::client_config(roots).map_err(|e| Failure::Tls(e.to_string()))?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| Failure::TlsName(format!("{}: {e}", url.host)))?;
            let conn = rustls::ClientConnection::new(config, name)
                .map_err(|e| Failure::Tls(e.to_string()))?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            roundtrip(&mut tls, &head, &request.body, deadline, timeout, &url.host)
        } else {
            roundtrip(
                &mut stream,
                &head,
                &request.body,
                deadline,
                timeout,
                &url.host,
            )
        }
    }

    fn connect(
        &self,
        host: &str,
        port: u16,
        deadline: Instant,
        timeout: Duration,
        is_proxy: bool,
    ) -> Result<TcpStream, Failure> {
        let ips = self.resolver.resolve(host, deadline).map_err(|e| match e {
            DnsError::NoAnswer { .. } if Instant::now() >= deadline => Failure::Timeout(timeout),
            e if is_proxy => Failure::Proxy(format!("the proxy's name does not resolve: {e}")),
            e => Failure::Dns(e.to_string()),
        })?;
        let mut last = None;
        for ip in ips {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Timeout(timeout));
            }
            match TcpStream::connect_timeout(&SocketAddr::new(ip, port), left) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => {
                    last = Some(ConnectError {
                        addr: format!("{ip}:{port}"),
                        error: e,
                        timeout,
                    })
                }
            }
        }
        match last {
            Some(e) => Err(connect_failure(&e, is_proxy.then_some((host, port)))),
            None => Err(Failure::Dns(format!("{host} has no address"))),
        }
    }
}

struct ConnectError {
    addr: String,
    error: std::io::Error,
    timeout: Duration,
}

/// A refused or dropped connection: the proxy's fault when it was the proxy's.
fn connect_failure(e: &ConnectError, proxy: Option<(&str, u16)>) -> Failure {
    use std::io::ErrorKind as K;
    let message = format!("connecting to {}: {}", e.addr, e.error);
    let kind = e.error.kind();
    if let Some((host, port)) = proxy {
        return Failure::Proxy(match kind {
            K::TimedOut | K::WouldBlock => format!(
                "the proxy {host}:{port} did not accept a connection within {}s",
                e.timeout.as_secs()
            ),
            _ => format!("the proxy {host}:{port}: {message}"),
        });
    }
    match kind {
        K::ConnectionRefused => Failure::Refused(message),
        K::TimedOut | K::WouldBlock => Failure::Timeout(e.timeout),
        K::HostUnreachable | K::NetworkUnreachable => Failure::NoRoute(message),
        _ => Failure::Other(message),
    }
}

fn head(request: &Request, url: &Url, target: &str) -> Vec<u8> {
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: podiam-probe/{}\r\nAccept: */*\r\nConnection: close\r\n",
        request.method,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() || request.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// `CONNECT host:port` through the proxy: anything but 2xx is the proxy's refusal.
fn tunnel(
    stream: &mut TcpStream,
    url: &Url,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), Failure> {
    let authority = format!("{}:{}", url.host, url.port);
    let connect = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    set_timeouts(stream, deadline, timeout)?;
    stream
        .write_all(connect.as_bytes())
        .map_err(|e| Failure::Proxy(format!("writing CONNECT to the proxy: {e}")))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(Failure::Proxy(
                "the proxy's CONNECT answer is too long".into(),
            ));
        }
        set_timeouts(stream, deadline, timeout)?;
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(Failure::Proxy(
                    "the proxy closed the connection on CONNECT".into(),
                ));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if is_timeout(&e) => {
                return Err(Failure::Proxy(format!(
                    "no answer from the proxy to CONNECT {authority} within {}s",
                    timeout.as_secs()
                )));
            }
            Err(e) => return Err(Failure::Proxy(format!("reading the proxy's answer: {e}"))),
        }
    }
    let status = parse_status(&head).unwrap_or(0);
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(Failure::Proxy(format!(
            "the proxy answered CONNECT {authority} with HTTP {status}"
        )))
    }
}

fn set_timeouts(stream: &TcpStream, deadline: Instant, timeout: Duration) -> Result<(), Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::Timeout(timeout));
    }
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    Ok(())
}

trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

fn roundtrip(
    stream: &mut dyn Socket,
    head: &[u8],
    body: &[u8],
    deadline: Instant,
    timeout: Duration,
    host: &str,
) -> Result<Response, Failure> {
    set_timeouts(stream.tcp(), deadline, timeout)?;
    let mut message = head.to_vec();
    message.extend_from_slice(body);
    stream
        .write_all(&message)
        .and_then(|()| stream.flush())
        .map_err(|e| io_failure(e, timeout, host))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(response) = complete(&answer) {
            return Ok(response);
        }
        if answer.len() > MAX_ANSWER {
            return Err(Failure::Other(format!(
                "the answer is longer than {MAX_ANSWER} bytes"
            )));
        }
        set_timeouts(stream.tcp(), deadline, timeout)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A server that closes without TLS close_notify: what was read stands.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => break,
            Err(e) => return Err(io_failure(e, timeout, host)),
        }
    }
    complete(&answer)
        .or_else(|| until_close(&answer))
        .ok_or_else(|| Failure::Other("the connection closed before an HTTP answer".into()))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// A read or write error: TLS errors by their kind, timeouts, resets.
fn io_failure(e: std::io::Error, timeout: Duration, host: &str) -> Failure {
    if is_timeout(&e) {
        return Failure::Timeout(timeout);
    }
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_failure(tls, host);
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Failure::Refused(e.to_string()),
        _ => Failure::Other(e.to_string()),
    }
}

pub fn tls_failure(e: &rustls::Error, host: &str) -> Failure {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            Failure::TlsUntrusted(format!(
                "{host}'s certificate is signed by a CA the pod does not trust ({e})"
            ))
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => Failure::TlsName(format!("the certificate does not name {host} ({e})")),
        other => Failure::Tls(other.to_string()),
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    words
        .next()
        .filter(|w| w.to_ascii_uppercase().starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

/// The response when `bytes` holds all of it (Content-Length or chunked framing).
fn complete(bytes: &[u8]) -> Option<Response> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let status = parse_status(head.as_bytes())?;
    let rest = &bytes[end + 4..];
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(name)
                .map(|v| v.trim_start_matches(':').trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return dechunk(rest).map(|body| Response { status, body });
    }
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (rest.len() >= len).then(|| Response {
            status,
            body: rest[..len].to_vec(),
        });
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(Response {
            status,
            body: Vec::new(),
        });
    }
    None
}

/// An answer framed by the connection's close.
fn until_close(bytes: &[u8]) -> Option<Response> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(Response {
        status: parse_status(&bytes[..end])?,
        body: bytes[end + 4..].to_vec(),
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests;
