//! Emulator processes outlive a harness that dies without unwinding (SIGKILL, a killed test
//! binary): `kill_on_drop` never runs, and moto or LocalStack keep their port and every
//! descriptor they inherited. Each is recorded while it runs — a file naming it and the harness
//! process that owns it, both with their start time so a reused pid is never signalled — and
//! the next start of any emulator kills the children of owners that are gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::process::{signal, wait_gone};
use crate::sandbox::processes::RecordedProcess;

/// `<cache>/run/emulator-children`: one file per running emulator child.
pub fn records_dir() -> PathBuf {
    crate::cluster::cache_dir()
        .join("run")
        .join("emulator-children")
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    owner: RecordedProcess,
    child: RecordedProcess,
}

/// Removes the record when dropped (the child is then stopped by its owner).
#[derive(Debug)]
pub struct ChildRecord {
    path: PathBuf,
}

impl ChildRecord {
    /// Records `child_pid`, owned by this process, in `dir`. Best effort: without a record
    /// the child is only not reaped after a crash.
    pub fn write(dir: &Path, child_pid: u32) -> Option<Self> {
        let record = Record {
            owner: RecordedProcess::of(std::process::id())?,
            child: RecordedProcess::of(child_pid)?,
        };
        fs::create_dir_all(dir).ok()?;
        let path = dir.join(format!("{}-{}.json", record.owner.pid, child_pid));
        let text = serde_json::to_string(&record).ok()?;
        fs::write(&path, text).ok()?;
        Some(Self { path })
    }
}

impl Drop for ChildRecord {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// SIGKILLs every recorded child whose owner is gone and removes its record; returns the pids
/// killed. Children of live owners (another run, a sandbox daemon) are left alone.
pub fn reap_orphans(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let record: Option<Record> = fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        match record {
            Some(record) if record.owner.is_alive() => continue,
            Some(record) if record.child.is_alive() => {
                signal(record.child.pid, libc::SIGKILL);
                killed.push(record.child.pid);
            }
            _ => {}
        }
        let _ = fs::remove_file(&path);
    }
    wait_gone(&killed, Duration::from_secs(5));
    killed
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_child_whose_owner_died_is_killed_and_a_live_owners_child_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // A dead owner: a process that has exited, recorded as the owner of a live `sleep`.
        let mut owner = Command::new("true").spawn().unwrap();
        let dead_owner = RecordedProcess::of(owner.id()).unwrap();
        owner.wait().unwrap();
        let mut orphan = Command::new("sleep").arg("60").spawn().unwrap();
        let record = Record {
            owner: dead_owner,
            child: RecordedProcess::of(orphan.id()).unwrap(),
        };
        let orphan_file = dir.path().join("orphan.json");
        fs::write(&orphan_file, serde_json::to_string(&record).unwrap()).unwrap();
        // A live owner (this test) and its child.
        let mut kept = Command::new("sleep").arg("60").spawn().unwrap();
        let kept_record = ChildRecord::write(dir.path(), kept.id()).unwrap();

        let killed = reap_orphans(dir.path());

        assert_eq!(killed, [orphan.id()]);
        assert!(
            orphan.try_wait().unwrap().is_some(),
            "the orphan still runs"
        );
        assert!(!orphan_file.exists());
        assert!(
            kept.try_wait().unwrap().is_none(),
            "a live owner's child was killed"
        );
        assert!(kept_record.path.exists());
        drop(kept_record);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        kept.kill().unwrap();
        kept.wait().unwrap();
    }

    #[test]
    fn a_record_whose_pid_was_reused_never_signals_the_new_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
        let mut record = Record {
            owner: RecordedProcess::of(std::process::id()).unwrap(),
            child: RecordedProcess::of(stranger.id()).unwrap(),
        };
        record.owner.pid = u32::MAX; // gone
        record.child.start_time += 1; // the recorded child was another process
        fs::write(
            dir.path().join("reused.json"),
            serde_json::to_string(&record).unwrap(),
        )
        .unwrap();

        assert!(reap_orphans(dir.path()).is_empty());
        assert!(stranger.try_wait().unwrap().is_none());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }
}
