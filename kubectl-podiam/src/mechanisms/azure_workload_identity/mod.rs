//! AKS Workload Identity (azure-workload-identity webhook + Entra federated credentials).

pub mod checks;
pub mod diagnosis;
pub mod in_pod;
pub mod webhook;

use k8s_openapi::api::core::v1::PodSpec;

use super::projected_token::{self, ClaimChecks, TokenChecks};
use super::{BoxFuture, Mechanism, RuntimeOutcome};
use crate::cloud::azure as a;
use crate::evidence::{Probe, RuntimeEnv};
use crate::exchange::azure_blob::{self, BlobError};
use crate::exchange::azure_config::token_endpoint;
use crate::exchange::azure_entra::{self, EntraError, EntraGrant, EntraRequest, STORAGE_SCOPE};
use crate::model::{Check, Identity, MechanismId};
use crate::options::{AccessExpectation, VerifyOptions};
use crate::subject::{Origin, PodSubject, env_value, has_env};
use crate::token_claims;

pub struct AzureWorkloadIdentity;

impl Mechanism for AzureWorkloadIdentity {
    fn id(&self) -> MechanismId {
        MechanismId::AzureWorkloadIdentity
    }

    fn detect(&self, pod: &PodSubject) -> bool {
        pod.sa_annotation(a::CLIENT_ID).is_some()
            || pod.label(a::USE_LABEL).is_some()
            // Misplaced wiring is still Azure intent, and the checks name the mistake.
            || pod.annotation(a::CLIENT_ID).is_some()
            || pod
                .service_account
                .as_ref()
                .and_then(|sa| sa.metadata.labels.as_ref())
                .is_some_and(|l| l.contains_key(a::USE_LABEL))
            || pod.all_containers().any(|c| has_env(c, a::ENV_TOKEN_FILE))
            || pod
                .spec
                .volumes
                .iter()
                .flatten()
                .any(|v| webhook::is_token_volume(&v.name))
    }

    fn admit(&self, pod: &PodSubject) -> PodSpec {
        match pod.origin {
            Origin::Template => webhook::mutate(pod),
            Origin::Live | Origin::Dump => pod.spec.clone(),
        }
    }

    fn token_file_vars(&self) -> &'static [&'static str] {
        &[a::ENV_TOKEN_FILE]
    }

    fn configured(
        &self,
        pod: &PodSubject,
        spec: &PodSpec,
        env: Option<&RuntimeEnv>,
    ) -> Result<super::Configured, String> {
        super::configured_from_env(
            pod,
            env,
            container_var(pod, spec, env, a::ENV_CLIENT_ID),
            "azure",
            a::ENV_CLIENT_ID,
            a::CLIENT_ID,
            "application",
        )
    }

    fn static_checks(&self, pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
        checks::static_checks(pod, spec)
    }

    fn runtime<'a>(
        &'a self,
        pod: &'a PodSubject,
        spec: &'a PodSpec,
        env: Option<&'a RuntimeEnv>,
        probe: &'a Probe,
        options: &'a VerifyOptions,
    ) -> BoxFuture<'a, RuntimeOutcome> {
        Box::pin(runtime(pod, spec, env, probe, options))
    }
}

fn spec_var(pod: &PodSubject, spec: &PodSpec, name: &str) -> Option<String> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
        .and_then(|c| env_value(c, name))
        .map(str::to_string)
}

/// A variable as the container sees it: the runtime env when exec worked, else the spec.
fn container_var(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    name: &str,
) -> Option<String> {
    match env {
        Some(env) => env.get(name).map(str::to_string),
        None => spec_var(pod, spec, name),
    }
}

/// The authority the exchange goes to, and where that came from: the flag; else what the
/// container really has (exec, or a created pod's spec); else this machine's
/// AZURE_AUTHORITY_HOST (SDK convention, so emulators plug in); else the webhook model's value.
fn authority_host(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    options: &VerifyOptions,
) -> (String, &'static str) {
    if let Some(flag) = &options.azure.authority_host {
        return (flag.clone(), "--azure-authority-host");
    }
    if let Some(v) = env.and_then(|e| e.get(a::ENV_AUTHORITY_HOST)) {
        return (v.to_string(), "the container's AZURE_AUTHORITY_HOST");
    }
    let declared = spec_var(pod, spec, a::ENV_AUTHORITY_HOST);
    if pod.origin != Origin::Template
        && let Some(v) = &declared
    {
        return (v.clone(), "the pod's AZURE_AUTHORITY_HOST");
    }
    if let Ok(v) = std::env::var(a::ENV_AUTHORITY_HOST)
        && !v.is_empty()
    {
        return (v, "AZURE_AUTHORITY_HOST of this machine");
    }
    (
        declared.unwrap_or_else(|| a::PUBLIC_AUTHORITY_HOST.to_string()),
        "the webhook's default authority",
    )
}

