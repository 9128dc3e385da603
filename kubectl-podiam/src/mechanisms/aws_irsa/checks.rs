//! Static IRSA checks: what the pod spec and its ServiceAccount say, before any exec or exchange.

use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccountTokenProjection, Volume};
use regex::Regex;

use super::webhook::{self, Admission, SkipList};
use crate::cloud::aws::irsa as a;
use crate::model::Check;
use crate::subject::{Origin, PodSubject, env_value, has_env};

/// `spec` is the pod as it runs: the live spec, or the template after the webhook's mutation.
pub fn static_checks(pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
    let mut checks = vec![annotation(pod)];
    if let Some(role) = pod.sa_annotation(a::ROLE_ARN) {
        checks.push(role_arn_valid(role));
    }
    checks.push(mutated(pod, spec));
    if let Some(c) = skipped(pod) {
        checks.push(c);
    }
    let Some(target) = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
    else {
        return checks;
    };
    checks.extend(preset_or_drift(pod, target));
    if let Some(c) = token_path(pod, target) {
        checks.push(c);
    }
    if let Some(projection) = token_projection(spec) {
        checks.push(audience(pod, projection));
        checks.push(expiration(pod, projection));
    }
    if let Some(c) = regional(pod, target) {
        checks.push(c);
    }
    if let Some(c) = readability(spec, target) {
        checks.push(c);
    }
    checks
}

fn annotate_fix(pod: &PodSubject) -> String {
    format!(
        "kubectl annotate serviceaccount -n {} {} {}=arn:aws:iam::<ACCOUNT_ID>:role/<ROLE> and recreate the pod",
        pod.namespace,
        pod.service_account_name(),
        a::ROLE_ARN
    )
}

fn annotation(pod: &PodSubject) -> Check {
    const ID: &str = "aws.irsa.annotation";
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    if pod.service_account.is_none() {
        return Check::warn(
            ID,
            format!("ServiceAccount {sa} is not available; judged from the pod alone"),
            "include the ServiceAccount in the input (-f) or allow `get serviceaccounts`",
        );
    }
    if let Some(role) = pod.sa_annotation(a::ROLE_ARN).filter(|r| !r.is_empty()) {
        return Check::pass(
            ID,
            format!("ServiceAccount {sa} has {}={role}", a::ROLE_ARN),
        );
    }
    if let Some(role) = pod.sa_annotation(a::ROLE_ARN_TYPO) {
        return Check::fail(
            ID,
            format!(
                "ServiceAccount {sa} is annotated {}={role}, a typo the webhook ignores (the key is {})",
                a::ROLE_ARN_TYPO,
                a::ROLE_ARN
            ),
            format!(
                "kubectl annotate serviceaccount -n {} {} {}- {}={role} and recreate the pod",
                pod.namespace,
                pod.service_account_name(),
                a::ROLE_ARN_TYPO,
                a::ROLE_ARN
            ),
        );
    }
    Check::fail(
        ID,
        format!("ServiceAccount {sa} has no {} annotation", a::ROLE_ARN),
        annotate_fix(pod),
    )
}

fn role_arn_valid(role: &str) -> Check {
    const ID: &str = "aws.irsa.role-arn";
    let pattern = Regex::new(a::ROLE_ARN_PATTERN).expect("valid regex");
    if pattern.is_match(role) {
        Check::pass(ID, format!("{role} is a valid IAM role ARN"))
    } else {
        Check::fail(
            ID,
            format!(
                "{} is not an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>); the webhook still injects it and STS rejects it",
                crate::secret_shape::shown(role)
            ),
            "annotate the ServiceAccount with the role's full ARN, e.g. arn:aws:iam::123456789012:role/my-role",
        )
    }
}

fn has_volume(spec: &PodSpec) -> bool {
    spec.volumes
        .iter()
        .flatten()
        .any(|v| v.name == a::VOLUME_NAME)
}

fn is_wired(c: &Container) -> bool {
    has_env(c, a::ENV_ROLE_ARN)
        && has_env(c, a::ENV_TOKEN_FILE)
        && c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == a::VOLUME_NAME)
}

