//! Long-lived cloud keys handed to a pod through env, envFrom or secretKeyRef: the seed's first
//! best practice says never. In every AWS SDK's default chain, env keys also win over IRSA.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::model::Check;
use crate::subject::PodSubject;

pub const ID: &str = "static-credentials.env";

/// Variables whose presence means a long-lived secret (AWS keys, an Entra client secret).
pub const SECRET_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
];

/// Where a static credential reaches a container (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub container: String,
    pub variable: String,
    pub origin: String,
}

pub fn referenced_secrets(spec: &PodSpec) -> Vec<String> {
    let mut names: Vec<String> = all(spec)
        .flat_map(|c| {
            let from_env = c
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
                .map(|r| r.name.clone());
            let from_env_from = c
                .env_from
                .iter()
                .flatten()
                .filter_map(|e| e.secret_ref.as_ref())
                .map(|r| r.name.clone());
            from_env.chain(from_env_from).collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn all(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// Findings in the spec, plus envFrom secrets whose keys could not be read.
pub fn scan(
    spec: &PodSpec,
    secret_keys: &BTreeMap<String, Vec<String>>,
) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut uninspected = Vec::new();
    for c in all(spec) {
        for e in c.env.iter().flatten() {
            if !SECRET_VARS.contains(&e.name.as_str()) {
                continue;
            }
            let origin = match e.value_from.as_ref() {
                None => "a literal value in the pod spec".to_string(),
                Some(v) => match &v.secret_key_ref {
                    Some(r) => format!("secret {} key {}", r.name, r.key),
                    None => "valueFrom".to_string(),
                },
            };
            findings.push(Finding {
                container: c.name.clone(),
                variable: e.name.clone(),
                origin,
            });
        }
        for src in c.env_from.iter().flatten() {
            let Some(secret) = &src.secret_ref else {
                continue;
            };
            let prefix = src.prefix.clone().unwrap_or_default();
            match secret_keys.get(&secret.name) {
                Some(keys) => findings.extend(
                    keys.iter()
                        .map(|k| format!("{prefix}{k}"))
                        .filter(|k| SECRET_VARS.contains(&k.as_str()))
                        .map(|k| Finding {
                            container: c.name.clone(),
                            variable: k,
                            origin: format!("envFrom secret {}", secret.name),
                        }),
                ),
                None => uninspected.push(format!("{} (container {})", secret.name, c.name)),
            }
        }
    }
    (findings, uninspected)
}

/// Findings in the container's runtime environment (names only), e.g. from a ConfigMap.
pub fn scan_runtime(container: &str, env_names: &[String]) -> Vec<Finding> {
    env_names
        .iter()
        .filter(|n| SECRET_VARS.contains(&n.as_str()))
        .map(|n| Finding {
            container: container.to_string(),
            variable: n.clone(),
            origin: "the running container's environment".into(),
        })
        .collect()
}

pub fn check(pod: &PodSubject, findings: &[Finding], uninspected: &[String]) -> Check {
    if !findings.is_empty() {
        let list: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{} in container {} from {}",
                    f.variable, f.container, f.origin
                )
            })
            .collect();
        let wins = if findings.iter().any(|f| f.container == pod.container) {
            "; the SDK's default chain uses these keys before any workload identity"
        } else {
            ""
        };
        return Check::fail(
            ID,
            format!("static cloud credentials: {}{wins}", list.join(", ")),
            "delete the keys from the pod and the Secret, rotate them, and bind the ServiceAccount to a role instead (kubectl podiam bind)",
        );
    }
    if !uninspected.is_empty() {
        return Check::warn(
            ID,
            format!(
                "could not inspect envFrom secrets {} for static keys",
                uninspected.join(", ")
            ),
            "include the Secret in the input (-f) or allow `get secrets` to check it",
        );
    }
    Check::pass(
        ID,
        "no static cloud credentials in env, envFrom or secretKeyRef",
    )
}
