//! Non-GKE path at runtime: read the external_account config and its subject token in the pod
//! (exec; offline: a ConfigMap from `-f` and `--token-file`), then do the STS exchange and the
//! impersonation from the host, as the pod's Google SDK would. Tokens stay in memory.

use k8s_openapi::api::core::v1::PodSpec;

use super::in_pod::{PodPath, StepFailure};
use super::mounted_file::{self, Backing};
use super::{access_checks, access_skipped, checks, expected_gsa, http, in_pod};
use crate::evidence::{Probe, ReadFailure, RuntimeEnv};
use crate::exchange::gcp_credentials::{self, CredentialsFile, ExternalAccount};
use crate::exchange::gcp_metadata::AccessToken;
use crate::exchange::{CloudError, gcp_sts};
use crate::mechanisms::RuntimeOutcome;
use crate::model::{Check, Identity};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;
use crate::token_claims::{self, Claims};

use crate::cloud::gcp as a;

/// The config's bytes and where they came from.
async fn read_config(
    pod: &PodSubject,
    spec: &PodSpec,
    path: &str,
    probe: &Probe,
    out: &mut RuntimeOutcome,
) -> Option<(Vec<u8>, String)> {
    const ID: &str = "gcp.external-account.config";
    match probe.read_file(pod, path).await {
        Ok(bytes) => Some((
            bytes,
            format!("{path} (read by exec in container {})", pod.container),
        )),
        Err(ReadFailure::Offline) => {
            let target = pod.target()?;
            let from_input =
                mounted_file::resolve(spec, target, path).and_then(|m| match m.backing {
                    Backing::ConfigMap { name, key } => pod
                        .config_maps
                        .get(&name)
                        .and_then(|d| d.get(&key))
                        .map(|t| (t.as_bytes().to_vec(), format!("ConfigMap {name} key {key}"))),
                    _ => None,
                });
            if from_input.is_none() {
                out.checks.push(Check::skip(
                    "gcp.sts.exchange",
                    format!(
                        "offline: {}={path} is not in the input (include its ConfigMap with -f)",
                        a::ENV_CREDENTIALS
                    ),
                ));
            }
            from_input
        }
        Err(ReadFailure::Denied(stderr)) => {
            out.checks.push(Check::fail(
                ID,
                format!(
                    "container {} cannot read {}={path}: {stderr}",
                    pod.container,
                    a::ENV_CREDENTIALS
                ),
                "mount the external_account configuration (a ConfigMap) at that path, readable by the container's user",
            ));
            None
        }
        Err(ReadFailure::NoExec(e)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                ID,
                format!("could not read {path} by exec: {e}"),
                "allow pods/exec and keep `cat` in the image",
            ));
            None
        }
    }
}

/// The subject token's bytes: by exec from `credential_source.file`, or `--token-file` offline.
async fn read_subject_token(
    pod: &PodSubject,
    file: &str,
    probe: &Probe,
    out: &mut RuntimeOutcome,
) -> Option<(Vec<u8>, String, bool)> {
    const ID: &str = "gcp.external-account.token-file";
    match probe.read_token_file(pod, None, file).await {
        Ok(token) => {
            let equivalent = token.equivalent;
            if !matches!(probe, Probe::Offline { .. }) {
                out.checks.push(Check::pass(
                    ID,
                    format!("container {} reads {file} as its own user", pod.container),
                ));
            }
            Some((token.bytes, token.source, equivalent))
        }
        Err(ReadFailure::Offline) => {
            out.checks.push(Check::skip(
                "gcp.sts.exchange",
                "offline: no subject token to exchange (pass --token-file)",
            ));
            None
        }
        Err(ReadFailure::Denied(stderr)) => {
            out.checks.push(Check::fail(
                ID,
                format!("container {} cannot read credential_source.file {file}: {stderr}", pod.container),
                "mount a projected serviceAccountToken volume at that path; run every container as the same runAsUser",
            ));
            None
        }
        Err(ReadFailure::NoExec(e)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                ID,
                format!("could not read {file} by exec: {e}"),
                "allow pods/exec and keep `cat` in the image",
            ));
            None
        }
    }
}