fn mutated(pod: &PodSubject, spec: &PodSpec) -> Check {
    const ID: &str = "aws.irsa.pod-mutated";
    let subject = pod.describe();
    match webhook::admission(pod) {
        Admission::OptedOut => {
            return Check::fail(
                ID,
                format!(
                    "{subject} carries the label {}, so the webhook never mutates it",
                    a::SKIP_POD_LABEL
                ),
                format!(
                    "remove the label {} from the pod template and recreate the pod",
                    a::SKIP_POD_LABEL
                ),
            );
        }
        Admission::NoRoleAnnotation if pod.service_account.is_some() => {
            return Check::fail(
                ID,
                format!(
                    "{subject} is not mutated: its ServiceAccount has no {} annotation",
                    a::ROLE_ARN
                ),
                annotate_fix(pod),
            );
        }
        _ => {}
    }
    let skipped = webhook::skipped_containers(pod);
    let unwired: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter(|c| !skipped.contains(&c.name) && !is_wired(c))
        .map(|c| c.name.as_str())
        .collect();
    if unwired.is_empty() && has_volume(spec) {
        return Check::pass(
            ID,
            format!(
                "volume {} is mounted and AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE are set in every container{}",
                a::VOLUME_NAME,
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" not skipped ({} skipped)", skipped.join(", "))
                }
            ),
        );
    }
    let missing = if has_volume(spec) {
        format!(
            "containers {} lack the IRSA env or mount",
            unwired.join(", ")
        )
    } else {
        format!("the pod has no {} volume", a::VOLUME_NAME)
    };
    if pod.origin == Origin::Template {
        return Check::fail(
            ID,
            format!("{subject} would not be fully mutated: {missing}"),
            "annotate the ServiceAccount and make sure the pod-identity webhook is installed",
        );
    }
    Check::fail(
        ID,
        format!(
            "{subject} was not mutated by the webhook ({missing}) although its ServiceAccount is annotated: it was created before the annotation, or while the webhook was down (failurePolicy Ignore)"
        ),
        format!(
            "recreate the pod: kubectl delete pod -n {} {} (or kubectl rollout restart its workload)",
            pod.namespace, pod.name
        ),
    )
}

fn skipped(pod: &PodSubject) -> Option<Check> {
    const ID: &str = "aws.irsa.container-skipped";
    let names = match webhook::skip_list(pod) {
        SkipList::Absent => return None,
        SkipList::Unparsable(e) => {
            return Some(Check::warn(
                ID,
                format!(
                    "the webhook cannot read {}={:?} (Go's CSV reader: {e}), so it skips no container",
                    a::SKIP_CONTAINERS,
                    pod.annotation(a::SKIP_CONTAINERS).unwrap_or_default()
                ),
                "write the container names comma-separated, without spaces or with the whole name quoted (\"side car\"), and recreate the pod",
            ));
        }
        SkipList::Parsed(names) => names,
    };
    if !names.contains(&pod.container) {
        return None;
    }
    Some(Check::fail(
        ID,
        format!(
            "container {} is listed in {}: the webhook gives it no AWS identity",
            pod.container,
            a::SKIP_CONTAINERS
        ),
        format!(
            "remove {} from the pod annotation {} and recreate the pod",
            pod.container,
            a::SKIP_CONTAINERS
        ),
    ))
}

/// Does the declared template (not the webhook) set this env var in the container?
fn declared_in(template: Option<&PodSpec>, container: &str, name: &str) -> bool {
    template.is_some_and(|spec| {
        spec.init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .any(|c| c.name == container && has_env(c, name))
    })
}

