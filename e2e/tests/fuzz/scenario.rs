//! Scenario files (`scenario::schema`): every shipped scenario, mutated as a tree (a value
//! replaced or deleted at a random path) and as text (lines dropped, duplicated, cut), plus
//! hostile text. `Scenario::from_yaml` answers a scenario or an error naming the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

use podiam_e2e::scenario::Scenario;

use super::support::{hostile_text, runner};

const CI_TREE: u32 = 300;
const CI_TEXT: u32 = 300;
const BOUND: Duration = Duration::from_secs(5);

fn shipped() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                // Manifests beside the scenarios are not seeds.
                let text = std::fs::read_to_string(&p).unwrap();
                if Scenario::from_yaml(&p, &text).is_ok() {
                    out.push((p.clone(), text));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
        &mut out,
    );
    assert!(out.len() > 20, "the shipped scenarios are the seeds");
    out
}

fn check(path: &Path, text: &str) -> Result<bool, TestCaseError> {
    let started = Instant::now();
    let result = Scenario::from_yaml(path, text);
    prop_assert!(started.elapsed() <= BOUND, "took {:?}", started.elapsed());
    if let Err(e) = &result {
        let shown = format!("{e:#}");
        prop_assert!(
            shown.contains(&path.display().to_string()),
            "the error does not name the file: {}",
            shown
        );
        prop_assert!(shown.len() > 5, "an error that names nothing: {:?}", shown);
    }
    Ok(result.is_ok())
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9:/._ ${}-]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Walks `steps` into the tree (each step picks a child), then replaces (or deletes) it.
fn mutate(root: &mut Value, steps: &[usize], with: Option<Value>) {
    let mut at = root;
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match at {
            Value::Object(map) if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(step % map.len())
                    .cloned()
                    .unwrap_or_default();
                if last {
                    match &with {
                        Some(v) => map.insert(key, v.clone()),
                        None => map.remove(&key),
                    };
                    return;
                }
                at = map.get_mut(&key).expect("picked from the map");
            }
            Value::Array(items) if !items.is_empty() => {
                let i = step % items.len();
                if last {
                    match &with {
                        Some(v) => items[i] = v.clone(),
                        None => drop(items.remove(i)),
                    }
                    return;
                }
                at = &mut items[i];
            }
            _ => return,
        }
    }
}

#[test]
fn mutated_shipped_scenarios() {
    let seeds = shipped();
    let n = seeds.len();
    let edits = prop::collection::vec(
        (
            prop::collection::vec(any::<usize>(), 1..7),
            prop::option::weighted(0.75, any_value()),
        ),
        1..4,
    );
    let loaded = std::cell::Cell::new(0u32);
    runner(CI_TREE)
        .run(&(0..n, edits), |(which, edits)| {
            let (path, text) = &seeds[which];
            let mut tree: Value = serde_saphyr::from_str(text).expect("a shipped scenario is YAML");
            for (steps, with) in edits {
                mutate(&mut tree, &steps, with);
            }
            let text = serde_saphyr::to_string(&tree).expect("serialises");
            if check(path, &text)? {
                loaded.set(loaded.get() + 1);
            }
            Ok(())
        })
        .expect("mutated scenarios load or are refused with an error naming the file");
    assert!(
        loaded.get() > 0,
        "no mutated scenario loaded: the validation is never passed"
    );
}

#[derive(Debug, Clone)]
enum TextEdit {
    DropLine(usize),
    DuplicateLine(usize),
    Cut(usize),
    Insert(usize, String),
}

#[test]
fn text_edits_and_hostile_text() {
    let seeds = shipped();
    let n = seeds.len();
    let edit = prop_oneof![
        any::<usize>().prop_map(TextEdit::DropLine),
        any::<usize>().prop_map(TextEdit::DuplicateLine),
        any::<usize>().prop_map(TextEdit::Cut),
        (any::<usize>(), hostile_text()).prop_map(|(i, t)| TextEdit::Insert(i, t)),
    ];
    runner(CI_TEXT)
        .run(
            &(0..n, prop::collection::vec(edit, 1..4), hostile_text()),
            |(which, edits, hostile)| {
                let (path, text) = &seeds[which];
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                for e in edits {
                    let len = lines.len().max(1);
                    match e {
                        TextEdit::DropLine(i) if !lines.is_empty() => drop(lines.remove(i % len)),
                        TextEdit::DuplicateLine(i) if !lines.is_empty() => {
                            let l = lines[i % len].clone();
                            lines.insert(i % len, l);
                        }
                        TextEdit::Cut(i) => lines.truncate(i % len),
                        TextEdit::Insert(i, t) => lines.insert(i % (lines.len() + 1), t),
                        _ => {}
                    }
                }
                check(path, &lines.join("\n"))?;
                check(Path::new("hostile.yaml"), &hostile)?;
                Ok(())
            },
        )
        .expect("edited scenarios load or are refused with an error naming the file");
}
