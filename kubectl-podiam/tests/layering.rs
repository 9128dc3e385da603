//! The plugin's layering, enforced (docs/architecture.md, "Layering"): dependencies go one way.
//!
//! - `cloud/` holds the clouds' exact strings and reads nothing else of the crate;
//! - `kube/` and `exchange/` never reach up into `mechanisms/` (they read `cloud/` instead);
//! - `report/` never reads `fleet` (fleet renders through `report::Format`);
//! - `env_probe` never reads `evidence` (evidence frames its exec through `env_probe`);
//! - `judge.rs` is the flow and names no cloud or mechanism module: mechanism-specific paths
//!   sit behind `mechanisms::` functions (`resolve_template`, `unwired::judge`).
//!
//! Every line counts, tests and comments included: a doc link is a dependency too.

use std::path::{Path, PathBuf};

struct Rule {
    /// Files under `src/` the rule covers: a directory (recursively) or one file.
    scope: &'static str,
    forbidden: &'static [&'static str],
    /// Occurrences that are allowed despite containing a forbidden string.
    allowed: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        scope: "kube",
        forbidden: &["mechanisms::"],
        allowed: &[],
        why: "kube/ is below the mechanisms: read cloud facts from crate::cloud",
    },
    Rule {
        scope: "exchange",
        forbidden: &["mechanisms::"],
        allowed: &[],
        why: "exchange/ is below the mechanisms: read cloud facts from crate::cloud",
    },
    Rule {
        scope: "cloud",
        forbidden: &["crate::", "super::super"],
        allowed: &["crate::cloud"],
        why: "cloud/ is a leaf of plain facts: it reads nothing else of the crate",
    },
    Rule {
        scope: "report",
        forbidden: &["fleet::"],
        allowed: &[],
        why: "report/ must not read fleet.rs (fleet reads report::Format); shared items live in unjudged.rs",
    },
    Rule {
        scope: "env_probe.rs",
        forbidden: &["evidence::"],
        allowed: &[],
        why: "env_probe.rs must not read evidence.rs (evidence reads env_probe)",
    },
    Rule {
        scope: "judge.rs",
        forbidden: &["aws_", "gcp_", "azure_", "cloud::"],
        allowed: &[],
        why: "judge.rs is the flow and knows no mechanism by name: put the step behind mechanisms::",
    },
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `file:line: text — why` for every line of `text` that breaks `rule`.
fn violations(file: &str, text: &str, rule: &Rule) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let mut rest = line.to_string();
            for allowed in rule.allowed {
                rest = rest.replace(allowed, "");
            }
            rule.forbidden.iter().any(|f| rest.contains(f))
        })
        .map(|(n, line)| format!("{file}:{}: {} — {}", n + 1, line.trim(), rule.why))
        .collect()
}

#[test]
fn dependencies_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for rule in RULES {
        let scope = src.join(rule.scope);
        assert!(scope.exists(), "rule scope {} is gone", scope.display());
        let mut files = Vec::new();
        rust_files(&scope, &mut files);
        assert!(!files.is_empty(), "no Rust files under {}", scope.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.strip_prefix(&src).unwrap().display().to_string();
            found.extend(violations(&format!("src/{name}"), &text, rule));
        }
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn cloud_facts_have_one_home() {
    // The per-mechanism annotations.rs files moved to src/cloud/; none may come back.
    let mechanisms = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mechanisms");
    let mut files = Vec::new();
    rust_files(&mechanisms, &mut files);
    let strays: Vec<_> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "annotations.rs"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        strays.is_empty(),
        "cloud facts belong in src/cloud/: {strays:?}"
    );
}

#[test]
fn a_violation_names_its_file_and_line() {
    let rule = &RULES[0];
    let text = "use crate::model::Check;\nuse crate::mechanisms::static_credentials;\n";
    let found = violations("src/kube/pods.rs", text, rule);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/kube/pods.rs:2: use crate::mechanisms::static_credentials;"),
        "{}",
        found[0]
    );
    let cloud = RULES.iter().find(|r| r.scope == "cloud").unwrap();
    assert!(violations("src/cloud/gcp.rs", "use crate::cloud::aws;", cloud).is_empty());
    assert_eq!(
        violations("src/cloud/gcp.rs", "use crate::model::Check;", cloud).len(),
        1
    );
}
