//! Running iptables for the harness's own rules: every call waits for the xtables lock
//! (scenarios run in parallel), and every rule the harness adds carries a comment starting
//! with [`RULE_COMMENT`], so leftover cleanup finds them whoever added them.

use std::path::Path;
use std::process::Command;

use super::error::{ClusterError, Result};

/// The comment (or its first word) on every iptables rule the harness adds.
pub const RULE_COMMENT: &str = "podiam-e2e";

/// Runs `iptables -w ARGS`; its stdout, or an error with its stderr.
pub fn run(iptables: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(iptables)
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| {
            ClusterError::other(format!(
                "running {} {}: {e}",
                iptables.display(),
                args.join(" ")
            ))
        })?;
    if !out.status.success() {
        return Err(ClusterError::other(format!(
            "{} {} failed: {}",
            iptables.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Adds `spec` to `chain` of `table` at the top unless an identical rule is there.
pub fn insert_once(iptables: &Path, table: &str, chain: &str, spec: &[&str]) -> Result<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend(spec);
    if run(iptables, &check).is_ok() {
        return Ok(());
    }
    let mut insert = vec!["-t", table, "-I", chain, "1"];
    insert.extend(spec);
    run(iptables, &insert).map(|_| ())
}

/// Deletes `spec` from `chain` of `table`, every copy of it. Best effort.
pub fn delete_all(iptables: &Path, table: &str, chain: &str, spec: &[&str]) {
    let mut delete = vec!["-t", table, "-D", chain];
    delete.extend(spec);
    // One copy per install, but an interrupted run may have left more.
    for _ in 0..16 {
        if run(iptables, &delete).is_err() {
            break;
        }
    }
}

/// Deletes every rule of `chain` in `table` whose `-L -n` line satisfies `ours` (e.g. carries
/// the `/* podiam-e2e` comment). Returns how many were deleted. Best effort.
pub fn delete_matching(
    iptables: &Path,
    table: &str,
    chain: &str,
    ours: impl Fn(&str) -> bool,
) -> usize {
    let Ok(listing) = run(
        iptables,
        &["-t", table, "-L", chain, "-n", "--line-numbers"],
    ) else {
        return 0;
    };
    let mut numbers: Vec<u32> = listing
        .lines()
        .filter(|line| ours(line))
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    numbers
        .iter()
        .filter(|n| run(iptables, &["-t", table, "-D", chain, &n.to_string()]).is_ok())
        .count()
}

/// Whether a `-L -n` line carries the harness's comment.
pub fn has_rule_comment(line: &str) -> bool {
    line.contains(&format!("/* {RULE_COMMENT}"))
}