pub async fn run(
    pod: &PodSubject,
    spec: &PodSpec,
    path: &str,
    env: Option<&RuntimeEnv>,
    probe: &Probe,
    options: &VerifyOptions,
) -> RuntimeOutcome {
    let mut out = RuntimeOutcome::default();
    let Some((bytes, origin)) = read_config(pod, spec, path, probe, &mut out).await else {
        access_skipped(&mut out, options, "no credentials");
        return out;
    };
    let target = pod.target().cloned().unwrap_or_default();
    out.checks
        .extend(checks::judge_file(pod, spec, &target, &bytes, &origin));
    let config = match gcp_credentials::parse(&bytes) {
        Ok(CredentialsFile::ExternalAccount(config)) => config,
        Ok(CredentialsFile::ServiceAccountKey { client_email }) => {
            // The key is a static credential: report whose it is, never use it.
            if let Some(email) = client_email {
                out.identity = Some(Identity {
                    provider: "gcp",
                    principal: email.clone(),
                    source: format!(
                        "service-account key {origin} (static credential, not used by podiam)"
                    ),
                });
                expected_gsa(&mut out, options, &email);
            }
            access_skipped(&mut out, options, "podiam never uses static keys");
            return out;
        }
        _ => {
            access_skipped(&mut out, options, "no usable credentials");
            return out;
        }
    };
    drop(bytes);
    let Some(file) = config.credential_source.file.clone() else {
        out.checks.push(Check::skip(
            "gcp.sts.exchange",
            "credential_source is URL-sourced; podiam exchanges file-sourced subject tokens only",
        ));
        access_skipped(&mut out, options, "no exchange");
        return out;
    };
    let Some((raw, token_origin, equivalent)) =
        read_subject_token(pod, &file, probe, &mut out).await
    else {
        access_skipped(&mut out, options, "no subject token");
        return out;
    };
    let subject_token = match config.subject_token(&raw) {
        Ok(t) => t,
        Err(e) => {
            out.checks.push(Check::fail(
                "gcp.token.claims",
                format!("{token_origin}: {e}"),
                "point credential_source.file at the projected ServiceAccount token",
            ));
            return out;
        }
    };
    drop(raw);
    let claims = if config.subject_token_type == a::TOKEN_TYPE_JWT {
        match token_claims::decode(subject_token.as_bytes()) {
            Ok(c) => {
                out.checks.push(claims_check(pod, &c));
                Some(c)
            }
            Err(e) => {
                out.checks.push(Check::fail(
                    "gcp.token.claims",
                    format!("{token_origin}: {e}"),
                    "point credential_source.file at the projected ServiceAccount token",
                ));
                return out;
            }
        }
    } else {
        None
    };
    // The pod's own path: its session, its file (text format: the file is the token).
    let text_format = config
        .credential_source
        .format
        .as_ref()
        .and_then(|f| f.kind.as_deref())
        .is_none_or(|k| k == "text");
    let pod_path = env
        .and_then(|e| e.session().map(|session| PodPath { session, env: e }))
        .filter(|_| text_format && !equivalent);
    let why_not_in_pod = match (&pod_path, probe) {
        (Some(_), _) | (None, Probe::Offline { .. }) => None,
        (None, Probe::Live { .. }) if !text_format => Some(
            "the subject token is JSON-formatted (podiam sends text-format tokens from the pod only)",
        ),
        (None, Probe::Live { .. }) => Some("no exec session in the pod (no shell in the image)"),
    };
    let host = Host {
        http: http(options),
        subject_token,
    };
    let mut exchange = Exchange {
        out: &mut out,
        pod,
        options,
        config: &config,
        claims: claims.as_ref(),
        config_origin: &origin,
        token_origin: &token_origin,
        pod_path,
        file: &file,
        host,
        why_not_in_pod: why_not_in_pod.map(str::to_string),
    };
    exchange.run().await;
    out
}

fn claims_check(pod: &PodSubject, claims: &Claims) -> Check {
    const ID: &str = "gcp.token.claims";
    let sub = claims.sub.clone().unwrap_or_default();
    let expected = pod.subject_claim();
    if sub != expected {
        return Check::fail(
            ID,
            format!("the subject token's sub is {sub:?}, not {expected:?}"),
            "point credential_source.file at this pod's own projected ServiceAccount token",
        );
    }
    if let Some(exp) = claims.exp
        && exp <= crate::token_claims::now()
    {
        return Check::fail(
            ID,
            format!(
                "the subject token expired {}s ago",
                crate::token_claims::now() - exp
            ),
            "use a projected token (the kubelet rotates it); a copied token file is never refreshed",
        );
    }
    Check::pass(
        ID,
        format!(
            "iss={} sub={sub} aud={:?} expires in {}s",
            claims.iss.as_deref().unwrap_or("?"),
            claims.aud,
            claims.exp.map_or(0, |e| e - crate::token_claims::now())
        ),
    )
}

/// `principal://…/workloadIdentityPools/POOL/subject/SUB`: what STS makes of the token.
fn federated_principal(config: &ExternalAccount, sub: &str) -> String {
    match config.pool() {
        Some((number, pool, _)) => format!(
            "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{pool}/subject/{sub}"
        ),
        None => format!("the federated principal for subject {sub}"),
    }
}

