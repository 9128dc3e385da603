//! The pod bridge's rules in FORWARD, first in the chain and commented `podiam-e2e`:
//! - link-local destinations (169.254.0.0/16) other than the services DNATed to the host
//!   (`link_local.rs`) are refused: a pod's packet to 169.254.170.23:8080 must not leave by the
//!   host's uplink and reach whatever answers there (on a cloud VM, its own metadata service);
//! - everything else from the bridge (pod to pod, pod to the outside) and replies to it are
//!   accepted whatever the host's FORWARD policy: Docker sets it to DROP when it starts with
//!   IP forwarding off (and the policy stays after dockerd stops), and with `br_netfilter`
//!   loaded (Docker loads it) even pod-to-pod packets on the bridge traverse FORWARD.
//!
//! The egress-faults jump is inserted above them later, so `block` steps still apply.

use std::path::Path;

use super::error::Result;
use super::iptables::{self, RULE_COMMENT};

/// Pods' packets to link-local addresses that reach FORWARD (not DNATed to the host): TCP
/// gets a reset (connection refused, as from a host without the service), the rest an ICMP
/// port unreachable.
const LINK_LOCAL: &str = "169.254.0.0/16";

/// The rules for `bridge` in the order they must end up in, as `-I FORWARD 1` takes them.
fn rules(bridge: &str) -> [Vec<&str>; 4] {
    let comment = ["-m", "comment", "--comment", RULE_COMMENT];
    let mut from = vec!["-i", bridge];
    from.extend(comment);
    from.extend(["-j", "ACCEPT"]);
    let mut replies = vec![
        "-o",
        bridge,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
    ];
    replies.extend(comment);
    replies.extend(["-j", "ACCEPT"]);
    let mut refuse_tcp = vec!["-i", bridge, "-d", LINK_LOCAL, "-p", "tcp"];
    refuse_tcp.extend(comment);
    refuse_tcp.extend(["-j", "REJECT", "--reject-with", "tcp-reset"]);
    let mut refuse = vec!["-i", bridge, "-d", LINK_LOCAL];
    refuse.extend(comment);
    refuse.extend(["-j", "REJECT"]);
    [refuse_tcp, refuse, from, replies]
}

/// Inserts the rules for `bridge` at the top of FORWARD (once), in [`rules`]' order.
pub fn allow_bridge(iptables: &Path, bridge: &str) -> Result<()> {
    for rule in rules(bridge).iter().rev() {
        iptables::insert_once(iptables, "filter", "FORWARD", rule)?;
    }
    Ok(())
}

/// Removes every FORWARD rule the harness added (any bridge). Best effort.
pub fn remove_leftover_rules(iptables: &Path) -> usize {
    iptables::delete_matching(iptables, "filter", "FORWARD", iptables::has_rule_comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_cover_the_bridge_only() {
        let [refuse_tcp, refuse, from, replies] = rules("podiam0");
        assert_eq!(
            refuse_tcp.join(" "),
            "-i podiam0 -d 169.254.0.0/16 -p tcp -m comment --comment podiam-e2e -j REJECT --reject-with tcp-reset"
        );
        assert!(refuse.join(" ").ends_with("-j REJECT"));
        assert_eq!(
            from.join(" "),
            "-i podiam0 -m comment --comment podiam-e2e -j ACCEPT"
        );
        assert_eq!(
            replies.join(" "),
            "-o podiam0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment podiam-e2e -j ACCEPT"
        );
    }
}
