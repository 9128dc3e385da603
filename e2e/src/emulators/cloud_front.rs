//! The cloud front: what pods reach when they resolve a cloud's real name in the local cluster
//! (`sts.amazonaws.com`, `login.microsoftonline.com`, `sts.googleapis.com`, …). One HTTPS
//! listener (on the pod bridge's address, port 443) with a certificate from the harness CA
//! naming every host of `crate::cloud_hosts`, routing by `Host` to the emulators, the way the
//! clouds' own front doors route to their services.
//!
//! AWS names go to the AWS gate of the worker running the caller's scenario: the namespace is
//! read, unverified and for routing only, from the token a request carries
//! (`WebIdentityToken`, as the Pod Identity agent does); a request without one (S3, a signed
//! call) goes where the last token from the same pod address went; otherwise to the default
//! gate. Each request is logged when it arrives and when it is answered (time, namespace,
//! host, method, path, status — never a query string, header value or body).
//!
//! A scenario can black-hole one host name for its namespace (`block: {…, via: front}`): every
//! cloud name resolves to this one address, so only here can `sts.amazonaws.com` be told from
//! `sts.us-east-1.amazonaws.com`. The caller's namespace comes from its source address, the
//! host from the TLS handshake's server name; such a connection gets no answer at all until
//! the client gives up, as behind a firewall that drops it.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::LazyConfigAcceptor;

use super::background_runtime::BackgroundRuntime;
use super::token_namespace::token_namespace as namespace_of;
use crate::cloud_hosts::{CloudService, certificate_names, host_name, service_of};
use crate::cluster::HarnessCa;

/// Request bodies here are token exchanges and small test objects; this only bounds memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// An emulator that has not answered by then gets the client a 504, not a hang.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Form fields holding a Kubernetes token: STS, Entra, Google STS.
const TOKEN_FIELDS: [&str; 3] = ["WebIdentityToken", "client_assertion", "subject_token"];
/// A held connection is let go after this even if the client still waits.
const HOLD_LIMIT: Duration = Duration::from_secs(300);

/// The Google API emulators (`http://IP:PORT` each).
#[derive(Debug, Clone)]
pub struct GoogleUpstreams {
    pub sts: String,
    pub iam_credentials: String,
    pub oauth2: String,
    pub storage: String,
    pub iam: String,
}

/// Where each cloud name goes.
#[derive(Debug, Clone)]
pub struct CloudFrontUpstreams {
    /// The AWS gate for namespaces that are not routed (the first worker's).
    pub aws: String,
    /// Entra ID (`https://127.0.0.1:PORT`).
    pub entra: Option<String>,
    pub google: Option<GoogleUpstreams>,
    /// CA PEM files of HTTPS upstreams (Entra's).
    pub trusted_ca_files: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct CloudFrontOptions {
    /// the pod bridge's host address, port 443, in the local cluster (the pod bridge only, never 0.0.0.0).
    pub bind: SocketAddr,
    pub upstreams: CloudFrontUpstreams,
    /// Where arrivals and answers are written, one line each (truncated at start).
    pub log_file: Option<PathBuf>,
}

/// One line of the front's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontLogEntry {
    /// RFC 3339, milliseconds.
    pub time: String,
    /// `None` on arrival; the HTTP status once answered.
    pub status: Option<u16>,
    pub namespace: Option<String>,
    pub host: String,
    pub method: String,
    /// The path only: query strings may carry tokens.
    pub path: String,
    pub peer: IpAddr,
}

struct FrontState {
    upstreams: CloudFrontUpstreams,
    /// Namespace → that worker's AWS gate.
    routes: Mutex<HashMap<String, String>>,
    /// Pod address → the namespace of the last token it sent (or of a held host's pod).
    peers: Mutex<HashMap<IpAddr, String>>,
    /// Namespace → host names whose connections from it are held unanswered.
    holds: Mutex<HashMap<String, HashSet<String>>>,
    http: reqwest::Client,
    log: Mutex<Vec<FrontLogEntry>>,
    log_file: Option<Mutex<File>>,
}

