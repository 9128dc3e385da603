//! moto_server as a child process, optionally enforcing IAM on signed requests.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use super::child_record::{self, ChildRecord};
use super::credentials::AdminCredentials;
use crate::python_env::PythonEnv;

/// Whether moto checks signatures and IAM policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotoAuth {
    /// After the bootstrap of an admin user, every request must be signed by a known key
    /// and is allowed only by the caller's IAM policies (S3 included).
    Enforced,
    /// moto's default: anything goes. Only for baselines.
    Open,
}

/// The three unauthenticated requests `bootstrap_admin` makes before enforcement starts.
const BOOTSTRAP_ACTION_COUNT: u32 = 3;
pub(crate) const ADMIN_USER: &str = "podiam-e2e-admin";

/// A running moto_server; killed when dropped, and by the next start if this process dies
/// without dropping it.
pub struct MotoServer {
    child: Child,
    url: String,
    admin: Option<AdminCredentials>,
    _record: Option<ChildRecord>,
}

impl MotoServer {
    /// Starts moto on `127.0.0.1:<free port>`; with [`MotoAuth::Enforced`] also creates the
    /// admin user whose credentials [`MotoServer::admin_credentials`] returns.
    pub async fn start(python: &PythonEnv, auth: MotoAuth) -> Result<Self> {
        // moto_server takes a port number, but binding one, releasing it and letting moto bind
        // it again races with every other socket on the machine (a cluster's ephemeral ports
        // included). werkzeug serves an inherited listening socket instead, as its reloader
        // does (`WERKZEUG_RUN_MAIN`, `WERKZEUG_SERVER_FD`; `-p` is then ignored).
        let listener = StdTcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("binding moto's port")?;
        let port = listener.local_addr()?.port();
        let fd = listener.as_raw_fd();
        let mut command = Command::new(python.bin("moto_server"));
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("WERKZEUG_RUN_MAIN", "true")
            .env("WERKZEUG_SERVER_FD", fd.to_string())
            // moto logs request lines, which can carry presigned credentials: discard.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // SAFETY: between fork and exec only fcntl(2), which is async-signal-safe, on a
        // descriptor this process owns and keeps open until spawn returns.
        unsafe {
            command.pre_exec(move || {
                // Rust opens sockets close-on-exec: let this one through to moto.
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if auth == MotoAuth::Enforced {
            command.env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                BOOTSTRAP_ACTION_COUNT.to_string(),
            );
        }
        child_record::reap_orphans(&child_record::records_dir());
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", python.bin("moto_server").display()))?;
        let record = child
            .id()
            .and_then(|pid| ChildRecord::write(&child_record::records_dir(), pid));
        // moto holds the socket now. Ours goes, so that if moto dies its clients are refused
        // instead of queueing on a socket nobody serves.
        drop(listener);
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            admin: None,
            _record: record,
        };
        server.wait_until_serving().await?;
        if auth == MotoAuth::Enforced {
            server.admin = Some(bootstrap_admin(&server.url).await?);
        }
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin's key (only with [`MotoAuth::Enforced`]).
    pub fn admin_credentials(&self) -> Option<&AdminCredentials> {
        self.admin.as_ref()
    }

    /// The socket accepts connections from the start; moto serves once Python has loaded.
    /// Asks moto's own API (not an AWS action: it does not use up the unauthenticated
    /// bootstrap requests).
    async fn wait_until_serving(&mut self) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the moto readiness client")?;
        let config_url = format!("{}/moto-api/config", self.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(&config_url).send().await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("moto_server did not answer on {} within 30 s", self.url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Creates an admin user with an allow-all inline policy and an access key, using the
/// requests moto lets through unauthenticated; after these, moto enforces IAM.
async fn bootstrap_admin(moto_url: &str) -> Result<AdminCredentials> {
    // Unchecked while the no-auth budget lasts; any well-formed key will do.
    let anonymous = AdminCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
        secret_access_key: "bootstrap".to_owned(),
    };
    let iam = anonymous.iam_client(moto_url);
    iam.create_user()
        .user_name(ADMIN_USER)
        .send()
        .await
        .context("moto bootstrap: CreateUser")?;
    let allow_all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name(ADMIN_USER)
        .policy_name("administrator-access")
        .policy_document(allow_all)
        .send()
        .await
        .context("moto bootstrap: PutUserPolicy")?;
    let key = iam
        .create_access_key()
        .user_name(ADMIN_USER)
        .send()
        .await
        .context("moto bootstrap: CreateAccessKey")?;
    let key = key
        .access_key()
        .context("moto bootstrap: CreateAccessKey returned no key")?;
    use super::issued_secrets::{SecretKind, record};
    record(SecretKind::AwsAccessKeyId, key.access_key_id());
    record(SecretKind::AwsSecretAccessKey, key.secret_access_key());
    Ok(AdminCredentials {
        access_key_id: key.access_key_id().to_owned(),
        secret_access_key: key.secret_access_key().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    use super::*;
    use crate::cluster::process::{is_alive, signal, wait_gone};

    /// Set in the copy of this test binary that plays the harness which dies.
    const DYING_HARNESS: &str = "PODIAM_TEST_MOTO_DYING_HARNESS";
    const THIS_TEST: &str =
        "emulators::moto::tests::a_moto_left_by_a_killed_harness_is_killed_by_the_next_start";

    #[tokio::test]
    async fn a_moto_left_by_a_killed_harness_is_killed_by_the_next_start() {
        let python = tokio::task::spawn_blocking(PythonEnv::ensure)
            .await
            .unwrap()
            .expect("the moto venv (podiam-e2e setup)");
        if std::env::var_os(DYING_HARNESS).is_some() {
            let moto = MotoServer::start(&python, MotoAuth::Open).await.unwrap();
            // On stderr: libtest's own "test … ..." line on stdout has no newline yet.
            eprintln!("moto-pid {}", moto.child.id().unwrap());
            std::future::pending::<()>().await;
        }
        let mut harness = std::process::Command::new(std::env::current_exe().unwrap())
            .args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(DYING_HARNESS, "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(harness.stderr.take().unwrap());
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pid: Option<u32> = stderr
                .lines()
                .map_while(|line| line.ok())
                .find_map(|line| line.strip_prefix("moto-pid ")?.trim().parse().ok());
            let _ = said.send(pid);
        });
        // Bounded: a harness stuck before moto answers fails the test instead of hanging it.
        let orphan = heard.recv_timeout(Duration::from_secs(90));
        signal(harness.id(), libc::SIGKILL);
        harness.wait().unwrap();
        let orphan: u32 = match orphan {
            Ok(Some(pid)) => pid,
            Ok(None) => panic!("the dying harness exited without starting moto"),
            Err(_) => panic!("the dying harness did not start moto within 90 s"),
        };
        assert!(
            wait_gone(&[orphan], Duration::from_millis(500)) == [orphan],
            "moto died with its harness: nothing to reap"
        );

        let next = MotoServer::start(&python, MotoAuth::Open).await.unwrap();

        let left = wait_gone(&[orphan], Duration::from_secs(1));
        if !left.is_empty() {
            signal(orphan, libc::SIGKILL);
        }
        assert!(left.is_empty(), "the next start left moto {orphan} running");
        assert!(is_alive(next.child.id().unwrap()));
    }
}
