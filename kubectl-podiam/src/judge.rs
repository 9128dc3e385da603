//! The flow for one pod: detect → static checks → evidence → exchange → report item.

use crate::ephemeral::{self, Collected};
use crate::evidence::{Probe, RuntimeEnv};
use crate::expectations;
use crate::mechanisms::{self, Mechanism, egress, node_fallback, static_credentials};
use crate::model::{Identity, KubernetesIdentity, MechanismId, PodRef, ReportItem};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;

pub fn kubernetes_identity(pod: &PodSubject) -> KubernetesIdentity {
    KubernetesIdentity {
        username: pod.subject_claim(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", pod.namespace),
            "system:authenticated".into(),
        ],
        automount_token: pod.automount_token(),
        permissions: None,
        permissions_source: None,
    }
}

pub async fn judge(pod: &PodSubject, probe: &Probe, options: &VerifyOptions) -> ReportItem {
    // What only the cloud knows about a template's wiring, looked up when it can be.
    let resolved = mechanisms::resolve_template(pod, options).await;
    let pod = resolved.as_ref().unwrap_or(pod);
    let registered = mechanisms::registered();
    let mechanism: Option<&dyn Mechanism> = mechanisms::detect(&registered, pod);
    tracing::debug!(
        pod = %pod.describe(),
        container = %pod.container,
        mechanism = mechanism.map_or("none", |m| m.id().as_str()),
        "detected"
    );
    let spec = mechanism.map_or_else(|| pod.spec.clone(), |m| m.admit(pod));

    // One exec for the container's environment (and the mechanism's token files), shared by
    // every check that needs it.
    let file_vars = mechanism.map_or(&[][..], |m| m.token_file_vars());
    let (mut env, env_failure): (Option<RuntimeEnv>, _) = match probe.env(pod, file_vars).await {
        Ok(env) => {
            tracing::debug!(variables = ?env, "runtime environment read by exec");
            (Some(env), None)
        }
        Err(e) => {
            tracing::debug!(reason = ?e, "no runtime environment; judging the spec's env");
            (None, Some(e))
        }
    };
    // A container controls what exec returns: a visible forgery fails the pod, and the
    // mechanisms then judge the spec's values with no call through the pod's session.
    let exec_trust = crate::exec_trust::judge(pod, &spec, env.as_mut(), env_failure.as_ref()).await;
    let env = env;

    // Exec in the container → the ephemeral probe (when asked) → the exchange from this machine.
    let detected = mechanism.map_or(MechanismId::None, |m| m.id());
    let ephemeral = ephemeral::collect(pod, probe, env.as_ref(), detected, &options.probe).await;

    let (mut findings, uninspected) = static_credentials::scan(&spec, &pod.secret_keys);
    if let Some(env) = &env {
        for f in static_credentials::scan_runtime(&pod.container, &env.names()) {
            if !findings
                .iter()
                .any(|g| g.container == f.container && g.variable == f.variable)
            {
                findings.push(f);
            }
        }
    }
    // Static keys are judged per cloud (static_credentials::winning). A pod claimed only by
    // its node (GKE direct principals) chose no cloud: any key decides, as for an unwired pod.
    let claimed_by_node = mechanism.is_some_and(|m| !m.detect(pod));
    let key_against = if claimed_by_node {
        MechanismId::None
    } else {
        detected
    };
    let winning_key = static_credentials::winning(pod, &findings, key_against);
    let static_keys_win = winning_key.is_some();
    let mut checks = vec![static_credentials::check(
        pod,
        &findings,
        &uninspected,
        key_against,
    )];
    checks.extend(exec_trust);

    let mut identity = None;
    let mut unreachable = false;
    // A mechanism the cloud grants the ServiceAccount though the pod is not wired for it.
    let mut granted_unwired: Option<MechanismId> = None;
    if let Some(m) = mechanism {
        checks.extend(m.static_checks(pod, &spec));
        // prod: a token file on a subPath mount is never rotated (any mechanism).
        checks.extend(mechanisms::token_refresh::checks(pod, &spec, env.as_ref()));
        // The endpoints it needs against the NetworkPolicies selecting the pod.
        checks.extend(egress::checks(pod, &spec, env.as_ref(), m.id(), probe, options).await);
        let mut outcome = m.runtime(pod, &spec, env.as_ref(), probe, options).await;
        if let Collected::Evidence(e) = &ephemeral {
            e.apply(m.id(), &mut outcome, options);
        }
        // Runtime evidence supersedes the static prediction for the same check.
        checks.retain(|c| !outcome.checks.iter().any(|r| r.id == c.id));
        checks.extend(outcome.checks);
        identity = outcome.identity;
        unreachable = outcome.unreachable;
    } else if !static_keys_win {
        let unwired = mechanisms::unwired::judge(pod, probe, options).await;
        granted_unwired = unwired.granted;
        checks.push(unwired.check);
    }
    if let Some(f) = winning_key {
        identity = Some(static_credentials::identity(f));
    }
    let mechanism_id = if static_keys_win {
        MechanismId::StaticCredentials
    } else if let Some(granted) = granted_unwired {
        granted
    } else {
        mechanism.map_or(MechanismId::None, |m| m.id())
    };
    // prod: the identity webhook the pod depends on (live only).
    checks.extend(crate::webhook_health::checks(pod, mechanism_id, probe, options).await);
    // What the pod's SDK falls back to when nothing else answers: the node's identity.
    if !static_keys_win {
        let wired = if granted_unwired.is_some() {
            MechanismId::None
        } else {
            mechanism.map_or(MechanismId::None, |m| m.id())
        };
        let from_exec = node_fallback::judge(pod, env.as_ref(), wired, options).await;
        let node = match &ephemeral {
            Collected::Evidence(e) if from_exec.is_none() => e.node_check(wired),
            _ => from_exec,
        };
        if let Some((check, node_identity)) = node {
            checks.push(check);
            if identity.is_none() {
                identity = node_identity;
            }
        }
    }
    if let Collected::Failed(check) = ephemeral {
        checks.push(check);
    }
    // The SDK the image ships, read through the same session.
    checks.extend(crate::sdk_version::checks(mechanism_id, env.as_ref()).await);
    // What the configuration names: offline (no token to exchange) it is the pod's identity,
    // and it judges the expectations no exchange answered.
    let configured = match &pod.eks_association {
        // An association would win over the annotation in the webhook: the configuration
        // does not decide while the lookup failed.
        crate::subject::EksAssociation::LookupFailed(why) => Err(format!(
            "the EKS Pod Identity association lookup failed ({why}), and an association would win over the configuration"
        )),
        _ => mechanism.map_or_else(
            || Err("no mechanism is wired".to_string()),
            |m| m.configured(pod, &spec, env.as_ref()),
        ),
    };
    let offline = matches!(probe, Probe::Offline { token: None });
    if offline
        && identity.is_none()
        && !static_keys_win
        && granted_unwired.is_none()
        && let Ok(c) = &configured
    {
        identity = Some(Identity {
            provider: c.provider,
            principal: c.principal.clone(),
            source: format!("{} — {}", expectations::CONFIGURED_SOURCE, c.origin),
        });
    }
    // No silent pass: every expectation flag ends as a check.
    expectations::complete(
        &mut checks,
        options,
        &expectations::Judged {
            mechanism: mechanism_id,
            identity: identity.as_ref(),
            configured,
            offline,
        },
    );
    if !checks.iter().any(|c| c.id == crate::exec_trust::ID) {
        checks.extend(crate::exec_trust::after_calls(pod, env.as_ref()).await);
    }
    // The calls from inside the pod are done: end its session.
    if let Some(env) = env {
        env.close().await;
    }
    // The Kubernetes half of the identity: RBAC and the API token (warnings and skips only).
    let access = crate::rbac::review(pod, probe, &options.rbac, &options.answers).await;
    checks.extend(access.checks);
    // Whatever a message quotes from the pod, no token leaves in it.
    checks.iter_mut().for_each(crate::secret_shape::scrub_check);
    checks.sort_by_key(|c| c.status);
    ReportItem {
        pod: PodRef {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            container: pod.container.clone(),
            kind: pod.kind.clone(),
        },
        service_account: pod.service_account_name().to_string(),
        kubernetes: KubernetesIdentity {
            permissions: access.permissions,
            permissions_source: access.permissions_source,
            ..kubernetes_identity(pod)
        },
        mechanism: mechanism_id,
        verdict: ReportItem::verdict_of(&checks, identity.as_ref(), options.allow_skip),
        identity,
        checks,
        unreachable,
    }
}
