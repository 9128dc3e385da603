//! The probe's report as the checks and identity the exec session gives: the token read in
//! the pod, the pod's reach of the endpoint (failures named by cause, with the fixes of
//! `mechanisms::pod_path`), the cloud's answer, and the node's identity. Probe checks supersede
//! the runtime's checks of the same id (made with an equivalent token from this machine).

use std::time::Duration;

use super::report::{Call, ProbeReport};
use crate::evidence::RuntimeEnv;
use crate::mechanisms::RuntimeOutcome;
use crate::mechanisms::node_fallback::{self, NodeIdentity};
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::{Check, Identity, MechanismId, Status};
use crate::options::VerifyOptions;
use crate::pod_session::{CallFailure, PodCall};
use crate::subject::PodSubject;

/// What one ephemeral probe reported, and where it ran.
pub struct Evidence {
    /// The ephemeral container's name.
    pub container: String,
    pub report: ProbeReport,
    /// `namespace/name`
    pub pod: String,
    /// The container it stood in for.
    pub target: String,
}

/// The check ids of a mechanism's runtime that the probe's evidence answers.
struct Ids {
    token_source: &'static str,
    token_readable: &'static str,
    reachable: &'static str,
    pod_path: Option<&'static str>,
    exchange: &'static str,
    service: &'static str,
    access: [&'static str; 2],
}

fn ids(mechanism: MechanismId, probe_mechanism: &str) -> Option<Ids> {
    Some(match mechanism {
        MechanismId::AwsIrsa => Ids {
            token_source: "aws.token.source",
            token_readable: "aws.irsa.token-readable",
            reachable: "aws.sts.reachable",
            pod_path: Some("aws.sts.pod-path"),
            exchange: "aws.sts.assume-role",
            service: "STS",
            access: ["aws.access.can", "aws.access.cannot"],
        },
        MechanismId::AwsPodIdentity => Ids {
            token_source: "aws.pod-identity.token-source",
            token_readable: "aws.pod-identity.token-readable",
            reachable: "aws.pod-identity.agent",
            pod_path: None,
            exchange: "aws.pod-identity.exchange",
            service: "the Pod Identity agent",
            access: ["aws.access.can", "aws.access.cannot"],
        },
        MechanismId::AzureWorkloadIdentity => Ids {
            token_source: "azure.token.source",
            token_readable: "azure.wi.token-readable",
            reachable: "azure.entra.reachable",
            pod_path: Some("azure.entra.pod-path"),
            exchange: "azure.entra.token",
            service: "Entra",
            access: ["azure.access.can", "azure.access.cannot"],
        },
        MechanismId::GcpWorkloadIdentity if probe_mechanism == "gcp-metadata" => Ids {
            token_source: "gcp.metadata.client",
            token_readable: "gcp.metadata.client",
            reachable: "gcp.metadata.email",
            pod_path: Some("gcp.metadata.client"),
            exchange: "gcp.metadata.email",
            service: "the GKE metadata server",
            access: ["gcp.access.can", "gcp.access.cannot"],
        },
        MechanismId::GcpWorkloadIdentity => Ids {
            token_source: "gcp.external-account.token-file",
            token_readable: "gcp.external-account.token-file",
            reachable: "gcp.sts.reachable",
            pod_path: Some("gcp.sts.pod-path"),
            exchange: "gcp.sts.exchange",
            service: "Google STS",
            access: ["gcp.access.can", "gcp.access.cannot"],
        },
        MechanismId::StaticCredentials | MechanismId::None => return None,
    })
}

/// The metadata services the probe asks: those the pod's SDK falls back to, without GCE's on a
/// node that runs the GKE metadata server (it hides the node's account).
pub fn node_clouds(pod: &PodSubject, mechanism: MechanismId) -> Vec<&'static str> {
    let gke_metadata = pod
        .node_labels
        .as_ref()
        .and_then(|l| l.get(crate::cloud::gcp::NODE_LABEL))
        .is_some_and(|v| v == "true");
    node_fallback::clouds(mechanism)
        .iter()
        .copied()
        .filter(|c| !(gke_metadata && *c == "gcp"))
        .collect()
}

impl Evidence {
    /// `ephemeral probe podiam-probe-xxxxx in pod ns/name`, and how it saw the container.
    pub fn source(&self) -> String {
        let r = &self.report;
        format!(
            "ephemeral probe {} in pod {} (container {}'s env and mounts, uid {}{})",
            self.container,
            self.pod,
            self.target,
            r.user.uid,
            if r.env_source == "target-process" {
                ", env read from its process"
            } else {
                ""
            }
        )
    }