/// A running front; stops when dropped.
pub struct CloudFront {
    address: SocketAddr,
    state: Arc<FrontState>,
    server: JoinHandle<()>,
    // Last: the server runs on it.
    _runtime: BackgroundRuntime,
}

impl CloudFront {
    /// Binds `options.bind` and serves with a certificate `ca` issues for the clouds' names.
    pub fn start(options: CloudFrontOptions, ca: &HarnessCa) -> Result<Self> {
        let listener = StdTcpListener::bind(options.bind)
            .with_context(|| format!("binding the cloud front to {}", options.bind))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let tls = tls_config(ca, address.ip())?;

        let mut http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(UPSTREAM_TIMEOUT);
        for file in &options.upstreams.trusted_ca_files {
            let pem = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("a CA certificate in {}", file.display()))?,
            );
        }
        let log_file = match &options.log_file {
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            )),
            None => None,
        };
        let state = Arc::new(FrontState {
            upstreams: options.upstreams,
            routes: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            holds: Mutex::new(HashMap::new()),
            http: http
                .build()
                .context("building the cloud front's HTTP client")?,
            log: Mutex::new(Vec::new()),
            log_file,
        });
        let runtime = BackgroundRuntime::new()?;
        let router = Router::new().fallback(handle).with_state(state.clone());
        let serving = state.clone();
        let server = runtime.handle().spawn(async move {
            // Registered with the runtime's reactor, hence converted inside it.
            if let Ok(listener) = TcpListener::from_std(listener) {
                serve(listener, tls, router, serving).await;
            }
        });
        Ok(Self {
            address,
            state,
            server,
            _runtime: runtime,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sends `namespace`'s AWS calls to `aws_gate_url` (a worker's gate).
    pub fn route_namespace(&self, namespace: &str, aws_gate_url: &str) {
        lock(&self.state.routes).insert(namespace.to_owned(), aws_gate_url.to_owned());
    }

    /// Forgets `namespace`'s route, its held hosts and the pod addresses seen with it.
    pub fn unroute_namespace(&self, namespace: &str) {
        lock(&self.state.routes).remove(namespace);
        self.release_holds(namespace);
        lock(&self.state.peers).retain(|_, ns| ns != namespace);
    }

    /// Holds connections for `host` from `namespace` unanswered; `pod` (an address in that
    /// namespace) is mapped to it now, before it sends any token.
    pub fn hold_host(&self, namespace: &str, pod: IpAddr, host: &str) {
        lock(&self.state.peers).insert(pod, namespace.to_owned());
        lock(&self.state.holds)
            .entry(namespace.to_owned())
            .or_default()
            .insert(host_name(host));
    }

    /// Answers `namespace`'s connections for every host again.
    pub fn release_holds(&self, namespace: &str) {
        lock(&self.state.holds).remove(namespace);
    }

    /// Every arrival and answer so far, oldest first.
    pub fn request_log(&self) -> Vec<FrontLogEntry> {
        lock(&self.state.log).clone()
    }
}

impl Drop for CloudFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn tls_config(ca: &HarnessCa, ip: IpAddr) -> Result<Arc<rustls::ServerConfig>> {
    let issued = ca.issue_server_certificate(&certificate_names(), &[ip])?;
    let chain = issued
        .chain_der
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der));
    // Explicit provider: the workspace links both ring and aws-lc-rs, so there is no default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the cloud front's TLS config")?;
    // HTTP/1.1 only (as the accept loop speaks).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The caller's address, for routing requests that carry no token.
#[derive(Clone, Copy)]
struct Peer(IpAddr);

