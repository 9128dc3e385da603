//! CPU time of processes, read from `/proc/<pid>/stat`: where a benchmark's work went (the
//! plugin, the apiserver, the kubelet, containerd's shims running each exec, …).

use std::time::Duration;

/// User + system time of `pid`, plus that of its reaped children (a shim's `runc exec` and
/// the exec'd command end up there). None when the process is gone or unreadable.
pub fn of_process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&stat).map(ticks_to_duration)
}

/// The harness process itself (the in-process emulators: gate, issuer, webhooks).
pub fn of_self() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    ticks_of_stat(&stat).map(ticks_to_duration)
}

/// utime + stime + cutime + cstime from a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn ticks_of_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (field 14) is index 11.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut sum = 0u64;
    for index in 11..=14 {
        let value: i64 = fields.get(index)?.parse().ok()?;
        sum += u64::try_from(value).unwrap_or(0);
    }
    Some(sum)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).unwrap_or(100).max(1);
    Duration::from_millis(ticks * 1000 / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let stat = "42 (kube (api) server) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0";
        assert_eq!(ticks_of_stat(stat), Some(150 + 50 + 7 + 3));
        assert_eq!(ticks_of_stat("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(of_self().is_some());
        assert!(of_process(std::process::id()).is_some());
        assert!(of_process(u32::MAX).is_none());
    }
}
