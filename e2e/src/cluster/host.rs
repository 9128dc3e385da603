//! What the machine must provide: root, Debian's container runtime packages, free ports.
//! `ensure_host_packages` runs apt-get only when one of the binaries is missing.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{ClusterError, Result};

/// Debian packages the local provider installs, and a file each must provide.
const PACKAGES: [(&str, &str); 9] = [
    ("containerd", "/usr/bin/containerd"),
    ("containerd", "/usr/bin/ctr"),
    ("containerd", "/usr/bin/containerd-shim-runc-v2"),
    ("runc", "/usr/sbin/runc"),
    ("containernetworking-plugins", "/usr/lib/cni/bridge"),
    ("iptables", "/usr/sbin/iptables"),
    ("busybox-static", "/usr/bin/busybox"),
    // The curl image: Debian's curl with its libraries, and Debian's public CA bundle.
    ("curl", "/usr/bin/curl"),
    ("ca-certificates", "/etc/ssl/certs/ca-certificates.crt"),
];

/// CNI plugins the network configuration uses.
const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// Paths of the host tools the provider runs.
#[derive(Debug, Clone)]
pub struct HostPackages {
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub runc: PathBuf,
    pub cni_bin_dir: PathBuf,
    pub iptables: PathBuf,
    /// A statically linked busybox (the images' shell and tools).
    pub busybox: PathBuf,
    /// Debian's curl (dynamically linked; the curl image carries its libraries).
    pub curl: PathBuf,
    /// Debian's bundle of public CA certificates (`ca-certificates`).
    pub ca_bundle: PathBuf,
    /// True when this call ran apt-get.
    pub installed_now: bool,
}

/// Checks for containerd, runc, the CNI plugins, iptables, a static busybox, curl and the CA
/// bundle; when any is missing, runs `apt-get update` and `apt-get install` for exactly the
/// packages that provide them (Debian/Ubuntu, as root). Never runs apt-get when everything is present.
pub fn ensure_host_packages() -> Result<HostPackages> {
    let missing = missing_packages();
    let installed_now = !missing.is_empty();
    if installed_now {
        require_root()?;
        if which("apt-get").is_none() {
            return Err(ClusterError::MissingPrerequisite {
                what: format!(
                    "packages {} (and no apt-get to install them)",
                    missing.join(" ")
                ),
                fix: "install containerd, runc, the CNI plugins, iptables, a static busybox, \
                      curl and ca-certificates"
                    .into(),
            });
        }
        apt_get(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(missing.iter().map(String::as_str));
        apt_get(&args)?;
        let still = missing_packages();
        if !still.is_empty() {
            return Err(ClusterError::MissingPrerequisite {
                what: format!("packages {} (still missing after apt-get)", still.join(" ")),
                fix: format!("apt-get install -y {}", still.join(" ")),
            });
        }
    }
    Ok(HostPackages {
        containerd: PathBuf::from("/usr/bin/containerd"),
        ctr: PathBuf::from("/usr/bin/ctr"),
        runc: PathBuf::from("/usr/sbin/runc"),
        cni_bin_dir: PathBuf::from("/usr/lib/cni"),
        iptables: PathBuf::from("/usr/sbin/iptables"),
        busybox: PathBuf::from("/usr/bin/busybox"),
        curl: PathBuf::from("/usr/bin/curl"),
        ca_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        installed_now,
    })
}

/// Like [`ensure_host_packages`], but fails naming the missing packages instead of installing.
pub fn require_host_packages() -> Result<HostPackages> {
    let missing = missing_packages();
    if !missing.is_empty() {
        return Err(ClusterError::MissingPrerequisite {
            what: format!("Debian packages {}", missing.join(" ")),
            fix: format!("apt-get install -y {}", missing.join(" ")),
        });
    }
    ensure_host_packages()
}

/// Packages (deduplicated, in order) with a missing file; busybox must also be static.
fn missing_packages() -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !missing.iter().any(|m| m == p) {
            missing.push(p.to_owned());
        }
    };
    for (package, file) in PACKAGES {
        if !Path::new(file).exists() {
            add(package);
        }
    }
    for plugin in CNI_PLUGINS {
        if !Path::new("/usr/lib/cni").join(plugin).exists() {
            add("containernetworking-plugins");
        }
    }
    if Path::new("/usr/bin/busybox").exists() && !is_static_elf(Path::new("/usr/bin/busybox")) {
        add("busybox-static");
    }
    missing
}

fn apt_get(args: &[&str]) -> Result<()> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| ClusterError::other(format!("running apt-get: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ClusterError::MissingPrerequisite {
            what: format!(
                "apt-get {} failed ({}): {}",
                args.join(" "),
                output.status,
                stderr.trim()
            ),
            fix: "check the apt sources, then re-run".into(),
        });
    }
    Ok(())
}

/// The local provider needs root: it runs containerd, the kubelet, and changes the network.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ClusterError::MissingPrerequisite {
            what: "root (the local cluster runs containerd and a kubelet)".into(),
            fix: "run the tests as root, e.g. in the CI VM".into(),
        });
    }
    Ok(())
}

/// Fails naming the first port of `ports` another process listens on.
pub fn require_free_ports(ports: &[(u16, &str)]) -> Result<()> {
    for (port, user) in ports {
        if TcpListener::bind(("127.0.0.1", *port)).is_err() {
            return Err(ClusterError::MissingPrerequisite {
                what: format!("free TCP port {port} (for {user}); something already listens there"),
                fix: format!(
                    "stop the other process (`ss -ltnp 'sport = :{port}'`), e.g. a cluster left \
                     running by an earlier run"
                ),
            });
        }
    }
    Ok(())
}

/// Fails when another process holds UDP `ip:port` (e.g. a DNS server left running).
pub fn require_free_udp_port(ip: std::net::Ipv4Addr, port: u16, user: &str) -> Result<()> {
    // The address may not exist yet (the bridge is made later): only a held port fails.
    match std::net::UdpSocket::bind((ip, port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(ClusterError::MissingPrerequisite {
                what: format!(
                    "free UDP port {ip}:{port} (for {user}); something already listens there"
                ),
                fix: format!("stop the other process (`ss -lunp 'sport = :{port}'`)"),
            })
        }
        _ => Ok(()),
    }
}

/// `program` on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// An ELF executable without a PT_INTERP program header (no dynamic loader).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let off = phoff + i * phentsize;
        off + 4 > bytes.len()
            || u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]]) != 3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_not_static() {
        assert!(!is_static_elf(Path::new("/bin/sh")));
    }
}
