//! Whether what exec returned is the container's own view. A container controls what exec
//! returns: a shell function or a wrapper earlier on PATH can print any `env`, any token file
//! and any call's answer, and can read the session's boundary from the script's argv. What a
//! pod prints is therefore evidence, never proof: a pass rests on a cloud's answer to a call
//! made or checked from this machine (STS GetCallerIdentity with the credentials the pod
//! returned, Entra's and STS's validation of the token's signature). This module catches the
//! forgeries that are visible — `env` contradicting the pod spec, frames out of turn, output
//! past the session's bound — fails the pod with `k8s.exec.trusted`, and has the mechanisms
//! judge the spec's values instead, with no call through the forging session.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::evidence::{ReadFailure, RuntimeEnv};
use crate::kube::exec::ExecError;
use crate::model::Check;
use crate::subject::PodSubject;

pub const ID: &str = "k8s.exec.trusted";

const FIX: &str = "remove whatever stands in for sh, env or cat in the image (a wrapper earlier on PATH, a shell function, an ENV-loaded profile): podiam reads the pod's view through them";

/// Variables a POSIX shell sets or rewrites itself: `env` run from `sh -c` shows the shell's
/// value, whatever the spec said.
const SHELL_MANAGED: &[&str] = &[
    "PWD", "OLDPWD", "SHLVL", "_", "IFS", "PS1", "PS2", "PS4", "OPTIND", "LINENO", "PPID",
];

/// The variables whose value the kubelet sets exactly (a literal `value` in the spec, no
/// `$(VAR)` reference, no `valueFrom`) and that `env` printed differently or not at all, with
/// the spec's value. The last definition of a name wins, as in the kubelet. Values are compared
/// on their first line, as [`crate::env_probe::variables`] keeps them.
pub fn contradicted(container: &Container, env: &RuntimeEnv) -> Vec<(String, String)> {
    let mut literal: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        literal.retain(|(name, _)| name != &var.name);
        if var.value_from.is_some() || SHELL_MANAGED.contains(&var.name.as_str()) {
            continue;
        }
        let value = var.value.clone().unwrap_or_default();
        if !value.contains("$(") {
            literal.push((var.name.clone(), value));
        }
    }
    literal
        .into_iter()
        .filter(|(name, value)| {
            let first_line = value.lines().next().unwrap_or("");
            env.get(name) != Some(first_line)
        })
        .collect()
}

fn container<'a>(spec: &'a PodSpec, name: &str) -> Option<&'a Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == name)
}

/// The check for what exec returned, when it shows a forgery; `env` is made to hold the spec's
/// values and loses its session (see [`RuntimeEnv::distrust`]).
pub async fn judge(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&mut RuntimeEnv>,
    failure: Option<&ReadFailure>,
) -> Option<Check> {
    if let Some(ReadFailure::NoExec(e @ ExecError::TooLarge(_))) = failure {
        return Some(Check::fail(
            ID,
            format!(
                "the session in container {} could not read its environment: {e}; judged from the pod spec",
                pod.container
            ),
            FIX,
        ));
    }
    // A shell that never answers (or a cluster too slow for the budget): said, not failed —
    // the token is then read by its own exec and verified by the cloud.
    if let Some(ReadFailure::NoExec(e @ ExecError::Timeout(_))) = failure {
        return Some(Check::warn(
            ID,
            format!(
                "the session in container {} did not start: {e} (a shell or env that never answers); judged from the pod spec, the token read by its own exec",
                pod.container
            ),
            FIX,
        ));
    }
    let env = env?;
    let mut reasons = Vec::new();
    if let Some(why) = env.forged() {
        reasons.push(why.to_string());
    }
    let contradicted = container(spec, &pod.container)
        .map(|c| contradicted(c, env))
        .unwrap_or_default();
    if !contradicted.is_empty() {
        let names: Vec<&str> = contradicted.iter().map(|(n, _)| n.as_str()).collect();
        reasons.push(format!(
            "`env` printed {} unlike the pod spec, whose values the kubelet sets exactly",
            names.join(", ")
        ));
    }
    if reasons.is_empty() {
        return None;
    }
    env.distrust(&contradicted).await;
    Some(Check::fail(
        ID,
        format!(
            "what exec returned from container {} is not the container's own view: {}; judged from the pod spec, with no call made through the pod's session",
            pod.container,
            reasons.join("; ")
        ),
        FIX,
    ))
}

