//! One cluster per machine: the local provider's bridge, ports (6443, 2379, 10250) and iptables
//! rules, and kind's cluster name, are machine-wide. Every cluster start takes an exclusive
//! `flock` on [`MACHINE_LOCK_PATH`] and holds it for the cluster's lifetime, so a second run
//! waits instead of cleaning the first one's "leftovers" from under it. The kernel drops the
//! lock when the process dies, so a crash never leaves it held.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

/// The lock file; also what `flock` users outside the harness take (docs, CI scripts).
pub const MACHINE_LOCK_PATH: &str = "/tmp/podiam-cluster.lock";

/// Held while it lives; released on drop (closing the descriptor) or by the process's exit.
#[derive(Debug)]
pub struct MachineLock {
    _file: File,
}

impl MachineLock {
    /// Waits for the machine's cluster lock, saying so on stderr when another run holds it.
    pub fn acquire() -> io::Result<Self> {
        Self::acquire_at(Path::new(MACHINE_LOCK_PATH))
    }

    pub fn acquire_at(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            eprintln!(
                "podiam-e2e: another cluster run holds {}; waiting for it to finish",
                path.display()
            );
            let waited = Instant::now();
            flock(&file, libc::LOCK_EX)?;
            eprintln!(
                "podiam-e2e: got {} after {:.1}s",
                path.display(),
                waited.elapsed().as_secs_f64()
            );
        }
        Ok(MachineLock { _file: file })
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor this function borrows; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = MachineLock::acquire_at(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(
            flock(&other, libc::LOCK_EX | libc::LOCK_NB).is_err(),
            "the lock is exclusive while held"
        );
        drop(first);
        assert!(
            flock(&other, libc::LOCK_EX | libc::LOCK_NB).is_ok(),
            "dropping the holder releases it"
        );
    }
}
