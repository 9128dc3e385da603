//! docs/checks.md and the code agree on the check ids, both ways: every id the code can emit is
//! documented, and every documented id is one the code can emit (a renamed or removed check
//! must not linger in the docs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// First segments of check ids. An id in the docs with another prefix fails the test, so a
/// new family of checks cannot slip past the code → docs direction unnoticed.
const PREFIXES: &[&str] = &[
    "aws",
    "gcp",
    "azure",
    "static-credentials",
    "identity",
    "k8s",
    "node",
    "probe",
    "sdk",
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn docs() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join("../docs/checks.md")).unwrap()
}

/// Every string literal in `src/` shaped like a check id, with the file it is in.
fn ids_in_code() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let id = regex::Regex::new(&format!(r#""((?:{})\.[a-z0-9.-]+)""#, PREFIXES.join("|"))).unwrap();
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for cap in id.captures_iter(&text) {
            found.push((cap[1].to_owned(), f.clone()));
        }
    }
    found
}

/// The ids the docs' tables define: the back-quoted first cell of each table row.
fn ids_in_docs(docs: &str) -> BTreeSet<String> {
    let row = regex::Regex::new(r"(?m)^\| `([^`]+)` \|").unwrap();
    row.captures_iter(docs).map(|c| c[1].to_owned()).collect()
}

#[test]
fn every_check_id_is_documented() {
    let docs = docs();
    let documented = ids_in_docs(&docs);
    let found = ids_in_code();
    for (id, file) in &found {
        assert!(
            documented.contains(id),
            "check id {id} (in {}) has no row in docs/checks.md",
            file.display()
        );
    }
    assert!(
        found.len() > 15,
        "expected to find the check ids in the sources, found {}",
        found.len()
    );
}

#[test]
fn every_documented_check_id_exists_in_the_code() {
    let documented = ids_in_docs(&docs());
    let in_code: BTreeSet<String> = ids_in_code().into_iter().map(|(id, _)| id).collect();
    assert!(
        documented.len() > 15,
        "expected the docs' tables to list the check ids, found {}",
        documented.len()
    );
    for id in &documented {
        let prefix = id.split('.').next().unwrap_or_default();
        assert!(
            id.contains('.') && PREFIXES.contains(&prefix),
            "docs/checks.md lists {id:?}, which is not a check id with a known prefix ({PREFIXES:?}): \
             fix the row, or add the prefix to this test"
        );
        assert!(
            in_code.contains(id),
            "docs/checks.md lists {id}, but no source file under kubectl-podiam/src emits it"
        );
    }
}

#[test]
fn doc_rows_are_read_as_ids() {
    // The extraction itself: a row's first back-quoted cell only, not ids quoted in prose.
    let sample = "| id | fails when | fix |\n| --- | --- | --- |\n| `aws.a.b` | see `aws.c.d` | x |\nText `k8s.e.f`.\n";
    assert_eq!(ids_in_docs(sample), BTreeSet::from(["aws.a.b".to_owned()]));
}

/// Every test docs/bad-input.md names in its last column exists (as `fn NAME` under tests/ or
/// src/, or a `module::tests` path under src/), so a row cannot claim a test that was renamed
/// or removed; and no row is left without one.
#[test]
fn every_bad_input_row_names_an_existing_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/bad-input.md")).unwrap();
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    source_files(&root.join("tests"), &mut files);
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let name = regex::Regex::new(r"`([a-z0-9_:]+)`").unwrap();
    let mut rows = 0;
    for line in doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| input") && !l.starts_with("| ---"))
    {
        rows += 1;
        let last = line.trim_end_matches('|').rsplit('|').next().unwrap();
        let tests: Vec<&str> = name
            .captures_iter(last)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        assert!(!tests.is_empty(), "a row names no test: {line}");
        for test in tests {
            let leaf = test.rsplit("::").next().unwrap();
            let found = if leaf == "tests" {
                let module = test.trim_end_matches("::tests").replace("::", "/");
                root.join("src").join(format!("{module}.rs")).exists()
                    || root.join("src").join(&module).join("tests.rs").exists()
            } else {
                code.contains(&format!("fn {leaf}("))
            };
            assert!(
                found,
                "docs/bad-input.md names {test}, which is no test: {line}"
            );
        }
    }
    assert!(rows >= 20, "only {rows} rows read from docs/bad-input.md");
}
