//! Reads YAML or JSON (multi-document, kubectl `List`) into located Kubernetes objects.
//! Every problem is reported with its file and line; nothing is judged until all input parsed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

const NOT_AN_OBJECT: &str = "not a Kubernetes object (apiVersion and kind are required)";

/// One Kubernetes object and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: PathBuf,
    /// 1-based line where the object's document starts.
    pub line: usize,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The most `-f` reads in one run, every file and stdin together. Far above any real set of
/// manifests (a `kubectl get pods -A -o yaml` of a few thousand pods fits); the bound keeps a
/// wrong file or an endless stream (`-f /dev/urandom`, a multi-GB pipe) from being read into
/// memory: reading stops one byte past it.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What is left of [`MAX_INPUT_BYTES`] while one `-f` is read.
struct Budget {
    left: u64,
}

impl Budget {
    fn too_large(path: &Path) -> Error {
        Error::Input {
            path: path.into(),
            message: format!(
                "the input is larger than the {} MiB podiam reads with -f; nothing was judged (split it and verify each part)",
                MAX_INPUT_BYTES / (1024 * 1024)
            ),
        }
    }

    /// Reads `reader` to its end, or fails as soon as it passes what is left.
    fn read(&mut self, path: &Path, reader: impl Read) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        reader
            .take(self.left + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                path: path.into(),
                source,
            })?;
        let read = bytes.len() as u64;
        if read > self.left {
            return Err(Budget::too_large(path));
        }
        self.left -= read;
        Ok(bytes)
    }
}

/// Loads every `.yaml`, `.yml` and `.json` file under `path` (sorted), a single file, or `-`.
pub fn load(path: &Path) -> Result<Vec<Document>> {
    let mut budget = Budget {
        left: MAX_INPUT_BYTES,
    };
    if path == Path::new("-") {
        let bytes = budget.read(path, std::io::stdin().lock())?;
        return parse(path, &decode(path, bytes)?);
    }
    let meta = std::fs::metadata(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    // Not only regular files: `-f <(helm template ...)` names a pipe, as kubectl allows.
    if !meta.is_dir() {
        return parse_file(path, &mut budget);
    }
    let mut files = Vec::new();
    collect(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(Error::Input {
            path: path.into(),
            message: "no .yaml, .yml or .json files in this directory".into(),
        });
    }
    let mut docs = Vec::new();
    for f in files {
        match parse_file(&f, &mut budget) {
            Ok(found) => docs.extend(found),
            // A directory may hold other JSON (IAM policies beside the manifests): skip files
            // with no Kubernetes object at all, but never a syntax error.
            Err(Error::Input { message, .. }) if message.contains(NOT_AN_OBJECT) => {
                tracing::info!("skipping {}: no Kubernetes objects", f.display());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(docs)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.into(),
        source,
    })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, files)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(p);
        }
    }
    Ok(())
}

fn parse_file(path: &Path, budget: &mut Budget) -> Result<Vec<Document>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    // A regular file's size is known: refuse it before reading a byte.
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > budget.left)
    {
        return Err(Budget::too_large(path));
    }
    let bytes = budget.read(path, file)?;
    parse(path, &decode(path, bytes)?)
}

/// The text of a manifest as kubectl reads it: UTF-8, with or without a byte-order mark, or
/// UTF-16 with one (PowerShell's `>` writes UTF-16LE). Anything else is an input error naming
/// the line and column of the first byte that is not UTF-8, never a panic.
fn decode(path: &Path, bytes: Vec<u8>) -> Result<String> {
    let utf16 = |units: Vec<u16>| {
        String::from_utf16(&units).map_err(|_| Error::Input {
            path: path.into(),
            message: "not valid UTF-16 text (it starts with a UTF-16 byte-order mark)".into(),
        })
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, rest @ ..] => return decode(path, rest.to_vec()),
        [0xFF, 0xFE, rest @ ..] => {
            return utf16(
                rest.chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect(),
            );
        }
        [0xFE, 0xFF, rest @ ..] => {
            return utf16(
                rest.chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect(),
            );
        }
        _ => {}
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        // Counted in characters, as an editor does; the bytes before `at` are valid UTF-8.
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Error::Input {
            path: path.into(),
            message: format!(
                "line {line} column {column}: not UTF-8 text (byte 0x{:02X}); manifests are UTF-8, or UTF-16 with a byte-order mark (convert it, e.g. iconv -f LATIN1 -t UTF-8)",
                e.as_bytes()[at]
            ),
        }
    })
}

