//! The ephemeral container that stands in for the target container: the probe image, the
//! target's env, envFrom and volume mounts, its user (runAsUser/runAsGroup/runAsNonRoot) and
//! `targetContainerName`, so the probe sees the target's processes and files as its user does.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EphemeralContainer, PodSpec, SeccompProfile, SecurityContext,
};

use crate::model::MechanismId;
use crate::subject::{PodSubject, env_value};

/// The container named `target` in `spec` (regular or init).
pub fn target_container<'a>(spec: &'a PodSpec, target: &str) -> Option<&'a Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == target)
}

/// The probe's ephemeral container for `target`, or None when `target` is not in `spec`.
pub fn ephemeral_container(
    spec: &PodSpec,
    target: &str,
    name: &str,
    image: &str,
    args: Vec<String>,
) -> Option<EphemeralContainer> {
    let t = target_container(spec, target)?;
    let pod_sc = spec.security_context.as_ref();
    let sc = t.security_context.as_ref();
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or(pod_sc.and_then(|s| s.run_as_group));
    let run_as_non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod_sc.and_then(|s| s.run_as_non_root));
    // Without a known user the probe starts as its image's root and becomes the target
    // process's user itself (it needs CAP_SETUID/CAP_SETGID for that); with one, no capability.
    let capabilities = run_as_user.map(|_| Capabilities {
        drop: Some(vec!["ALL".into()]),
        add: None,
    });
    Some(EphemeralContainer {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(args),
        env: t.env.clone(),
        env_from: t.env_from.clone(),
        volume_mounts: t.volume_mounts.as_ref().map(|mounts| {
            mounts
                .iter()
                .cloned()
                .map(|mut m| {
                    // The probe only reads; a read-only mount cannot be harmed by it.
                    m.read_only = Some(true);
                    m
                })
                .collect()
        }),
        target_container_name: Some(target.into()),
        security_context: Some(SecurityContext {
            run_as_user,
            run_as_group,
            run_as_non_root,
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..EphemeralContainer::default()
    })
}

/// `podiam-probe-` and five random lower-case letters or digits.
pub fn container_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // Unique enough for a name in one pod: the clock, the process and a counter, hashed.
    use sha2::Digest;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{nanos}-{}-{n}", std::process::id());
    let bytes = sha2::Sha256::digest(seed.as_bytes());
    let suffix: String = bytes[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("podiam-probe-{suffix}")
}

/// The probe's `--mechanism` for what the plugin detected (GKE: a credentials file means an
/// external_account configuration, else the metadata server).
pub fn mechanism_arg(pod: &PodSubject, mechanism: MechanismId) -> &'static str {
    match mechanism {
        MechanismId::AwsIrsa => "aws-irsa",
        MechanismId::AwsPodIdentity => "aws-pod-identity",
        MechanismId::AzureWorkloadIdentity => "azure-workload-identity",
        MechanismId::GcpWorkloadIdentity => {
            let has_file = target_container(&pod.spec, &pod.container)
                .and_then(|c| env_value(c, crate::cloud::gcp::ENV_CREDENTIALS))
                .is_some_and(|v| !v.is_empty());
            if has_file {
                "gcp-external-account"
            } else {
                "gcp-metadata"
            }
        }
        MechanismId::StaticCredentials | MechanismId::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PodSpec {
        serde_json::from_value(serde_json::json!({
            "securityContext": {"runAsUser": 2000, "runAsGroup": 3000, "fsGroup": 4000},
            "containers": [
                {"name": "sidecar", "image": "x"},
                {
                    "name": "app",
                    "image": "distroless",
                    "securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
                    "env": [
                        {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::1:role/r"},
                        {"name": "AWS_REGION", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "r"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "app-env"}}],
                    "volumeMounts": [
                        {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"},
                        {"name": "certs", "mountPath": "/etc/pki/custom", "subPath": "ca"}
                    ]
                }
            ]
        }))
        .unwrap()
    }

    #[test]
    fn copies_env_mounts_and_user_of_the_target() {
        let c = ephemeral_container(
            &spec(),
            "app",
            "podiam-probe-abcde",
            "podiam.local/probe:v0.1.0",
            vec!["--mechanism".into(), "aws-irsa".into()],
        )
        .unwrap();
        assert_eq!(c.target_container_name.as_deref(), Some("app"));
        assert_eq!(c.image.as_deref(), Some("podiam.local/probe:v0.1.0"));
        let env = c.env.unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env[0].value.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert!(env[1].value_from.is_some(), "valueFrom kept");
        assert_eq!(c.env_from.unwrap().len(), 1);
        let mounts = c.volume_mounts.unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].sub_path.as_deref(), Some("ca"));
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        let sc = c.security_context.unwrap();
        // The container's user wins; the group falls back to the pod's.
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(3000)));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(c.args.unwrap(), vec!["--mechanism", "aws-irsa"]);
    }

    #[test]
    fn an_image_user_keeps_the_capability_to_become_it() {
        let mut s = spec();
        s.security_context = None;
        s.containers[1].security_context = None;
        let c = ephemeral_container(&s, "app", "n", "i", Vec::new()).unwrap();
        let sc = c.security_context.unwrap();
        assert_eq!(sc.run_as_user, None);
        assert!(sc.capabilities.is_none());
        assert!(ephemeral_container(&s, "missing", "n", "i", Vec::new()).is_none());
    }

    #[test]
    fn names_are_valid_container_names() {
        let a = container_name();
        assert!(a.starts_with("podiam-probe-") && a.len() == 18, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
