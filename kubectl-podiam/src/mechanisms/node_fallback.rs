//! The node's identity, as the pod's SDK reaches it when nothing else answers: the SDK chains
//! end with the instance metadata service — AWS IMDSv2 (token PUT, then the instance profile's
//! credentials), Azure IMDS (the node's managed identity), the GCE metadata server (the node's
//! service account). Asked from inside the pod, through its session, so a hop limit of 1 or a
//! blocked 169.254.169.254 shows as what it is: the node's identity out of the pod's reach.
//!
//! An unwired pod that reaches a node identity runs with it (fail: the seed's first best
//! practice, "avoid node roles"); a wired pod that reaches one has it one mistake away (warn);
//! unreachable is the goal (pass).

use std::time::Duration;

use serde::Deserialize;

use crate::cloud::aws::{
    ENV_EC2_METADATA_DISABLED, ENV_EC2_METADATA_SERVICE_ENDPOINT, IMDS_ENDPOINT as METADATA,
    IMDS_TOKEN_HEADER, IMDS_TTL_HEADER,
};
use crate::cloud::gcp::NODE_LABEL as GKE_METADATA_LABEL;
use crate::evidence::RuntimeEnv;
use crate::exchange::aws_sts;
use crate::exchange::azure_entra::AccessTokenClaims;
use crate::model::{Check, Identity, MechanismId, Status};
use crate::options::VerifyOptions;
use crate::pod_session::{CallFailure, Method, PodCall, PodSession};
use crate::subject::PodSubject;

pub const ID: &str = "node.identity";
/// The SDKs give the metadata service about a second (botocore: 1 s, one attempt); a little
/// more so a loaded node is not taken for a blocked one.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// A node identity the pod reached, and how.
pub struct NodeIdentity {
    pub provider: &'static str,
    pub principal: String,
    pub via: String,
}

/// Why no node identity answered, per cloud asked.
struct NotReached(Vec<String>);

/// Which metadata services a pod's SDK would fall back to.
pub fn clouds(mechanism: MechanismId) -> &'static [&'static str] {
    match mechanism {
        MechanismId::AwsIrsa | MechanismId::AwsPodIdentity => &["aws"],
        MechanismId::AzureWorkloadIdentity => &["azure"],
        // GKE's metadata server answers for the KSA's binding, never with the node's account.
        MechanismId::GcpWorkloadIdentity | MechanismId::StaticCredentials => &[],
        MechanismId::None => &["aws", "azure", "gcp"],
    }
}

/// The `node.identity` check (and, for an unwired pod, the identity it really runs with).
pub async fn judge(
    pod: &PodSubject,
    env: Option<&RuntimeEnv>,
    mechanism: MechanismId,
    options: &VerifyOptions,
) -> Option<(Check, Option<Identity>)> {
    let clouds = clouds(mechanism);
    if clouds.is_empty() {
        return None;
    }
    let (env, session) = env.and_then(|e| e.session().map(|s| (e, s)))?;
    let found = reach(pod, env, session, clouds, options)
        .await
        .map_err(|NotReached(reasons)| reasons);
    Some(verdict(found, mechanism))
}

/// The check for what the pod reached (or the reasons it reached nothing), and for an unwired
/// pod the identity it really runs with. Shared with the ephemeral probe's evidence.
pub fn verdict(
    found: Result<NodeIdentity, Vec<String>>,
    mechanism: MechanismId,
) -> (Check, Option<Identity>) {
    match found {
        Err(reasons) => (
            Check::pass(
                ID,
                format!(
                    "the node's identity is out of the pod's reach ({})",
                    reasons.join("; ")
                ),
            ),
            None,
        ),
        Ok(node) if mechanism == MechanismId::None => (
            Check::fail(
                ID,
                format!(
                    "the pod is wired to no workload identity, so its SDK falls back to the node's identity: {} ({})",
                    node.principal, node.via
                ),
                block_fix(node.provider),
            ),
            Some(Identity {
                provider: node.provider,
                principal: node.principal,
                source: format!(
                    "the node's metadata service, asked from inside the pod ({})",
                    node.via
                ),
            }),
        ),
        Ok(node) => (
            Check {
                id: ID,
                status: Status::Warn,
                message: format!(
                    "the node's identity {} is reachable from the pod ({}): any container without the workload identity env (a sidecar, a pod created before the binding, a webhook outage) gets it",
                    node.principal, node.via
                ),
                remediation: Some(block_fix(node.provider)),
            },
            None,
        ),
    }
}

