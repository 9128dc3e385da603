//! `k8s.token.automount`: a Kubernetes API token mounted into a pod that appears never to use
//! it. "Never uses it" is a heuristic, said so in the message: the ServiceAccount has no RBAC
//! grants beyond the defaults every authenticated user has, AND no container's image, command,
//! args or env values mention the API (KUBERNETES_SERVICE_HOST, kubernetes.default, the token
//! path, kubectl). Cloud identity mechanisms never read this token: they mount their own.
//! Being a heuristic that matches most pods, its finding is `info` (shown with `-v`), never a
//! warning.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::model::Check;
use crate::subject::{Origin, PodSubject};

/// The volume the ServiceAccount admission plugin adds (`kube-api-access-<random>`).
const API_ACCESS_VOLUME_PREFIX: &str = "kube-api-access-";
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Signs that a container talks to the Kubernetes API.
const API_MARKERS: &[&str] = &[
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "kubernetes.default",
    TOKEN_DIR,
    "kubectl",
];

/// What RBAC says about the ServiceAccount's use of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RbacUse {
    /// Only the defaults: discovery and self reviews.
    DefaultsOnly,
    /// Grants beyond the defaults: the workload probably calls the API.
    Granted,
    /// Not reviewed (`k8s.rbac.review` says why).
    Unknown,
}

fn mentions_api(c: &Container) -> Option<&'static str> {
    let texts = std::iter::once(c.image.as_deref().unwrap_or(""))
        .chain(c.command.iter().flatten().map(String::as_str))
        .chain(c.args.iter().flatten().map(String::as_str))
        .chain(
            c.env
                .iter()
                .flatten()
                .flat_map(|e| [e.name.as_str(), e.value.as_deref().unwrap_or("")]),
        );
    for text in texts {
        if let Some(m) = API_MARKERS.iter().find(|m| text.contains(**m)) {
            return Some(m);
        }
    }
    None
}

/// The `kube-api-access-*` volume mounted in some container, if any.
fn mounted_api_volume(spec: &PodSpec) -> Option<String> {
    let volume = spec.volumes.iter().flatten().find(|v| {
        v.name.starts_with(API_ACCESS_VOLUME_PREFIX)
            && v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .iter()
                    .flatten()
                    .any(|s| s.service_account_token.is_some())
            })
    })?;
    let mounted = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .any(|c| {
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == volume.name)
        });
    mounted.then(|| volume.name.clone())
}

pub fn check(pod: &PodSubject, rbac: &RbacUse) -> Check {
    const ID: &str = "k8s.token.automount";
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    if !pod.automount_token() {
        return Check::pass(
            ID,
            "automountServiceAccountToken is false (pod or ServiceAccount): no Kubernetes API token in the pod",
        );
    }
    let volume = match pod.origin {
        Origin::Template => "kube-api-access volume, added at admission".to_string(),
        Origin::Live | Origin::Dump => match mounted_api_volume(&pod.spec) {
            Some(v) => format!("volume {v}"),
            None => {
                return Check::pass(
                    ID,
                    "no kube-api-access projected volume is mounted: no Kubernetes API token in the pod",
                );
            }
        },
    };
    if let Some((container, marker)) = pod
        .all_containers()
        .find_map(|c| mentions_api(c).map(|m| (c.name.clone(), m)))
    {
        return Check::pass(
            ID,
            format!(
                "{} mounts a Kubernetes API token and container {container} mentions {marker}: it appears to use the API",
                pod.describe()
            ),
        );
    }
    let rbac_part = match rbac {
        RbacUse::Granted => {
            return Check::pass(
                ID,
                format!(
                    "{} mounts a Kubernetes API token and serviceaccount {sa} has RBAC grants beyond the defaults: it appears to use the API",
                    pod.describe()
                ),
            );
        }
        RbacUse::DefaultsOnly => {
            format!("serviceaccount {sa} has no RBAC grants beyond the defaults")
        }
        RbacUse::Unknown => "its RBAC was not reviewed".to_string(),
    };
    // Info, not a warning: nearly every pod of a real cluster matches, and warnings that fire
    // everywhere teach users to ignore warnings (docs/checks.md).
    Check::info(
        ID,
        format!(
            "{} mounts a Kubernetes API token ({volume}) it appears never to use (heuristic: {rbac_part}, and no container's image, command, args or env mention KUBERNETES_SERVICE_HOST, kubernetes.default, the token path or kubectl)",
            pod.describe()
        ),
        "set automountServiceAccountToken: false in the pod spec (or the ServiceAccount) and recreate the pod",
    )
}
