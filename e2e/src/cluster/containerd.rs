//! containerd (Debian's 1.6) with its own config, root, state and sockets under the state
//! directory, the CRI plugin set up for this VM, and the runc shims it leaves behind found
//! by the socket they serve.
//!
//! Needed on these machines: `restrict_oom_score_adj = true` (the VM withholds
//! CAP_SYS_RESOURCE, so runc cannot lower a sandbox's oom_score_adj to the kubelet's -998
//! and fails with "can't get final child's PID from pipe: EOF"); cgroupfs (no systemd);
//! `netns_mounts_under_state_dir` and runc's `Root` so nothing lands in /var/run/netns or
//! /run/containerd/runc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::{IoContext, Result};
use super::host::HostPackages;
use super::images::PAUSE_IMAGE;
use super::process::{self, ManagedProcess, ProcessFiles};

/// containerd's files under the state directory.
#[derive(Debug, Clone)]
pub struct ContainerdPaths {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub cni_ipam_dir: PathBuf,
}

impl ContainerdPaths {
    pub fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join("containerd");
        Self {
            config: dir.join("config.toml"),
            socket: state_dir.join("run").join("containerd.sock"),
            cni_conf_dir: state_dir.join("cni").join("net.d"),
            cni_ipam_dir: state_dir.join("cni").join("ipam"),
            dir,
        }
    }

    /// `unix://…` for the kubelet.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// Writes config.toml.
pub fn write_config(paths: &ContainerdPaths, host: &HostPackages) -> Result<()> {
    fs::create_dir_all(&paths.dir).io_context(|| format!("creating {}", paths.dir.display()))?;
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let config = format!(
        r#"version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = {runc}
  Root = {runc_root}

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = {cni_bin}
  conf_dir = {cni_conf}
  max_conf_num = 1
"#,
        root = q(&paths.dir.join("root")),
        state = q(&paths.dir.join("state")),
        socket = q(&paths.socket),
        ttrpc = q(&paths.socket.with_file_name("containerd-ttrpc.sock")),
        opt = q(&paths.dir.join("opt")),
        runc = q(&host.runc),
        runc_root = q(&paths.dir.join("runc")),
        cni_bin = q(&host.cni_bin_dir),
        cni_conf = q(&paths.cni_conf_dir),
    );
    fs::write(&paths.config, config).io_context(|| format!("writing {}", paths.config.display()))
}

pub fn spawn(
    paths: &ContainerdPaths,
    host: &HostPackages,
    files: ProcessFiles,
) -> Result<ManagedProcess> {
    let _ = fs::remove_file(&paths.socket);
    ManagedProcess::spawn(
        "containerd",
        &host.containerd,
        &["--config".into(), paths.config.display().to_string()],
        files,
    )
}

/// Waits until `ctr version` answers on the socket.
pub async fn wait_ready(
    proc: &mut ManagedProcess,
    ctr: &Path,
    socket: &Path,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        proc.ensure_running()?;
        if socket.exists() {
            let ok = Command::new(ctr)
                .arg("--address")
                .arg(socket)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(proc.failure(format!(
                "did not answer on {} within {timeout:?}",
                socket.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shims serving containers for the containerd at `socket` (they outlive containerd).
pub fn shim_pids(socket: &Path) -> Vec<u32> {
    let needle = format!("-address {}", socket.display());
    process::all_pids()
        .into_iter()
        .filter(|pid| {
            process::cmdline_of(*pid)
                .is_some_and(|c| c.contains("containerd-shim") && c.contains(&needle))
        })
        .collect()
}

/// Every descendant of `roots` (the containers' processes under their shims).
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let all: Vec<(u32, u32)> = process::all_pids()
        .into_iter()
        .filter_map(|p| Some((p, process::parent_of(p)?)))
        .collect();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &all {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// The socket a shim serves: containerd 1.6 names it
/// `/run/containerd/s/<hex sha256 of "<containerd address>/<namespace>/<shim id>">`
/// whatever its state directory, and a killed shim leaves it behind.
fn shim_socket(socket: &Path, shim_id: &str) -> PathBuf {
    let key = socket.join("k8s.io").join(shim_id);
    let digest = Sha256::digest(key.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new("/run/containerd/s").join(hex)
}

/// The `-id` argument of a shim.
fn shim_id(pid: u32) -> Option<String> {
    let cmdline = process::cmdline_of(pid)?;
    let mut words = cmdline.split(' ');
    words.find(|w| *w == "-id")?;
    words.next().map(str::to_owned)
}

/// SIGKILLs every container process and shim of the containerd at `socket` and removes the
/// shims' sockets; returns the pids it signalled.
pub fn kill_shims(socket: &Path) -> Vec<u32> {
    let shims = shim_pids(socket);
    let sockets: Vec<PathBuf> = shims
        .iter()
        .filter_map(|pid| shim_id(*pid))
        .map(|id| shim_socket(socket, &id))
        .collect();
    let children = descendants(&shims);
    for pid in &children {
        process::signal(*pid, libc::SIGKILL);
    }
    for pid in &shims {
        process::signal(*pid, libc::SIGKILL);
    }
    let mut all = children;
    all.extend(shims);
    process::wait_gone(&all, Duration::from_secs(5));
    for path in sockets {
        let _ = fs::remove_file(path);
    }
    all
}
