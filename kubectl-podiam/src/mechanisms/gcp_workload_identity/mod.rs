//! GKE Workload Identity (the KSA annotated with a Google service account, tokens from the
//! GKE metadata server) and its non-GKE twin, Workload Identity Federation through an
//! `external_account` configuration named by `GOOGLE_APPLICATION_CREDENTIALS`.

pub mod checks;
mod external_account;
mod in_pod;
mod metadata;
pub mod mounted_file;
mod tokeninfo;

use k8s_openapi::api::core::v1::PodSpec;

use super::{BoxFuture, Mechanism, RuntimeOutcome};
use crate::cloud::gcp as a;
use crate::evidence::{Probe, RuntimeEnv};
use crate::exchange::gcp_metadata::AccessToken;
use crate::exchange::{CloudError, gcp_sts, gcs};
use crate::model::{Check, Identity, MechanismId};
use crate::options::{AccessExpectation, VerifyOptions};
use crate::subject::{PodSubject, env_value, has_env};

pub struct GcpWorkloadIdentity;

impl Mechanism for GcpWorkloadIdentity {
    fn id(&self) -> MechanismId {
        MechanismId::GcpWorkloadIdentity
    }

    fn detect(&self, pod: &PodSubject) -> bool {
        let annotated = pod.sa_annotation(a::GSA).is_some()
            || pod.annotation(a::GSA).is_some()
            || pod
                .service_account
                .as_ref()
                .and_then(|sa| sa.metadata.annotations.as_ref())
                .is_some_and(|m| m.keys().any(|k| a::is_gsa_typo(k)));
        let federated = pod.all_containers().any(|c| has_env(c, a::ENV_CREDENTIALS));
        // A pod pinned to GKE metadata nodes asks for Workload Identity even unannotated.
        // The node's own label is not enough: every pod of a GKE cluster runs on such nodes,
        // including pods wired to other clouds' mechanisms registered after this one.
        let on_gke_node = pod
            .spec
            .node_selector
            .as_ref()
            .is_some_and(|s| s.contains_key(a::NODE_LABEL));
        annotated || federated || on_gke_node
    }

    /// GKE gives every pod on a metadata-server node an identity: an unannotated KSA acts as
    /// its direct principal (`principal://…/subject/ns/NS/sa/KSA`), so such a pod is wired,
    /// not `none`. Only for pods no other mechanism claimed (see [`super::detect`]), and only
    /// on a GKE node (its node-pool label too): the metadata label alone is set by hand on
    /// other clusters (and on the harness's one node, which serves every cloud).
    fn detect_unwired(&self, pod: &PodSubject) -> bool {
        pod.node_labels.as_ref().is_some_and(|l| {
            l.get(a::NODE_LABEL).is_some_and(|v| v == "true") && l.contains_key(a::NODEPOOL_LABEL)
        })
    }

    fn admit(&self, pod: &PodSubject) -> PodSpec {
        // No mutating webhook: GKE's metadata server reads the KSA at request time.
        pod.spec.clone()
    }

    fn configured(
        &self,
        pod: &PodSubject,
        spec: &PodSpec,
        env: Option<&RuntimeEnv>,
    ) -> Result<super::Configured, String> {
        // A credentials file the container names decides the principal, not the annotation.
        let in_spec = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == pod.container)
            .is_some_and(|c| crate::subject::has_env(c, "GOOGLE_APPLICATION_CREDENTIALS"));
        let at_runtime = env.is_some_and(|e| e.get("GOOGLE_APPLICATION_CREDENTIALS").is_some());
        if in_spec || at_runtime {
            return Err("the container names a credentials file (GOOGLE_APPLICATION_CREDENTIALS): it decides the principal, and only the exchange can tell which".into());
        }
        checks::configured_gsa(pod)
            .map(|gsa| super::Configured {
                provider: "gcp",
                principal: gsa.to_string(),
                origin: format!("the KSA annotation {}", a::GSA),
            })
            .ok_or_else(|| {
                format!(
                    "the KSA has no {} annotation: the principal is decided by Google (a direct principal or an external_account configuration)",
                    a::GSA
                )
            })
    }

    fn static_checks(&self, pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
        checks::static_checks(pod, spec)
    }

    fn runtime<'a>(
        &'a self,
        pod: &'a PodSubject,
        spec: &'a PodSpec,
        env: Option<&'a RuntimeEnv>,
        probe: &'a Probe,
        options: &'a VerifyOptions,
    ) -> BoxFuture<'a, RuntimeOutcome> {
        Box::pin(async move {
            match container_var(pod, spec, env, a::ENV_CREDENTIALS) {
                // Google's default credentials read this file before the metadata server.
                Some(path) => external_account::run(pod, spec, &path, env, probe, options).await,
                None => metadata::run(pod, spec, env, probe, options).await,
            }
        })
    }
}

