//! `podiam-e2e up --seed` / `status` / `down` as a user runs them: `up` as a subprocess whose
//! stdout is `eval`ed by a shell that then runs `kubectl podiam …` exactly as typed (PATH,
//! KUBECONFIG and the credential files come only from those lines); `status` healthy; `run`
//! refused while the sandbox is up; `down` leaves no recorded process, no pod bridge, no
//! `podiam` route or iptables rule, and no 169.254.169.254 on any host interface. No credential
//! value appears in anything printed.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`, and `kubectl-podiam` built beside
//! `podiam-e2e` (`cargo build -p kubectl-podiam`). One cluster per machine: the sandbox takes
//! the machine's cluster lock itself, so never wrap the test in `flock` on it (it would wait
//! for itself). It fails naming what is missing, never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use podiam_e2e::sandbox::processes::RecordedProcess;
use podiam_e2e::sandbox::state::SandboxState;

/// `podiam-e2e` and `kubectl-podiam` copied out of the shared target directory (another
/// build may overwrite them while the sandbox runs), or from `$PODIAM_E2E_BIN_DIR` when set
/// (copies made right after the build, for a run that first waits for the cluster lock).
fn copied_binaries(dir: &Path) -> PathBuf {
    let harness = match std::env::var_os("PODIAM_E2E_BIN_DIR") {
        Some(bin) => PathBuf::from(bin).join("podiam-e2e"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_podiam-e2e")),
    };
    let plugin = harness.with_file_name("kubectl-podiam");
    assert!(
        plugin.is_file(),
        "{} missing: cargo build -p kubectl-podiam first",
        plugin.display()
    );
    std::fs::create_dir_all(dir).expect("binaries dir");
    for binary in [&harness, &plugin] {
        let copy = dir.join(binary.file_name().expect("name"));
        std::fs::copy(binary, &copy).expect("copy binary");
    }
    dir.join("podiam-e2e")
}

/// One cluster per machine: the tests of this file take turns.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn one_cluster() -> MutexGuard<'static, ()> {
    ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner())
}

struct Sandbox {
    harness: PathBuf,
    state_dir: PathBuf,
}

impl Sandbox {
    fn podiam_e2e(&self, args: &[&str]) -> Output {
        Command::new(&self.harness)
            .args(args)
            .env("PODIAM_SANDBOX_DIR", &self.state_dir)
            .output()
            .expect("run podiam-e2e")
    }

    /// A shell with nothing from this process's environment but HOME and a minimal PATH,
    /// which evals `up`'s lines and runs `command`.
    fn shell(&self, eval_lines: &str, command: &str) -> Output {
        Command::new("bash")
            .arg("-c")
            .arg(format!("eval \"$SANDBOX_LINES\"\n{command}"))
            .env_clear()
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("SANDBOX_LINES", eval_lines)
            .output()
            .expect("run bash")
    }
}

impl Drop for Sandbox {
    /// A failed assertion must not leave the cluster running.
    fn drop(&mut self) {
        let _ = self.podiam_e2e(&["down"]);
    }
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The secret values in the sandbox's credential files (never the file names).
fn secrets_in(credentials: &Path) -> Vec<String> {
    let mut secrets = Vec::new();
    let aws = std::fs::read_to_string(credentials.join("aws-credentials")).expect("aws file");
    for line in aws.lines() {
        if let Some((key, value)) = line.split_once('=')
            && key.trim().starts_with("aws_")
        {
            secrets.push(value.trim().to_owned());
        }
    }
    let azure =
        std::fs::read_to_string(credentials.join("azure-client-secret")).expect("azure file");
    secrets.push(azure.trim().to_owned());
    let adc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(credentials.join("gcp-application-default-credentials.json"))
            .expect("adc file"),
    )
    .expect("adc json");
    for key in ["refresh_token", "client_secret"] {
        if let Some(value) = adc.get(key).and_then(|v| v.as_str()) {
            secrets.push(value.to_owned());
        }
    }
    secrets.retain(|s| s.len() >= 8);
    assert!(
        secrets.len() >= 3,
        "expected the AWS key pair and the Azure secret"
    );
    secrets
}

fn assert_no_secret(secrets: &[String], what: &str, output: &Output) {
    for haystack in [&output.stdout, &output.stderr] {
        let haystack = String::from_utf8_lossy(haystack);
        for (i, secret) in secrets.iter().enumerate() {
            // The message names the secret's index, never the value.
            assert!(
                !haystack.contains(secret.as_str()),
                "{what} printed credential #{i}"
            );
        }
    }
}

