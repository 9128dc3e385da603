//! Egress faults for scenarios (`block` steps): iptables rules in a chain of the harness's own,
//! `PODIAM-FAULTS` (filter table), jumped to for packets arriving from the pod bridge — from
//! INPUT (to the host's own bridge addresses: the cloud front, CoreDNS, and the link-local
//! services DNATed there) and from FORWARD (anywhere else). Each rule matches exactly one pod,
//! one original destination address and one TCP port, and drops (the pod's client times out)
//! or resets (connection refused; the reset is translated back through the DNAT).
//! The chain is emptied and removed by `cluster down` and by leftover cleanup.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::error::Result;
use super::pod_network::pod_network;

/// The harness's chain in the filter table.
pub const FAULTS_CHAIN: &str = "PODIAM-FAULTS";

/// The built-in chains that jump to [`FAULTS_CHAIN`] for packets from the bridge.
const HOOKS: [&str; 2] = ["INPUT", "FORWARD"];

/// What a blocked packet gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressAction {
    /// Silently dropped: the client waits until its own timeout.
    Drop,
    /// Answered with a TCP reset: the client sees "connection refused".
    Reject,
}

/// One blocked path: TCP from `source` (a pod's address) to `destination:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub port: u16,
    pub action: EgressAction,
    /// Written as the rule's comment (the scenario's namespace), for whoever lists the chain.
    pub tag: String,
}

impl EgressRule {
    /// The rule specification, the same for `-A` and `-D`.
    fn spec(&self) -> Vec<String> {
        // The original destination: a link-local service reaches the host by DNAT
        // (link_local.rs), and the filter table sees the rewritten address.
        let mut spec: Vec<String> = [
            "-s",
            &format!("{}/32", self.source),
            "-p",
            "tcp",
            "-m",
            "conntrack",
            "--ctorigdst",
            &format!("{}/32", self.destination),
            "--ctorigdstport",
            &self.port.to_string(),
            "-m",
            "comment",
            "--comment",
            &format!("podiam-e2e {}", self.tag),
            "-j",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match self.action {
            EgressAction::Drop => spec.push("DROP".into()),
            EgressAction::Reject => spec.extend(
                ["REJECT", "--reject-with", "tcp-reset"]
                    .iter()
                    .map(|s| s.to_string()),
            ),
        }
        spec
    }
}

/// The installed chain; rules are added and removed one by one.
#[derive(Debug)]
pub struct EgressFaults {
    iptables: PathBuf,
}

impl EgressFaults {
    /// Creates (or empties) the chain and makes INPUT and FORWARD jump to it first for packets
    /// from the pod bridge.
    pub fn install(iptables: &Path) -> Result<Self> {
        let faults = Self {
            iptables: iptables.to_path_buf(),
        };
        if faults.run(&["-N", FAULTS_CHAIN]).is_err() {
            // Already there (a cluster that was not taken down): start empty.
            faults.run(&["-F", FAULTS_CHAIN])?;
        }
        for hook in HOOKS {
            // First in the chain: before the bridge's ACCEPT rules (forward.rs).
            super::iptables::insert_once(iptables, "filter", hook, &jump(pod_network().bridge()))?;
        }
        Ok(faults)
    }

    pub fn add(&self, rule: &EgressRule) -> Result<()> {
        let spec = rule.spec();
        let mut args = vec!["-A", FAULTS_CHAIN];
        args.extend(spec.iter().map(String::as_str));
        self.run(&args)
    }

    pub fn remove(&self, rule: &EgressRule) -> Result<()> {
        let spec = rule.spec();
        let mut args = vec!["-D", FAULTS_CHAIN];
        args.extend(spec.iter().map(String::as_str));
        self.run(&args)
    }

    /// The chain as `iptables -S` prints it (for diagnostics and tests).
    pub fn listing(&self) -> Result<String> {
        super::iptables::run(&self.iptables, &["-S", FAULTS_CHAIN])
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        super::iptables::run(&self.iptables, args).map(|_| ())
    }
}

/// Removes the jumps, the rules and the chain. Best effort: nothing may be there.
pub fn remove_faults_chain(iptables: &Path) {
    for hook in HOOKS {
        // Any bridge's jump, with or without the comment (earlier versions had none).
        super::iptables::delete_matching(iptables, "filter", hook, |line| {
            line.split_whitespace().nth(1) == Some(FAULTS_CHAIN)
        });
    }
    let _ = super::iptables::run(iptables, &["-F", FAULTS_CHAIN]);
    let _ = super::iptables::run(iptables, &["-X", FAULTS_CHAIN]);
}

/// The jump from INPUT and FORWARD for packets from `bridge`.
fn jump(bridge: &str) -> [&str; 8] {
    [
        "-i",
        bridge,
        "-m",
        "comment",
        "--comment",
        super::iptables::RULE_COMMENT,
        "-j",
        FAULTS_CHAIN,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_matches_one_pod_one_address_one_port() {
        let rule = EgressRule {
            source: Ipv4Addr::new(10, 213, 0, 7),
            destination: Ipv4Addr::new(10, 213, 0, 1),
            port: 443,
            action: EgressAction::Reject,
            tag: "podiam-x".into(),
        };
        assert_eq!(
            rule.spec().join(" "),
            "-s 10.213.0.7/32 -p tcp -m conntrack --ctorigdst 10.213.0.1/32 --ctorigdstport 443 -m comment --comment podiam-e2e podiam-x -j REJECT --reject-with tcp-reset"
        );
        let drop = EgressRule {
            action: EgressAction::Drop,
            port: 80,
            ..rule
        };
        let spec = drop.spec().join(" ");
        assert!(spec.contains("--ctorigdstport 80 "), "{spec}");
        assert!(spec.ends_with("-j DROP"), "{spec}");
    }
}
