//! A component process: spawned with its output in a log file and its pid in a pid file,
//! stopped gracefully then by force, and found again by pid file after a crashed run.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::{ClusterError, IoContext, Result};

/// Lines of a log shown in an error.
const TAIL_LINES: usize = 25;

/// Where a component's log and pid file live.
#[derive(Debug, Clone)]
pub struct ProcessFiles {
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

impl ProcessFiles {
    pub fn new(logs_dir: &Path, run_dir: &Path, name: &str) -> Self {
        Self {
            log: logs_dir.join(format!("{name}.log")),
            pid_file: run_dir.join(format!("{name}.pid")),
        }
    }
}

#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    child: Child,
    files: ProcessFiles,
    exit: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Starts `program args` with stdout and stderr appended to the log file. The first log
    /// line is the command line (paths and flags only: no key material is ever an argument).
    pub fn spawn(name: &str, program: &Path, args: &[String], files: ProcessFiles) -> Result<Self> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log)
            .io_context(|| format!("opening {}", files.log.display()))?;
        writeln!(log, "# {} {}", program.display(), args.join(" "))
            .io_context(|| format!("writing {}", files.log.display()))?;
        let stderr = log
            .try_clone()
            .io_context(|| format!("opening {}", files.log.display()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|source| ClusterError::Io {
                context: format!("starting {name} ({})", program.display()),
                source,
            })?;
        fs::write(&files.pid_file, format!("{}\n", child.id()))
            .io_context(|| format!("writing {}", files.pid_file.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            files,
            exit: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.files.log
    }

    /// `Some(status)` once the process has exited (and been reaped).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// An error naming this component, with the end of its log.
    pub fn failure(&self, message: impl Into<String>) -> ClusterError {
        ClusterError::Component {
            component: self.name.clone(),
            message: message.into(),
            log: self.files.log.clone(),
            tail: tail(&self.files.log, TAIL_LINES),
        }
    }

    /// Fails with the log tail if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(self.failure(format!("exited unexpectedly ({status})"))),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps. Removes the pid file.
    pub fn stop(&mut self, grace: Duration) {
        self.terminate();
        self.wait_or_kill(Instant::now() + grace);
    }

    /// Sends SIGTERM (graceful shutdown) if still running.
    pub fn terminate(&mut self) {
        if self.is_running() {
            signal(self.pid(), libc::SIGTERM);
        }
    }

    /// Waits for exit until `deadline`, then SIGKILLs; always reaps and removes the pid file.
    pub fn wait_or_kill(&mut self, deadline: Instant) {
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
        if self.is_running() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
        let _ = fs::remove_file(&self.files.pid_file);
    }
}

/// Sends `sig` to `pid`; errors (already gone) are ignored.
pub fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid)
        && pid > 1
    {
        // SAFETY: kill(2) with a positive pid has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// True while `/proc/<pid>` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// The executable of `pid`, if readable.
pub fn exe_of(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The NUL-separated command line of `pid`, joined by spaces.
pub fn cmdline_of(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_owned(),
    )
}

/// Every pid on the machine.
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The parent pid of `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A process left by an earlier run (its pid file survived): killed if its executable is
/// `program`, so a crashed test does not block the next `up`.
pub fn kill_stale(pid_file: &Path, program: &Path) {
    let Ok(text) = fs::read_to_string(pid_file) else {
        return;
    };
    if let Ok(pid) = text.trim().parse::<u32>() {
        let same = exe_of(pid)
            .is_some_and(|exe| exe == program || fs::canonicalize(program).is_ok_and(|p| p == exe));
        if same && is_alive(pid) {
            signal(pid, libc::SIGKILL);
            wait_gone(&[pid], Duration::from_secs(5));
        }
    }
    let _ = fs::remove_file(pid_file);
}

/// Waits until none of `pids` is alive, up to `timeout`; returns those still alive.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    use std::io::{Read, Seek, SeekFrom};
    // Enough for `lines` long klog lines without reading a large log whole.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = file.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}
