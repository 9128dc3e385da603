//! The session script run by the host's `sh` (as the exec runs it in a container), with each
//! client the images may have, against local servers.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;

/// Serves `response` (a whole HTTP/1.0 answer) to every connection; returns its port and the
/// requests it received (head and body, as text).
pub(super) async fn canned_server(response: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    scripted_server(vec![response]).await
}

// The integration tests' request reader: the head, then as much body as Content-Length says.
// Its head and body accessors serve the fake servers of the integration tests.
#[allow(dead_code)]
#[path = "../../tests/support/http_request.rs"]
mod http_request;

/// Serves `responses[i]` to the i-th connection, the last one to every later connection
/// (a fault that clears after some attempts); returns its port and the requests received.
pub(crate) async fn scripted_server(
    responses: Vec<&'static str>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            let response = responses[served.min(responses.len() - 1)];
            served += 1;
            tokio::spawn(async move {
                let Some(request) = http_request::read_request(&mut socket).await else {
                    return;
                };
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request.bytes).into_owned());
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// Accepts and never answers: a blackholed endpoint.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// Runs `exchange` from a session with curl, then from one with python3 (both clients show a
/// cloud's error bodies), each against a fresh server answering `responses` in turn
/// ([`scripted_server`]); `exchange` gets the session, the server's port and a token file's
/// path. Returns each client's outcome with the calls its server received.
pub(crate) async fn through_curl_and_python<T>(
    responses: Vec<&'static str>,
    exchange: impl AsyncFn(&PodSession, u16, &str) -> T,
) -> Vec<(T, usize)> {
    let (_file, token_path) = token_file();
    let mut outcomes = Vec::new();
    for client in ["curl", "python3"] {
        let (port, seen) = scripted_server(responses.clone()).await;
        let (_opening, pod, _bin) = session(&[client], &[], &[]).await;
        let outcome = exchange(&pod, port, &token_path).await;
        let calls = seen.lock().unwrap().len();
        outcomes.push((outcome, calls));
    }
    outcomes
}

/// Starts the script with the host's `sh`, a PATH holding only `clients` (linked from the
/// host), and `env`.
pub(crate) async fn session(
    clients: &[&str],
    env: &[(&str, &str)],
    file_vars: &[&str],
) -> (Opening, PodSession, tempfile::TempDir) {
    let bin = client_bin(clients);
    let boundary = crate::env_probe::boundary();
    let (streams, _pid) = spawn_script(bin.path(), env, &boundary, file_vars);
    let (opening, session) = PodSession::start(
        streams.stdin,
        streams.stdout,
        streams.stderr,
        boundary,
        streams.keepalive,
        Duration::from_secs(10),
    )
    .await
    .expect("session starts");
    (opening, session, bin)
}

/// A directory to be the script's whole PATH: the shell's tools and `clients`.
pub(super) fn client_bin(clients: &[&str]) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    // The shell's own tools (cat, env, printf are builtins or here), plus the chosen clients.
    for tool in ["cat", "env", "timeout", "sh", "head", "dd"] {
        if let Some(path) = which(tool) {
            std::os::unix::fs::symlink(path, bin.path().join(tool)).unwrap();
        }
    }
    for client in clients {
        let (name, path) = match *client {
            // busybox's wget, as in the busybox image.
            "busybox-wget" => ("wget", busybox_applet(bin.path(), "wget")),
            "busybox-nc" => ("nc", busybox_applet(bin.path(), "nc")),
            "python3" => ("python3", real_python()),
            other => (
                other,
                which(other).unwrap_or_else(|| panic!("{other} is missing on this host")),
            ),
        };
        let link = bin.path().join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(path, link).unwrap();
        }
    }
    bin
}

/// The session script under the host's `sh` with a PATH of `bin` only: its streams (the child
/// is killed when they are dropped) and its pid.
pub(super) fn spawn_script(
    bin: &std::path::Path,
    env: &[(&str, &str)],
    boundary: &str,
    file_vars: &[&str],
) -> (Streams, u32) {
    let script = script::full_script();
    let argv = script::argv(&script, boundary, script::CLIENTS, file_vars);
    let mut child = tokio::process::Command::new("sh")
        .args(&argv[1..])
        .env_clear()
        .env("PATH", bin)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sh");
    let pid = child.id().expect("a running child has a pid");
    let streams = Streams {
        stdin: Box::new(child.stdin.take().unwrap()),
        stdout: Box::new(child.stdout.take().unwrap()),
        stderr: Box::new(child.stderr.take().unwrap()),
        keepalive: Box::new(Mutex::new(child)),
    };
    (streams, pid)
}

pub(super) fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// The interpreter itself, not a pyenv shim (which needs pyenv on PATH).
fn real_python() -> std::path::PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is missing on this host");
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn busybox_applet(dir: &std::path::Path, applet: &str) -> std::path::PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("busybox-static is missing on this host (apt-get install busybox-static; podiam-e2e setup installs it)");
    let wrapper = dir.join(format!("bb-{applet}"));
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} {applet} \"$@\"\n", busybox.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

