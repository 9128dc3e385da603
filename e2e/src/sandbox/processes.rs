//! The daemon's processes as recorded in `sandbox.json`: name, pid and start time (so a pid
//! reused by an unrelated process after a crash is never signalled), found as descendants of
//! the daemon, and stopped SIGTERM first, SIGKILL after a grace period.

use std::time::Duration;

use crate::cluster::process::{all_pids, parent_of, signal, wait_gone};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedProcess {
    pub name: String,
    pub pid: u32,
    /// Clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

impl RecordedProcess {
    /// The process `pid` as it runs now.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat.get(open + 1..close)?.to_owned();
        // Fields after the name start at field 3 (state); start time is field 22.
        let start_time = stat[close + 1..].split_whitespace().nth(19)?.parse().ok()?;
        Some(Self {
            name,
            pid,
            start_time,
        })
    }

    /// Still this process (same pid, same start time) and not a zombie.
    pub fn is_alive(&self) -> bool {
        crate::cluster::process::is_alive(self.pid)
            && Self::of(self.pid).is_some_and(|now| now.start_time == self.start_time)
    }
}

/// Every process below `root` (children, their children, …), `root` excluded.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, _) in parents.iter().filter(|(_, p)| *p == parent) {
            if !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// SIGTERM to each live process, up to `grace` for them to exit, then SIGKILL; returns the
/// pids still alive after that (none, unless the kernel holds one in uninterruptible sleep).
pub fn stop(processes: &[RecordedProcess], grace: Duration) -> Vec<u32> {
    let live: Vec<u32> = processes
        .iter()
        .filter(|p| p.is_alive())
        .map(|p| p.pid)
        .collect();
    for pid in &live {
        signal(*pid, libc::SIGTERM);
    }
    let remaining = wait_gone(&live, grace);
    for pid in &remaining {
        signal(*pid, libc::SIGKILL);
    }
    wait_gone(&remaining, Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_recorded_alive_and_a_changed_start_time_is_not() {
        let me = RecordedProcess::of(std::process::id()).expect("own stat");
        assert!(me.is_alive());
        assert!(!me.name.is_empty());
        let reused = RecordedProcess {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive(), "a reused pid is another process");
    }

    #[test]
    fn a_child_is_a_descendant_and_is_stopped() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        assert!(descendants(std::process::id()).contains(&pid));
        let recorded = RecordedProcess::of(pid).expect("child stat");
        // Reap in the background so the child does not linger as a zombie of ours.
        let reaper = std::thread::spawn(move || child.wait());
        assert!(stop(std::slice::from_ref(&recorded), Duration::from_secs(5)).is_empty());
        reaper.join().expect("reaper").expect("wait");
        assert!(!recorded.is_alive());
    }
}
