//! Static Azure workload-identity checks: what the pod spec and its ServiceAccount say, before
//! any exec or exchange.

use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccountTokenProjection};
use regex::Regex;

use super::webhook::{self, Admission};
use crate::cloud::azure as a;
use crate::model::Check;
use crate::subject::{Origin, PodSubject, env_value, has_env};

/// `spec` is the pod as it runs: the live spec, or the template after the webhook's mutation.
pub fn static_checks(pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
    let mut checks = vec![pod_label(pod), client_id(pod), tenant_id(pod)];
    checks.extend(token_expiration(pod, spec));
    checks.extend(proxy_sidecar(pod, spec));
    checks.push(mutated(pod, spec));
    checks.extend(skipped(pod));
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
    checks.extend(token_path(target));
    checks.extend(audience(spec));
    checks
}

pub fn is_guid(value: &str) -> bool {
    Regex::new(a::GUID_PATTERN)
        .expect("valid regex")
        .is_match(value)
}

fn recreate(pod: &PodSubject) -> String {
    if pod.kind == "Pod" {
        format!(
            "recreate the pod: kubectl delete pod -n {} {} and apply it again",
            pod.namespace, pod.name
        )
    } else {
        format!(
            "kubectl rollout restart {} -n {} {}",
            pod.kind.to_lowercase(),
            pod.namespace,
            pod.name
        )
    }
}

fn label_fix(pod: &PodSubject) -> String {
    let where_ = if pod.kind == "Pod" {
        "metadata.labels".to_string()
    } else {
        format!("spec.template.metadata.labels of {} {}", pod.kind, pod.name)
    };
    format!(
        "set {}: \"true\" in the pod's {where_} (a quoted string) and recreate the pod; labelling a running pod does not mutate it",
        a::USE_LABEL
    )
}

fn pod_label(pod: &PodSubject) -> Check {
    const ID: &str = "azure.wi.pod-label";
    let subject = pod.describe();
    match pod.label(a::USE_LABEL) {
        Some(a::USE_LABEL_VALUE) => {
            return Check::pass(
                ID,
                format!(
                    "{subject} carries {}: \"true\", so the webhook mutates it at CREATE",
                    a::USE_LABEL
                ),
            );
        }
        Some(other) => {
            return Check::fail(
                ID,
                format!(
                    "{subject} has {}: {other:?}, but the webhook's objectSelector matches only \"true\": the pod is not mutated",
                    a::USE_LABEL
                ),
                label_fix(pod),
            );
        }
        None => {}
    }
    let on_sa = pod
        .service_account
        .as_ref()
        .and_then(|sa| sa.metadata.labels.as_ref())
        .and_then(|l| l.get(a::USE_LABEL));
    let message = match on_sa {
        Some(_) => format!(
            "the label {} is on ServiceAccount {}, not on {subject}: the webhook selects pods by their own labels (the ServiceAccount label was dropped before v1.0), so the pod gets no AZURE_* env and no token",
            a::USE_LABEL,
            pod.service_account_name()
        ),
        None => format!(
            "{subject} lacks the label {}: \"true\", so the webhook never sees it: no AZURE_CLIENT_ID, no AZURE_FEDERATED_TOKEN_FILE, no token volume (the most common AKS workload identity failure)",
            a::USE_LABEL
        ),
    };
    Check::fail(ID, message, label_fix(pod))
}

fn annotate_fix(pod: &PodSubject) -> String {
    format!(
        "kubectl annotate serviceaccount -n {} {} --overwrite {}=$(az identity show -g <RESOURCE_GROUP> -n <IDENTITY> --query clientId -o tsv) and recreate the pod",
        pod.namespace,
        pod.service_account_name(),
        a::CLIENT_ID
    )
}