/// A variable as the container sees it: the runtime env when exec worked, else the spec.
fn container_var(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    name: &str,
) -> Option<String> {
    if let Some(env) = env {
        return env.get(name).map(str::to_string);
    }
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
        .and_then(|c| env_value(c, name))
        .map(str::to_string)
}

/// The identity the configuration names, for reports where no token could be obtained.
fn configured_identity(pod: &PodSubject, why: &str) -> Identity {
    Identity {
        provider: "gcp",
        principal: checks::configured_gsa(pod)
            .map(str::to_string)
            .unwrap_or_else(|| checks::direct_principal_placeholder(pod)),
        source: if why.is_empty() {
            "configured (not exchanged)".to_string()
        } else {
            format!("configured (not exchanged: {why})")
        },
    }
}

fn expected_gsa(out: &mut RuntimeOutcome, options: &VerifyOptions, actual: &str) {
    const ID: &str = "gcp.expected-gsa";
    let Some(expected) = &options.expect_gsa else {
        return;
    };
    out.checks.push(if expected.eq_ignore_ascii_case(actual) {
        Check::pass(ID, format!("the pod gets the expected GSA {expected}"))
    } else {
        Check::fail(
            ID,
            format!("expected GSA {expected}, but the pod gets {actual}"),
            format!(
                "annotate the KSA with {}={expected} (or fix the external_account impersonation URL)",
                a::GSA
            ),
        )
    });
}

fn http(options: &VerifyOptions) -> reqwest::Client {
    gcp_sts::http_client(
        options
            .gcp
            .timeout
            .unwrap_or(std::time::Duration::from_secs(15)),
    )
}

/// `--can/--cannot gcs:…` with the pod's access token, from the host.
async fn access_checks(out: &mut RuntimeOutcome, options: &VerifyOptions, token: &AccessToken) {
    let base = gcs::endpoint(options.gcp.gcs_endpoint_url.as_deref());
    let http = http(options);
    for expectation in &options.access {
        let AccessExpectation::Gcs {
            action,
            allowed,
            spec,
        } = expectation
        else {
            continue;
        };
        let (id, want) = if *allowed {
            ("gcp.access.can", "allowed")
        } else {
            ("gcp.access.cannot", "denied")
        };
        let result = gcs::attempt(&http, &base, token, action).await;
        tracing::debug!(%spec, outcome = ?result, "GCS call with the pod's access token");
        let check = match (result, allowed) {
            (Ok(()), true) => Check::pass(id, format!("{spec}: allowed, as expected")),
            (Err(CloudError::Rejected { code, .. }), false) if gcs::is_denial(&code) => {
                Check::pass(id, format!("{spec}: denied ({code}), as expected"))
            }
            (Ok(()), false) => Check::fail(
                id,
                format!("{spec}: allowed, but expected {want}"),
                "remove the role that grants it from the GSA (or the bucket's IAM policy)",
            ),
            (Err(CloudError::Unreachable(msg)), _) => {
                out.unreachable = true;
                Check::warn(
                    id,
                    format!("{spec}: GCS unreachable at {base}: {msg}"),
                    "check network access, STORAGE_EMULATOR_HOST or --gcs-endpoint-url",
                )
            }
            (Err(CloudError::Rejected { code, message }), _) => Check::fail(
                id,
                format!("{spec}: {code}: {message}, but expected {want}"),
                if *allowed {
                    "grant the GSA a role with the permission on the bucket, e.g. roles/storage.objectViewer"
                } else {
                    "the call failed for another reason than a denial; check the bucket and object exist"
                },
            ),
        };
        out.checks.push(check);
    }
}

/// Access expectations on GCS that could not be evaluated (no token).
fn access_skipped(out: &mut RuntimeOutcome, options: &VerifyOptions, why: &str) {
    for expectation in &options.access {
        if let AccessExpectation::Gcs { allowed, spec, .. } = expectation {
            let id = if *allowed {
                "gcp.access.can"
            } else {
                "gcp.access.cannot"
            };
            out.checks
                .push(Check::skip(id, format!("{spec}: not evaluated ({why})")));
        }
    }
}