/// Line numbers (1-based) where each YAML document starts.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && i > 0 {
            starts.push(i + 2);
        }
    }
    starts
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<Document>> {
    let input_error = |message: String| Error::Input {
        path: path.into(),
        message,
    };
    let trimmed = text.trim_start();
    let values: Vec<(usize, Value)> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| input_error(format!("line {} column {}: {e}", e.line(), e.column())))?;
        vec![(1, v)]
    } else {
        // kubectl reads YAML 1.1: `defaultMode: 0600` is octal there.
        let options = serde_saphyr::options! { legacy_octal_numbers: true };
        let values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
            // Without the parser's snippet: it quotes the file's lines, Secrets' values too.
            .map_err(|e| input_error(format!("invalid YAML: {}", e.without_snippet())))?;
        let starts = document_starts(text);
        // Empty documents are skipped by the parser, so line numbers are best effort then.
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (starts.get(i).copied().unwrap_or(1), v))
            .collect()
    };
    let mut docs = Vec::new();
    for (line, value) in values {
        flatten(path, line, value, &mut docs)?;
    }
    Ok(docs)
}

/// Expands kubectl `List`s and checks each object has apiVersion and kind.
fn flatten(path: &Path, line: usize, value: Value, docs: &mut Vec<Document>) -> Result<()> {
    let at = |message: String| Error::Input {
        path: path.into(),
        message: format!("line {line}: {message}"),
    };
    match value {
        Value::Null => Ok(()),
        Value::Object(ref map) => {
            let kind = map.get("kind").and_then(Value::as_str);
            if map.get("apiVersion").and_then(Value::as_str).is_none() || kind.is_none() {
                return Err(at(NOT_AN_OBJECT.into()));
            }
            if kind.is_some_and(|k| k == "List" || k.ends_with("List")) {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    flatten(path, line, item, docs)?;
                }
                return Ok(());
            }
            docs.push(Document {
                file: path.into(),
                line,
                value,
            });
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                flatten(path, line, item, docs)?;
            }
            Ok(())
        }
        other => Err(at(format!(
            "expected a Kubernetes object, found {}",
            match other {
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "something else",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_yaml_with_lines() {
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        let docs = parse(Path::new("x.yaml"), text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].kind(), "Pod");
        assert_eq!(docs[1].line, 5);
    }

    #[test]
    fn reads_octal_modes_like_kubectl() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {volumes: [{name: v, projected: {defaultMode: 0600}}]}\n";
        let docs = parse(Path::new("x.yaml"), text).unwrap();
        assert_eq!(
            docs[0]
                .value
                .pointer("/spec/volumes/0/projected/defaultMode"),
            Some(&serde_json::json!(384))
        );
    }

    #[test]
    fn expands_lists() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}"#;
        let docs = parse(Path::new("x.json"), text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].kind(), "Pod");
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let err = parse(
            Path::new("bad.yaml"),
            "apiVersion: v1\nkind: Pod\n  metadata: [\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad.yaml: invalid YAML"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn malformed_json_names_line() {
        let err = parse(Path::new("bad.json"), "{\n\"kind\": \n}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.json: line 3"), "{err}");
    }

    #[test]
    fn rejects_non_objects() {
        let err = parse(Path::new("s.yaml"), "just a string\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a Kubernetes object"), "{err}");
        let err = parse(Path::new("s.yaml"), "foo: bar\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("apiVersion and kind are required"), "{err}");
    }
}