fn token_audience(spec: &PodSpec) -> String {
    spec.volumes
        .iter()
        .flatten()
        .filter(|v| webhook::is_token_volume(&v.name))
        .find_map(|v| {
            v.projected
                .as_ref()?
                .sources
                .as_ref()?
                .iter()
                .find_map(|s| s.service_account_token.as_ref()?.audience.clone())
        })
        .unwrap_or_else(|| a::AUDIENCE.to_string())
}

async fn runtime(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    probe: &Probe,
    options: &VerifyOptions,
) -> RuntimeOutcome {
    let mut out = RuntimeOutcome::default();
    let Some(token_path) = container_var(pod, spec, env, a::ENV_TOKEN_FILE) else {
        out.checks.push(Check::skip(
            diagnosis::ID,
            format!(
                "container {} has no {}, so its SDK does not use workload identity",
                pod.container,
                a::ENV_TOKEN_FILE
            ),
        ));
        return out;
    };
    let audience = token_audience(spec);
    let checks = TokenChecks {
        source: "azure.token.source",
        readable: "azure.wi.token-readable",
        exchange: diagnosis::ID,
        offline: "offline: no token to exchange (pass --token-file to exchange one)",
        file: format!("{token_path} (its AZURE_FEDERATED_TOKEN_FILE)"),
        denied_fix: "a hard-coded or stale AZURE_FEDERATED_TOKEN_FILE points nowhere: remove it; else run every container as the same runAsUser",
        exec_fix: "allow exec (pods/exec) and keep `cat` in the image to read the pod's own token",
        audience: &audience,
        expiration_seconds: webhook::expiration_seconds(pod).unwrap_or(a::DEFAULT_EXPIRATION),
    };
    let Some(token) =
        projected_token::obtain(pod, probe, env, &token_path, &checks, &mut out).await
    else {
        return out;
    };
    let token_source = token.source.clone();
    let claims = match token_claims::decode(&token.bytes) {
        Ok(c) => c,
        Err(e) => {
            out.checks.push(Check::fail(
                "azure.token.claims",
                format!("{}: {e}", token.source),
                "AZURE_FEDERATED_TOKEN_FILE must name the projected ServiceAccount token the webhook mounts",
            ));
            return out;
        }
    };
    out.checks.push(projected_token::claims_check(
        pod,
        &claims,
        ClaimChecks {
            id: "azure.token.claims",
            audience: a::AUDIENCE.to_owned(),
            subject_fix: "AZURE_FEDERATED_TOKEN_FILE must name the pod's own projected token".into(),
            audience_message: format!(
                "the token's audience {:?} lacks {}, the only audience Entra accepts for federated credentials",
                claims.aud,
                a::AUDIENCE
            ),
            audience_fix: "let the webhook project the token (audience api://AzureADTokenExchange) and recreate the pod".into(),
            expired_fix: "the kubelet refreshes projected tokens: read the file anew each time; a copied token is never refreshed",
        },
    ));
    let client_id = container_var(pod, spec, env, a::ENV_CLIENT_ID).filter(|v| !v.is_empty());
    let tenant_id = container_var(pod, spec, env, a::ENV_TENANT_ID).filter(|v| !v.is_empty());
    let (Some(client_id), Some(tenant_id)) = (client_id, tenant_id) else {
        out.checks.push(Check::fail(
            diagnosis::ID,
            format!(
                "container {} lacks {}: the SDK has nothing to exchange the token for",
                pod.container,
                [a::ENV_CLIENT_ID, a::ENV_TENANT_ID]
                    .into_iter()
                    .filter(|n| container_var(pod, spec, env, n).is_none_or(|v| v.is_empty()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            "annotate the ServiceAccount (client-id, tenant-id) and recreate the pod",
        ));
        return out;
    };
    let (authority, authority_origin) = authority_host(pod, spec, env, options);
    let endpoint = token_endpoint(&authority, &tenant_id);
    let assertion = String::from_utf8_lossy(token.bytes.trim_ascii()).into_owned();
    let equivalent = token.equivalent;
    drop(token);
    let host = HostExchange {
        options,
        authority: &authority,
        authority_origin,
        endpoint: &endpoint,
        tenant_id: &tenant_id,
        client_id: &client_id,
        assertion: &assertion,
    };

    // The pod's own token request, from inside it, when its session can make calls.
    let pod_session = env.and_then(|e| e.session().map(|s| (e, s)));
    let why_not_in_pod = match (pod_session, equivalent) {
        (Some((env, pod_session)), false) => match in_pod::endpoint(env, &tenant_id) {
            Err(why) => format!("the pod's AZURE_AUTHORITY_HOST is unusable ({why})"),
            Ok(pod_endpoint) => {
                match in_pod::exchange(
                    pod_session,
                    env,
                    &pod_endpoint,
                    &client_id,
                    STORAGE_SCOPE,
                    &token_path,
                )
                .await
                {
                    in_pod::PodExchange::Answered { result, client } => {
                        out.checks.push(Check::pass(
                            in_pod::REACHABLE,
                            format!(
                                "the pod reached Entra at {} with {client} ({})",
                                pod_endpoint.url, pod_endpoint.because
                            ),
                        ));
                        let source = format!(
                            "{token_source}; exchanged by the pod itself ({client} in container {} at {})",
                            pod.container, pod_endpoint.url
                        );
                        let attempt = diagnosis::Attempt {
                            client_id: &client_id,
                            tenant_id: &tenant_id,
                            endpoint: &pod_endpoint.url,
                        };
                        judge_entra(
                            &mut out,
                            options,
                            &attempt,
                            &claims,
                            result,
                            &source,
                            &pod_endpoint.because,
                        )
                        .await;
                        return out;
                    }
                    in_pod::PodExchange::StatusOnly { status, client } => format!(
                        "Entra answered the pod's request with HTTP {status}, but the pod's {client} does not show Entra's error"
                    ),
                    in_pod::PodExchange::Failed(check) => {
                        let mut check = *check;
                        if let Ok(grant) = host.exchange().await {
                            check.message.push_str(&format!(
                                " — from this machine Entra accepts the same token (application {}): the pod's network path is the cause",
                                grant.claims.client_id().unwrap_or(&client_id)
                            ));
                        }
                        out.checks.push(check);
                        // --expect-client-id: judged from the configuration (expectations.rs).
                        return out;
                    }
                    in_pod::PodExchange::Unusable(why) => why,
                }
            }
        },
        (_, true) => "the pod's own token could not be read".to_string(),
        (None, false) => match probe {
            Probe::Live { .. } => "no exec session in the pod (no shell in the image)".to_string(),
            Probe::Offline { .. } => String::new(),
        },
    };
    if !why_not_in_pod.is_empty() {
        out.checks.push(Check::warn(
            "azure.entra.pod-path",
            format!("{why_not_in_pod}: the token request was made from this machine, not from the pod's own network path"),
            "keep a shell and curl (or wget/python3) in the image, or use --probe=ephemeral, so podiam can ask Entra from inside the pod",
        ));
    }
    tracing::debug!(%endpoint, from = authority_origin, %client_id, "Entra client_credentials with the federated token, from this machine");
    let exchanged = host.exchange().await;
    drop(assertion);
    let attempt = diagnosis::Attempt {
        client_id: &client_id,
        tenant_id: &tenant_id,
        endpoint: &endpoint,
    };
    let source = if matches!(probe, Probe::Live { .. }) {
        format!(
            "{token_source}, exchanged from this machine (podiam) at {endpoint}, not by the pod"
        )
    } else {
        format!("{token_source}, exchanged at {endpoint}")
    };
    judge_entra(
        &mut out,
        options,
        &attempt,
        &claims,
        exchanged,
        &source,
        authority_origin,
    )
    .await;
    out
}

/// Entra's token request made from this machine, at the authority podiam is told to use.
struct HostExchange<'a> {
    options: &'a VerifyOptions,
    authority: &'a str,
    authority_origin: &'a str,
    endpoint: &'a str,
    tenant_id: &'a str,
    client_id: &'a str,
    assertion: &'a str,
}

impl HostExchange<'_> {
    async fn exchange(&self) -> Result<EntraGrant, EntraError> {
        tracing::debug!(endpoint = %self.endpoint, from = self.authority_origin, "Entra from this machine");
        azure_entra::exchange(
            &EntraRequest {
                authority_host: self.authority,
                tenant_id: self.tenant_id,
                client_id: self.client_id,
                assertion: self.assertion,
                scope: STORAGE_SCOPE,
            },
            self.options.azure.timeout(),
        )
        .await
    }
}

/// The checks that follow Entra's answer, wherever the request was made.
async fn judge_entra(
    out: &mut RuntimeOutcome,
    options: &VerifyOptions,
    attempt: &diagnosis::Attempt<'_>,
    claims: &token_claims::Claims,
    exchanged: Result<EntraGrant, EntraError>,
    source: &str,
    authority_origin: &str,
) {
    let (endpoint, client_id) = (attempt.endpoint, attempt.client_id);
    match exchanged {
        Ok(grant) => {
            let principal = grant.claims.client_id().unwrap_or(client_id).to_string();
            out.checks.push(Check::pass(
                diagnosis::ID,
                format!(
                    "Entra issued an access token at {endpoint} ({authority_origin}) to application {principal} (tenant {}, object id {})",
                    grant.claims.tid.as_deref().unwrap_or("?"),
                    grant.claims.oid.as_deref().unwrap_or("?")
                ),
            ));
            out.identity = Some(Identity {
                provider: "azure",
                principal: principal.clone(),
                source: source.to_string(),
            });
            expected_client_id(out, options, &principal);
            access_checks(out, options, &grant).await;
        }
        // Throttled or failing on Entra's side after the SDK's retries: Entra is there but
        // judged nothing, so no verdict on the binding (exit 3, as when it is unreachable).
        Err(EntraError::Rejected(body)) if diagnosis::transient(&body) => {
            out.unreachable = true;
            out.checks.push(diagnosis::unavailable(attempt, &body));
        }
        Err(EntraError::Rejected(body)) => {
            out.checks
                .push(diagnosis::rejection(attempt, &body, claims));
        }
        Err(EntraError::Unreachable(msg)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                diagnosis::ID,
                format!("{endpoint} ({authority_origin}) is unreachable: {msg}"),
                "check network access to the authority; for a private CA set SSL_CERT_FILE; or pass --azure-authority-host",
            ));
        }
        Err(EntraError::Invalid(msg)) => {
            out.checks.push(Check::fail(
                diagnosis::ID,
                format!("the exchange at {endpoint} ({authority_origin}) could not be made: {msg}"),
                "the authority must be an https URL and the tenant a tenant id; fix the ServiceAccount annotations or AZURE_AUTHORITY_HOST",
            ));
        }
    }
}