/// The exchange made from this machine, at the config's own URLs.
struct Host {
    http: reqwest::Client,
    subject_token: String,
}

/// One external_account exchange: each step from inside the pod when its path is usable,
/// else from this machine (said in a warning and in the identity's source).
struct Exchange<'a> {
    out: &'a mut RuntimeOutcome,
    pod: &'a PodSubject,
    options: &'a VerifyOptions,
    config: &'a ExternalAccount,
    claims: Option<&'a Claims>,
    config_origin: &'a str,
    token_origin: &'a str,
    pod_path: Option<PodPath<'a>>,
    file: &'a str,
    host: Host,
    why_not_in_pod: Option<String>,
}

impl Exchange<'_> {
    /// Falls back to this machine for the rest of the exchange, saying why.
    fn leave_pod(&mut self, why: String) {
        self.pod_path = None;
        self.why_not_in_pod = Some(why);
    }

    async fn sts(&mut self) -> Result<AccessToken, Option<CloudError>> {
        if let Some(path) = &self.pod_path {
            match path.sts(self.config, self.file).await {
                Ok((token, client)) => {
                    self.out.checks.push(Check::pass(
                        in_pod::STS_REACHABLE,
                        format!(
                            "the pod reached Google STS at {} with {client}",
                            self.config.token_url
                        ),
                    ));
                    return Ok(token);
                }
                Err(StepFailure::Cloud(e)) => return Err(Some(e)),
                Err(StepFailure::Path(check)) => {
                    let mut check = *check;
                    if self.host_sts().await.is_ok() {
                        check.message.push_str(" — from this machine STS accepts the same token: the pod's network path is the cause");
                    }
                    self.out.checks.push(check);
                    return Err(None);
                }
                Err(StepFailure::Unusable(why)) => self.leave_pod(why),
            }
        }
        self.host_sts().await.map_err(Some)
    }

    async fn host_sts(&self) -> Result<AccessToken, CloudError> {
        gcp_sts::exchange(
            &self.host.http,
            &self.config.token_url,
            &self.config.audience,
            &self.config.subject_token_type,
            &self.host.subject_token,
            a::SCOPE_CLOUD_PLATFORM,
        )
        .await
    }

    async fn impersonate(
        &mut self,
        url: &str,
        federated: &AccessToken,
    ) -> Result<AccessToken, Option<CloudError>> {
        if let Some(path) = &self.pod_path {
            match path.impersonate(url, federated).await {
                Ok(token) => {
                    self.out.checks.push(Check::pass(
                        in_pod::IAM_REACHABLE,
                        format!("the pod reached IAM Credentials at {url}"),
                    ));
                    return Ok(token);
                }
                Err(StepFailure::Cloud(e)) => return Err(Some(e)),
                Err(StepFailure::Path(check)) => {
                    self.out.checks.push(*check);
                    return Err(None);
                }
                Err(StepFailure::Unusable(why)) => self.leave_pod(why),
            }
        }
        gcp_sts::generate_access_token(&self.host.http, url, federated, a::SCOPE_CLOUD_PLATFORM)
            .await
            .map_err(Some)
    }

    async fn run(&mut self) {
        let (options, config) = (self.options, self.config);
        let sub = self
            .claims
            .and_then(|c| c.sub.clone())
            .unwrap_or_else(|| self.pod.subject_claim());
        let principal = federated_principal(config, &sub);
        let federated = match self.sts().await {
            Ok(t) => {
                self.out.checks.push(Check::pass(
                    "gcp.sts.exchange",
                    format!(
                        "STS ({}) exchanged the token for {principal}",
                        config.token_url
                    ),
                ));
                t
            }
            Err(e) => {
                if let Some(e) = e {
                    self.out.unreachable |= matches!(e, CloudError::Unreachable(_));
                    self.out.checks.push(sts_failure(config, self.claims, e));
                }
                access_skipped(self.out, options, "STS refused");
                return;
            }
        };
        let (token, identity) = match (
            &config.service_account_impersonation_url,
            config.impersonated_email(),
        ) {
            (Some(url), email) => {
                let gsa = email.unwrap_or("the impersonated GSA").to_string();
                match self.impersonate(url, &federated).await {
                    Ok(t) => {
                        self.out.checks.push(Check::pass(
                            "gcp.iam.generate-access-token",
                            format!(
                                "{principal} may act as {gsa}: IAM Credentials issued an access token"
                            ),
                        ));
                        (t, gsa)
                    }
                    Err(e) => {
                        if let Some(e) = e {
                            self.out.unreachable |= matches!(e, CloudError::Unreachable(_));
                            self.out
                                .checks
                                .push(impersonation_failure(&principal, &gsa, e));
                        }
                        expected_gsa(self.out, options, &gsa);
                        access_skipped(self.out, options, "impersonation refused");
                        return;
                    }
                }
            }
            (None, _) => (federated, principal.clone()),
        };
        let source = match &self.why_not_in_pod {
            None => format!(
                "external_account config {}; subject token {}; exchanged by the pod itself (from inside container {})",
                self.config_origin, self.token_origin, self.pod.container
            ),
            Some(why) => {
                self.out.checks.push(Check::warn(
                    "gcp.sts.pod-path",
                    format!("{why}: the exchange was made from this machine, not from the pod's own network path"),
                    "keep a shell and curl (or wget/python3) in the image, or use --probe=ephemeral, so podiam can exchange from inside the pod",
                ));
                format!(
                    "external_account config {}; subject token {}; exchanged from this machine (podiam), not by the pod",
                    self.config_origin, self.token_origin
                )
            }
        };
        self.out.identity = Some(Identity {
            provider: "gcp",
            principal: identity.clone(),
            source,
        });
        expected_gsa(self.out, options, &identity);
        access_checks(self.out, options, &token).await;
    }
}

