//! docs/checks.md lists every check id the code can emit.

use std::path::Path;

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_check_id_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../docs/checks.md")).unwrap();
    let id = regex::Regex::new(
        r#""((?:aws|gcp|azure|static-credentials|identity|k8s|node)\.[a-z0-9.-]+)""#,
    )
    .unwrap();
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    let mut found = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for cap in id.captures_iter(&text) {
            found += 1;
            let id = &cap[1];
            assert!(
                docs.contains(&format!("`{id}`")),
                "check id {id} (in {}) is missing from docs/checks.md",
                f.display()
            );
        }
    }
    assert!(
        found > 15,
        "expected to find the check ids in the sources, found {found}"
    );
}