fn expected_client_id(out: &mut RuntimeOutcome, options: &VerifyOptions, actual: &str) {
    const ID: &str = "azure.entra.expected-client-id";
    let Some(expected) = &options.expect_client_id else {
        return;
    };
    out.checks.push(if expected.eq_ignore_ascii_case(actual) {
        Check::pass(
            ID,
            format!("the pod gets the expected client id {expected}"),
        )
    } else {
        Check::fail(
            ID,
            format!("expected client id {expected}, but the pod gets {actual}"),
            format!(
                "fix {} on the ServiceAccount (or a preset AZURE_CLIENT_ID) and recreate the pod",
                a::CLIENT_ID
            ),
        )
    });
}

async fn access_checks(out: &mut RuntimeOutcome, options: &VerifyOptions, grant: &EntraGrant) {
    for expectation in &options.access {
        let AccessExpectation::Blob {
            action,
            allowed,
            spec,
        } = expectation
        else {
            continue;
        };
        let (id, want) = if *allowed {
            ("azure.access.can", "allowed")
        } else {
            ("azure.access.cannot", "denied")
        };
        let result = azure_blob::attempt(&options.azure, &grant.access_token, action).await;
        tracing::debug!(%spec, outcome = ?result, "Blob call with the exchanged token");
        let check = match (result, allowed) {
            (Ok(()), true) => Check::pass(id, format!("{spec}: allowed, as expected")),
            (Err(e @ BlobError::Denied { .. }), false) => {
                Check::pass(id, format!("{spec}: denied ({e}), as expected"))
            }
            (Ok(()), false) => Check::fail(
                id,
                format!("{spec}: allowed, but expected {want}"),
                "remove the role assignment (e.g. Storage Blob Data Reader) from the identity",
            ),
            (Err(BlobError::Unreachable(msg)), _) => {
                out.unreachable = true;
                Check::warn(
                    id,
                    format!("{spec}: Blob endpoint unreachable: {msg}"),
                    "check --azure-blob-endpoint / PODIAM_AZURE_BLOB_ENDPOINT and network access",
                )
            }
            (Err(e @ BlobError::Denied { .. }), true) => Check::fail(
                id,
                format!("{spec}: {e}, but expected {want}"),
                "az role assignment create --assignee <CLIENT_ID> --role \"Storage Blob Data Reader\" --scope <STORAGE_ACCOUNT_ID>/blobServices/default/containers/<CONTAINER>",
            ),
            (Err(e @ BlobError::Failed { .. }), _) => Check::fail(
                id,
                format!("{spec}: {e}, but expected {want}"),
                "the call failed for another reason than a denial; check the account and container exist",
            ),
        };
        out.checks.push(check);
    }
}