    /// Applies the probe's evidence to the mechanism's runtime outcome.
    pub fn apply(
        &self,
        mechanism: MechanismId,
        outcome: &mut RuntimeOutcome,
        options: &VerifyOptions,
    ) {
        let Some(ids) = ids(mechanism, &self.report.mechanism) else {
            return;
        };
        let mut checks = Vec::new();
        let source = self.source();
        if let Some(token) = &self.report.token {
            checks.push(if token.read {
                Check::pass(
                    ids.token_source,
                    format!("{} read {} ({}) as the pod does: {}", source, token.path, token.variable, token_summary(token.bytes)),
                )
            } else {
                Check::fail(
                    ids.token_readable,
                    format!(
                        "the container's user (uid {}) cannot read {} ({}): {}",
                        self.report.user.uid,
                        token.path,
                        token.variable,
                        token.error.as_deref().unwrap_or("unreadable")
                    ),
                    "run every container as the same runAsUser (the kubelet then gives that user the token), or drop a restrictive defaultMode",
                )
            });
        }
        // The mechanism's own calls (the node's come after, under node.identity).
        let own: Vec<&Call> = self
            .report
            .calls
            .iter()
            .filter(|c| !is_node_step(&c.step))
            .collect();
        let exchange_call = own.first();
        if let Some(failed) = own.iter().find(|c| c.failure.is_some()) {
            checks.push(self.failure_check(&ids, failed));
        } else if let Some(call) = exchange_call
            && mechanism == MechanismId::AwsPodIdentity
            && call.status.is_some_and(|s| s >= 400)
        {
            // The agent is the exchange: an HTTP error from it is no pass.
            checks.push(Check::fail(
                ids.reachable,
                format!(
                    "the pod reaches the Pod Identity Agent at {}, but it gave no credentials: {} — {}",
                    call.url,
                    [
                        Some(format!("HTTP {}", call.status.unwrap_or(0))),
                        call.error_code.clone(),
                        call.error_message.clone(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                    source
                ),
                "see aws.pod-identity.exchange for EKS Auth's answer (association, trust policy, token); the agent's log (kubectl logs -n kube-system ds/eks-pod-identity-agent) names the cause",
            ));
        } else if let Some(call) = exchange_call {
            let proxy = call
                .proxy
                .as_deref()
                .map(|p| format!(" through {p}"))
                .unwrap_or_default();
            checks.push(Check::pass(
                ids.reachable,
                format!(
                    "the pod reached {} at {}{proxy} ({}) — {}",
                    ids.service, call.url, call.because, source
                ),
            ));
        }
        let refused = own.iter().find(|c| c.status.is_some_and(|s| s >= 400));
        if let Some(identity) = &self.report.identity {
            let detail = identity
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            checks.push(Check::pass(
                ids.exchange,
                format!(
                    "{} answered the pod's own exchange at {}: {}{detail}",
                    ids.service, identity.endpoint, identity.principal
                ),
            ));
            if let Some(pod_path) = ids.pod_path {
                outcome.checks.retain(|c| c.id != pod_path);
            }
            outcome.identity = Some(Identity {
                provider: provider(&identity.provider),
                principal: identity.principal.clone(),
                source: format!(
                    "{source}: token {}, exchanged by the pod itself at {}",
                    self.report.token.as_ref().map_or("-", |t| t.path.as_str()),
                    identity.endpoint
                ),
            });
            outcome.unreachable = false;
            // --expect-*: the principal the pod itself got.
            checks.extend(crate::expectations::against_identity(
                options,
                outcome.identity.as_ref().expect("just set"),
            ));
            // The probe keeps no credentials: nothing to try --can/--cannot with.
            outcome.checks.retain(|c| !ids.access.contains(&c.id));
            for expectation in &options.access {
                let (id, spec) = match expectation {
                    crate::options::AccessExpectation::S3 { allowed, spec, .. }
                    | crate::options::AccessExpectation::Gcs { allowed, spec, .. }
                    | crate::options::AccessExpectation::Blob { allowed, spec, .. } => (
                        if *allowed {
                            ids.access[0]
                        } else {
                            ids.access[1]
                        },
                        spec,
                    ),
                };
                checks.push(Check::skip(
                    id,
                    format!("{spec}: not tried — the identity comes from the {source}, which hands back no credentials to make the call with (use --probe=exec with a shell and curl in the image to check access)"),
                ));
            }
        } else if let Some(call) = refused {
            let code = call.error_code.as_deref().unwrap_or("no error code");
            let message = call.error_message.as_deref().unwrap_or("");
            let said = format!(
                "the pod's own request to {} was refused: HTTP {} {code} {message}",
                call.url,
                call.status.unwrap_or(0)
            );
            // The runtime's diagnosis (trust policy, provider) explains the same refusal; keep
            // it and say the pod got it too.
            match outcome.checks.iter_mut().find(|c| c.id == ids.exchange && c.status == Status::Fail) {
                Some(check) => check.message.push_str(&format!(" — {said} ({source})")),
                None => checks.push(Check::fail(
                    ids.exchange,
                    format!("{said} ({source})"),
                    "see the cloud's error code; the trust between the cluster's issuer and the cloud identity decides",
                )),
            }
        }
        for error in &self.report.errors {
            checks.push(Check::warn(
                super::CHECK_ID,
                format!("the ephemeral probe {}: {error}", self.container),
                "see the message",
            ));
        }
        outcome
            .checks
            .retain(|c| !checks.iter().any(|p| p.id == c.id));
        outcome.checks.extend(checks);
    }

    /// A call that got no answer, in the exec session's words (`pod_path::failure_check`).
    fn failure_check(&self, ids: &Ids, call: &Call) -> Check {
        let failure = call.failure.as_ref().expect("a failed call");
        let detail = failure.detail.clone();
        let failure = match failure.cause.as_str() {
            "dns" => CallFailure::Dns { detail },
            "refused" => CallFailure::Refused { detail },
            "no-route" => CallFailure::NoRoute { detail },
            "timeout" => CallFailure::Timeout {
                after: seconds_in(&detail),
            },
            "tls-untrusted" => CallFailure::TlsUntrusted { detail },
            "tls-name" => CallFailure::TlsName { detail },
            "tls" => CallFailure::Tls { detail },
            "proxy" => CallFailure::Proxy { detail },
            _ => CallFailure::Other {
                client: "podiam-probe".into(),
                rc: 0,
                detail,
            },
        };
        // The proxy the probe used, as the pod's env would name it.
        let env = match call
            .proxy
            .as_deref()
            .and_then(|p| p.split_whitespace().next())
        {
            Some(proxy) => {
                RuntimeEnv::parse(format!("HTTPS_PROXY={proxy}\nHTTP_PROXY={proxy}\n").as_bytes())
            }
            None => RuntimeEnv::parse(b""),
        };
        let pod_call = PodCall::get(call.url.clone(), Duration::from_secs(10));
        let mut check = pod_path::failure_check(
            &Endpoint {
                check_id: ids.reachable,
                service: ids.service,
                because: &call.because,
            },
            &pod_call,
            &env,
            &failure,
        );
        check.message.push_str(&format!(" — {}", self.source()));
        if let Some(ca) = &call.ca
            && matches!(failure, CallFailure::TlsUntrusted { .. })
        {
            check.message.push_str(&format!("; roots from {ca}"));
        }
        check
    }

    /// `node.identity` from the probe's metadata answers (None when it asked nothing).
    pub fn node_check(&self, wired: MechanismId) -> Option<(Check, Option<Identity>)> {
        let node = self.report.node.as_ref()?;
        let found = match &node.reached {
            Some(r) => Ok(NodeIdentity {
                provider: provider(&r.provider),
                principal: r.principal.clone(),
                via: format!("{}; {}", r.via, self.source()),
            }),
            None => Err(node.not_reached.clone()),
        };
        Some(node_fallback::verdict(found, wired))
    }
}

/// The probe prefixes the node's calls (IMDS, and GetCallerIdentity with its credentials).
fn is_node_step(step: &str) -> bool {
    step.starts_with("node:")
}

fn provider(name: &str) -> &'static str {
    match name {
        "aws" => "aws",
        "azure" => "azure",
        "gcp" => "gcp",
        _ => "unknown",
    }
}

fn token_summary(bytes: usize) -> String {
    format!("{bytes} bytes, not shown")
}

/// The first number in `detail` as seconds ("no answer within 10s"), else 10s.
fn seconds_in(detail: &str) -> Duration {
    let digits: String = detail
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    Duration::from_secs(digits.parse().unwrap_or(10))
}

#[cfg(test)]
mod tests;
