//! GKE path at runtime: ask the metadata server from inside the pod (exec with the image's own
//! HTTP client), as the pod's SDK does, then check the token it issues with Google's tokeninfo
//! from the host (`tokeninfo.rs`) and use it from there.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PodSpec;

use super::{
    access_checks, access_skipped, checks, configured_identity, container_var, expected_gsa,
    tokeninfo,
};
use crate::cloud::gcp as a;
use crate::evidence::{Probe, ReadFailure, RuntimeEnv};
use crate::exchange::gcp_metadata::{self, Answer, HttpClient, MetadataError};
use crate::kube::exec::ExecError;
use crate::mechanisms::RuntimeOutcome;
use crate::model::{Check, Identity};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;

/// Start-up race: GKE's metadata server needs a few seconds for a new pod.
const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// One request may hang (busybox wget has no usable timeout): each attempt gets at most this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the metadata server gave no usable answer.
#[derive(Debug)]
enum Failure {
    /// The image has none of wget, curl, python3.
    NoClient,
    /// Exec itself failed (forbidden, timed out, no such container).
    Exec(ExecError),
    /// No HTTP answer (connection refused, DNS, …) after every attempt.
    NoAnswer { last: String, attempts: u32 },
    /// An HTTP error answer.
    Http { error: MetadataError, attempts: u32 },
}

/// Queries the metadata server in the pod; remembers the client that exists.
struct MetadataProbe<'a> {
    pod: &'a PodSubject,
    probe: &'a Probe,
    base: String,
    client: Option<HttpClient>,
    deadline: Instant,
}

impl MetadataProbe<'_> {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// One GET with the image's client; `Ok((answer, attempts))` for a 2xx answer.
    async fn get(&mut self, path: &str) -> Result<(Answer, u32), Failure> {
        let url = format!("{}{path}", self.base);
        let clients: Vec<HttpClient> = match self.client {
            Some(c) => vec![c],
            None => HttpClient::ALL.to_vec(),
        };
        for client in clients {
            match self.get_with(client, &url).await {
                Err(Failure::Exec(ExecError::NoSuchCommand(_))) => continue,
                result => {
                    self.client = Some(client);
                    return result;
                }
            }
        }
        Err(Failure::NoClient)
    }

    async fn get_with(&self, client: HttpClient, url: &str) -> Result<(Answer, u32), Failure> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let budget = self
                .remaining()
                .min(ATTEMPT_TIMEOUT)
                .max(Duration::from_secs(1));
            let argv = client.command(url, a::METADATA_FLAVOR, budget.as_secs());
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let output = match self.probe.exec_within(self.pod, &argv, budget).await {
                Ok(o) => Some(o),
                // The request hung (a server still holding a new pod's requests): retry.
                Err(ReadFailure::NoExec(ExecError::Timeout(_))) => None,
                Err(ReadFailure::NoExec(e)) => return Err(Failure::Exec(e)),
                Err(other) => return Err(Failure::Exec(ExecError::Failed(format!("{other:?}")))),
            };
            let read = match output {
                Some(o) => client.read(o.stdout, &o.stderr, o.success),
                None => Err(format!("timeout: no answer within {}s", budget.as_secs())),
            };
            let retry_reason = match read {
                Ok(answer) => match gcp_metadata::classify(&answer) {
                    Ok(()) => return Ok((answer, attempts)),
                    Err(error) if error.retryable() => Failure::Http { error, attempts },
                    Err(error) => return Err(Failure::Http { error, attempts }),
                },
                Err(last) => Failure::NoAnswer { last, attempts },
            };
            if attempts >= MAX_ATTEMPTS || self.remaining() <= backoff {
                return Err(retry_reason);
            }
            tracing::debug!(attempts, ?backoff, "metadata server not ready; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}

fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(
            " (after {attempts} attempts: the metadata server was not ready at first, as right after pod start)"
        )
    } else {
        String::new()
    }
}

