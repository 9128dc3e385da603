//! Every scenario in scenarios/ loads and validates (schema, steps, JSONPath assertions).

use std::path::PathBuf;

use podiam_e2e::scenario::{Cloud, Scenario, Step};
use podiam_e2e::setup::SetupVariables;

#[test]
fn all_scenarios_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = Scenario::load_all(&[dir]).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(scenarios.len() >= 10, "found {} scenarios", scenarios.len());
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.metadata.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        scenarios.len(),
        "scenario names must be unique (they name namespaces)"
    );
    for s in &scenarios {
        assert!(
            s.spec
                .steps
                .iter()
                .any(|step| matches!(step, Step::Podiam(p) if !p.assertions.is_empty())),
            "{} asserts nothing about the plugin's output",
            s.metadata.name
        );
        // A block needs the pod's address: the pod must have been waited for before it.
        for (i, step) in s.spec.steps.iter().enumerate() {
            if let Step::Block(block) = step {
                assert!(
                    s.spec.steps[..i].iter().any(
                        |earlier| matches!(earlier, Step::Wait(w) if w.pod.as_deref() == Some(block.pod.as_str()))
                    ),
                    "{}: step {} blocks pod {} before waiting for it",
                    s.metadata.name,
                    i + 1,
                    block.pod
                );
            }
        }
        // Azure setups are applied in memory: what Entra or RBAC would refuse fails here.
        let expanded = s
            .spec
            .setup
            .expand(&SetupVariables {
                issuer: "https://127.0.0.1:1/id/X".to_owned(),
                account_id: "123456789012".to_owned(),
            })
            .unwrap_or_else(|e| panic!("{}: {e:#}", s.metadata.name));
        expanded
            .azure
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e:#}", s.metadata.name));
        expanded
            .node
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e:#}", s.metadata.name));
        if s.metadata.name.starts_with("node-") {
            assert!(
                !expanded.node.is_empty(),
                "{} declares no node identity (spec.setup.node)",
                s.metadata.name
            );
        }
        if s.metadata.name.starts_with("azure-") {
            assert_eq!(s.spec.cloud, Cloud::Azure, "{}", s.metadata.name);
            assert!(
                !expanded.azure.applications.is_empty(),
                "{} sets up no Entra application",
                s.metadata.name
            );
        }
    }
}