fn client_id(pod: &PodSubject) -> Check {
    const ID: &str = "azure.wi.client-id";
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    if pod.service_account.is_none() {
        return Check::warn(
            ID,
            format!("ServiceAccount {sa} is not available; judged from the pod alone"),
            "include the ServiceAccount in the input (-f) or allow `get serviceaccounts`",
        );
    }
    let on_pod = pod.annotation(a::CLIENT_ID).filter(|v| !v.is_empty());
    match webhook::client_id(pod).filter(|v| !v.is_empty()) {
        Some(id) if is_guid(id) => Check::pass(
            ID,
            format!(
                "ServiceAccount {sa} has {}={id}{}",
                a::CLIENT_ID,
                if on_pod.is_some_and(|p| p != id) {
                    " (the pod's own client-id annotation is ignored)"
                } else {
                    ""
                }
            ),
        ),
        Some(id) => Check::fail(
            ID,
            format!(
                "ServiceAccount {sa} has {}={id:?}, which is not a GUID: the webhook injects it as AZURE_CLIENT_ID anyway and Entra finds no application with that id",
                a::CLIENT_ID
            ),
            annotate_fix(pod),
        ),
        None if on_pod.is_some() => Check::fail(
            ID,
            format!(
                "{} is on {}, where the webhook ignores it; it reads the annotation from ServiceAccount {sa} only, so no AZURE_CLIENT_ID is injected",
                a::CLIENT_ID,
                pod.describe()
            ),
            format!(
                "move the annotation: kubectl annotate serviceaccount -n {} {} {}={} and recreate the pod",
                pod.namespace,
                pod.service_account_name(),
                a::CLIENT_ID,
                on_pod.unwrap_or_default()
            ),
        ),
        None => Check::fail(
            ID,
            format!(
                "ServiceAccount {sa} has no {} annotation: the webhook injects no AZURE_CLIENT_ID and the SDK fails with \"no client ID specified\"",
                a::CLIENT_ID
            ),
            annotate_fix(pod),
        ),
    }
}

