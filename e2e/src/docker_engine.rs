//! Docker for the kind provider: Debian's `docker.io`, and a `dockerd` this harness starts
//! detached (pid file and log under `~/.cache/podiam/docker`) and leaves running, since the
//! daemon is machine-wide and other runs use it. An already running dockerd is reused when its
//! default runtime can start kind's privileged nodes.
//!
//! Two things about these machines decide how dockerd starts:
//! - the host withholds capabilities from every process (here `CAP_SYS_RESOURCE`), so runc
//!   cannot grant them to a `--privileged` container ("unable to apply caps", moby#42906):
//!   a small runc wrapper drops exactly the missing ones from the OCI spec, registered as the
//!   default runtime (`--add-runtime podiam-runc=WRAPPER --default-runtime podiam-runc`);
//! - dockerd sets the iptables FORWARD policy to DROP when it starts with IPv4 forwarding off,
//!   which cuts pod traffic of the local provider's bridge: forwarding is switched on first.
//!
//! Also installs the other host tools the node image build needs (mmdebstrap, jq, gcc with
//! static libc, busybox-static).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::cache_dir;

/// The name the wrapper is registered under in dockerd.
pub const RUNTIME_NAME: &str = "podiam-runc";
const DOCKERD: &str = "/usr/sbin/dockerd";
const RUNC: &str = "/usr/sbin/runc";
/// How long a freshly started dockerd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Debian packages and a file each provides.
const PACKAGES: [(&str, &str); 7] = [
    ("docker.io", DOCKERD),
    ("runc", RUNC),
    ("mmdebstrap", "/usr/bin/mmdebstrap"),
    ("jq", "/usr/bin/jq"),
    ("gcc", "/usr/bin/gcc"),
    // pause is linked statically.
    ("libc6-dev", "/usr/lib/x86_64-linux-gnu/libc.a"),
    ("busybox-static", "/usr/bin/busybox"),
];

/// Capability names by bit number (linux/capability.h), for the ones the host lacks.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

#[derive(Debug, thiserror::Error)]
pub enum DockerEngineError {
    #[error("{what} needs root")]
    NotRoot { what: String },
    #[error("missing Debian packages {packages} and no apt-get to install them")]
    NoAptGet { packages: String },
    #[error("apt-get {args} failed ({status}): {stderr}")]
    AptGet {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the running dockerd's default runtime is {runtime:?}, which cannot start privileged \
         containers on this host (it withholds {missing}); restart dockerd with \
         `--add-runtime {RUNTIME_NAME}={wrapper} --default-runtime {RUNTIME_NAME}` \
         (after `sysctl -w net.ipv4.ip_forward=1`)",
        wrapper = wrapper.display()
    )]
    WrongRuntime {
        runtime: String,
        missing: String,
        wrapper: PathBuf,
    },
    #[error(
        "dockerd (pid {pid}) did not answer `docker info` within {secs}s; its log {log}:\n{tail}",
        log = log.display()
    )]
    NotReady {
        pid: u32,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("dockerd exited ({status}) while starting; its log {log}:\n{tail}", log = log.display())]
    Exited {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("iptables FORWARD policy: {0}")]
    Forward(String),
}

type Result<T> = std::result::Result<T, DockerEngineError>;

/// A dockerd that answers, with a default runtime that starts privileged containers here.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    /// Its pid, when this call started it or its pid file names it.
    pub pid: Option<u32>,
    /// True when this call started it (it is left running either way).
    pub started_now: bool,
    /// True when this call ran apt-get.
    pub installed_now: bool,
    /// `docker info`'s DefaultRuntime.
    pub default_runtime: String,
    /// Where this harness's files for dockerd live (wrapper, pid file, log).
    pub dir: PathBuf,
}

/// `~/.cache/podiam/docker`: the runc wrapper, dockerd's pid file and log.
pub fn engine_dir() -> PathBuf {
    cache_dir().join("docker")
}

/// The runc wrapper registered as dockerd's default runtime.
pub fn runc_wrapper_path() -> PathBuf {
    engine_dir().join(RUNTIME_NAME)
}