fn sts_failure(config: &ExternalAccount, claims: Option<&Claims>, e: CloudError) -> Check {
    const ID: &str = "gcp.sts.exchange";
    let (code, message) = match e {
        CloudError::Rejected { code, message } => (code, message),
        CloudError::Unreachable(why) => {
            return Check::warn(
                ID,
                format!("STS at {} gave no usable answer: {why}", config.token_url),
                "check network access to the config's token_url; a throttle or 5xx clears by itself: run again",
            );
        }
    };
    let iss = claims.and_then(|c| c.iss.as_deref()).unwrap_or("?");
    let aud = claims
        .map(|c| format!("{:?}", c.aud))
        .unwrap_or_else(|| "?".into());
    let (pool, provider) = config
        .pool()
        .map_or(("POOL", "PROVIDER"), |(_, p, v)| (p, v));
    let (cause, fix) = match code.as_str() {
        "invalid_grant" => (
            format!("the pool's provider rejected the subject token (issuer {iss}, audience {aud}): the provider's issuer URI, allowed audiences or attribute condition do not match, or the token expired"),
            format!("gcloud iam workload-identity-pools providers describe {provider} --workload-identity-pool={pool} --location=global: issuer-uri must be {iss} and allowed-audiences must include the token's audience (or the projected token's audience must be the provider's)"),
        ),
        "invalid_target" => (
            format!("the audience {} names no enabled workload identity pool provider", config.audience),
            "create or undelete the pool and provider, then regenerate the config: gcloud iam workload-identity-pools create-cred-config".to_string(),
        ),
        "invalid_request" => (
            "STS found the request malformed (subject_token_type, audience or token format)".to_string(),
            format!("regenerate the config; subject_token_type must be {} for Kubernetes tokens", a::TOKEN_TYPE_JWT),
        ),
        _ => (
            "STS refused the exchange".to_string(),
            "see the error above".to_string(),
        ),
    };
    Check::fail(ID, format!("{cause} — STS said {code}: {message}"), fix)
}

fn impersonation_failure(principal: &str, gsa: &str, e: CloudError) -> Check {
    const ID: &str = "gcp.iam.generate-access-token";
    let (code, message) = match e {
        CloudError::Rejected { code, message } => (code, message),
        CloudError::Unreachable(why) => {
            return Check::warn(
                ID,
                format!("IAM Credentials gave no usable answer: {why}"),
                "check network access to the config's service_account_impersonation_url; a throttle or 5xx clears by itself: run again",
            );
        }
    };
    let (cause, fix) = match code.as_str() {
        "PERMISSION_DENIED" | "IAM_PERMISSION_DENIED" | "403" => (
            format!("{principal} may not impersonate {gsa} ({} missing on the GSA, or no such GSA)", a::ROLE_WORKLOAD_IDENTITY_USER),
            format!(
                "gcloud iam service-accounts add-iam-policy-binding {gsa} --role={} --member={principal}",
                a::ROLE_WORKLOAD_IDENTITY_USER
            ),
        ),
        "NOT_FOUND" | "404" => (
            format!("the GSA {gsa} does not exist"),
            "create the GSA or fix service_account_impersonation_url in the config".to_string(),
        ),
        "UNAUTHENTICATED" | "401" => (
            "IAM Credentials did not accept the federated token".to_string(),
            "the token_url and service_account_impersonation_url must belong to the same environment".to_string(),
        ),
        _ => ("IAM Credentials refused".to_string(), "see the error above".to_string()),
    };
    Check::fail(ID, format!("{cause} — IAM said {code}: {message}"), fix)
}
