//! Long-lived cloud keys handed to a pod through env, envFrom or secretKeyRef: the seed's first
//! best practice says never. A key replaces the workload identity of its own cloud only: AWS SDK
//! chains read env keys before web identity and container credentials; DefaultAzureCredential
//! tries EnvironmentCredential (a client secret) before WorkloadIdentityCredential; Google's
//! default credentials read the file GOOGLE_APPLICATION_CREDENTIALS names first (judged by the
//! GCP mechanism when that is the pod's). A key for another cloud is reported, not substituted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::cloud::gcp::ENV_CREDENTIALS as GCP_CREDENTIALS;
use crate::mechanisms::gcp_workload_identity::mounted_file::{self, Backing};
use crate::model::{Check, Identity, MechanismId};
use crate::subject::{PodSubject, env_value};

pub const ID: &str = "static-credentials.env";

/// Variables whose presence means a long-lived secret (AWS keys, an Entra client secret).
pub const SECRET_VARS: &[&str] = &[
    crate::cloud::aws::ENV_ACCESS_KEY_ID,
    crate::cloud::aws::ENV_SECRET_ACCESS_KEY,
    crate::cloud::azure::ENV_CLIENT_SECRET,
];

/// The cloud a static key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

impl Cloud {
    pub fn of_variable(variable: &str) -> Cloud {
        if variable.starts_with("AZURE") {
            Cloud::Azure
        } else if variable == GCP_CREDENTIALS {
            Cloud::Gcp
        } else {
            Cloud::Aws
        }
    }

    pub fn of_mechanism(mechanism: MechanismId) -> Option<Cloud> {
        match mechanism {
            MechanismId::AwsIrsa | MechanismId::AwsPodIdentity => Some(Cloud::Aws),
            MechanismId::AzureWorkloadIdentity => Some(Cloud::Azure),
            MechanismId::GcpWorkloadIdentity => Some(Cloud::Gcp),
            MechanismId::StaticCredentials | MechanismId::None => None,
        }
    }

    pub fn provider(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }
}

/// Where a static credential reaches a container (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub container: String,
    pub variable: String,
    pub origin: String,
}

impl Finding {
    pub fn cloud(&self) -> Cloud {
        Cloud::of_variable(&self.variable)
    }
}

/// Findings this module judges: a GCP credentials file in a pod wired for GKE Workload
/// Identity is the GCP mechanism's to judge (it may be an external_account configuration).
fn judged(findings: &[Finding], detected: MechanismId) -> impl Iterator<Item = &Finding> {
    findings
        .iter()
        .filter(move |f| !(f.cloud() == Cloud::Gcp && detected == MechanismId::GcpWorkloadIdentity))
}

/// Does this key replace the pod's identity? With no workload identity, any key is the
/// identity; else only a key of the mechanism's own cloud comes first in its SDK's chain.
fn overrides(f: &Finding, detected: MechanismId) -> bool {
    Cloud::of_mechanism(detected).is_none_or(|c| c == f.cloud())
}

/// The key the report's container uses instead of the detected mechanism, if any.
pub fn winning<'a>(
    pod: &PodSubject,
    findings: &'a [Finding],
    detected: MechanismId,
) -> Option<&'a Finding> {
    judged(findings, detected).find(|f| f.container == pod.container && overrides(f, detected))
}

/// The identity a winning key gives (its value is never read).
pub fn identity(f: &Finding) -> Identity {
    Identity {
        provider: f.cloud().provider(),
        principal: format!("the static key in {} (value not shown)", f.variable),
        source: f.origin.clone(),
    }
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
        if let Some(f) = gcp_key_file(spec, c) {
            findings.push(f);
        }
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

/// GOOGLE_APPLICATION_CREDENTIALS naming a file from a Secret: most likely a downloaded
/// service-account key (an external_account configuration holds no secret and sits in a
/// ConfigMap).
fn gcp_key_file(spec: &PodSpec, c: &Container) -> Option<Finding> {
    let path = env_value(c, GCP_CREDENTIALS)?;
    let Backing::Secret { name, key } = mounted_file::resolve(spec, c, path)?.backing else {
        return None;
    };
    Some(Finding {
        container: c.name.clone(),
        variable: GCP_CREDENTIALS.to_string(),
        origin: format!("a key file from secret {name} key {key}"),
    })
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

pub fn check(
    pod: &PodSubject,
    findings: &[Finding],
    uninspected: &[String],
    detected: MechanismId,
) -> Check {
    let findings: Vec<&Finding> = judged(findings, detected).collect();
    if !findings.is_empty() {
        let list: Vec<String> = findings
            .iter()
            .map(|f| {
                let effect = match Cloud::of_mechanism(detected) {
                    None if f.container == pod.container => {
                        " (the SDK's default chain uses it: the pod's only cloud identity)"
                            .to_string()
                    }
                    Some(_) if overrides(f, detected) => {
                        format!(" (its SDK's chain reads it before {})", detected.as_str())
                    }
                    Some(_) => format!(
                        " (a {} key: it does not change the pod's {} identity)",
                        f.cloud().provider(),
                        detected.as_str()
                    ),
                    None => String::new(),
                };
                format!(
                    "{} in container {} from {}{effect}",
                    f.variable, f.container, f.origin
                )
            })
            .collect();
        let message = format!("static cloud credentials: {}", list.join(", "));
        let fix = "delete the keys from the pod and the Secret, rotate them, and bind the ServiceAccount to a role instead (kubectl podiam bind)";
        // A key of another cloud than the pod's workload identity is a long-lived secret to
        // report, not a broken identity.
        return if findings.iter().any(|f| overrides(f, detected)) {
            Check::fail(ID, message, fix)
        } else {
            Check::warn(ID, message, fix)
        };
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