/// Installs what is missing (apt-get), then reuses the running dockerd or starts one: IPv4
/// forwarding on first, the runc wrapper as default runtime, detached, logging to
/// `engine_dir()/dockerd.log`. Checks the FORWARD policy stayed ACCEPT.
pub fn ensure_running() -> Result<DockerEngine> {
    let installed_now = ensure_packages()?;
    let dir = engine_dir();
    let missing = missing_capabilities();
    if let Some(runtime) = daemon_default_runtime() {
        if !missing.is_empty() && runtime != RUNTIME_NAME {
            return Err(DockerEngineError::WrongRuntime {
                runtime,
                missing: missing.join(", "),
                wrapper: runc_wrapper_path(),
            });
        }
        if runtime == RUNTIME_NAME && is_root() {
            // Keep the wrapper current (written atomically; read at each container start).
            write_wrapper(&runc_wrapper_path(), &missing)?;
        }
        check_forward_policy()?;
        return Ok(DockerEngine {
            pid: read_pid(&dir.join("dockerd.pid")),
            started_now: false,
            installed_now,
            default_runtime: runtime,
            dir,
        });
    }
    require_root("starting dockerd")?;
    fs::create_dir_all(&dir).map_err(|source| io(&dir, source))?;
    write_wrapper(&runc_wrapper_path(), &missing)?;
    // Before dockerd starts: with forwarding off it would set the FORWARD policy to DROP.
    let ip_forward = Path::new("/proc/sys/net/ipv4/ip_forward");
    fs::write(ip_forward, "1\n").map_err(|source| io(ip_forward, source))?;
    let pid = start_dockerd(&dir)?;
    check_forward_policy()?;
    let default_runtime = daemon_default_runtime().unwrap_or_default();
    Ok(DockerEngine {
        pid: Some(pid),
        started_now: true,
        installed_now,
        default_runtime,
        dir,
    })
}

/// The DefaultRuntime of the dockerd `docker` talks to, or None when none answers.
pub fn daemon_default_runtime() -> Option<String> {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.DefaultRuntime}}"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let runtime = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !runtime.is_empty()).then_some(runtime)
}

/// Capabilities the kernel knows but this process's bounding set lacks (what runc cannot grant).
pub fn missing_capabilities() -> Vec<String> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    let last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(CAP_NAMES.len() - 1)
        .min(CAP_NAMES.len() - 1);
    let Some(bounding) = bounding else {
        return Vec::new();
    };
    (0..=last)
        .filter(|bit| bounding & (1u64 << bit) == 0)
        .map(|bit| CAP_NAMES[bit].to_owned())
        .collect()
}

/// The wrapper's text: drops `missing` from the spec's capability sets, then runs runc.
pub fn wrapper_script(missing: &[String]) -> String {
    let drop = serde_json::to_string(missing).expect("strings serialize");
    format!(
        r#"#!/bin/sh
# Written by podiam-e2e (e2e/src/docker_engine.rs): dockerd's default runtime on this host.
# The host withholds some capabilities from every process, so runc cannot grant them to a
# privileged container ("unable to apply caps: operation not permitted", moby#42906). This
# drops exactly those from the OCI spec (create/run: BUNDLE/config.json; exec: --process FILE),
# then runs runc unchanged.
drop='{drop}'
runc={RUNC}
bundle= process= prev=
for arg in "$@"; do
  case $prev in --bundle|-b) bundle=$arg ;; --process|-p) process=$arg ;; esac
  case $arg in --bundle=*) bundle=${{arg#--bundle=}} ;; --process=*) process=${{arg#--process=}} ;; esac
  prev=$arg
done
strip() {{ # strip FILE JQ_PATH
  [ "$drop" != '[]' ] && [ -f "$1" ] || return 0
  jq --argjson drop "$drop" "if $2 then $2 |= with_entries(.value |= map(select(. as \$c | \$drop | any(. == \$c) | not))) else . end" \
    "$1" > "$1.podiam" && mv "$1.podiam" "$1"
}}
[ -n "$bundle" ] && strip "$bundle/config.json" .process.capabilities
[ -n "$process" ] && strip "$process" .capabilities
exec "$runc" "$@"
"#
    )
}

fn write_wrapper(path: &Path, missing: &[String]) -> Result<()> {
    let text = wrapper_script(missing);
    if fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &text).map_err(|source| io(&tmp, source))?;
        fs::rename(&tmp, path).map_err(|source| io(path, source))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(|source| io(path, source))
}

