//! The shipped least-privilege roles (`deploy/rbac/`) against the plugin's code and the
//! scenarios that use them:
//! - every Kubernetes API call in `kubectl-podiam/src` has a row in docs/rbac.md,
//! - every row's permission is in the role it names, and no role holds a permission no row
//!   needs,
//! - each `rbac-without-*` scenario inlines exactly `podiam-verify` minus one resource.
//!
//! Reads files only: no cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

/// `(apiGroup, resource or non-resource URL, verb)`; the core group is `""`.
type Permission = (String, String, String);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("YAML: {e}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A ClusterRole's rules as single permissions.
fn permissions(role: &Value) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let verbs = strings(&rule["verbs"]);
        let urls = strings(&rule["nonResourceURLs"]);
        for url in &urls {
            for verb in &verbs {
                out.insert(("nonResourceURL".into(), url.clone(), verb.clone()));
            }
        }
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in &verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

/// Role name → its permissions, from the shipped files.
fn shipped_roles() -> BTreeMap<String, BTreeSet<Permission>> {
    let mut roles = BTreeMap::new();
    for file in ["podiam-verify.yaml", "podiam-bind.yaml"] {
        for doc in yaml_documents(&read(&repo().join("deploy/rbac").join(file))) {
            assert_eq!(doc["kind"], "ClusterRole", "{file}: only ClusterRoles");
            let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
            roles.insert(name, permissions(&doc));
        }
    }
    roles
}

/// One row of docs/rbac.md's call table.
#[derive(Debug)]
struct Row {
    source: String,
    group: String,
    resource: String,
    verbs: Vec<String>,
    role: String,
}

fn documented_calls() -> Vec<Row> {
    let doc = read(&repo().join("docs/rbac.md"));
    let table = doc
        .split("<!-- rbac-calls:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- rbac-calls:end -->").next())
        .expect("docs/rbac.md has the rbac-calls table");
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| source") && !l.starts_with("| ---"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "six cells: {line}");
            Row {
                source: cells[0].to_owned(),
                group: match cells[1] {
                    "core" => String::new(),
                    group => group.to_owned(),
                },
                resource: cells[2].to_owned(),
                verbs: cells[3].split(',').map(|v| v.trim().to_owned()).collect(),
                role: cells[4].to_owned(),
            }
        })
        .collect()
}

/// `kubectl-podiam/src/**.rs` without tests, relative path → text before `#[cfg(test)]`,
/// comment lines dropped.
fn plugin_sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                if name != "tests" {
                    walk(&path, root, out);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
                let text = read(&path);
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: String = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let relative = path.strip_prefix(root).expect("under src");
                out.insert(relative.to_string_lossy().into_owned(), code);
            }
        }
    }
    let root = repo().join("kubectl-podiam/src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The `(apiGroup, resource)` of the k8s-openapi types the plugin builds `Api`s of.
fn resource_of(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Pod" => ("", "pods"),
        "ServiceAccount" => ("", "serviceaccounts"),
        "Node" => ("", "nodes"),
        "Secret" => ("", "secrets"),
        "Namespace" => ("", "namespaces"),
        "ReplicaSet" => ("apps", "replicasets"),
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Job" => ("batch", "jobs"),
        "NetworkPolicy" => ("networking.k8s.io", "networkpolicies"),
        "MutatingWebhookConfiguration" => (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
        "EndpointSlice" => ("discovery.k8s.io", "endpointslices"),
        _ => return None,
    })
}