fn command_stdout(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn up_seed_verify_status_down_leaves_nothing() {
    let _turn = one_cluster();
    let work = podiam_e2e::cluster::cache_dir().join("sandbox-test");
    let sandbox = Sandbox {
        harness: copied_binaries(&work.join("bin")),
        state_dir: work.join("state"),
    };
    // Whatever an earlier, killed run of this test left.
    let _ = sandbox.podiam_e2e(&["down"]);

    // A descriptor `up`'s caller leaves open across exec (as `flock LOCK podiam-e2e up` does):
    // the daemon must not keep it for its lifetime.
    let inherited_path = work.join("inherited-descriptor");
    let inherited = std::fs::File::create(&inherited_path).expect("inherited file");
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a descriptor this test owns.
        let cleared = unsafe { libc::fcntl(inherited.as_raw_fd(), libc::F_SETFD, 0) };
        assert_eq!(cleared, 0, "clearing FD_CLOEXEC");
    }

    let started = Instant::now();
    let up = sandbox.podiam_e2e(&["up", "--seed"]);
    let up_took = started.elapsed();
    assert!(up.status.success(), "up --seed failed\n{}", text(&up));
    eprintln!("up --seed: {:.1}s", up_took.as_secs_f64());
    let lines = String::from_utf8(up.stdout.clone()).expect("utf-8 stdout");
    for line in lines.lines() {
        assert!(
            line.starts_with("export ") || line.starts_with("unset "),
            "up printed a line that is not for eval: {line:?}"
        );
    }
    for variable in [
        "KUBECONFIG",
        "PATH",
        "AWS_SHARED_CREDENTIALS_FILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_CLIENT_ID",
    ] {
        assert!(
            lines.contains(&format!("export {variable}=")),
            "{variable} missing"
        );
    }
    let secrets = secrets_in(&sandbox.state_dir.join("credentials"));
    assert_no_secret(&secrets, "up", &up);
    let daemon_pid = std::fs::read_to_string(sandbox.state_dir.join("daemon.pid")).expect("pid");
    let daemon_fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/fd", daemon_pid.trim()))
        .expect("daemon's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(daemon_fds.len() > 3, "{daemon_fds:?}");
    assert!(
        !daemon_fds.contains(&inherited_path),
        "the daemon kept its caller's descriptor"
    );
    drop(inherited);

    // Idempotent: the same lines again.
    let again = sandbox.podiam_e2e(&["up", "--seed"]);
    assert!(again.status.success(), "second up failed\n{}", text(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), lines);

    // From the user's shell, exactly as typed there.
    let typed = sandbox.shell(
        &lines,
        "set -e\nkubectl get pods s3-pod -o name\nkubectl podiam verify s3-pod\nkubectl podiam whoami s3-pod",
    );
    assert!(
        typed.status.success(),
        "kubectl / kubectl podiam verify from the eval'd shell\n{}",
        text(&typed)
    );
    assert!(String::from_utf8_lossy(&typed.stdout).contains("pod/s3-pod"));
    assert_no_secret(&secrets, "kubectl podiam verify", &typed);
    // The operator's AWS credentials come from AWS_SHARED_CREDENTIALS_FILE: bind changes IAM.
    let bind = sandbox.shell(
        &lines,
        "kubectl podiam bind sandbox-test-sa --aws-role sandbox-test-role --create-role",
    );
    assert!(bind.status.success(), "bind\n{}", text(&bind));
    assert_no_secret(&secrets, "kubectl podiam bind", &bind);
    let fleet = sandbox.shell(&lines, "kubectl podiam verify -A");
    assert!(fleet.status.success(), "verify -A\n{}", text(&fleet));

    let status = sandbox.podiam_e2e(&["status"]);
    assert!(status.status.success(), "status\n{}", text(&status));
    let status_text = String::from_utf8_lossy(&status.stdout);
    for expected in ["kube-apiserver", "https://127.0.0.1:", "sandbox-daemon"] {
        assert!(
            status_text.contains(expected),
            "status lacks {expected}:\n{status_text}"
        );
    }
    assert!(!status_text.contains("DEAD"), "{status_text}");
    assert_no_secret(&secrets, "status", &status);

    // A second sandbox elsewhere would tear this one's network down: it refuses first.
    let second = Command::new(&sandbox.harness)
        .args(["up", "--state-dir"])
        .arg(work.join("second"))
        .output()
        .expect("second up");
    assert!(
        !second.status.success()
            && String::from_utf8_lossy(&second.stderr).contains("another cluster runs"),
        "{}",
        text(&second)
    );

    // A scenario run would destroy the sandbox's cluster: it refuses before touching anything.
    let state = SandboxState::read(&sandbox.state_dir)
        .expect("state file")
        .expect("state written");
    let run = sandbox.podiam_e2e(&["run", "scenarios/aws-irsa-happy-path.yaml"]);
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains(&format!(
            "a sandbox is up (pid {}): podiam-e2e down first",
            state.daemon.pid
        )),
        "{}",
        text(&run)
    );

    let started = Instant::now();
    let down = sandbox.podiam_e2e(&["down"]);
    let down_took = started.elapsed();
    assert!(down.status.success(), "down\n{}", text(&down));
    eprintln!("down: {:.1}s", down_took.as_secs_f64());

    let mut recorded: Vec<RecordedProcess> = state.processes.clone();
    recorded.push(state.daemon.clone());
    assert!(
        recorded.len() > 5,
        "too few processes recorded: {recorded:?}"
    );
    let alive: Vec<&RecordedProcess> = recorded.iter().filter(|p| p.is_alive()).collect();
    assert!(alive.is_empty(), "still running after down: {alive:?}");
    let addresses = command_stdout("ip", &["-o", "addr"]);
    assert!(
        !addresses.contains("podiam"),
        "a podiam interface is left:\n{addresses}"
    );
    assert!(
        !addresses.contains("169.254.169.254"),
        "169.254.169.254 is on a host interface:\n{addresses}"
    );
    let routes = command_stdout("ip", &["route"]);
    assert!(
        !routes.contains("podiam"),
        "a podiam route is left:\n{routes}"
    );
    let rules = command_stdout("iptables-save", &[]);
    assert!(
        !rules.to_lowercase().contains("podiam"),
        "podiam iptables rules are left"
    );
    assert!(!sandbox.state_dir.join("credentials").exists());

    let status = sandbox.podiam_e2e(&["status"]);
    assert!(!status.status.success(), "status after down must fail");
    let down_again = sandbox.podiam_e2e(&["down"]);
    assert!(down_again.status.success(), "down is idempotent");
}

