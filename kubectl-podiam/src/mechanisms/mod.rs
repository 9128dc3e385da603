//! One module per way a pod is wired to a cloud identity. Each implements [`Mechanism`];
//! adding one means adding a module and listing it in [`registered`].

pub mod aws_irsa;
pub mod aws_pod_identity;
pub mod aws_role_chain;
pub mod azure_workload_identity;
pub mod egress;
pub mod gcp_workload_identity;
pub mod go_parse;
pub mod node_fallback;
pub mod pod_path;
pub mod projected_token;
pub mod static_credentials;
pub mod token_refresh;
pub mod unwired;

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::PodSpec;

use crate::evidence::{Probe, RuntimeEnv};
use crate::model::{Check, Identity, MechanismId};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the runtime phase (probe → exchange → judge) produced.
#[derive(Debug, Default)]
pub struct RuntimeOutcome {
    pub checks: Vec<Check>,
    pub identity: Option<Identity>,
    /// A cluster or cloud call got no answer or was forbidden.
    pub unreachable: bool,
}

/// The principal a pod's configuration names for its target container, without an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// `aws`, `gcp` or `azure`, as in [`Identity::provider`].
    pub provider: &'static str,
    pub principal: String,
    /// Where the configuration says it, e.g. "AWS_ROLE_ARN of container app".
    pub origin: String,
}

pub trait Mechanism: Send + Sync {
    fn id(&self) -> MechanismId;

    /// Is the pod configured (annotations) or wired (env, volumes) for this mechanism?
    fn detect(&self, pod: &PodSubject) -> bool;

    /// Claims a pod that no registered mechanism detected by its own wiring (default: never).
    /// Asked only after every `detect` declined, so a wired pod is never taken from its
    /// mechanism by where it runs.
    fn detect_unwired(&self, _pod: &PodSubject) -> bool {
        false
    }

    /// The pod spec as it runs: a template after this mechanism's webhook; a live pod as is.
    fn admit(&self, pod: &PodSubject) -> PodSpec;

    /// Variables naming the files `runtime` reads by exec (token files): they are read in the
    /// same exec as the environment, so a pod costs one exec, not one per file.
    fn token_file_vars(&self) -> &'static [&'static str] {
        &[]
    }

    /// The principal the configuration names for the target container (a preset variable, or
    /// what the webhook injects from the annotation), given the spec as it runs and the runtime
    /// env when read. Expectations are judged against it when no exchange answered, and offline
    /// it is the pod's identity. `Err` says why the configuration cannot tell.
    fn configured(
        &self,
        _pod: &PodSubject,
        _spec: &PodSpec,
        _env: Option<&RuntimeEnv>,
    ) -> Result<Configured, String> {
        Err("the configuration does not name the principal".into())
    }

    /// Checks that need only the spec and its ServiceAccount.
    fn static_checks(&self, pod: &PodSubject, spec: &PodSpec) -> Vec<Check>;

    /// Evidence, exchange and the checks that depend on them.
    fn runtime<'a>(
        &'a self,
        pod: &'a PodSubject,
        spec: &'a PodSpec,
        env: Option<&'a RuntimeEnv>,
        probe: &'a Probe,
        options: &'a VerifyOptions,
    ) -> BoxFuture<'a, RuntimeOutcome>;
}

/// The subject with what only the cloud knows about its wiring looked up, when that can be
/// asked: a template's EKS Pod Identity association (it lives in EKS, not in the manifests).
/// `None`: nothing to look up (judge the subject as given).
pub async fn resolve_template(pod: &PodSubject, options: &VerifyOptions) -> Option<PodSubject> {
    aws_pod_identity::offline::with_association(pod, options).await
}

/// What an env-wired mechanism's configuration names (`value`: `variable` as the target
/// container sees it), and where that came from: the running container's environment, a preset
/// in its spec, or the webhook injecting it from the ServiceAccount's `annotation`.
pub fn configured_from_env(
    pod: &PodSubject,
    env: Option<&RuntimeEnv>,
    value: Option<String>,
    provider: &'static str,
    variable: &str,
    annotation: &str,
    asks_for: &str,
) -> Result<Configured, String> {
    let principal = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        format!(
            "container {} has no {variable}, so its SDK asks for no {asks_for}",
            pod.container
        )
    })?;
    let preset = pod
        .all_containers()
        .any(|c| c.name == pod.container && crate::subject::has_env(c, variable));
    let origin = if env.is_some() {
        format!("{variable} in container {}'s environment", pod.container)
    } else if preset {
        format!("{variable} preset in container {}", pod.container)
    } else {
        format!("the ServiceAccount annotation {annotation}, injected as {variable} by the webhook")
    };
    Ok(Configured {
        provider,
        principal,
        origin,
    })
}

/// The pod's mechanism: the first whose `detect` claims it, else the first whose
/// `detect_unwired` does (GKE: an unannotated KSA on a metadata-server node).
pub fn detect<'a>(
    registered: &'a [Box<dyn Mechanism>],
    pod: &PodSubject,
) -> Option<&'a dyn Mechanism> {
    let all = || registered.iter().map(AsRef::as_ref);
    all()
        .find(|m| m.detect(pod))
        .or_else(|| all().find(|m| m.detect_unwired(pod)))
}

/// In detection order. Pod Identity comes before IRSA: a ServiceAccount annotated for IRSA
/// whose pod the webhook wired for Pod Identity (an association wins there) runs Pod Identity.
/// A container with both IRSA variables is left to IRSA (its detect declines it): the SDK
/// chain tries web identity before container credentials (see `aws.precedence`).
pub fn registered() -> Vec<Box<dyn Mechanism>> {
    // Pod Identity before IRSA (an association wins in the webhook), AWS before GCP: a pod
    // wired for AWS is never claimed by a later mechanism.
    vec![
        Box::new(aws_pod_identity::AwsPodIdentity),
        Box::new(aws_irsa::AwsIrsa),
        Box::new(gcp_workload_identity::GcpWorkloadIdentity),
        Box::new(azure_workload_identity::AzureWorkloadIdentity),
    ]
}

#[cfg(test)]
mod detect_tests;
