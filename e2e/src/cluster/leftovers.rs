//! What the kubelet and containerd leave behind: mounts under the state directory (projected
//! volumes, sandbox shm, network namespaces, overlay rootfs, the kubelet's own root bind
//! mount), and, at paths they hard-code outside it, cgroups, container log links, the
//! device-plugin socket directory and libcni's result cache; and CNI plugins still running
//! when containerd stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process;

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// Lazily unmounts everything under `dir` (repeating for stacked mounts); returns what is
/// still mounted.
pub fn unmount_all_under(dir: &Path) -> Vec<PathBuf> {
    for _ in 0..8 {
        let points = mounts_under(dir);
        if points.is_empty() {
            break;
        }
        for point in points {
            if let Ok(c) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid NUL-terminated path; umount2 has no other preconditions.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
    mounts_under(dir)
}

/// Removes the kubelet's `kubepods` cgroup trees (cgroup v1 hierarchies and the unified one),
/// deepest first. Only empty cgroups can be removed, so call it after the pods are dead.
pub fn remove_kubepods_cgroups() {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hierarchies
        .filter_map(|e| Some(e.ok()?.path().join("kubepods")))
        .collect();
    roots.push(PathBuf::from("/sys/fs/cgroup/kubepods"));
    for root in roots.into_iter().filter(|r| r.is_dir()) {
        let mut dirs = Vec::new();
        collect_dirs(&root, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = fs::remove_dir(&dir);
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

/// The kubelet links every container log into the fixed `/var/log/containers`; removes the
/// links that point into `pod_logs_dir`.
pub fn remove_container_log_links(pod_logs_dir: &Path) {
    let Ok(entries) = fs::read_dir("/var/log/containers") else {
        return;
    };
    for entry in entries.flatten() {
        if fs::read_link(entry.path()).is_ok_and(|t| t.starts_with(pod_logs_dir)) {
            let _ = fs::remove_file(entry.path());
        }
    }
    let _ = fs::remove_dir("/var/log/containers");
}

/// The kubelet always serves device plugins from `/var/lib/kubelet/device-plugins`: removes
/// its socket and checkpoint there, then the directories if that left them empty.
pub fn remove_kubelet_device_plugin_dir() {
    let dir = Path::new("/var/lib/kubelet/device-plugins");
    for file in ["kubelet.sock", "kubelet_internal_checkpoint"] {
        let _ = fs::remove_file(dir.join(file));
    }
    let _ = fs::remove_dir(dir);
    let _ = fs::remove_dir("/var/lib/kubelet");
}

/// Waits, up to `timeout`, for the CNI plugins running from `cni_bin_dir` to exit: one that
/// containerd started just before it stopped would change the NAT table after its clean-up.
pub fn wait_for_cni_plugins(cni_bin_dir: &Path, timeout: Duration) {
    let running: Vec<u32> = process::all_pids()
        .into_iter()
        .filter(|pid| process::exe_of(*pid).is_some_and(|exe| exe.starts_with(cni_bin_dir)))
        .collect();
    process::wait_gone(&running, timeout);
}

/// libcni caches each attachment's result in `/var/lib/cni/results/<network>-<id>-<ifname>`
/// (containerd 1.6 offers no other place): removes those of `network` and the loopback
/// entries of the same containers, then the directories if empty.
pub fn remove_cni_results(network: &str) {
    let dir = Path::new("/var/lib/cni/results");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let prefix = format!("{network}-");
    let ids: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix)?.rsplit_once('-').map(|(id, _)| id))
        .collect();
    for name in &names {
        let ours = name.starts_with(&prefix)
            || name
                .strip_prefix("cni-loopback-")
                .and_then(|rest| rest.rsplit_once('-'))
                .is_some_and(|(id, _)| ids.contains(&id));
        if ours {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    let _ = fs::remove_dir(dir);
    let _ = fs::remove_dir("/var/lib/cni");
}

/// Shims create `/run/containerd/s` for their sockets whatever containerd's state directory
/// is: removed when empty (another containerd's sockets keep it).
pub fn remove_shim_socket_dir() {
    let _ = fs::remove_dir("/run/containerd/s");
    let _ = fs::remove_dir("/run/containerd");
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
