//! The gate's read view of IAM in moto: OIDC providers and roles, cached.
//!
//! Reads go to moto with the admin key. The cache is dropped whenever an IAM write passes
//! through the gate (see `aws_gate`), so whoever registers providers or roles through the
//! gate's endpoint (setup, `bind`, tests) is seen by the next AssumeRoleWithWebIdentity.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{Result, anyhow};
use aws_sdk_iam::config::timeout::TimeoutConfig;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use percent_encoding::percent_decode_str;

use super::credentials::AdminCredentials;
use super::hop_budgets;

/// An IAM OIDC identity provider.
#[derive(Debug, Clone)]
pub struct OidcProviderRecord {
    pub arn: String,
    /// Issuer without `https://`, as in the ARN.
    pub host_path: String,
    pub client_ids: Vec<String>,
}

/// What the gate needs of a role.
#[derive(Debug, Clone)]
pub struct RoleRecord {
    pub arn: String,
    pub name: String,
    /// `AROA…`, the prefix of the assumed-role user id.
    pub role_id: String,
    /// Decoded trust policy JSON text.
    pub trust_policy: String,
    pub max_session_duration: i32,
}

#[derive(Default)]
struct Cache {
    providers: Option<Vec<OidcProviderRecord>>,
    roles: HashMap<String, Option<RoleRecord>>,
}

pub struct IamDirectory {
    iam: aws_sdk_iam::Client,
    cache: Mutex<Cache>,
}

impl IamDirectory {
    pub fn new(moto_url: &str, admin: &AdminCredentials) -> Self {
        Self {
            iam: bounded_iam_client(moto_url, admin),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Forget everything read so far: IAM changed.
    pub fn invalidate(&self) {
        *self.lock() = Cache::default();
    }

    /// The provider whose URL equals the issuer (with or without `https://`).
    pub async fn provider_for_issuer(&self, issuer: &str) -> Result<Option<OidcProviderRecord>> {
        let host_path = issuer.strip_prefix("https://").unwrap_or(issuer);
        let cached = self.lock().providers.clone();
        let providers = match cached {
            Some(providers) => providers,
            None => {
                let providers = self.read_providers().await?;
                self.lock().providers = Some(providers.clone());
                providers
            }
        };
        Ok(providers.into_iter().find(|p| p.host_path == host_path))
    }

    /// The role by name; `None` when IAM has no such role.
    pub async fn role(&self, name: &str) -> Result<Option<RoleRecord>> {
        if let Some(cached) = self.lock().roles.get(name) {
            return Ok(cached.clone());
        }
        let role = self.read_role(name).await?;
        self.lock().roles.insert(name.to_owned(), role.clone());
        Ok(role)
    }

    /// The identity policies of role `name` (inline and attached managed, default versions),
    /// decoded JSON texts; read each time (role chaining is rare, and never stale).
    pub async fn role_identity_policies(&self, name: &str) -> Result<Vec<String>> {
        let what = |call: &str| format!("IAM {call} {name}");
        let mut policies = Vec::new();
        let inline = self
            .iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|e| read_error(e, what("ListRolePolicies")))?;
        for policy_name in inline.policy_names() {
            let policy = self
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .send()
                .await
                .map_err(|e| read_error(e, what("GetRolePolicy")))?;
            policies.push(decode_policy_document(policy.policy_document()));
        }
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|e| read_error(e, what("ListAttachedRolePolicies")))?;
        for policy in attached.attached_policies() {
            let Some(arn) = policy.policy_arn() else {
                continue;
            };
            let described = self
                .iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| read_error(e, what("GetPolicy")))?;
            let Some(version) = described.policy().and_then(|p| p.default_version_id()) else {
                continue;
            };
            let document = self
                .iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(|e| read_error(e, what("GetPolicyVersion")))?;
            if let Some(text) = document.policy_version().and_then(|v| v.document()) {
                policies.push(decode_policy_document(text));
            }
        }
        Ok(policies)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn read_providers(&self) -> Result<Vec<OidcProviderRecord>> {
        let list = self
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(|e| read_error(e, "IAM ListOpenIDConnectProviders".to_owned()))?;
        let mut providers = Vec::new();
        for entry in list.open_id_connect_provider_list() {
            let Some(arn) = entry.arn() else { continue };
            let details = self
                .iam
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await
                .map_err(|e| read_error(e, format!("IAM GetOpenIDConnectProvider {arn}")))?;
            let host_path = arn.split_once(":oidc-provider/").map_or_else(
                || details.url().unwrap_or_default().to_owned(),
                |(_, host_path)| host_path.to_owned(),
            );
            providers.push(OidcProviderRecord {
                arn: arn.to_owned(),
                host_path,
                client_ids: details.client_id_list().to_vec(),
            });
        }
        Ok(providers)
    }

    async fn read_role(&self, name: &str) -> Result<Option<RoleRecord>> {
        let output = match self.iam.get_role().role_name(name).send().await {
            Ok(output) => output,
            Err(err) if err.code() == Some("NoSuchEntity") => return Ok(None),
            Err(err) => return Err(read_error(err, format!("IAM GetRole {name}"))),
        };
        let Some(role) = output.role() else {
            return Ok(None);
        };
        let raw_policy = role.assume_role_policy_document().unwrap_or_default();
        Ok(Some(RoleRecord {
            arn: role.arn().to_owned(),
            name: role.role_name().to_owned(),
            role_id: role.role_id().to_owned(),
            trust_policy: decode_policy_document(raw_policy),
            max_session_duration: role.max_session_duration().unwrap_or(3600),
        }))
    }
}

/// An IAM client for moto as the admin whose every call ends within [`hop_budgets::MOTO_CALL`].
fn bounded_iam_client(moto_url: &str, admin: &AdminCredentials) -> aws_sdk_iam::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(hop_budgets::CONNECT)
        .operation_attempt_timeout(hop_budgets::MOTO_CALL)
        .operation_timeout(hop_budgets::MOTO_CALL)
        .build();
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new(super::REGION))
        .endpoint_url(moto_url)
        .credentials_provider(admin.sdk_credentials())
        .timeout_config(timeouts)
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// A failed IAM read, naming moto when it did not answer in time.
fn read_error<E, R>(err: SdkError<E, R>, what: String) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let timed_out = match &err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    };
    if timed_out {
        anyhow!(
            "moto did not answer {what} within {}s",
            hop_budgets::MOTO_CALL.as_secs()
        )
    } else {
        anyhow::Error::new(err).context(what)
    }
}

/// IAM returns policy documents URL-encoded; tolerate plain JSON too.
pub fn decode_policy_document(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_decode_str(raw).decode_utf8_lossy().into_owned()
    }
}