fn is_tenant_domain(value: &str) -> bool {
    value.contains('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn tenant_id(pod: &PodSubject) -> Check {
    const ID: &str = "azure.wi.tenant-id";
    let fix = format!(
        "kubectl annotate serviceaccount -n {} {} --overwrite {}=$(az account show --query tenantId -o tsv) and recreate the pod",
        pod.namespace,
        pod.service_account_name(),
        a::TENANT_ID
    );
    match pod.sa_annotation(a::TENANT_ID) {
        None => Check::pass(
            ID,
            format!(
                "no {} annotation: the webhook injects its own tenant (AZURE_TENANT_ID of its azure-wi-webhook-config; modelled as {})",
                a::TENANT_ID,
                a::DEFAULT_TENANT_ID
            ),
        ),
        Some(t) if is_guid(t) => Check::pass(ID, format!("tenant {t}")),
        Some("") => Check::fail(
            ID,
            format!(
                "{} is empty: the webhook then injects no AZURE_TENANT_ID at all",
                a::TENANT_ID
            ),
            fix,
        ),
        Some(t) if is_tenant_domain(t) => Check::warn(
            ID,
            format!(
                "tenant {t:?} is a domain name, not the tenant GUID; Entra resolves verified domains, but federated credentials are listed per tenant id"
            ),
            fix,
        ),
        Some(t) => Check::fail(
            ID,
            format!("{}={t:?} is not a tenant id (GUID)", a::TENANT_ID),
            fix,
        ),
    }
}

fn token_projection(spec: &PodSpec) -> Option<(&str, &ServiceAccountTokenProjection)> {
    spec.volumes
        .iter()
        .flatten()
        .filter(|v| webhook::is_token_volume(&v.name))
        .find_map(|v| {
            let projection = v
                .projected
                .as_ref()?
                .sources
                .iter()
                .flatten()
                .find_map(|s| s.service_account_token.as_ref())?;
            Some((v.name.as_str(), projection))
        })
}

fn token_expiration(pod: &PodSubject, spec: &PodSpec) -> Option<Check> {
    const ID: &str = "azure.wi.token-expiration";
    let annotated = pod.annotation(a::TOKEN_EXPIRATION).is_some()
        || pod.sa_annotation(a::TOKEN_EXPIRATION).is_some();
    let projection = token_projection(spec).map(|(_, p)| p);
    match webhook::expiration_seconds(pod) {
        Err(reason) => Some(Check::fail(
            ID,
            format!(
                "the webhook rejects the pod at CREATE ({reason}; failurePolicy Fail), so {} cannot be (re)created",
                pod.describe()
            ),
            format!(
                "set {} to a number of seconds between {} and {} (or remove it)",
                a::TOKEN_EXPIRATION,
                a::MIN_EXPIRATION,
                a::MAX_EXPIRATION
            ),
        )),
        Ok(expected) => match projection.and_then(|p| p.expiration_seconds) {
            Some(actual) if actual != expected => Some(Check::warn(
                ID,
                format!(
                    "the pod's token lives {actual}s but its annotations ask for {expected}s: they changed after the pod was created"
                ),
                recreate(pod),
            )),
            Some(actual) => Some(Check::pass(ID, format!("token expires after {actual}s"))),
            None if annotated => Some(Check::pass(
                ID,
                format!(
                    "token expiration {expected}s is within {}–{}",
                    a::MIN_EXPIRATION,
                    a::MAX_EXPIRATION
                ),
            )),
            None => None,
        },
    }
}

fn proxy_sidecar(pod: &PodSubject, spec: &PodSpec) -> Option<Check> {
    const ID: &str = "azure.wi.proxy-sidecar";
    if !webhook::injects_proxy(pod) {
        return None;
    }
    if pod.spec.host_network == Some(true) {
        return Some(Check::fail(
            ID,
            format!(
                "{} asks for the proxy sidecar ({}) but uses hostNetwork: the webhook rejects the pod at CREATE",
                pod.describe(),
                a::INJECT_PROXY_SIDECAR
            ),
            format!("remove {} or hostNetwork: true", a::INJECT_PROXY_SIDECAR),
        ));
    }
    let port = match webhook::proxy_port(pod) {
        Ok(p) => p,
        Err(reason) => {
            return Some(Check::fail(
                ID,
                format!("the webhook rejects the pod at CREATE: {reason}"),
                format!("set {} to a port number", a::PROXY_SIDECAR_PORT),
            ));
        }
    };
    let present = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .any(|c| c.name == a::PROXY_SIDECAR_CONTAINER);
    Some(if present {
        Check::pass(
            ID,
            format!(
                "{} is set (its presence alone counts, whatever the value): init container {} redirects IMDS traffic to sidecar {} on port {port}, which exchanges the federated token for SDKs without workload identity support",
                a::INJECT_PROXY_SIDECAR,
                a::PROXY_INIT_CONTAINER,
                a::PROXY_SIDECAR_CONTAINER
            ),
        )
    } else {
        Check::warn(
            ID,
            format!(
                "{} is set but the pod has no {} container: it was created before the annotation",
                a::INJECT_PROXY_SIDECAR,
                a::PROXY_SIDECAR_CONTAINER
            ),
            recreate(pod),
        )
    })
}

fn is_wired(c: &Container, volume: Option<&str>) -> bool {
    has_env(c, a::ENV_TOKEN_FILE)
        && c.volume_mounts
            .iter()
            .flatten()
            .any(|m| Some(m.name.as_str()) == volume)
}

fn mutated(pod: &PodSubject, spec: &PodSpec) -> Check {
    const ID: &str = "azure.wi.pod-mutated";
    let subject = pod.describe();
    let template = pod.origin == Origin::Template;
    match webhook::admission(pod) {
        Admission::NotLabelled => {
            return Check::fail(
                ID,
                format!(
                    "{subject} {} mutated: without the pod label {}: \"true\" the webhook never sees it",
                    if template { "would not be" } else { "was not" },
                    a::USE_LABEL
                ),
                label_fix(pod),
            );
        }
        Admission::Rejected(reason) => {
            let fix = if webhook::missing_service_account(pod).is_some() {
                format!(
                    "create ServiceAccount {}/{} (annotated with {}) before the pod, and include it in the input (-f)",
                    pod.namespace,
                    pod.service_account_name(),
                    a::CLIENT_ID
                )
            } else {
                "fix the annotation named above, then create the pod again".to_string()
            };
            return Check::fail(
                ID,
                format!(
                    "the webhook rejects {subject} at CREATE (400: {reason}); with failurePolicy Fail no pod is created"
                ),
                fix,
            );
        }
        Admission::Mutates => {}
    }
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .find(|n| webhook::is_token_volume(n));
    let skipped = webhook::skipped_containers(pod);
    let unwired: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter(|c| !skipped.contains(&c.name) && !is_wired(c, volume))
        .map(|c| c.name.as_str())
        .collect();
    let annotated_id = webhook::client_id(pod).filter(|v| !v.is_empty());
    let target_lacks_client_id = pod.service_account.is_some()
        && annotated_id.is_some()
        && !skipped.contains(&pod.container)
        && spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .find(|c| c.name == pod.container)
            .is_some_and(|c| !has_env(c, a::ENV_CLIENT_ID));
    if volume.is_some() && unwired.is_empty() && !target_lacks_client_id {
        return Check::pass(
            ID,
            format!(
                "token volume {} is mounted and AZURE_FEDERATED_TOKEN_FILE is set in every container{}",
                volume.unwrap_or_default(),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" not skipped ({} skipped)", skipped.join(", "))
                }
            ),
        );
    }
    let missing = if volume.is_none() {
        "no azure-workload-identity token volume and no AZURE_* env".to_string()
    } else if !unwired.is_empty() {
        format!(
            "containers {} lack AZURE_FEDERATED_TOKEN_FILE or the token mount",
            unwired.join(", ")
        )
    } else {
        format!(
            "container {} has no AZURE_CLIENT_ID although the ServiceAccount now has {}",
            pod.container,
            a::CLIENT_ID
        )
    };
    if template {
        return Check::fail(
            ID,
            format!("{subject} would not be fully mutated: {missing}"),
            "label the pod template and annotate the ServiceAccount; make sure the azure-workload-identity webhook is installed",
        );
    }
    Check::fail(
        ID,
        format!(
            "{subject} predates its binding ({missing}) although it is labelled and its ServiceAccount is annotated: the webhook mutates pods only at CREATE, so the label, the annotation or the webhook came after the pod"
        ),
        recreate(pod),
    )
}