/// After the calls: a forgery the opening did not show but a call met (frames out of turn).
pub async fn after_calls(pod: &PodSubject, env: Option<&RuntimeEnv>) -> Option<Check> {
    if !env?.forged_in_calls().await {
        return None;
    }
    Some(Check::fail(
        ID,
        format!(
            "what exec returned from container {} is not the container's own view: {}; the calls after it were made from this machine",
            pod.container,
            crate::pod_session::FORGED_FRAMES
        ),
        FIX,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

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

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn container_with(env: Vec<EnvVar>) -> Container {
        Container {
            name: "app".into(),
            env: Some(env),
            ..Default::default()
        }
    }

    #[test]
    fn a_forged_value_and_a_hidden_one_are_contradictions() {
        let c = container_with(vec![
            var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/real"),
            var("AWS_REGION", "us-east-1"),
            var("KEPT", "same"),
        ]);
        let env = RuntimeEnv::parse(
            b"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/forged\nKEPT=same\nEXTRA=from-image\n",
        );
        let found = contradicted(&c, &env);
        assert_eq!(
            found,
            vec![
                (
                    "AWS_ROLE_ARN".to_string(),
                    "arn:aws:iam::123456789012:role/real".to_string()
                ),
                ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ]
        );
    }

    #[test]
    fn references_value_from_and_the_last_definition_are_respected() {
        let from_field = EnvVar {
            name: "POD_NAME".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let c = container_with(vec![
            var("A", "first"),
            var("A", "second"),
            var("URL", "https://$(HOST)/x"),
            var("MULTI", "line one\nline two"),
            var("PWD", "/set/by/spec"),
            from_field,
        ]);
        let env = RuntimeEnv::parse(b"A=second\nURL=https://h/x\nMULTI=line one\nPOD_NAME=p\n");
        assert!(contradicted(&c, &env).is_empty());
    }

    #[tokio::test]
    async fn a_contradiction_fails_the_pod_and_the_spec_value_is_judged() {
        let spec = PodSpec {
            containers: vec![container_with(vec![var(
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/real",
            )])],
            ..Default::default()
        };
        let pod = subject(&spec);
        let mut env = RuntimeEnv::parse(b"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/forged\n");
        let check = judge(&pod, &spec, Some(&mut env), None)
            .await
            .expect("a check");
        assert_eq!(check.status, crate::model::Status::Fail);
        assert!(check.message.contains("AWS_ROLE_ARN"), "{}", check.message);
        assert!(!check.message.contains("forged"), "{}", check.message);
        assert_eq!(
            env.get("AWS_ROLE_ARN"),
            Some("arn:aws:iam::123456789012:role/real")
        );
        assert!(env.session().is_none());
        let mut honest = RuntimeEnv::parse(b"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/real\n");
        assert!(judge(&pod, &spec, Some(&mut honest), None).await.is_none());
    }

    #[tokio::test]
    async fn output_past_the_bound_names_the_cause() {
        let spec = PodSpec::default();
        let pod = subject(&spec);
        let failure = ReadFailure::NoExec(ExecError::TooLarge(4 * 1024 * 1024));
        let check = judge(&pod, &spec, None, Some(&failure))
            .await
            .expect("a check");
        assert_eq!(check.status, crate::model::Status::Fail);
        assert!(
            check.message.contains("more than 4194304 bytes"),
            "{}",
            check.message
        );
        let slow = ReadFailure::NoExec(ExecError::Timeout(std::time::Duration::from_secs(5)));
        let check = judge(&pod, &spec, None, Some(&slow))
            .await
            .expect("a check");
        assert_eq!(check.status, crate::model::Status::Warn);
        assert!(check.message.contains("5s"), "{}", check.message);
        let other = ReadFailure::NoExec(ExecError::Forbidden("no".into()));
        assert!(judge(&pod, &spec, None, Some(&other)).await.is_none());
    }
}