fn block_fix(provider: &str) -> String {
    match provider {
        "aws" => "keep pods off the node role: require IMDSv2 with a hop limit of 1 (aws ec2 modify-instance-metadata-options --http-tokens required --http-put-response-hop-limit 1, or the launch template's MetadataOptions), or deny egress to 169.254.169.254/32 in a NetworkPolicy; bind the ServiceAccount to its own role (kubectl podiam bind)".into(),
        "azure" => "keep pods off the node's managed identity: deny egress to 169.254.169.254/32 (NetworkPolicy), and give workloads their own identity with AKS Workload Identity (kubectl podiam bind --azure-client-id)".into(),
        _ => "enable GKE Workload Identity on the node pool (--workload-metadata=GKE_METADATA) so pods never see the node's service account, and bind the KSA (kubectl podiam bind --gcp-sa)".into(),
    }
}

async fn reach(
    pod: &PodSubject,
    env: &RuntimeEnv,
    session: &PodSession,
    clouds: &[&str],
    options: &VerifyOptions,
) -> Result<NodeIdentity, NotReached> {
    let mut reasons = Vec::new();
    for cloud in clouds {
        let result = match *cloud {
            "aws" => aws(env, session, options).await,
            "azure" => azure(session).await,
            _ => gcp(pod, session).await,
        };
        match result {
            Ok(node) => return Ok(node),
            Err(why) => reasons.push(why),
        }
    }
    Err(NotReached(reasons))
}

/// IMDSv2 as the SDKs ask it, with their IMDSv1 fallback when the token PUT gets no answer.
async fn aws(
    env: &RuntimeEnv,
    session: &PodSession,
    options: &VerifyOptions,
) -> Result<NodeIdentity, String> {
    if env
        .get(ENV_EC2_METADATA_DISABLED)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err("AWS: AWS_EC2_METADATA_DISABLED=true, the SDKs do not ask IMDS".into());
    }
    let base = env
        .get(ENV_EC2_METADATA_SERVICE_ENDPOINT)
        .filter(|v| !v.is_empty())
        .unwrap_or(METADATA)
        .trim_end_matches('/')
        .to_string();
    let put = PodCall {
        method: Method::Put,
        ..PodCall::get(format!("{base}/latest/api/token"), METADATA_TIMEOUT)
    }
    .header(IMDS_TTL_HEADER, "21600");
    let (token, version) = match session.call(&put).await {
        Ok(a) if a.status == 200 => (
            Some(String::from_utf8_lossy(&a.body).trim().to_string()),
            "IMDSv2",
        ),
        Ok(a) => {
            return Err(format!(
                "AWS IMDS: the token request answered HTTP {}",
                a.status
            ));
        }
        Err(failure) => {
            let why = describe(&failure);
            // The SDKs then try IMDSv1 (a node that does not require tokens answers it).
            match credentials_path(session, &base, None).await {
                Ok(Some(role)) => {
                    return aws_identity(session, &base, None, &role, "IMDSv1", options).await;
                }
                _ => return Err(format!("AWS IMDSv2 token request: {why}")),
            }
        }
    };
    match credentials_path(session, &base, token.as_deref()).await {
        Ok(Some(role)) => {
            aws_identity(session, &base, token.as_deref(), &role, version, options).await
        }
        Ok(None) => Err("AWS IMDS: the node has no instance profile".into()),
        Err(why) => Err(format!("AWS IMDS: {why}")),
    }
}

fn imds_get(url: String, token: Option<&str>) -> PodCall {
    let call = PodCall::get(url, METADATA_TIMEOUT);
    match token {
        Some(t) => call.secret_header(IMDS_TOKEN_HEADER, t),
        None => call,
    }
}