fn skipped(pod: &PodSubject) -> Option<Check> {
    const ID: &str = "azure.wi.container-skipped";
    if !webhook::skipped_containers(pod).contains(&pod.container) {
        return None;
    }
    Some(Check::fail(
        ID,
        format!(
            "container {} is listed in {}: the webhook gives it no AZURE_* env and no token",
            pod.container,
            a::SKIP_CONTAINERS
        ),
        format!(
            "remove {} from the pod annotation {} (';'-separated) and recreate the pod",
            pod.container,
            a::SKIP_CONTAINERS
        ),
    ))
}

/// Does the declared template (not the webhook) set this env var in the container?
fn declared(template: Option<&PodSpec>, container: &str, name: &str) -> Option<Option<String>> {
    template?
        .init_containers
        .iter()
        .flatten()
        .chain(template?.containers.iter())
        .find(|c| c.name == container && has_env(c, name))
        .map(|c| env_value(c, name).map(str::to_string))
}

fn preset_or_drift(pod: &PodSubject, target: &Container) -> Vec<Check> {
    let declared_spec = match pod.origin {
        Origin::Template => Some(&pod.spec),
        _ => pod.owner_template.as_ref(),
    };
    let annotated_id = webhook::client_id(pod).filter(|v| !v.is_empty());
    let expected = |name: &str| -> Option<String> {
        match name {
            a::ENV_CLIENT_ID => annotated_id.map(str::to_string),
            a::ENV_TENANT_ID => pod.sa_annotation(a::TENANT_ID).map(str::to_string),
            a::ENV_TOKEN_FILE => Some(a::TOKEN_PATH.to_string()),
            _ => None,
        }
    };
    let mut presets = Vec::new();
    let mut overrides = false;
    for name in a::INJECTED_ENV {
        let Some(value) = declared(declared_spec, &target.name, name) else {
            continue;
        };
        match (value, expected(name)) {
            (Some(v), Some(e)) if v != e => {
                overrides = true;
                presets.push(format!("{name}={v} (the webhook would set {e})"));
            }
            (Some(v), _) => presets.push(format!("{name}={v}")),
            (None, _) => presets.push(format!("{name} (from valueFrom)")),
        }
    }
    let mut checks = Vec::new();
    if !presets.is_empty() {
        let msg = format!(
            "container {} sets {} itself; the webhook injects only variables a container does not set, so these win over the ServiceAccount",
            target.name,
            presets.join(", ")
        );
        let fix = "remove the preset AZURE_* env from the container (chart values) and let the ServiceAccount annotations decide; then recreate the pod";
        checks.push(if overrides {
            Check::fail("azure.wi.preset-env", msg, fix)
        } else {
            Check::warn("azure.wi.preset-env", msg, fix)
        });
        return checks;
    }
    let running = env_value(target, a::ENV_CLIENT_ID);
    match (running, annotated_id) {
        (Some(r), Some(ann)) if r != ann => checks.push(Check::fail(
            "azure.wi.client-id-drift",
            format!(
                "container {} runs with {}={r} but the ServiceAccount says {ann}: the annotation changed after the pod was created (or the pod's own env sets it)",
                target.name,
                a::ENV_CLIENT_ID
            ),
            recreate(pod),
        )),
        (Some(_), Some(_)) => checks.push(Check::pass(
            "azure.wi.client-id-drift",
            "the client id in the container's env matches the ServiceAccount annotation",
        )),
        _ => {}
    }
    checks
}