fn preset_or_drift(pod: &PodSubject, target: &Container) -> Vec<Check> {
    let annotated = pod.sa_annotation(a::ROLE_ARN);
    // For a template, the declared spec is pod.spec; for a live pod, its owner's template.
    let declared = match pod.origin {
        Origin::Template => Some(&pod.spec),
        _ => pod.owner_template.as_ref(),
    };
    let preset_role = declared_in(declared, &target.name, a::ENV_ROLE_ARN);
    let preset_path = declared_in(declared, &target.name, a::ENV_TOKEN_FILE);
    let running_role = env_value(target, a::ENV_ROLE_ARN);
    let mut checks = Vec::new();
    if preset_role || preset_path {
        let which = match (preset_role, preset_path) {
            (true, true) => format!("{} and {}", a::ENV_ROLE_ARN, a::ENV_TOKEN_FILE),
            (true, false) => a::ENV_ROLE_ARN.to_string(),
            _ => a::ENV_TOKEN_FILE.to_string(),
        };
        let wins = match (running_role, annotated) {
            (Some(r), Some(ann)) if r != ann => {
                format!("the preset role {r} wins over the ServiceAccount's {ann}")
            }
            (Some(r), _) => format!("the preset role {r} is used"),
            (None, _) => format!(
                "the webhook injected no {} either, so the SDK has no role",
                a::ENV_ROLE_ARN
            ),
        };
        let differs = running_role.is_some_and(|r| Some(r) != annotated) || running_role.is_none();
        let msg = format!(
            "container {} sets {which} itself, so the webhook injected neither variable: {wins}",
            target.name
        );
        let fix = format!(
            "remove {which} from the container's env (chart values) and let the ServiceAccount annotation decide; then recreate the pod"
        );
        checks.push(if differs || preset_path {
            Check::fail("aws.irsa.preset-env", msg, fix)
        } else {
            Check::warn("aws.irsa.preset-env", msg, fix)
        });
        return checks;
    }
    if let (Some(running), Some(ann)) = (running_role, annotated)
        && running != ann
    {
        checks.push(Check::fail(
            "aws.irsa.role-drift",
            format!(
                "container {} runs with {}={running} but the ServiceAccount now says {ann}: the annotation changed after the pod was created",
                target.name,
                a::ENV_ROLE_ARN
            ),
            format!(
                "recreate the pod so the webhook injects the new role: kubectl delete pod -n {} {}",
                pod.namespace, pod.name
            ),
        ));
    } else if running_role.is_some() {
        checks.push(Check::pass(
            "aws.irsa.role-drift",
            "the role in the container's env matches the ServiceAccount annotation",
        ));
    }
    checks
}

fn token_path(pod: &PodSubject, target: &Container) -> Option<Check> {
    const ID: &str = "aws.irsa.token-path";
    let path = env_value(target, a::ENV_TOKEN_FILE)?;
    if pod.node_os.as_deref() == Some("windows") {
        return Some(if path == a::WINDOWS_TOKEN_PATH {
            Check::pass(ID, format!("Windows token path {path}"))
        } else {
            Check::fail(
                ID,
                format!(
                    "the pod runs on a Windows node but {} is {path}",
                    a::ENV_TOKEN_FILE
                ),
                format!(
                    "use {} (the webhook sets it when the pod selects kubernetes.io/os: windows); recreate the pod",
                    a::WINDOWS_TOKEN_PATH
                ),
            )
        });
    }
    let mounted = target
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/'))));
    Some(match mounted {
        Some(m) => Check::pass(
            ID,
            format!(
                "{path} lies in volume {} mounted at {}",
                m.name, m.mount_path
            ),
        ),
        None => Check::fail(
            ID,
            format!(
                "{}={path} but no volume is mounted there, so the SDK cannot read a token",
                a::ENV_TOKEN_FILE
            ),
            format!(
                "remove the preset {} (the webhook sets {}) and recreate the pod",
                a::ENV_TOKEN_FILE,
                a::TOKEN_PATH
            ),
        ),
    })
}

fn token_projection(spec: &PodSpec) -> Option<&ServiceAccountTokenProjection> {
    token_volume(spec)?
        .projected
        .as_ref()?
        .sources
        .iter()
        .flatten()
        .find_map(|s| s.service_account_token.as_ref())
}

fn token_volume(spec: &PodSpec) -> Option<&Volume> {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == a::VOLUME_NAME)
}