pub(super) const STS_ANSWER: &str =
    "HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<AssumeRoleWithWebIdentityResponse/>";
const STS_DENIED: &str = "HTTP/1.0 403 Forbidden\r\nContent-Type: text/xml\r\n\r\n<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>";

pub(crate) fn token_file() -> (tempfile::NamedTempFile, String) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap();
    let path = f.path().to_str().unwrap().to_string();
    (f, path)
}

pub(super) fn sts_call(port: u16, token_path: &str) -> PodCall {
    PodCall::post_form(
        format!("http://127.0.0.1:{port}/"),
        form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("RoleSessionName", "podiam-x"),
        ]),
        Duration::from_secs(3),
    )
    .with_secret(SecretFromFile::FormField {
        path: token_path.into(),
        name: "WebIdentityToken".into(),
    })
}

#[tokio::test]
async fn each_client_posts_the_token_from_the_pods_file_and_reads_the_answer() {
    let (port, seen) = canned_server(STS_ANSWER).await;
    let (_file, token_path) = token_file();
    for client in ["curl", "busybox-wget", "python3"] {
        let (opening, session, _bin) = session(
            &[client],
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_path),
                ("AWS_REGION", "us-east-1"),
            ],
            &["AWS_WEB_IDENTITY_TOKEN_FILE"],
        )
        .await;
        let env = crate::evidence::RuntimeEnv::parse(&opening.env);
        assert_eq!(env.get("AWS_REGION"), Some("us-east-1"), "{client}");
        assert_eq!(opening.files.len(), 1, "{client}");
        let answer = session.call(&sts_call(port, &token_path)).await.unwrap();
        assert_eq!(answer.status, 200, "{client}");
        assert_eq!(
            answer.body, b"<AssumeRoleWithWebIdentityResponse/>",
            "{client}"
        );
        let request = seen.lock().unwrap().pop().unwrap();
        assert!(request.starts_with("POST / HTTP/1."), "{client}: {request}");
        assert!(
            request.ends_with("Action=AssumeRoleWithWebIdentity&RoleSessionName=podiam-x&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
            "{client}: {request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("content-type: application/x-www-form-urlencoded"),
            "{client}: {request}"
        );
        // A second call in the same session.
        assert_eq!(
            session
                .call(&sts_call(port, &token_path))
                .await
                .unwrap()
                .status,
            200
        );
        session.close().await;
    }
}

#[tokio::test]
async fn an_error_status_is_an_answer_with_the_clouds_body_where_the_client_shows_it() {
    let (port, _) = canned_server(STS_DENIED).await;
    let (_file, token_path) = token_file();
    for (client, body_shown) in [("curl", true), ("busybox-wget", false), ("python3", true)] {
        let (_, session, _bin) = session(&[client], &[], &[]).await;
        let answer = session.call(&sts_call(port, &token_path)).await.unwrap();
        assert_eq!(answer.status, 403, "{client}");
        assert_eq!(answer.body_available, body_shown, "{client}");
        if body_shown {
            assert!(
                String::from_utf8_lossy(&answer.body).contains("AccessDenied"),
                "{client}"
            );
        }
    }
}

#[tokio::test]
async fn failures_are_named_by_cause_for_every_client() {
    let (_held, closed) = closed_port();
    let silent = silent_server().await;
    let (_file, token_path) = token_file();
    for client in ["curl", "busybox-wget", "python3"] {
        let (_, session, _bin) = session(&[client], &[], &[]).await;
        let refused = session
            .call(&sts_call(closed, &token_path))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), "refused", "{client}: {refused}");
        let dns = PodCall::get("http://sts.podiam-test.invalid/", Duration::from_secs(3));
        let dns = session.call(&dns).await.unwrap_err();
        assert_eq!(dns.kind(), "dns", "{client}: {dns}");
        let mut slow = sts_call(silent, &token_path);
        slow.timeout = Duration::from_secs(1);
        let timeout = session.call(&slow).await.unwrap_err();
        assert_eq!(timeout.kind(), "timeout", "{client}: {timeout}");
        let unreadable = sts_call(closed, "/nonexistent/token");
        let unreadable = session.call(&unreadable).await.unwrap_err();
        assert_eq!(unreadable.kind(), "unreadable", "{client}: {unreadable}");
        // The session survives failed calls.
        let again = session
            .call(&sts_call(closed, &token_path))
            .await
            .unwrap_err();
        assert_eq!(again.kind(), "refused");
    }
}

#[tokio::test]
async fn curl_names_a_tls_failure() {
    // A server that answers plain text to a TLS client: the handshake fails.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(STS_ANSWER.as_bytes()).await;
        }
    });
    let (_, session, _bin) = session(&["curl"], &[], &[]).await;
    let call = PodCall::get(format!("https://127.0.0.1:{port}/"), Duration::from_secs(3));
    let failure = session.call(&call).await.unwrap_err();
    assert_eq!(failure.kind(), "tls", "{failure}");
}