pub async fn run(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    probe: &Probe,
    options: &VerifyOptions,
) -> RuntimeOutcome {
    let mut out = RuntimeOutcome::default();
    let Some(timeout) = probe.timeout() else {
        out.checks.push(Check::skip(
            "gcp.metadata.token",
            "offline: the GKE metadata server answers only inside the pod",
        ));
        out.identity = Some(configured_identity(pod, ""));
        // --expect-gsa: judged from the configuration (expectations.rs).
        access_skipped(&mut out, options, "offline");
        return out;
    };
    let host = container_var(pod, spec, env, a::ENV_METADATA_HOST);
    let mut metadata = MetadataProbe {
        pod,
        probe,
        base: gcp_metadata::base_url(host.as_deref()),
        client: None,
        deadline: Instant::now() + timeout,
    };
    let email = match metadata.get(a::METADATA_EMAIL).await {
        Ok((answer, attempts)) => match gcp_metadata::parse_text(&answer.body) {
            Ok(email) => (email, attempts),
            Err(e) => {
                out.checks.push(Check::fail(
                    "gcp.metadata.email",
                    format!("{} answered the email request with {e}", metadata.base),
                    "GCE_METADATA_HOST must name a GCE/GKE metadata server",
                ));
                return out;
            }
        },
        Err(failure) => {
            report_failure(&mut out, pod, &metadata, "gcp.metadata.email", failure);
            // A live pod whose metadata server was not asked or did not answer has no
            // established identity (incomplete, never a pass); --expect-gsa is then judged from
            // the configuration (expectations.rs).
            access_skipped(&mut out, options, "no access token");
            return out;
        }
    };
    let client = metadata.client.map_or("?", HttpClient::name);
    let (email, attempts) = email;
    out.checks
        .push(email_check(pod, &email, &metadata.base, client, attempts));
    let principal = if email.ends_with(a::POOL_SUFFIX) {
        direct_principal(pod, &mut metadata, &email).await
    } else {
        email.clone()
    };
    let mut identity = Identity {
        provider: "gcp",
        principal,
        source: format!(
            "metadata server {}, read by exec in the pod ({client})",
            metadata.base
        ),
    };
    let token = match metadata.get(a::METADATA_TOKEN).await {
        Ok((answer, attempts)) => match gcp_metadata::parse_token(&answer.body) {
            Ok(token) => {
                out.checks.push(Check::pass(
                    "gcp.metadata.token",
                    format!(
                        "the metadata server issued an access token for {email}{}{}",
                        token
                            .expires_in
                            .map_or(String::new(), |s| format!(" (expires in {s}s)")),
                        after(attempts)
                    ),
                ));
                token
            }
            Err(e) => {
                out.checks.push(Check::fail(
                    "gcp.metadata.token",
                    format!("the token answer is unusable: {e}"),
                    "GCE_METADATA_HOST must name a GCE/GKE metadata server",
                ));
                claimed(&mut out, options, identity);
                return out;
            }
        },
        Err(failure) => {
            report_failure(&mut out, pod, &metadata, "gcp.metadata.token", failure);
            claimed(&mut out, options, identity);
            access_skipped(&mut out, options, "no access token");
            return out;
        }
    };
    // The pod's answers may be forged (its image's HTTP client prints them): only Google's
    // word on the token, asked from here, establishes the identity.
    let verified = tokeninfo::verify(options, &token, &email).await;
    out.checks.push(verified.check);
    if !verified.confirmed {
        // No identity: --expect-gsa is judged from the configuration (expectations.rs).
        out.unreachable |= verified.unreachable;
        access_skipped(
            &mut out,
            options,
            "Google's tokeninfo did not confirm the pod's access token",
        );
        return out;
    }
    identity
        .source
        .push_str(", confirmed by Google's tokeninfo");
    claimed(&mut out, options, identity);
    access_checks(&mut out, options, &token).await;
    drop(token);
    out
}

/// The identity the metadata server named, and `--expect-gsa` against it: on the paths where
/// the token step itself failed (never a pass then), as before tokeninfo, and once tokeninfo
/// confirmed it.
fn claimed(out: &mut RuntimeOutcome, options: &VerifyOptions, identity: Identity) {
    expected_gsa(out, options, &identity.principal);
    out.identity = Some(identity);
}

fn email_check(pod: &PodSubject, email: &str, base: &str, client: &str, attempts: u32) -> Check {
    const ID: &str = "gcp.metadata.email";
    let configured = checks::configured_gsa(pod);
    let ksa = format!("{}/{}", pod.namespace, pod.service_account_name());
    let seen = format!(
        "the metadata server ({base}, asked with {client} in the pod) says the pod acts as {email}{}",
        after(attempts)
    );
    let node_identity = a::NODE_SA_SUFFIXES.iter().any(|s| email.ends_with(s))
        || configured.is_none() && !email.ends_with(a::POOL_SUFFIX);
    if node_identity {
        return Check::fail(
            ID,
            format!(
                "{seen}: the node's service account, so the pod reaches the node's Compute Engine metadata, not the GKE metadata server"
            ),
            "enable Workload Identity on the cluster and node pool (--workload-pool=PROJECT_ID.svc.id.goog, --workload-metadata=GKE_METADATA) and do not use hostNetwork",
        );
    }
    match configured {
        Some(gsa) if gsa == email => Check::pass(ID, seen),
        Some(gsa) if email.ends_with(a::POOL_SUFFIX) => Check::fail(
            ID,
            format!(
                "{seen}, the pool itself, although ServiceAccount {ksa} names {gsa}: the metadata server has not picked up the annotation"
            ),
            "recreate the pod after annotating its ServiceAccount",
        ),
        Some(gsa) => Check::fail(
            ID,
            format!("{seen}, but ServiceAccount {ksa} names {gsa}"),
            "check GCE_METADATA_HOST and the node pool's metadata mode, then recreate the pod",
        ),
        None => Check::pass(ID, format!("{seen}: direct principal, no GSA")),
    }
}