/// Like `crate::https_server::serve_https`, with the caller's address in each request, and
/// held hosts (read from the ClientHello's server name) never answered.
async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    state: Arc<FrontState>,
) {
    loop {
        let Ok((mut tcp, peer)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        let state = state.clone();
        let service = TowerToHyperService::new(router.clone().layer(Extension(Peer(peer.ip()))));
        tokio::spawn(async move {
            let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), &mut tcp);
            let Ok(start) = acceptor.await else {
                return;
            };
            let server_name = start.client_hello().server_name().map(host_name);
            if let Some(host) = server_name
                && let Some(namespace) = state.held(peer.ip(), &host)
            {
                drop(start);
                state.record_hold(&namespace, &host, peer.ip());
                hold(&mut tcp).await;
                return;
            }
            // A client that does not trust the harness CA fails here: its own error to report.
            // So does busybox 1.35's wget: its ClientHello has no signature_algorithms
            // extension, which rustls requires (SignatureAlgorithmsExtensionRequired).
            let Ok(tls_stream) = start.into_stream(tls).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls_stream), service)
                .await;
        });
    }
}

/// Keeps a connection open without a byte in answer until the client closes it.
async fn hold(tcp: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(HOLD_LIMIT, async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn handle(
    State(state): State<Arc<FrontState>>,
    Extension(Peer(peer)): Extension<Peer>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host())
        .map(host_name)
        .unwrap_or_default();
    let mut entry = FrontLogEntry {
        time: String::new(),
        status: None,
        namespace: None,
        host: host.clone(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        peer,
    };
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            state.record(&entry);
            let response = text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            entry.status = Some(response.status().as_u16());
            state.record(&entry);
            return response;
        }
    };
    let token_namespace = token_namespace(&parts.uri, &parts.headers, &body);
    if let Some(ns) = &token_namespace {
        lock(&state.peers).insert(peer, ns.clone());
    }
    entry.namespace = token_namespace.or_else(|| lock(&state.peers).get(&peer).cloned());
    state.record(&entry);

    let response = match service_of(&host) {
        None => text(
            StatusCode::MISDIRECTED_REQUEST,
            &format!("podiam-e2e cloud front: no emulator serves host {host:?}"),
        ),
        Some(service) => match state.upstream(service, entry.namespace.as_deref()) {
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("podiam-e2e cloud front: no {service:?} emulator runs for {host}"),
            ),
            Some(base) => forward(&state.http, &base, &host, parts, body).await,
        },
    };
    entry.status = Some(response.status().as_u16());
    state.record(&entry);
    tracing::debug!(host, status = ?entry.status, took = ?started.elapsed(), "cloud front");
    response
}

impl FrontState {
    fn upstream(&self, service: CloudService, namespace: Option<&str>) -> Option<String> {
        let google = self.upstreams.google.as_ref();
        match service {
            CloudService::AwsSts | CloudService::AwsS3 => Some(
                namespace
                    .and_then(|ns| lock(&self.routes).get(ns).cloned())
                    .unwrap_or_else(|| self.upstreams.aws.clone()),
            ),
            CloudService::EntraId => self.upstreams.entra.clone(),
            CloudService::GoogleSts => google.map(|g| g.sts.clone()),
            CloudService::GoogleIamCredentials => google.map(|g| g.iam_credentials.clone()),
            CloudService::GoogleOauth2 => google.map(|g| g.oauth2.clone()),
            CloudService::GoogleStorage => google.map(|g| g.storage.clone()),
            CloudService::GoogleIam => google.map(|g| g.iam.clone()),
        }
    }

    /// The namespace holding `host` for the pod at `peer`, if it does.
    fn held(&self, peer: IpAddr, host: &str) -> Option<String> {
        let namespace = lock(&self.peers).get(&peer).cloned()?;
        lock(&self.holds)
            .get(&namespace)
            .is_some_and(|hosts| hosts.contains(host))
            .then_some(namespace)
    }

    fn record_hold(&self, namespace: &str, host: &str, peer: IpAddr) {
        if let Some(file) = &self.log_file {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let _ = writeln!(
                lock(file),
                "{time} held (blocked by the scenario) ns={namespace} host={host} from {peer}"
            );
        }
    }

