//! The webhook checks from what was read: pure, so every case is a unit test.

use k8s_openapi::jiff::Timestamp;

use super::known::Webhook;
use super::read::{EndpointCount, Registration, Target, Unread};
use crate::model::Check;

/// Check ids (docs/checks.md).
pub const REGISTERED: &str = "k8s.webhook.registered";
pub const FAILURE_POLICY: &str = "k8s.webhook.failure-policy";
pub const ENDPOINTS: &str = "k8s.webhook.endpoints";
pub const MISSED: &str = "k8s.webhook.missed-pod";

/// What is known about the pod and its webhook.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub webhook: Webhook,
    /// `pod NS/NAME`.
    pub pod: String,
    pub mutated: bool,
    pub pod_created: Option<Timestamp>,
    /// None: not registered.
    pub registration: Result<Option<Registration>, Unread>,
    /// Only for a Service target.
    pub endpoints: Option<Result<EndpointCount, Unread>>,
}

fn skip_unread(id: &'static str, what: &str, unread: &Unread) -> Check {
    match unread {
        // An `info`: most users may not list cluster-wide webhook objects; a skip on every
        // webhook-dependent pod would be noise.
        Unread::Forbidden(permission) => Check::info(
            id,
            format!("{what} could not be read: you may not {permission}"),
            format!("to judge the webhook, use an identity allowed to {permission}"),
        ),
        Unread::Failed(reason) => Check::skip(id, format!("{what} could not be read: {reason}")),
    }
}

fn recreate(pod: &str) -> String {
    let (ns, name) = pod
        .trim_start_matches("pod ")
        .split_once('/')
        .unwrap_or(("NAMESPACE", "POD"));
    format!("kubectl delete pod -n {ns} {name} (or kubectl rollout restart its workload)")
}

/// What a pod created now would get while the webhook cannot be called.
fn while_down(policy: &str) -> &'static str {
    if policy.eq_ignore_ascii_case("Ignore") {
        "new pods are admitted without mutation (failurePolicy Ignore) and start with no cloud identity, silently"
    } else {
        "new pods it would mutate are refused at creation (failurePolicy Fail)"
    }
}

pub fn checks(e: &Evidence) -> Vec<Check> {
    let name = e.webhook.describe();
    let registration = match &e.registration {
        Err(unread) => {
            return vec![skip_unread(
                REGISTERED,
                &format!("the MutatingWebhookConfiguration of {name}"),
                unread,
            )];
        }
        Ok(None) => {
            let found = format!(
                "no MutatingWebhookConfiguration of {name} is registered ({} or a webhook named {})",
                e.webhook.configuration_names().join(", "),
                e.webhook.webhook_names().join(", ")
            );
            let fix = format!("{}, then recreate the pod", e.webhook.install_hint());
            return vec![if e.mutated {
                Check::warn(
                    REGISTERED,
                    format!(
                        "{found}: this pod was mutated earlier, but new pods will start with no cloud identity"
                    ),
                    fix,
                )
            } else {
                Check::fail(
                    REGISTERED,
                    format!(
                        "{found}: {} was admitted without mutation and has no cloud identity",
                        e.pod
                    ),
                    fix,
                )
            }];
        }
        Ok(Some(r)) => r,
    };
    let mut checks = vec![Check::pass(
        REGISTERED,
        format!(
            "{name} is registered: MutatingWebhookConfiguration {} (webhook {})",
            registration.configuration, registration.webhook
        ),
    )];
    // An `info`: the policy alone is no fault (EKS registers Ignore, Azure Fail); the
    // endpoints check carries its effect.
    checks.push(Check::info(
        FAILURE_POLICY,
        format!(
            "failurePolicy {}: while the webhook cannot be called, {}",
            registration.failure_policy,
            while_down(&registration.failure_policy)
        ),
        "after an outage of the webhook, recreate the pods created meanwhile",
    ));
    let endpoints = match (&registration.target, &e.endpoints) {
        (Target::Url(url), _) => {
            // An `info`: on EKS every pod is in this case; a skip on each would be noise.
            checks.push(Check::info(
                ENDPOINTS,
                format!(
                    "{name} is called at a URL ({url}), not through an in-cluster Service: its availability is not visible from the API (EKS runs it in the control plane)"
                ),
                "an unmutated pod is named by the mechanism's own checks (e.g. aws.irsa.pod-mutated)",
            ));
            None
        }
        (
            Target::Service {
                namespace,
                name: service,
            },
            Some(Err(unread)),
        ) => {
            checks.push(skip_unread(
                ENDPOINTS,
                &format!("the endpoints of Service {namespace}/{service}"),
                unread,
            ));
            None
        }
        (
            Target::Service {
                namespace,
                name: service,
            },
            Some(Ok(count)),
        ) => {
            let svc = format!("Service {namespace}/{service}");
            if count.ready > 0 {
                checks.push(Check::pass(
                    ENDPOINTS,
                    format!("{svc} has {} ready endpoint(s)", count.ready),
                ));
            } else {
                let found = format!(
                    "{svc} has no ready endpoint ({} not ready): {}",
                    count.not_ready,
                    while_down(&registration.failure_policy)
                );
                let fix = format!(
                    "bring the webhook back: kubectl -n {namespace} get pods,endpointslices -l kubernetes.io/service-name={service}, fix its Deployment, then recreate pods created meanwhile"
                );
                checks.push(if e.mutated {
                    Check::warn(ENDPOINTS, found, fix)
                } else {
                    Check::fail(ENDPOINTS, found, fix)
                });
            }
            Some(*count)
        }
        (Target::Service { .. }, None) => None,
    };
    if let Some(check) = missed(e, registration, endpoints) {
        checks.push(check);
    }
    checks
}