fn token_path(target: &Container) -> Option<Check> {
    const ID: &str = "azure.wi.token-path";
    let path = env_value(target, a::ENV_TOKEN_FILE)?;
    let mounted = target
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/'))));
    Some(match mounted {
        Some(m) => Check::pass(
            ID,
            format!(
                "{}={path} lies in volume {} mounted at {}{}",
                a::ENV_TOKEN_FILE,
                m.name,
                m.mount_path,
                if m.mount_path.trim_end_matches('/') == a::LEGACY_MOUNT_PATH {
                    " (the ≤ v1.5 layout; v1.6 mounts at /var/run/secrets/azure/wi)"
                } else {
                    ""
                }
            ),
        ),
        None => Check::fail(
            ID,
            format!(
                "{}={path} but no volume is mounted there, so the SDK finds no token{}",
                a::ENV_TOKEN_FILE,
                if path.starts_with(a::LEGACY_MOUNT_PATH) {
                    " (that is the ≤ v1.5 path; v1.6 moved the token to /var/run/secrets/azure/wi/token/azure-identity-token)"
                } else {
                    ""
                }
            ),
            format!(
                "remove the preset {} and let the webhook set it; applications must read the variable, never a fixed path",
                a::ENV_TOKEN_FILE
            ),
        ),
    })
}

fn audience(spec: &PodSpec) -> Option<Check> {
    const ID: &str = "azure.wi.audience";
    let (volume, projection) = token_projection(spec)?;
    let actual = projection.audience.clone().unwrap_or_default();
    Some(if actual == a::AUDIENCE {
        Check::pass(ID, format!("volume {volume} projects a token for {actual}"))
    } else {
        Check::fail(
            ID,
            format!(
                "volume {volume} projects a token for audience {actual:?}, but federated identity credentials accept only {}",
                a::AUDIENCE
            ),
            format!(
                "let the webhook project the token (remove the hand-written volume) or set its audience to {}; recreate the pod",
                a::AUDIENCE
            ),
        )
    })
}