fn audience(pod: &PodSubject, projection: &ServiceAccountTokenProjection) -> Check {
    const ID: &str = "aws.irsa.audience";
    let expected = webhook::audience(pod);
    let actual = projection.audience.clone().filter(|a| !a.is_empty());
    match (actual, expected) {
        (Some(actual), Some(expected)) if actual == expected => {
            Check::pass(ID, format!("token audience {actual}"))
        }
        (None, None) => Check::warn(
            ID,
            format!(
                "the ServiceAccount's {} annotation is empty, so the webhook projects the token with no audience: it carries the API server's default audience, not {}; STS accepts it only if the cluster's IAM OIDC provider lists that audience as a client id",
                a::AUDIENCE,
                a::DEFAULT_AUDIENCE
            ),
            format!(
                "remove the empty {} annotation (the default is {}) or set it to a client id of the OIDC provider, then recreate the pod",
                a::AUDIENCE,
                a::DEFAULT_AUDIENCE
            ),
        ),
        (actual, expected) => {
            let show = |a: &Option<String>| {
                a.as_deref().map_or_else(
                    || "none (the API server's default)".to_string(),
                    |v| format!("{v:?}"),
                )
            };
            Check::fail(
                ID,
                format!(
                    "the pod's token audience is {} but the ServiceAccount asks for {}: the annotation changed after the pod was created",
                    show(&actual),
                    show(&expected)
                ),
                "recreate the pod so the webhook projects a token with the annotated audience",
            )
        }
    }
}

fn expiration(pod: &PodSubject, projection: &ServiceAccountTokenProjection) -> Check {
    const ID: &str = "aws.irsa.token-expiration";
    let expected = webhook::expiration_seconds(pod);
    let actual = projection.expiration_seconds.unwrap_or(3600);
    if actual == expected {
        Check::pass(ID, format!("token expires after {actual}s"))
    } else {
        Check::warn(
            ID,
            format!(
                "the pod's token lives {actual}s but its annotations ask for {expected}s (values under 600 are raised to 600)"
            ),
            "recreate the pod to apply the annotated token-expiration",
        )
    }
}

fn regional(pod: &PodSubject, target: &Container) -> Option<Check> {
    const ID: &str = "aws.irsa.regional-sts";
    if !webhook::regional_sts(pod) {
        return None;
    }
    Some(if env_value(target, a::ENV_REGIONAL) == Some("regional") {
        Check::pass(
            ID,
            "regional STS endpoint (AWS_STS_REGIONAL_ENDPOINTS=regional)",
        )
    } else {
        Check::warn(
            ID,
            format!(
                "the ServiceAccount asks for regional STS ({}={:?}) but container {} lacks AWS_STS_REGIONAL_ENDPOINTS=regional",
                a::STS_REGIONAL_ENDPOINTS,
                pod.sa_annotation(a::STS_REGIONAL_ENDPOINTS)
                    .unwrap_or_default(),
                target.name
            ),
            "recreate the pod so the webhook injects AWS_STS_REGIONAL_ENDPOINTS",
        )
    })
}

fn run_as_user(spec: &PodSpec, c: &Container) -> Option<i64> {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or_else(|| spec.security_context.as_ref().and_then(|s| s.run_as_user))
}

/// Statically flags only what still breaks on Kubernetes >= 1.19 (FACTS.md): when containers
/// run as different users the kubelet cannot chown the token to one of them, so the volume's
/// defaultMode applies, and a mode without "other" read locks non-root users out.
fn readability(spec: &PodSpec, target: &Container) -> Option<Check> {
    const ID: &str = "aws.irsa.token-readable";
    let volume = token_volume(spec)?;
    let users: Vec<Option<i64>> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| run_as_user(spec, c))
        .collect();
    let target_user = run_as_user(spec, target);
    let ephemeral_differs = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .any(|e| e.name == target.name);
    let same_user = users.windows(2).all(|w| w[0] == w[1]) && users[0].is_some();
    if same_user && !ephemeral_differs {
        return Some(Check::pass(
            ID,
            format!(
                "every container runs as user {}, so the kubelet gives that user the token (0600)",
                users[0].unwrap_or_default()
            ),
        ));
    }
    let mode = volume
        .projected
        .as_ref()
        .and_then(|p| p.default_mode)
        .unwrap_or(0o644);
    let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
    let readable = mode & 0o004 != 0 || (fs_group.is_some() && mode & 0o040 != 0);
    if readable || target_user == Some(0) {
        return Some(Check::pass(
            ID,
            format!(
                "token file mode {mode:04o} is readable by container {}",
                target.name
            ),
        ));
    }
    Some(Check::fail(
        ID,
        format!(
            "containers run as different users, so the token keeps the volume's defaultMode {mode:04o}, which user {} of container {} cannot read",
            target_user.map_or("(image default)".to_string(), |u| u.to_string()),
            target.name
        ),
        "drop the restrictive defaultMode on the token volume, or run every container as the same runAsUser",
    ))
}