/// An unmutated pod named as created while the webhook could not mutate it, only on evidence:
/// the configuration is younger than the pod, or the Service has no ready endpoint now and
/// failurePolicy Ignore let pods through. Without such evidence the mechanism's own checks
/// name the other causes (ServiceAccount annotated after the pod, preset env, opt-out).
fn missed(e: &Evidence, r: &Registration, endpoints: Option<EndpointCount>) -> Option<Check> {
    if e.mutated {
        return None;
    }
    let name = e.webhook.describe();
    if let (Some(pod), Some(registered)) = (e.pod_created, r.created)
        && registered > pod
    {
        return Some(Check::fail(
            MISSED,
            format!(
                "{} was created at {pod}, before {name} was registered at {registered} (MutatingWebhookConfiguration {}): it was never mutated",
                e.pod, r.configuration
            ),
            format!("recreate the pod: {}", recreate(&e.pod)),
        ));
    }
    let down = endpoints.is_some_and(|c| c.ready == 0);
    if down && r.failure_policy.eq_ignore_ascii_case("Ignore") {
        return Some(Check::fail(
            MISSED,
            format!(
                "{} is not mutated and {name} has no ready endpoint: it was created while the webhook was down and admitted unmutated (failurePolicy Ignore)",
                e.pod
            ),
            format!(
                "bring the webhook back, then recreate the pod: {}",
                recreate(&e.pod)
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn registration(policy: &str, target: Target, created: &str) -> Registration {
        Registration {
            configuration: "pod-identity-webhook".into(),
            webhook: "iam-for-pods.amazonaws.com".into(),
            failure_policy: policy.into(),
            target,
            created: Some(created.parse().unwrap()),
        }
    }

    fn service() -> Target {
        Target::Service {
            namespace: "kube-system".into(),
            name: "pod-identity-webhook".into(),
        }
    }

    fn evidence(mutated: bool, registration: Result<Option<Registration>, Unread>) -> Evidence {
        Evidence {
            webhook: Webhook::Eks,
            pod: "pod team/app".into(),
            mutated,
            pod_created: Some("2025-06-01T12:00:00Z".parse().unwrap()),
            registration,
            endpoints: Some(Ok(EndpointCount {
                ready: 2,
                not_ready: 0,
            })),
        }
    }

    fn status(checks: &[Check], id: &str) -> Option<Status> {
        checks.iter().find(|c| c.id == id).map(|c| c.status)
    }

    #[test]
    fn a_healthy_webhook_passes_and_names_no_missed_pod() {
        let r = registration("Ignore", service(), "2025-01-01T00:00:00Z");
        let checks = checks(&evidence(false, Ok(Some(r))));
        assert_eq!(status(&checks, REGISTERED), Some(Status::Pass));
        assert_eq!(status(&checks, ENDPOINTS), Some(Status::Pass));
        assert!(status(&checks, MISSED).is_none(), "{checks:#?}");
        let policy = checks.iter().find(|c| c.id == FAILURE_POLICY).unwrap();
        assert!(policy.message.contains("silently"), "{}", policy.message);
    }

    #[test]
    fn no_configuration_fails_an_unmutated_pod_and_warns_a_mutated_one() {
        let c = checks(&evidence(false, Ok(None)));
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].id, c[0].status), (REGISTERED, Status::Fail));
        assert!(
            c[0].message.contains("pod-identity-webhook"),
            "{}",
            c[0].message
        );
        let c = checks(&evidence(true, Ok(None)));
        assert_eq!((c[0].id, c[0].status), (REGISTERED, Status::Warn));
    }

    #[test]
    fn forbidden_reads_are_info_naming_the_permission() {
        let c = checks(&evidence(
            false,
            Err(Unread::Forbidden(
                "list mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide)"
                    .into(),
            )),
        ));
        assert_eq!((c[0].id, c[0].status), (REGISTERED, Status::Info));
        assert!(
            c[0].message.contains("list mutatingwebhookconfigurations"),
            "{}",
            c[0].message
        );
        let mut e = evidence(
            false,
            Ok(Some(registration(
                "Ignore",
                service(),
                "2025-01-01T00:00:00Z",
            ))),
        );
        e.endpoints = Some(Err(Unread::Forbidden(
            "list endpointslices.discovery.k8s.io in namespace kube-system".into(),
        )));
        let c = checks(&e);
        let endpoints = c.iter().find(|c| c.id == ENDPOINTS).unwrap();
        assert_eq!(endpoints.status, Status::Info);
        assert!(
            endpoints.message.contains("endpointslices"),
            "{}",
            endpoints.message
        );
        assert!(status(&c, MISSED).is_none());
    }

    #[test]
    fn no_ready_endpoint_names_the_unmutated_pod_as_created_while_down() {
        let mut e = evidence(
            false,
            Ok(Some(registration(
                "Ignore",
                service(),
                "2025-01-01T00:00:00Z",
            ))),
        );
        e.endpoints = Some(Ok(EndpointCount {
            ready: 0,
            not_ready: 1,
        }));
        let c = checks(&e);
        assert_eq!(status(&c, ENDPOINTS), Some(Status::Fail));
        let missed = c.iter().find(|c| c.id == MISSED).expect("the pod is named");
        assert_eq!(missed.status, Status::Fail);
        assert!(
            missed.message.contains("pod team/app"),
            "{}",
            missed.message
        );
        assert!(
            missed
                .remediation
                .as_deref()
                .unwrap()
                .contains("kubectl delete pod -n team app")
        );
        // A mutated pod is fine itself; new pods are the problem: a warning.
        e.mutated = true;
        let c = checks(&e);
        assert_eq!(status(&c, ENDPOINTS), Some(Status::Warn));
        assert!(status(&c, MISSED).is_none());
        // failurePolicy Fail: pods are refused, not admitted unmutated: no missed pod claimed.
        let mut e = evidence(
            false,
            Ok(Some(registration(
                "Fail",
                service(),
                "2025-01-01T00:00:00Z",
            ))),
        );
        e.endpoints = Some(Ok(EndpointCount {
            ready: 0,
            not_ready: 0,
        }));
        let c = checks(&e);
        assert!(
            c.iter()
                .find(|c| c.id == ENDPOINTS)
                .unwrap()
                .message
                .contains("refused")
        );
        assert!(status(&c, MISSED).is_none());
    }

    #[test]
    fn a_configuration_younger_than_the_pod_names_it() {
        let r = registration(
            "Ignore",
            Target::Url("https://127.0.0.1:23443/mutate".into()),
            "2025-06-02T00:00:00Z",
        );
        let c = checks(&evidence(false, Ok(Some(r.clone()))));
        assert_eq!(status(&c, ENDPOINTS), Some(Status::Info));
        let missed = c.iter().find(|c| c.id == MISSED).unwrap();
        assert!(missed.message.contains("before"), "{}", missed.message);
        // Registered before the pod: no claim.
        let older = registration(
            "Ignore",
            Target::Url("https://x".into()),
            "2025-05-01T00:00:00Z",
        );
        assert!(status(&checks(&evidence(false, Ok(Some(older)))), MISSED).is_none());
    }
}