#[tokio::test]
async fn a_plain_http_put_goes_through_nc_when_wget_cannot_send_it() {
    let (port, seen) = canned_server("HTTP/1.0 200 OK\r\n\r\nimds-session").await;
    let (_, session, _bin) = session(&["busybox-wget", "busybox-nc"], &[], &[]).await;
    let put = PodCall {
        method: Method::Put,
        ..PodCall::get(
            format!("http://127.0.0.1:{port}/latest/api/token"),
            Duration::from_secs(2),
        )
    }
    .header("X-aws-ec2-metadata-token-ttl-seconds", "21600");
    let answer = session.call(&put).await.unwrap();
    assert_eq!((answer.client.as_str(), answer.status), ("nc", 200));
    assert_eq!(answer.body, b"imds-session");
    let request = seen.lock().unwrap().pop().unwrap();
    assert!(
        request.starts_with("PUT /latest/api/token HTTP/1.0"),
        "{request}"
    );
    assert!(
        request.contains("X-aws-ec2-metadata-token-ttl-seconds: 21600"),
        "{request}"
    );
}

#[tokio::test]
async fn a_header_secret_comes_from_the_pods_file() {
    let (port, seen) = canned_server("HTTP/1.0 200 OK\r\n\r\n{}").await;
    let (_file, token_path) = token_file();
    let (_, session, _bin) = session(&["busybox-wget"], &[], &[]).await;
    let call = PodCall::get(
        format!("http://127.0.0.1:{port}/v1/credentials"),
        Duration::from_secs(2),
    )
    .with_secret(SecretFromFile::Header {
        path: token_path,
        name: "Authorization".into(),
    });
    assert_eq!(session.call(&call).await.unwrap().status, 200);
    let request = seen.lock().unwrap().pop().unwrap();
    assert!(
        request.contains("Authorization: eyJhbGciOiJSUzI1NiJ9."),
        "{request}"
    );
}

#[tokio::test]
async fn an_image_without_a_client_says_so() {
    let (opening, session, _bin) = session(&[], &[("A", "1")], &[]).await;
    assert_eq!(opening.client, None);
    let failure = session
        .call(&PodCall::get("http://127.0.0.1:1/", Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(failure.kind(), "no-client");
}

#[tokio::test]
async fn busybox_wget_alone_proves_only_the_tcp_half_of_https() {
    // A server that answers plain text to a TLS client: busybox's TLS fails past the connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(STS_ANSWER.as_bytes()).await;
        }
    });
    let (_held, closed) = closed_port();
    let (_, session, _bin) = session(&["busybox-wget"], &[], &[]).await;
    let reached = PodCall::get(format!("https://127.0.0.1:{open}/"), Duration::from_secs(2));
    let failure = session.call(&reached).await.unwrap_err();
    assert_eq!(failure.kind(), "tls-not-judged", "{failure}");
    let refused = PodCall::get(
        format!("https://127.0.0.1:{closed}/"),
        Duration::from_secs(2),
    );
    let failure = session.call(&refused).await.unwrap_err();
    assert_eq!(failure.kind(), "refused", "{failure}");
    let dns = PodCall::get("https://sts.podiam-test.invalid/", Duration::from_secs(2));
    assert_eq!(session.call(&dns).await.unwrap_err().kind(), "dns");
}

/// Captures what tracing writes, at every level, for the redaction test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_credential_reaches_the_logs_at_any_level() {
    const ANSWER: &str = "HTTP/1.0 200 OK\r\n\r\n<Credentials><AccessKeyId>ASIAPODKEY</AccessKeyId><SecretAccessKey>POD-SECRET-KEY</SecretAccessKey><SessionToken>POD-SESSION-TOKEN</SessionToken></Credentials>";
    let (port, _) = canned_server(ANSWER).await;
    let (_file, token_path) = token_file();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary start and drop their own subscribers on other threads; each
    // rebuilds the global interest cache, which may have been computed without this one.
    tracing::callsite::rebuild_interest_cache();
    let (_, session, _bin) = session(
        &["curl"],
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", &token_path)],
        &["AWS_WEB_IDENTITY_TOKEN_FILE"],
    )
    .await;
    tracing::callsite::rebuild_interest_cache();
    let answer = session.call(&sts_call(port, &token_path)).await.unwrap();
    assert!(String::from_utf8_lossy(&answer.body).contains("POD-SECRET-KEY"));
    let bearer = PodCall::get(format!("http://127.0.0.1:{port}/"), Duration::from_secs(2))
        .secret_header("Authorization", "Bearer POD-FEDERATED-TOKEN");
    session.call(&bearer).await.unwrap();
    tracing::debug!(?answer, "answer");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("call from inside the pod"),
        "the test must see the session's logs: {logs}"
    );
    for secret in [
        "POD-SECRET-KEY",
        "POD-SESSION-TOKEN",
        "POD-FEDERATED-TOKEN",
        "eyJhbGciOiJSUzI1NiJ9",
        "c2ln",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// A port nothing listens on, held for the whole test: bound but never listening, so a
/// connection is refused and no other socket on the machine can take the port meanwhile (a
/// port bound and released could be).
fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}