#[test]
fn after_a_crash_status_fails_run_refuses_and_up_cleans_first() {
    let _turn = one_cluster();
    let work = podiam_e2e::cluster::cache_dir().join("sandbox-crash-test");
    let sandbox = Sandbox {
        harness: copied_binaries(&work.join("bin")),
        state_dir: work.join("state"),
    };
    let _ = sandbox.podiam_e2e(&["down"]);
    let up = sandbox.podiam_e2e(&["up", "--clouds", "aws"]);
    assert!(up.status.success(), "up\n{}", text(&up));
    let first = SandboxState::read(&sandbox.state_dir)
        .expect("state file")
        .expect("state written");

    // The daemon dies without tearing down: its cluster and emulators keep running.
    let killed = Command::new("kill")
        .args(["-9", &first.daemon.pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while first.daemon.is_alive() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let orphans: Vec<&RecordedProcess> = first.processes.iter().filter(|p| p.is_alive()).collect();
    assert!(!orphans.is_empty(), "the crash left nothing to clean");

    let status = sandbox.podiam_e2e(&["status"]);
    assert!(
        !status.status.success(),
        "status must fail over a dead daemon"
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("DEAD"));
    let run = sandbox.podiam_e2e(&["run", "scenarios/aws-irsa-happy-path.yaml"]);
    assert!(
        !run.status.success()
            && String::from_utf8_lossy(&run.stderr)
                .contains("a sandbox stopped without cleaning up"),
        "{}",
        text(&run)
    );

    let again = sandbox.podiam_e2e(&["up", "--clouds", "aws"]);
    assert!(again.status.success(), "up after a crash\n{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("cleaning what an earlier sandbox left")
    );
    let alive: Vec<&RecordedProcess> = first.processes.iter().filter(|p| p.is_alive()).collect();
    assert!(
        alive.is_empty(),
        "the crashed sandbox's processes survived: {alive:?}"
    );
    let status = sandbox.podiam_e2e(&["status"]);
    assert!(status.status.success(), "status\n{}", text(&status));
    let down = sandbox.podiam_e2e(&["down"]);
    assert!(down.status.success(), "down\n{}", text(&down));
}
