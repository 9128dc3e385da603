//! Which scenarios a provider cannot run, and why: derived from the scenario's steps, so the
//! list cannot drift from what the steps need. `run` reports such a scenario as SKIP with the
//! reason (and as skipped in JUnit), never as a pass.

use super::environment::Provider;
use crate::scenario::{BlockVia, Scenario, Step};

/// Why `provider` cannot run `scenario`, or `None` when it can.
pub fn unsupported(scenario: &Scenario, provider: Provider) -> Option<String> {
    if provider != Provider::Existing {
        return None;
    }
    let iptables_block = scenario
        .spec
        .steps
        .iter()
        .any(|step| matches!(step, Step::Block(b) if b.via == BlockVia::Iptables));
    iptables_block.then(|| {
        "a `block` step cuts a pod's egress with the harness's own iptables chain (on the local \
         provider's pod bridge, in the kind node); a cluster the harness did not make has none"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(block: &str) -> Scenario {
        let text = format!(
            "apiVersion: podiam.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: t}}\n\
             spec:\n  cloud: aws\n  steps:\n    - wait: {{pod: p}}\n{block}"
        );
        Scenario::from_yaml(Path::new("t.yaml"), &text).unwrap()
    }

    #[test]
    fn iptables_blocks_are_unsupported_on_a_cluster_the_harness_did_not_make() {
        let blocked = scenario("    - block: {pod: p, host: sts.amazonaws.com}\n");
        let reason = unsupported(&blocked, Provider::Existing).unwrap();
        assert!(reason.contains("iptables"), "{reason}");
        assert_eq!(unsupported(&blocked, Provider::Local), None);
        assert_eq!(unsupported(&blocked, Provider::Kind), None);

        let front = scenario("    - block: {pod: p, host: sts.amazonaws.com, via: front}\n");
        assert_eq!(unsupported(&front, Provider::Existing), None);
        assert_eq!(unsupported(&scenario(""), Provider::Existing), None);
    }
}