fn start_dockerd(dir: &Path) -> Result<u32> {
    let log_path = dir.join("dockerd.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| io(&log_path, source))?;
    let log_err = log.try_clone().map_err(|source| io(&log_path, source))?;
    let runtime = format!("{RUNTIME_NAME}={}", runc_wrapper_path().display());
    let mut child = Command::new(DOCKERD)
        .args(["--add-runtime", &runtime, "--default-runtime", RUNTIME_NAME])
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: it outlives this process and its terminal's signals.
        .process_group(0)
        .spawn()
        .map_err(|source| DockerEngineError::Spawn {
            program: DOCKERD.into(),
            source,
        })?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if daemon_default_runtime().is_some() {
            // Reaped by nobody once this process exits; init adopts it.
            std::mem::forget(child);
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DockerEngineError::Exited {
                status: status.to_string(),
                tail: log_tail(&log_path),
                log: log_path,
            });
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(DockerEngineError::NotReady {
                pid,
                secs: START_TIMEOUT.as_secs(),
                tail: log_tail(&log_path),
                log: log_path,
            });
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// With dockerd running: the FORWARD policy must be ACCEPT (the local provider's pods on this
/// host depend on it). Docker only sets DROP when it starts with forwarding off; if it did
/// (this one or one started by hand), this restores ACCEPT and says so.
fn check_forward_policy() -> Result<()> {
    if !is_root() {
        // iptables needs root even to read; whoever runs without root did not start dockerd.
        return Ok(());
    }
    let output = Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .map_err(|source| DockerEngineError::Spawn {
            program: "iptables".into(),
            source,
        })?;
    let rules = String::from_utf8_lossy(&output.stdout);
    if rules.lines().any(|l| l.trim() == "-P FORWARD ACCEPT") {
        return Ok(());
    }
    let restored = Command::new("iptables")
        .args(["-P", "FORWARD", "ACCEPT"])
        .status()
        .is_ok_and(|s| s.success());
    if !restored {
        return Err(DockerEngineError::Forward(format!(
            "not ACCEPT with dockerd running, and `iptables -P FORWARD ACCEPT` failed:\n{rules}"
        )));
    }
    eprintln!(
        "podiam-e2e: the FORWARD policy was DROP (dockerd started with forwarding off); restored ACCEPT"
    );
    Ok(())
}

/// Installs the packages whose file is missing; true when apt-get ran.
fn ensure_packages() -> Result<bool> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(false);
    }
    let packages = missing.join(" ");
    require_root(&format!("installing {packages}"))?;
    if Path::new("/usr/bin/apt-get").exists() {
        apt_get(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(missing.iter().copied());
        apt_get(&args)?;
        Ok(true)
    } else {
        Err(DockerEngineError::NoAptGet { packages })
    }
}

fn apt_get(args: &[&str]) -> Result<()> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| DockerEngineError::Spawn {
            program: "apt-get".into(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(DockerEngineError::AptGet {
        args: args.join(" "),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn require_root(what: &str) -> Result<()> {
    if !is_root() {
        return Err(DockerEngineError::NotRoot { what: what.into() });
    }
    Ok(())
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().rev().take(15).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        }
        Err(e) if e.kind() == ErrorKind::NotFound => "(no log)".into(),
        Err(e) => format!("(unreadable: {e})"),
    }
}

fn io(path: &Path, source: std::io::Error) -> DockerEngineError {
    DockerEngineError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_names_the_missing_capabilities_as_json() {
        let text = wrapper_script(&["CAP_SYS_RESOURCE".into()]);
        assert!(text.contains(r#"drop='["CAP_SYS_RESOURCE"]'"#), "{text}");
        assert!(text.contains("exec \"$runc\" \"$@\""));
    }

    #[test]
    fn wrapper_strips_only_the_missing_capabilities() {
        if !Path::new("/usr/bin/jq").exists() {
            eprintln!("skipped: no jq");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        fs::create_dir(&bundle).unwrap();
        fs::write(
            bundle.join("config.json"),
            r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE"]}}}"#,
        )
        .unwrap();
        // The same script, with `echo` standing in for runc.
        let script = wrapper_script(&["CAP_SYS_RESOURCE".into()])
            .replace(&format!("runc={RUNC}"), "runc=/bin/echo");
        let wrapper = dir.path().join("wrapper");
        fs::write(&wrapper, script).unwrap();
        let out = Command::new("sh")
            .arg(&wrapper)
            .args(["--root", "/x", "create", "--bundle"])
            .arg(&bundle)
            .arg("id")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("create --bundle"));
        let spec: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            spec["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN"])
        );
        assert_eq!(
            spec["process"]["capabilities"]["effective"],
            serde_json::json!([])
        );
    }

    #[test]
    fn missing_capabilities_are_named_from_the_bounding_set() {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let full = status
            .lines()
            .any(|l| l.starts_with("CapBnd:\t000001ffffffffff"));
        let missing = missing_capabilities();
        assert_eq!(missing.is_empty(), full, "{missing:?}");
        assert!(missing.iter().all(|c| c.starts_with("CAP_")));
    }
}