    fn record(&self, entry: &FrontLogEntry) {
        let mut entry = entry.clone();
        entry.time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Some(file) = &self.log_file {
            let what = match entry.status {
                None => "arrived".to_owned(),
                Some(status) => format!("answered {status}"),
            };
            let _ = writeln!(
                lock(file),
                "{} {what} ns={} host={} {} {} from {}",
                entry.time,
                entry.namespace.as_deref().unwrap_or("-"),
                entry.host,
                entry.method,
                entry.path,
                entry.peer
            );
        }
        lock(&self.log).push(entry);
    }
}

/// The namespace of the Kubernetes token in the query or form body, if any (unverified).
fn token_namespace(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Option<String> {
    let from = |pairs: &[u8]| {
        url::form_urlencoded::parse(pairs)
            .find(|(k, _)| TOKEN_FIELDS.contains(&k.as_ref()))
            .and_then(|(_, token)| namespace_of(&token))
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    uri.query()
        .and_then(|q| from(q.as_bytes()))
        .or_else(|| is_form.then(|| from(body)).flatten())
}

/// Hop-by-hop headers are the connection's, not the request's (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::CONTENT_LENGTH,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

/// Sends the request on to `base` with its `Host` unchanged (signatures cover it).
async fn forward(
    http: &reqwest::Client,
    base: &str,
    host: &str,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let answer = http
        .request(parts.method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) if e.is_timeout() => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "podiam-e2e cloud front: the emulator for {host} did not answer within {UPSTREAM_TIMEOUT:?}"
                ),
            );
        }
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("podiam-e2e cloud front: the emulator for {host}: {e}"),
            );
        }
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    strip_hop_by_hop(&mut headers);
    match answer.bytes().await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            &format!("podiam-e2e cloud front: reading the answer for {host}: {e}"),
        ),
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(namespace: &str) -> String {
        let claims = serde_json::json!({"sub": format!("system:serviceaccount:{namespace}:app")});
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        )
    }

    /// An upstream that answers with the Host it saw and the port it runs on.
    async fn echo_upstream(name: &'static str) -> String {
        let router = Router::new().fallback(move |request: Request| async move {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            format!("{name} {} {host}", request.uri().path())
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_by_host_and_by_the_tokens_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let ca = HarnessCa::load_or_generate(dir.path()).unwrap();
        let worker0 = echo_upstream("gate0").await;
        let worker1 = echo_upstream("gate1").await;
        let google_sts = echo_upstream("google-sts").await;
        let front = CloudFront::start(
            CloudFrontOptions {
                bind: "127.0.0.1:0".parse().unwrap(),
                upstreams: CloudFrontUpstreams {
                    aws: worker0,
                    entra: None,
                    google: Some(GoogleUpstreams {
                        sts: google_sts.clone(),
                        iam_credentials: google_sts.clone(),
                        oauth2: google_sts.clone(),
                        storage: google_sts.clone(),
                        iam: google_sts,
                    }),
                    trusted_ca_files: Vec::new(),
                },
                log_file: Some(dir.path().join("front.log")),
            },
            &ca,
        )
        .unwrap();
        front.route_namespace("team-b", &worker1);
        let addr = front.address();
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
            .resolve("sts.amazonaws.com", addr)
            .resolve("sts.us-east-1.amazonaws.com", addr)
            .resolve("sts.googleapis.com", addr)
            .resolve("login.microsoftonline.com", addr)
            .build()
            .unwrap();
        let port = addr.port();
        let post = |host: &str, ns: &str| {
            client
                .post(format!("https://{host}:{port}/"))
                .form(&[
                    ("Action", "AssumeRoleWithWebIdentity"),
                    ("WebIdentityToken", token(ns).as_str()),
                ])
                .send()
        };
        let a = post("sts.amazonaws.com", "team-a").await.unwrap();
        assert_eq!(a.status(), 200);
        let a = a.text().await.unwrap();
        assert!(a.starts_with("gate0 / sts.amazonaws.com"), "{a}");
        let b = post("sts.us-east-1.amazonaws.com", "team-b")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(b.starts_with("gate1 / sts.us-east-1.amazonaws.com"), "{b}");
        // Without a token, the same pod address goes where its last token went.
        let again = client
            .get(format!(
                "https://sts.amazonaws.com:{port}/?Action=GetCallerIdentity"
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(again.starts_with("gate1 "), "{again}");
        let google = client
            .post(format!("https://sts.googleapis.com:{port}/v1/token"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(google.starts_with("google-sts /v1/token"), "{google}");
        let entra = client
            .post(format!(
                "https://login.microsoftonline.com:{port}/t/oauth2/v2.0/token"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(entra.status(), StatusCode::SERVICE_UNAVAILABLE);

        front.unroute_namespace("team-b");
        let log = front.request_log();
        assert_eq!(log.len(), 10, "{log:?}");
        assert_eq!(log[2].namespace.as_deref(), Some("team-b"));
        assert_eq!(log[3].status, Some(200));
        let text = std::fs::read_to_string(dir.path().join("front.log")).unwrap();
        assert!(text.contains("arrived ns=team-b host=sts.us-east-1.amazonaws.com POST /"));
        assert!(
            !text.contains("GetCallerIdentity") && !text.contains("e30."),
            "query strings or tokens logged:\n{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_host_gets_no_answer_from_the_namespaces_pods_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = HarnessCa::load_or_generate(dir.path()).unwrap();
        let gate = echo_upstream("gate").await;
        let front = CloudFront::start(
            CloudFrontOptions {
                bind: "127.0.0.1:0".parse().unwrap(),
                upstreams: CloudFrontUpstreams {
                    aws: gate,
                    entra: None,
                    google: None,
                    trusted_ca_files: Vec::new(),
                },
                log_file: Some(dir.path().join("front.log")),
            },
            &ca,
        )
        .unwrap();
        let addr = front.address();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            // A new connection each time, as each call from a pod is a new client process.
            .pool_max_idle_per_host(0)
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
            .resolve("sts.amazonaws.com", addr)
            .resolve("sts.us-east-1.amazonaws.com", addr)
            .build()
            .unwrap();
        let get = |host: &str| {
            client
                .get(format!("https://{host}:{}/", addr.port()))
                .send()
        };
        // Another namespace's hold does not touch this address.
        front.hold_host(
            "team-b",
            "10.213.0.99".parse().unwrap(),
            "sts.amazonaws.com",
        );
        assert_eq!(get("sts.amazonaws.com").await.unwrap().status(), 200);

        front.hold_host("team-a", IpAddr::from([127, 0, 0, 1]), "STS.amazonaws.com");
        let held = get("sts.amazonaws.com").await.unwrap_err();
        assert!(held.is_timeout(), "{held:?}");
        // The regional name, at the same address, still answers.
        assert_eq!(
            get("sts.us-east-1.amazonaws.com").await.unwrap().status(),
            200
        );
        let log = std::fs::read_to_string(dir.path().join("front.log")).unwrap();
        assert!(
            log.contains(
                "held (blocked by the scenario) ns=team-a host=sts.amazonaws.com from 127.0.0.1"
            ),
            "{log}"
        );
        front.release_holds("team-a");
        assert_eq!(get("sts.amazonaws.com").await.unwrap().status(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_hosts_get_421_naming_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = HarnessCa::load_or_generate(dir.path()).unwrap();
        let front = CloudFront::start(
            CloudFrontOptions {
                bind: "127.0.0.1:0".parse().unwrap(),
                upstreams: CloudFrontUpstreams {
                    aws: "http://127.0.0.1:9".to_owned(),
                    entra: None,
                    google: None,
                    trusted_ca_files: Vec::new(),
                },
                log_file: None,
            },
            &ca,
        )
        .unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
            .resolve("sts.amazonaws.com", front.address())
            .build()
            .unwrap();
        let answer = client
            .get(format!(
                "https://sts.amazonaws.com:{}/",
                front.address().port()
            ))
            .header(header::HOST, "example.org")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(answer.text().await.unwrap().contains("\"example.org\""));
        // The default gate does not answer: 502 naming the host, not a hang.
        let down = client
            .get(format!(
                "https://sts.amazonaws.com:{}/",
                front.address().port()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
        assert!(down.text().await.unwrap().contains("sts.amazonaws.com"));
    }
}
