//! One probe run: which mechanism the pod's env wires, its exchange, the node's identity, the
//! report. Every call goes through [`Probe::call`], which records it (without its body).

use std::time::Duration;

use crate::dns::Resolver;
use crate::endpoints::ca_bundle::Client as CaClient;
use crate::http::{self, Client, Request, Response};
use crate::report::{self, Call, Report, TokenRead, User};
use crate::target::{self, Target};
use crate::{aws, azure, gcp, jwt, node, tls};

/// What the plugin asks for (the probe's arguments).
#[derive(Debug, Clone)]
pub struct Options {
    /// None: detected from the env.
    pub mechanism: Option<String>,
    /// Metadata services to ask for the node's identity: aws, azure, gcp.
    pub node: Vec<String>,
    pub timeout: Duration,
    pub metadata_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mechanism: None,
            node: Vec::new(),
            timeout: Duration::from_secs(10),
            metadata_timeout: Duration::from_secs(2),
        }
    }
}

pub struct Probe {
    pub target: Target,
    pub resolver: Resolver,
    pub options: Options,
    pub report: Report,
    /// Prefixed to each call's step: `node:` while the node's identity is asked.
    pub step_prefix: &'static str,
}

impl Probe {
    pub fn new(target: Target, resolver: Resolver, options: Options) -> Probe {
        let (uid, gid) = target::own_ids();
        let report = Report {
            podiam_probe: report::SCHEMA,
            version: env!("CARGO_PKG_VERSION").into(),
            user: User {
                uid,
                gid,
                target_uid: target.pid.and_then(target::process_ids).map(|(u, _)| u),
            },
            env_source: target.env_source.into(),
            target_pid: target.pid,
            client: "podiam-probe (rustls; Go's proxy rules)".into(),
            ..Report::default()
        };
        Probe {
            target,
            resolver,
            options,
            report,
            step_prefix: "",
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.target.var(name).filter(|v| !v.is_empty())
    }

    /// Makes `request` as the pod's client, trusting what `ca` trusts; records it.
    pub fn call(
        &mut self,
        step: &str,
        because: &str,
        request: &Request,
        ca: CaClient,
    ) -> Option<Response> {
        let roots = tls::roots(&self.target, ca);
        let client = Client {
            target: &self.target,
            resolver: &self.resolver,
        };
        let (route, result) = client.send(request, &roots);
        let mut call = Call {
            step: format!("{}{step}", self.step_prefix),
            url: request.url.clone(),
            because: because.into(),
            proxy: route.proxy,
            ca: route.ca,
            ..Call::default()
        };
        let answer = match result {
            Ok(response) => {
                call.status = Some(response.status);
                Some(response)
            }
            Err(failure) => {
                call.failure = Some(report::Failure {
                    cause: failure.cause().into(),
                    detail: failure.detail(),
                });
                None
            }
        };
        self.report.calls.push(call);
        answer
    }

    /// Sets the cloud's error code and message on the last call.
    pub fn cloud_error(&mut self, code: Option<String>, message: Option<String>) {
        if let Some(call) = self.report.calls.last_mut() {
            call.error_code = code;
            call.error_message = message.map(|m| report::short(&m));
        }
    }

    /// Reads the token file named by `variable`, recording it; the bytes stay in memory.
    pub fn token(&mut self, variable: &str) -> Option<Vec<u8>> {
        let path = self.var(variable)?;
        let read = self.target.read_file(&path);
        let (bytes, error) = match read {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        };
        self.report.token = Some(TokenRead {
            variable: variable.into(),
            path,
            read: bytes.is_some(),
            error,
            bytes: bytes.as_ref().map_or(0, Vec::len),
            claims: bytes.as_deref().and_then(jwt::claims),
        });
        bytes
    }

    pub fn identity(&mut self, provider: &str, principal: String, endpoint: &str) {
        self.report.identity = Some(report::Identity {
            provider: provider.into(),
            principal,
            endpoint: endpoint.into(),
            detail: None,
        });
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.report.errors.push(message.into());
    }
}

/// The mechanism the env wires, in the SDK chains' order (web identity before container
/// credentials; GOOGLE_APPLICATION_CREDENTIALS before the metadata server).
pub fn detect(target: &Target) -> &'static str {
    let set = |n: &str| target.var(n).is_some_and(|v| !v.is_empty());
    if set("AWS_ROLE_ARN") && set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "aws-irsa"
    } else if set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        "aws-pod-identity"
    } else if set("AZURE_FEDERATED_TOKEN_FILE") && set("AZURE_CLIENT_ID") {
        "azure-workload-identity"
    } else if set("GOOGLE_APPLICATION_CREDENTIALS") {
        "gcp-external-account"
    } else {
        "none"
    }
}

/// The whole run, from a target already discovered.
pub fn probe(target: Target, resolver: Resolver, options: Options) -> Report {
    let mechanism = options
        .mechanism
        .clone()
        .unwrap_or_else(|| detect(&target).to_string());
    let mut p = Probe::new(target, resolver, options);
    p.report.mechanism = mechanism.clone();
    match mechanism.as_str() {
        "aws-irsa" => aws::irsa(&mut p),
        "aws-pod-identity" => aws::pod_identity(&mut p),
        "azure-workload-identity" => azure::workload_identity(&mut p),
        "gcp-external-account" => gcp::external_account(&mut p),
        "gcp-metadata" => gcp::metadata(&mut p),
        "none" => {}
        other => p.error(format!("unknown mechanism {other:?}")),
    }
    if !p.options.node.is_empty() {
        node::probe(&mut p);
    }
    p.report
}

/// Becomes the target's user when the probe runs as root and the target does not (its user
/// came from its image, which the plugin cannot copy into the ephemeral container's spec).
pub fn match_target_user(target: &Target) -> Option<String> {
    let (uid, _) = target::own_ids();
    let (tuid, tgid) = target.pid.and_then(target::process_ids)?;
    if uid != 0 || tuid == 0 {
        return None;
    }
    target::become_user(tuid, tgid)
        .err()
        .map(|e| format!("could not become the target's user {tuid}:{tgid}: {e}"))
}

pub use http::Failure as HttpFailure;
