//! A token the app will never see refreshed: the projected token file mounted with `subPath`.
//! The kubelet rotates a projected ServiceAccount token (and updates Secret, ConfigMap and
//! downward API files) by swapping the volume's `..data` symlink; a `subPath` mount is a bind
//! mount of the file as it was when the container started, so it never sees the swap. The app
//! works until that first token expires (IRSA 86400 s, Pod Identity and AKS 3600 s by default),
//! then every exchange fails with an expired token. Read from the spec: offline and live alike.
//!
//! Not judged here: an app that reads the token once and caches it (the AADSTS700024 pattern).
//! Whether a process re-reads the file cannot be seen from outside it (every SDK re-reads; a
//! container older than the token's lifetime is normal), so no check claims it.

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume, VolumeMount};

use crate::evidence::RuntimeEnv;
use crate::model::Check;
use crate::subject::{PodSubject, env_value};

/// Check id (docs/checks.md).
pub const SUB_PATH: &str = "k8s.token.sub-path";

/// The variables naming a projected token file the SDKs read: IRSA, EKS Pod Identity, AKS.
/// GCP's file is named inside its external_account config (`credential_source.file`): the GCP
/// checks call [`file_check`] with it.
pub const TOKEN_FILE_VARS: &[&str] = &[
    crate::cloud::aws::irsa::ENV_TOKEN_FILE,
    crate::cloud::aws::pod_identity::ENV_TOKEN_FILE,
    crate::cloud::azure::ENV_TOKEN_FILE,
];

/// The mount of `container` that serves `path` (the deepest mount covering it, as the kernel
/// resolves it), when that mount uses a `subPath` (or `subPathExpr`).
fn sub_path_mount<'a>(container: &'a Container, path: &str) -> Option<&'a VolumeMount> {
    let covers = |m: &VolumeMount| {
        let mount = m.mount_path.trim_end_matches('/');
        path == mount
            || mount.is_empty()
            || path
                .strip_prefix(mount)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let serving = container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| covers(m))
        .max_by_key(|m| m.mount_path.trim_end_matches('/').len())?;
    let has_sub = serving.sub_path.as_deref().is_some_and(|s| !s.is_empty())
        || serving
            .sub_path_expr
            .as_deref()
            .is_some_and(|s| !s.is_empty());
    has_sub.then_some(serving)
}

/// Volumes whose files the kubelet updates in place (and so a subPath mount freezes).
fn updated_by_kubelet(volume: &Volume) -> bool {
    volume.projected.is_some()
        || volume.secret.is_some()
        || volume.config_map.is_some()
        || volume.downward_api.is_some()
}

/// The token's lifetime when the volume projects a ServiceAccount token (Kubernetes' default
/// is 3600 s).
fn token_lifetime(volume: &Volume) -> Option<i64> {
    volume
        .projected
        .as_ref()?
        .sources
        .iter()
        .flatten()
        .find_map(|s| s.service_account_token.as_ref())
        .map(|t| t.expiration_seconds.unwrap_or(3600))
}

/// A fail when `path` (named by `origin`, e.g. a variable) reaches `container` through a
/// subPath mount of a volume the kubelet updates; None otherwise.
pub fn file_check(
    spec: &PodSpec,
    container: &Container,
    origin: &str,
    path: &str,
) -> Option<Check> {
    let mount = sub_path_mount(container, path)?;
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)?;
    if !updated_by_kubelet(volume) {
        return None;
    }
    let sub = mount
        .sub_path
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(mount.sub_path_expr.as_deref())
        .unwrap_or_default();
    let expires = match token_lifetime(volume) {
        Some(seconds) => format!(
            "the first token expires {seconds}s after the container starts and every exchange fails from then on"
        ),
        None => "the app keeps the file as it was when the container started".into(),
    };
    Some(Check::fail(
        SUB_PATH,
        format!(
            "{origin} {path} is mounted in container {} with subPath {sub} of volume {}: the kubelet never updates a subPath mount, so the token is never rotated; {expires}",
            container.name, mount.name
        ),
        format!(
            "mount volume {} as a directory (drop subPath) and point {origin} at the file inside it, then recreate the pod",
            mount.name
        ),
    ))
}

/// The subPath finding for each token variable of the judged container: its value in the
/// spec (as the webhook sets it), else in the running container's environment.
pub fn checks(pod: &PodSubject, spec: &PodSpec, env: Option<&RuntimeEnv>) -> Vec<Check> {
    let Some(container) = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
    else {
        return Vec::new();
    };
    TOKEN_FILE_VARS
        .iter()
        .filter_map(|var| {
            let path = env_value(container, var).or_else(|| env?.get(var))?;
            file_check(spec, container, var, path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn subject(spec: &PodSpec) -> PodSubject {
        PodSubject {
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: "p".into(),
            spec: spec.clone(),
            container: "app".into(),
            ..Default::default()
        }
    }

    fn spec(mount: &str) -> PodSpec {
        serde_saphyr::from_str(&format!(
            r#"
containers:
  - name: app
    env:
      - {{name: AWS_WEB_IDENTITY_TOKEN_FILE, value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token}}
    volumeMounts:
      - {mount}
volumes:
  - name: aws-iam-token
    projected:
      sources:
        - serviceAccountToken: {{audience: sts.amazonaws.com, expirationSeconds: 86400, path: token}}
  - name: scratch
    emptyDir: {{}}
"#
        ))
        .unwrap()
    }

    #[test]
    fn a_projected_token_mounted_with_sub_path_is_never_rotated() {
        let s = spec(
            "{name: aws-iam-token, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount/token, subPath: token}",
        );
        let found = checks(&subject(&s), &s, None);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].id, found[0].status), (SUB_PATH, Status::Fail));
        assert!(
            found[0].message.contains("subPath token"),
            "{}",
            found[0].message
        );
        assert!(found[0].message.contains("86400s"), "{}", found[0].message);
        assert!(
            found[0]
                .remediation
                .as_deref()
                .unwrap()
                .contains("drop subPath"),
            "{:?}",
            found[0].remediation
        );
    }

    #[test]
    fn a_directory_mount_is_fine() {
        let s = spec(
            "{name: aws-iam-token, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount}",
        );
        assert!(checks(&subject(&s), &s, None).is_empty());
    }

    #[test]
    fn a_sub_path_of_a_volume_nothing_updates_is_not_a_finding() {
        let s = spec(
            "{name: scratch, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount/token, subPath: token}",
        );
        assert!(checks(&subject(&s), &s, None).is_empty());
    }

    #[test]
    fn a_sub_path_directory_covering_the_file_counts_and_the_runtime_env_is_read() {
        let mut s = spec(
            "{name: aws-iam-token, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount, subPathExpr: $(POD)}",
        );
        s.containers[0].env = None;
        assert!(checks(&subject(&s), &s, None).is_empty());
        let env = RuntimeEnv::parse(
            b"AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/azure-identity-token\n",
        );
        let found = checks(&subject(&s), &s, Some(&env));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.starts_with("AZURE_FEDERATED_TOKEN_FILE"),
            "{}",
            found[0].message
        );
    }
}
