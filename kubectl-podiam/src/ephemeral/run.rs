//! Starting the probe through the API: the container is added with the
//! `pods/ephemeralcontainers` subresource (a strategic merge patch, as `kubectl debug` does),
//! its status polled until it terminates, its one line read from its log. Bounded by the
//! API budget (`--request-timeout`, else 30s).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, LogParams, Patch, PatchParams};

use super::spec;
use crate::model::Check;
use crate::subject::PodSubject;

/// The largest log read: the report is one line of a few KB.
const MAX_LOG_BYTES: i64 = 256 * 1024;
const POLL: Duration = Duration::from_millis(400);
/// Kubelet reasons for a container whose image will not come.
const PULL_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];

pub struct ProbeRequest {
    pub image: String,
    pub mechanism: &'static str,
    /// Metadata services the probe asks for the node's identity.
    pub node: Vec<&'static str>,
    /// The whole run's bound.
    pub timeout: Duration,
}

impl ProbeRequest {
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--mechanism".to_string(),
            self.mechanism.to_string(),
            "--timeout".into(),
            super::call_timeout(self.timeout).as_secs().to_string(),
        ];
        if !self.node.is_empty() {
            args.push("--node".into());
            args.push(self.node.join(","));
        }
        args
    }
}

pub struct Ran {
    pub name: String,
    /// The container's log (stdout and stderr): the report line, no secret.
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EphemeralError {
    #[error("adding an ephemeral container is forbidden: {0}")]
    Forbidden(String),
    #[error("the API server refused the ephemeral container: {0}")]
    Refused(String),
    #[error("the image {image} cannot be pulled ({reason}: {message})")]
    ImagePull {
        image: String,
        reason: String,
        message: String,
    },
    #[error("{name} did not finish within {}s", .after.as_secs())]
    Timeout { name: String, after: Duration },
    #[error("the container {0} is not in the pod's spec")]
    NoTarget(String),
    #[error("the API: {0}")]
    Api(String),
}

impl EphemeralError {
    /// The warning that replaces the probe's evidence, naming the permission or the image.
    pub fn check(&self, pod: &PodSubject, image: &str) -> Check {
        let fix = match self {
            EphemeralError::Forbidden(_) => format!(
                "grant `patch` on pods/ephemeralcontainers (and `get` on pods/log) in namespace {} to the user running podiam, or use --probe=exec",
                pod.namespace
            ),
            EphemeralError::ImagePull { .. } => format!(
                "make {image} pullable from the node (mirror it to a registry the cluster reaches and pass --probe-image), or use --probe=exec"
            ),
            EphemeralError::Timeout { .. } => {
                "raise --request-timeout, or check the node can start containers".into()
            }
            _ => "use --probe=exec".into(),
        };
        Check::warn(
            super::CHECK_ID,
            format!(
                "no evidence from an ephemeral probe in {}: {self}",
                pod.describe()
            ),
            fix,
        )
    }
}

pub async fn run(
    client: &kube::Client,
    pod: &PodSubject,
    request: &ProbeRequest,
) -> Result<Ran, EphemeralError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let name = spec::container_name();
    let container = spec::ephemeral_container(
        &pod.spec,
        &pod.container,
        &name,
        &request.image,
        request.args(),
    )
    .ok_or_else(|| EphemeralError::NoTarget(pod.container.clone()))?;
    let patch = serde_json::json!({ "spec": { "ephemeralContainers": [container] } });
    tracing::debug!(container = %name, image = %request.image, "adding the ephemeral probe");
    let added = tokio::time::timeout(
        request.timeout,
        pods.patch_ephemeral_containers(
            &pod.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        ),
    )
    .await
    .map_err(|_| EphemeralError::Timeout {
        name: name.clone(),
        after: request.timeout,
    })?;
    match added {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 401 => {
            return Err(EphemeralError::Forbidden(s.message));
        }
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 || s.code == 404 => {
            return Err(EphemeralError::Refused(s.message));
        }
        Err(e) => return Err(EphemeralError::Api(e.to_string())),
    }
    wait_terminated(&pods, &pod.name, &name, &request.image, request.timeout).await?;
    let log = pods
        .logs(
            &pod.name,
            &LogParams {
                container: Some(name.clone()),
                limit_bytes: Some(MAX_LOG_BYTES),
                ..LogParams::default()
            },
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 || s.code == 401 => {
                EphemeralError::Forbidden(s.message)
            }
            e => EphemeralError::Api(e.to_string()),
        })?;
    Ok(Ran { name, log })
}

async fn wait_terminated(
    pods: &Api<Pod>,
    pod: &str,
    name: &str,
    image: &str,
    timeout: Duration,
) -> Result<(), EphemeralError> {
    let started = tokio::time::Instant::now();
    loop {
        let status = pods
            .get_status(pod)
            .await
            .map_err(|e| EphemeralError::Api(e.to_string()))?;
        let own = status
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .into_iter()
            .flatten()
            .find(|s| s.name == name);
        if let Some(s) = own
            && let Some(done) = state(&s, image)
        {
            return done;
        }
        if started.elapsed() + POLL > timeout {
            return Err(EphemeralError::Timeout {
                name: name.into(),
                after: timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Some when the container's state decides: terminated, or an image that will not come.
pub fn state(status: &ContainerStatus, image: &str) -> Option<Result<(), EphemeralError>> {
    let state = status.state.as_ref()?;
    if state.terminated.is_some() {
        return Some(Ok(()));
    }
    let waiting = state.waiting.as_ref()?;
    let reason = waiting.reason.clone().unwrap_or_default();
    PULL_FAILURES.contains(&reason.as_str()).then(|| {
        Err(EphemeralError::ImagePull {
            image: image.into(),
            reason,
            message: waiting.message.clone().unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: serde_json::Value) -> ContainerStatus {
        serde_json::from_value(serde_json::json!({
            "name": "podiam-probe-x", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": state
        }))
        .unwrap()
    }

    #[test]
    fn terminated_and_pull_failures_decide_waiting_does_not() {
        assert!(matches!(
            state(
                &status(serde_json::json!({"terminated": {"exitCode": 0}})),
                "i"
            ),
            Some(Ok(()))
        ));
        let pull = state(
            &status(
                serde_json::json!({"waiting": {"reason": "ErrImageNeverPull", "message": "not present with pull policy of Never"}}),
            ),
            "podiam.local/probe:v0.1.0",
        );
        let Some(Err(e)) = pull else {
            panic!("a pull failure decides")
        };
        assert!(
            e.to_string()
                .contains("podiam.local/probe:v0.1.0 cannot be pulled"),
            "{e}"
        );
        assert!(
            state(
                &status(serde_json::json!({"waiting": {"reason": "ContainerCreating"}})),
                "i"
            )
            .is_none()
        );
    }

    #[test]
    fn args_carry_the_mechanism_node_clouds_and_a_bound() {
        let r = ProbeRequest {
            image: "i".into(),
            mechanism: "aws-irsa",
            node: vec!["aws"],
            timeout: Duration::from_secs(30),
        };
        assert_eq!(
            r.args(),
            vec!["--mechanism", "aws-irsa", "--timeout", "7", "--node", "aws"]
        );
    }
}