/// What each source file touches: `(apiGroup, resource)` pairs found in its code.
fn calls_in(code: &str) -> BTreeSet<(String, String)> {
    let api_type = Regex::new(r"\bApi(?:::)?<(\w+)>").expect("regex");
    // access_review.rs POSTs each review by its resource name.
    let review = Regex::new(r#"\bpost\(\s*\w+,\s*"((?:self)?subject(?:rules|access)reviews)""#)
        .expect("regex");
    let non_resource = Regex::new(r#"Request::get\("(/[^"]*)"\)"#).expect("regex");
    let mut out = BTreeSet::new();
    for kind in api_type.captures_iter(code) {
        let kind = &kind[1];
        let (group, resource) = resource_of(kind).unwrap_or_else(|| {
            panic!("Api<{kind}>: add its resource to this test and a row to docs/rbac.md")
        });
        out.insert((group.to_owned(), resource.to_owned()));
    }
    let markers = [
        (".exec(", "pods/exec"),
        ("create_token_request", "serviceaccounts/token"),
        ("patch_ephemeral_containers", "pods/ephemeralcontainers"),
        (".logs(", "pods/log"),
        ("impersonate-user", "serviceaccounts"),
    ];
    for (marker, resource) in markers {
        if code.contains(marker) {
            out.insert((String::new(), resource.to_owned()));
        }
    }
    for name in review.captures_iter(code) {
        out.insert(("authorization.k8s.io".to_owned(), name[1].to_owned()));
    }
    for url in non_resource.captures_iter(code) {
        out.insert(("nonResourceURL".to_owned(), url[1].to_owned()));
    }
    out
}

#[test]
fn every_api_call_of_the_plugin_has_a_documented_rule() {
    let rows = documented_calls();
    let mut missing = Vec::new();
    for (file, code) in plugin_sources() {
        for (group, resource) in calls_in(&code) {
            // An `Api<Pod>` handed to exec or logs is covered by a row for that subresource.
            let covered = rows.iter().any(|r| {
                r.source == file
                    && r.group == group
                    && (r.resource == resource || r.resource.starts_with(&format!("{resource}/")))
            });
            if !covered {
                let group = if group.is_empty() { "core" } else { &group };
                missing.push(format!("{file}: {group} {resource}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "API calls with no row in docs/rbac.md:\n{}",
        missing.join("\n")
    );
    // And no row names a file that does not make that call any more.
    let sources = plugin_sources();
    for row in &rows {
        let code = sources
            .get(&row.source)
            .unwrap_or_else(|| panic!("docs/rbac.md names {}: no such file", row.source));
        let calls = calls_in(code);
        let base = row.resource.split('/').next().unwrap_or_default();
        assert!(
            calls.contains(&(row.group.clone(), row.resource.clone()))
                || calls.contains(&(row.group.clone(), base.to_owned())),
            "docs/rbac.md: {} does not touch {}/{} any more",
            row.source,
            row.group,
            row.resource
        );
    }
}

#[test]
fn every_documented_permission_is_in_its_role_and_nothing_more() {
    let roles = shipped_roles();
    let mut needed: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    for row in documented_calls() {
        if row.role == "system:basic-user" {
            // Granted to every authenticated user by Kubernetes' default bindings.
            continue;
        }
        let role = roles
            .get(&row.role)
            .unwrap_or_else(|| panic!("docs/rbac.md names role {}, not shipped", row.role));
        for verb in &row.verbs {
            let permission = (row.group.clone(), row.resource.clone(), verb.clone());
            assert!(
                role.contains(&permission),
                "{} lacks {permission:?} (needed by {})",
                row.role,
                row.source
            );
            needed
                .entry(row.role.clone())
                .or_default()
                .insert(permission);
        }
    }
    for (name, granted) in &roles {
        let extra: Vec<_> = granted
            .difference(needed.get(name).unwrap_or(&BTreeSet::new()))
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{name} grants what no documented call needs: {extra:?}"
        );
    }
}

/// The ClusterRoles a scenario's apply steps create inline, by name.
fn inline_cluster_roles(scenario: &Path) -> BTreeMap<String, Value> {
    let doc: Value =
        serde_saphyr::from_str(&read(scenario)).unwrap_or_else(|e| panic!("{scenario:?}: {e}"));
    doc["spec"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|step| step["apply"]["manifests"].as_str())
        .flat_map(yaml_documents)
        .filter(|d| d["kind"] == "ClusterRole")
        .map(|d| {
            (
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d,
            )
        })
        .collect()
}

fn inline_cluster_role(scenario: &Path, name: &str) -> Value {
    inline_cluster_roles(scenario)
        .remove(name)
        .unwrap_or_else(|| panic!("{scenario:?} creates no ClusterRole {name}"))
}

#[test]
fn the_azure_least_privilege_scenario_inlines_exactly_the_shipped_roles() {
    let scenario = repo().join("scenarios/rbac-least-privilege-azure.yaml");
    let inline = inline_cluster_roles(&scenario);
    assert_eq!(inline.len(), 3, "{:?}", inline.keys());
    let shipped = shipped_roles();
    for shipped_name in ["podiam-verify", "podiam-bind", "podiam-bind-issuer"] {
        let name = format!("{shipped_name}-${{NAMESPACE}}");
        assert_eq!(
            permissions(&inline_cluster_role(&scenario, &name)),
            shipped[shipped_name],
            "{name}"
        );
    }
}

#[test]
fn the_without_scenarios_remove_exactly_one_resource_from_podiam_verify() {
    let shipped = shipped_roles()
        .remove("podiam-verify")
        .expect("podiam-verify");
    let cases = [
        ("rbac-without-pods-exec.yaml", "pods/exec"),
        (
            "rbac-without-serviceaccounts-token.yaml",
            "serviceaccounts/token",
        ),
        ("rbac-without-nodes.yaml", "nodes"),
    ];
    for (file, removed) in cases {
        let slug = removed.replace('/', "-");
        let role = inline_cluster_role(
            &repo().join("scenarios").join(file),
            &format!("podiam-verify-without-{slug}-${{NAMESPACE}}"),
        );
        let expected: BTreeSet<Permission> = shipped
            .iter()
            .filter(|(_, resource, _)| resource != removed)
            .cloned()
            .collect();
        assert_ne!(expected, shipped, "{removed} is in podiam-verify");
        assert_eq!(permissions(&role), expected, "{file}");
    }
}
