//! `podiam-e2e up`: start the sandbox daemon detached (its own session, output to
//! `logs/daemon.log`, which is relayed to stderr while waiting), wait for its ready file, and
//! return the eval lines. Already up: the same lines again. A previous run that crashed: its
//! leftovers are cleaned first.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    Clouds, DAEMON_PID_FILE, ENV_FILE, READY_FILE, SandboxError, down, io, running_daemon,
};
use crate::cluster::process::tail;

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub state_dir: PathBuf,
    pub clouds: Clouds,
    pub seed: bool,
    /// What the AWS gate fronts (`--aws-backend`, `--localstack-image`).
    pub aws_backend: crate::emulators::AwsBackend,
    /// How long to wait for the daemon to be ready (the first setup may build binaries).
    pub timeout: Duration,
}

/// `--localstack-image IMAGE` when `up` was given one.
fn localstack_image_args(backend: &crate::emulators::AwsBackend) -> Vec<String> {
    match backend {
        crate::emulators::AwsBackend::LocalStackDocker { image: Some(image) } => {
            vec!["--localstack-image".to_owned(), image.clone()]
        }
        _ => Vec::new(),
    }
}

/// The daemon's log, relative to the state directory.
pub fn daemon_log(state_dir: &Path) -> PathBuf {
    state_dir.join("logs").join("daemon.log")
}

/// Starts the sandbox (or finds it running) and returns the lines to `eval`.
pub fn up(options: &UpOptions) -> Result<String, SandboxError> {
    let dir = &options.state_dir;
    if let Some(pid) = running_daemon(dir) {
        if dir.join(READY_FILE).exists() {
            eprintln!("podiam-e2e: the sandbox is already up (pid {pid}); its settings again:");
            if let Ok(Some(state)) = super::state::SandboxState::read(dir)
                && (state.clouds != options.clouds
                    || options.seed && !state.seeded
                    || state.aws_backend != options.aws_backend.to_string())
            {
                eprintln!(
                    "podiam-e2e: it runs with --clouds {}{} --aws-backend {}: podiam-e2e down first to change that",
                    state.clouds,
                    if state.seeded { " --seed" } else { "" },
                    state.aws_backend
                );
            }
            return read_env(dir);
        }
        eprintln!("podiam-e2e: the sandbox (pid {pid}) is starting; waiting for it");
        return wait_ready(dir, pid, None, options.timeout);
    }
    if down::leftovers_exist(dir) {
        eprintln!(
            "podiam-e2e: cleaning what an earlier sandbox left in {}",
            dir.display()
        );
        down::clean(dir, down::STOP_GRACE)?;
    }
    refuse_if_a_cluster_runs()?;
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).map_err(io("creating", &logs))?;
    let log_path = daemon_log(dir);
    let log = fs::File::create(&log_path).map_err(io("creating", &log_path))?;
    let log_err = log.try_clone().map_err(io("duplicating", &log_path))?;
    let exe = std::env::current_exe().map_err(io("locating", Path::new("current_exe")))?;
    let mut command = Command::new(&exe);
    command
        .arg("sandbox-daemon")
        .arg("--state-dir")
        .arg(dir)
        .arg("--clouds")
        .arg(options.clouds.to_string())
        .args(options.seed.then_some("--seed"))
        .arg("--aws-backend")
        .arg(options.aws_backend.to_string())
        .args(localstack_image_args(&options.aws_backend))
        // The global flags, so a --pod-cidr/--bridge given to `up` reaches the daemon too.
        .arg("--pod-cidr")
        .arg(crate::cluster::pod_network().cidr())
        .arg("--bridge")
        .arg(crate::cluster::pod_network().bridge())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            // Its own session and process group: no terminal's SIGHUP or Ctrl-C reaches it.
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(io("starting", &exe))?;
    let pid = child.id();
    let pid_file = dir.join(DAEMON_PID_FILE);
    fs::write(&pid_file, format!("{pid}\n")).map_err(io("writing", &pid_file))?;
    eprintln!(
        "podiam-e2e: sandbox daemon pid {pid}, state {}, log {}",
        dir.display(),
        log_path.display()
    );
    wait_ready(dir, pid, Some(child), options.timeout)
}

/// Another cluster's apiserver on the fixed port: starting ours would fail on it, after the
/// leftover cleanup every local cluster runs first had torn that cluster's network down.
fn refuse_if_a_cluster_runs() -> Result<(), SandboxError> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], crate::cluster::APISERVER_PORT));
    match std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
        Ok(_) => Err(SandboxError::ClusterRunning { address }),
        Err(_) => Ok(()),
    }
}

/// Polls for the ready file, relaying the daemon's log to stderr; fails (and cleans up) when
/// the daemon exits first or the timeout passes.
fn wait_ready(
    dir: &Path,
    pid: u32,
    mut child: Option<std::process::Child>,
    timeout: Duration,
) -> Result<String, SandboxError> {
    let started = Instant::now();
    let log_path = daemon_log(dir);
    let mut relayed = 0u64;
    loop {
        relay_log(&log_path, &mut relayed);
        if dir.join(READY_FILE).exists() {
            eprintln!(
                "podiam-e2e: sandbox up in {:.1}s; `podiam-e2e status` shows it, `podiam-e2e down` stops it",
                started.elapsed().as_secs_f64()
            );
            // Not waited for: it outlives this command (init reaps it).
            drop(child);
            return read_env(dir);
        }
        let exited = match child.as_mut() {
            Some(c) => c
                .try_wait()
                .map_err(io("waiting for", &log_path))?
                .is_some(),
            None => !crate::cluster::process::is_alive(pid),
        };
        if exited {
            relay_log(&log_path, &mut relayed);
            let tail = tail(&log_path, 30);
            down::clean(dir, down::STOP_GRACE)?;
            return Err(SandboxError::DaemonFailed {
                log: log_path,
                tail,
            });
        }
        if started.elapsed() > timeout {
            down::clean(dir, down::STOP_GRACE)?;
            return Err(SandboxError::NotReady {
                seconds: timeout.as_secs(),
                log: log_path,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn read_env(dir: &Path) -> Result<String, SandboxError> {
    let path = dir.join(ENV_FILE);
    fs::read_to_string(&path).map_err(io("reading", &path))
}

/// Copies what the daemon logged since `offset` to stderr (it logs no secrets).
fn relay_log(path: &Path, offset: &mut u64) {
    let Ok(mut file) = fs::File::open(path) else {
        return;
    };
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let mut new = Vec::new();
    if let Ok(n) = file.read_to_end(&mut new) {
        *offset += n as u64;
        eprint!("{}", String::from_utf8_lossy(&new));
    }
}
