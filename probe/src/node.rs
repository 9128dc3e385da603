//! The node's identity as the pod's SDK chain falls back to it (the plugin's
//! `mechanisms/node_fallback.rs` does the same through the exec session): AWS IMDSv2 (token
//! PUT, with the SDKs' IMDSv1 fallback), Azure IMDS, the GCE metadata server. The node's
//! credentials are used once (GetCallerIdentity) and dropped.

use serde::Deserialize;

use crate::aws::{self, Sts};
use crate::endpoints::ca_bundle::Client as CaClient;
use crate::http::Request;
use crate::report::{Node, NodeReached};
use crate::run::Probe;
use crate::sigv4::Credentials;

const METADATA: &str = "http://169.254.169.254";

pub fn probe(p: &mut Probe) {
    let asked = p.options.node.clone();
    let mut node = Node {
        asked: asked.clone(),
        ..Node::default()
    };
    p.step_prefix = "node:";
    for cloud in &asked {
        let result = match cloud.as_str() {
            "aws" => aws_node(p),
            "azure" => azure_node(p),
            "gcp" => gcp_node(p),
            other => Err(format!("unknown cloud {other:?}")),
        };
        match result {
            Ok(reached) => {
                node.reached = Some(reached);
                break;
            }
            Err(why) => node.not_reached.push(why),
        }
    }
    p.step_prefix = "";
    p.report.node = Some(node);
}

/// Why the last call got no answer, in the plugin's words for metadata.
fn last_failure(p: &Probe) -> String {
    let Some(failure) = p.report.calls.last().and_then(|c| c.failure.as_ref()) else {
        return "no answer".into();
    };
    if failure.cause == "timeout" {
        format!(
            "{} (a hop limit of 1 or a blocked 169.254.169.254)",
            failure.detail
        )
    } else {
        format!("{}: {}", failure.cause, failure.detail)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImdsCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
}

fn aws_node(p: &mut Probe) -> Result<NodeReached, String> {
    if p.var("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err("AWS: AWS_EC2_METADATA_DISABLED=true, the SDKs do not ask IMDS".into());
    }
    let base = p
        .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| METADATA.into())
        .trim_end_matches('/')
        .to_string();
    let t = p.options.metadata_timeout;
    let because = "the SDK chain's last resort";
    let mut put = Request::get(format!("{base}/latest/api/token"), t)
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600");
    put.method = "PUT";
    let (token, version) = match p.call("imds:token", because, &put, CaClient::Go) {
        Some(a) if a.status == 200 => (
            Some(String::from_utf8_lossy(&a.body).trim().to_string()),
            "IMDSv2",
        ),
        Some(a) => {
            return Err(format!(
                "AWS IMDS: the token request answered HTTP {}",
                a.status
            ));
        }
        // The SDKs then try IMDSv1.
        None => (None, "IMDSv1"),
    };
    let put_failure = token.is_none().then(|| last_failure(p));
    let get = |path: &str| {
        let r = Request::get(
            format!("{base}/latest/meta-data/iam/security-credentials/{path}"),
            t,
        );
        match &token {
            Some(tok) => r.header("X-aws-ec2-metadata-token", tok),
            None => r,
        }
    };
    let listing = get("");
    let role = match p.call("imds:role", because, &listing, CaClient::Go) {
        Some(a) if a.status == 200 => String::from_utf8_lossy(&a.body)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Some(a) if a.status == 404 => {
            return Err("AWS IMDS: the node has no instance profile".into());
        }
        Some(a) => {
            return Err(format!(
                "AWS IMDS: the credentials listing answered HTTP {}",
                a.status
            ));
        }
        None => {
            return Err(match put_failure {
                Some(why) => format!("AWS IMDSv2 token request: {why}"),
                None => format!("AWS IMDS: {}", last_failure(p)),
            });
        }
    };
    if role.is_empty() {
        return Err("AWS IMDS: the node has no instance profile".into());
    }
    let creds_request = get(&role);
    let answer = p
        .call("imds:credentials", because, &creds_request, CaClient::Go)
        .ok_or_else(|| format!("AWS IMDS: {}", last_failure(p)))?;
    drop(creds_request);
    let via = format!("{version} from inside the pod, instance profile role {role}");
    let Ok(c) = serde_json::from_slice::<ImdsCredentials>(&answer.body) else {
        return Err(format!(
            "AWS IMDS names role {role} but gave no credentials (HTTP {})",
            answer.status
        ));
    };
    drop(answer);
    let creds = Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: Some(c.token),
    };
    let sts: Sts = aws::sts(p);
    let principal = aws::caller_identity(p, &creds, &sts).unwrap_or_else(|| {
        format!(
            "the instance profile role {role} (GetCallerIdentity: {})",
            last_failure(p)
        )
    });
    Ok(NodeReached {
        provider: "aws".into(),
        principal,
        via,
    })
}

#[derive(Deserialize)]
struct AzureToken {
    access_token: String,
    #[serde(default)]
    client_id: String,
}

fn azure_node(p: &mut Probe) -> Result<NodeReached, String> {
    let request = Request::get(
        format!("{METADATA}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"),
        p.options.metadata_timeout,
    )
    .header("Metadata", "true");
    let answer = p
        .call(
            "azure-imds:token",
            "the SDK chain's managed identity",
            &request,
            CaClient::Go,
        )
        .ok_or_else(|| format!("Azure IMDS: {}", last_failure(p)))?;
    if answer.status != 200 {
        return Err(format!(
            "Azure IMDS: HTTP {} (no managed identity for the node)",
            answer.status
        ));
    }
    let token = serde_json::from_slice::<AzureToken>(&answer.body)
        .map_err(|_| "Azure IMDS: an answer without an access token".to_string())?;
    let claims = crate::jwt::claims(token.access_token.as_bytes()).unwrap_or_default();
    let client = claims.appid.or(claims.azp).unwrap_or(token.client_id);
    Ok(NodeReached {
        provider: "azure".into(),
        principal: format!(
            "managed identity {client} (object id {})",
            claims.oid.as_deref().unwrap_or("?")
        ),
        via: "Azure IMDS from inside the pod".into(),
    })
}

fn gcp_node(p: &mut Probe) -> Result<NodeReached, String> {
    let base = crate::gcp::metadata_base(p);
    let request = Request::get(
        format!("{base}/computeMetadata/v1/instance/service-accounts/default/email"),
        p.options.metadata_timeout,
    )
    .header("Metadata-Flavor", "Google");
    let answer = p
        .call(
            "gce-metadata:email",
            "the SDK chain's last resort",
            &request,
            CaClient::Go,
        )
        .ok_or_else(|| format!("GCP metadata: {}", last_failure(p)))?;
    let email = String::from_utf8_lossy(&answer.body).trim().to_string();
    if answer.status != 200 || email.is_empty() {
        return Err(format!("GCP metadata: HTTP {}", answer.status));
    }
    Ok(NodeReached {
        provider: "gcp".into(),
        principal: email,
        via: "the GCE metadata server from inside the pod".into(),
    })
}