/// The KSA's own principal when no GSA is configured, with the project from the server.
async fn direct_principal(
    pod: &PodSubject,
    metadata: &mut MetadataProbe<'_>,
    pool: &str,
) -> String {
    let project_id = pool.trim_end_matches(a::POOL_SUFFIX).to_string();
    let number = match metadata.get(a::METADATA_PROJECT_NUMBER).await {
        Ok((answer, _)) => {
            gcp_metadata::parse_text(&answer.body).unwrap_or_else(|_| "PROJECT_NUMBER".into())
        }
        Err(_) => "PROJECT_NUMBER".into(),
    };
    a::direct_principal(
        &number,
        &project_id,
        &pod.namespace,
        pod.service_account_name(),
    )
}

fn report_failure(
    out: &mut RuntimeOutcome,
    pod: &PodSubject,
    metadata: &MetadataProbe<'_>,
    id: &'static str,
    failure: Failure,
) {
    let base = &metadata.base;
    let gsa = checks::configured_gsa(pod).unwrap_or("GSA_EMAIL");
    let project = checks::project_of(gsa).unwrap_or("PROJECT_ID");
    let check = match failure {
        Failure::NoClient => Check::warn(
            "gcp.metadata.client",
            format!(
                "container {} has no wget, curl or python3, so podiam cannot ask the metadata server from inside the pod",
                pod.container
            ),
            format!(
                "ask from a debug container that shares the pod's network: kubectl debug -n {} {} -it --image=curlimages/curl -- curl -s -H 'Metadata-Flavor: Google' {base}{}",
                pod.namespace,
                pod.name,
                a::METADATA_EMAIL
            ),
        ),
        Failure::Exec(e) => {
            out.unreachable = true;
            Check::warn(
                id,
                format!("exec in container {} was not possible: {e}", pod.container),
                "allow pods/exec for your user (podiam asks the metadata server from inside the pod)",
            )
        }
        Failure::NoAnswer { last, attempts } => Check::fail(
            id,
            format!(
                "the metadata server {base} did not answer the pod after {attempts} attempt(s): {last}"
            ),
            format!(
                "on GKE: run the pod on a GKE_METADATA node pool and let NetworkPolicies allow {}:80; elsewhere set {} to the metadata server's host:port",
                a::METADATA_HOST,
                a::ENV_METADATA_HOST
            ),
        ),
        Failure::Http { error, attempts } => {
            let tries = after(attempts);
            // busybox wget prints no body for an HTTP error. A bare 403 on the token, after the
            // same client's email request with the header was answered, is the refused
            // getAccessToken: a header problem would have refused the email too.
            let error = match error {
                MetadataError::Other(Some(403), body)
                    if id == "gcp.metadata.token" && body.is_empty() =>
                {
                    MetadataError::MissingBinding(
                        "403 (the image's HTTP client does not show the body)".to_owned(),
                    )
                }
                other => other,
            };
            match error {
                MetadataError::MissingBinding(body) => Check::fail(
                    id,
                    format!(
                        "the metadata server refused a token for {gsa}: {body}{tries} — ServiceAccount {}/{} may not act as the GSA ({} binding missing, or no such GSA)",
                        pod.namespace,
                        pod.service_account_name(),
                        a::ROLE_WORKLOAD_IDENTITY_USER
                    ),
                    format!(
                        "gcloud iam service-accounts add-iam-policy-binding {gsa} --role={} --member=\"{}\"",
                        a::ROLE_WORKLOAD_IDENTITY_USER,
                        a::binding_member(project, &pod.namespace, pod.service_account_name())
                    ),
                ),
                MetadataError::MissingHeader(body) => Check::fail(
                    id,
                    format!(
                        "{base} says {body}{tries}: something between the pod and the server drops the Metadata-Flavor header"
                    ),
                    format!(
                        "point {} at the metadata server itself, not at a proxy",
                        a::ENV_METADATA_HOST
                    ),
                ),
                MetadataError::NotFound(body) => Check::fail(
                    id,
                    format!(
                        "{base} answered 404 ({body}){tries}: it has no default service account for this pod"
                    ),
                    format!(
                        "{} must name a GKE/GCE metadata server; on GKE check the KSA annotation",
                        a::ENV_METADATA_HOST
                    ),
                ),
                MetadataError::Unavailable(code, body) => Check::fail(
                    id,
                    format!("{base} kept answering {code} ({body}){tries}"),
                    "wait for the GKE metadata server (gke-metadata-server DaemonSet) to become ready on the node",
                ),
                MetadataError::Other(code, body) => Check::fail(
                    id,
                    format!(
                        "{base} answered {}{}{tries}",
                        code.map_or(
                            "with an HTTP error (the client did not say which)".to_string(),
                            |c| c.to_string()
                        ),
                        if body.is_empty() {
                            String::new()
                        } else {
                            format!(": {body}")
                        }
                    ),
                    "check the KSA annotation, the GSA and its roles/iam.workloadIdentityUser binding",
                ),
            }
        }
    };
    out.checks.push(check);
}