/// The instance profile's role name, None when the node has none (404).
async fn credentials_path(
    session: &PodSession,
    base: &str,
    token: Option<&str>,
) -> Result<Option<String>, String> {
    let call = imds_get(
        format!("{base}/latest/meta-data/iam/security-credentials/"),
        token,
    );
    match session.call(&call).await {
        Ok(a) if a.status == 200 => Ok(String::from_utf8_lossy(&a.body)
            .lines()
            .next()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())),
        Ok(a) if a.status == 404 => Ok(None),
        Ok(a) => Err(format!(
            "the credentials listing answered HTTP {}",
            a.status
        )),
        Err(failure) => Err(describe(&failure)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImdsCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: String,
}

async fn aws_identity(
    session: &PodSession,
    base: &str,
    token: Option<&str>,
    role: &str,
    version: &str,
    options: &VerifyOptions,
) -> Result<NodeIdentity, String> {
    let call = imds_get(
        format!("{base}/latest/meta-data/iam/security-credentials/{role}"),
        token,
    );
    let answer = session.call(&call).await.map_err(|f| describe(&f))?;
    let via = format!("{version} from inside the pod, instance profile role {role}");
    let Ok(c) = serde_json::from_slice::<ImdsCredentials>(&answer.body) else {
        // IMDS names the role but gives no credentials (e.g. a role EC2 cannot assume).
        return Err(format!(
            "AWS IMDS names role {role} but gave no credentials (HTTP {})",
            answer.status
        ));
    };
    let credentials = aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.token),
        None,
        "podiam-node-imds",
    );
    let config = options.aws.anonymous(None).await;
    let principal = match aws_sts::caller_identity(&config, credentials).await {
        Ok(assumed) => assumed.caller_arn,
        // The credentials exist; who they are could not be asked here.
        Err(e) => format!("the instance profile role {role} (GetCallerIdentity: {e})"),
    };
    Ok(NodeIdentity {
        provider: "aws",
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

async fn azure(session: &PodSession) -> Result<NodeIdentity, String> {
    let call = PodCall::get(
        format!("{METADATA}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"),
        METADATA_TIMEOUT,
    )
    .header("Metadata", "true");
    let answer = session
        .call(&call)
        .await
        .map_err(|f| format!("Azure IMDS: {}", describe(&f)))?;
    if answer.status != 200 {
        return Err(format!(
            "Azure IMDS: HTTP {} (no managed identity for the node)",
            answer.status
        ));
    }
    let token = serde_json::from_slice::<AzureToken>(&answer.body)
        .map_err(|_| "Azure IMDS: an answer without an access token".to_string())?;
    let claims = AccessTokenClaims::decode(&token.access_token).unwrap_or_default();
    let client = claims
        .client_id()
        .map(str::to_string)
        .unwrap_or(token.client_id);
    Ok(NodeIdentity {
        provider: "azure",
        principal: format!(
            "managed identity {client} (object id {})",
            claims.oid.as_deref().unwrap_or("?")
        ),
        via: "Azure IMDS from inside the pod".into(),
    })
}

async fn gcp(pod: &PodSubject, session: &PodSession) -> Result<NodeIdentity, String> {
    if pod
        .node_labels
        .as_ref()
        .and_then(|l| l.get(GKE_METADATA_LABEL))
        .is_some_and(|v| v == "true")
    {
        return Err(
            "GCP: the node runs the GKE metadata server, which hides the node's service account"
                .into(),
        );
    }
    let call = PodCall::get(
        format!("{METADATA}/computeMetadata/v1/instance/service-accounts/default/email"),
        METADATA_TIMEOUT,
    )
    .header("Metadata-Flavor", "Google");
    let answer = session
        .call(&call)
        .await
        .map_err(|f| format!("GCP metadata: {}", describe(&f)))?;
    let email = String::from_utf8_lossy(&answer.body).trim().to_string();
    if answer.status != 200 || email.is_empty() {
        return Err(format!("GCP metadata: HTTP {}", answer.status));
    }
    Ok(NodeIdentity {
        provider: "gcp",
        principal: email,
        via: "the GCE metadata server from inside the pod".into(),
    })
}

fn describe(failure: &CallFailure) -> String {
    match failure {
        CallFailure::Timeout { after } => format!(
            "no answer within {}s (a hop limit of 1 or a blocked 169.254.169.254)",
            after.as_secs()
        ),
        other => other.to_string(),
    }
}
