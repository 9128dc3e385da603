//! The container the probe stands in for. Started with `targetContainerName`, the probe shares
//! that container's process namespace: its main process's environment (`/proc/<pid>/environ`,
//! with the image's ENV and anything the entrypoint exported) and its filesystem
//! (`/proc/<pid>/root`, where the image's CA bundle lives) are readable by the same user.
//! When they are not, the probe's own env (copied from the spec by the plugin) and its own
//! mounts (the target's volume mounts, copied) stand in; the report says which.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest file read (a token, a config, a CA bundle).
const MAX_FILE: u64 = 4 * 1024 * 1024;

pub struct Target {
    vars: BTreeMap<String, String>,
    /// The target's main process, when the probe can see and read it.
    pub pid: Option<u32>,
    root: Option<PathBuf>,
    pub env_source: &'static str,
}

impl std::fmt::Debug for Target {
    // Values may be secrets: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("pid", &self.pid)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Target {
    /// The target process if visible (`/proc`), else the probe's own environment.
    pub fn discover() -> Target {
        match find_target_pid(Path::new("/proc")) {
            Some((pid, environ)) => Target {
                vars: parse_environ(&environ),
                pid: Some(pid),
                root: Some(PathBuf::from(format!("/proc/{pid}/root"))),
                env_source: "target-process",
            },
            None => Target::from_vars(std::env::vars().collect(), "own"),
        }
    }

    /// An environment given directly (tests, and the probe's own env).
    pub fn from_vars(vars: BTreeMap<String, String>, env_source: &'static str) -> Target {
        Target {
            vars,
            pid: None,
            root: None,
            env_source,
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// A file as the target container sees it: through its root when visible, else the
    /// probe's own path (the volume mounts are the target's).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        self.read_file_with_origin(path)
            .map(|(bytes, _)| bytes)
            .ok_or_else(|| match read_bounded(Path::new(path)) {
                Err(e) => e,
                Ok(_) => "unreadable".into(),
            })
    }

    /// The bytes and whose filesystem they came from.
    pub fn read_file_with_origin(&self, path: &str) -> Option<(Vec<u8>, &'static str)> {
        if let Some(root) = &self.root
            && let Ok(bytes) = read_bounded(&root.join(path.trim_start_matches('/')))
        {
            return Some((bytes, "the target container's file"));
        }
        read_bounded(Path::new(path))
            .ok()
            .map(|b| (b, "the probe's mount"))
    }

    /// Every regular file of a directory (SSL_CERT_DIR).
    pub fn read_dir_files(&self, dir: &str) -> Vec<Vec<u8>> {
        let base = self
            .root
            .as_ref()
            .map(|r| r.join(dir.trim_start_matches('/')))
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| PathBuf::from(dir));
        std::fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| read_bounded(&e.path()).ok())
            .collect()
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn parse_environ(raw: &[u8]) -> BTreeMap<String, String> {
    raw.split(|b| *b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (k, v) = text.split_once('=')?;
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The lowest visible process that is neither the probe nor a pause container, with its
/// environment (readable only to its own user).
fn find_target_pid(proc_dir: &Path) -> Option<(u32, Vec<u8>)> {
    let me = std::process::id();
    let mut pids: Vec<u32> = std::fs::read_dir(proc_dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid != me)
        .collect();
    pids.sort_unstable();
    pids.into_iter().find_map(|pid| {
        let dir = proc_dir.join(pid.to_string());
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "pause" || comm.trim() == "podiam-probe" {
            return None;
        }
        std::fs::read(dir.join("environ")).ok().map(|e| (pid, e))
    })
}

/// The target process's uid and gid (`/proc/<pid>/status`).
pub fn process_ids(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// The probe's effective uid and gid.
pub fn own_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Becomes `uid`:`gid` (the target's user, when the probe started as root because the target's
/// user came from its image): files are then read with exactly the target's rights.
pub fn become_user(uid: u32, gid: u32) -> Result<(), String> {
    // SAFETY: plain syscalls on integers; the order (groups, gid, then uid) keeps the right
    // to change groups until the uid is dropped.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(std::io::Error::last_os_error().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_and_own_process_are_read() {
        let vars = parse_environ(b"A=1\0B=x=y\0\0=skip\0");
        assert_eq!(vars.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(vars.len(), 2);
        let (uid, _) = own_ids();
        assert_eq!(process_ids(std::process::id()).map(|p| p.0), Some(uid));
    }

    #[test]
    fn files_come_from_the_target_root_first() {
        let dir = std::env::temp_dir().join(format!("podiam-probe-t-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/token"), b"from-root").unwrap();
        let mut t = Target::from_vars(BTreeMap::new(), "own");
        t.root = Some(dir.clone());
        let (bytes, whose) = t.read_file_with_origin("/etc/token").unwrap();
        assert_eq!(
            (bytes.as_slice(), whose),
            (&b"from-root"[..], "the target container's file")
        );
        assert!(t.read_file("/nonexistent/podiam").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
