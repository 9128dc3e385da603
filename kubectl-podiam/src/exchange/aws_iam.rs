//! Operator-side reads that explain a refused exchange: the role's trust policy and the
//! account's IAM OIDC providers.

use percent_encoding::percent_decode_str;

use super::CloudError;
use super::aws_sts::classify;

#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// Host and path, no scheme (as IAM stores it).
    pub url: String,
    pub client_ids: Vec<String>,
}

pub async fn trust_policy(
    config: &aws_config::SdkConfig,
    role_name: &str,
) -> Result<serde_json::Value, CloudError> {
    let iam = aws_sdk_iam::Client::new(config);
    let role = iam
        .get_role()
        .role_name(role_name)
        .send()
        .await
        .map_err(classify)?;
    let document = role
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .unwrap_or("{}");
    // IAM returns policy documents URL-encoded.
    let decoded = percent_decode_str(document).decode_utf8_lossy();
    serde_json::from_str(&decoded).map_err(|e| CloudError::Rejected {
        code: "MalformedPolicyDocument".into(),
        message: e.to_string(),
    })
}

pub async fn oidc_providers(
    config: &aws_config::SdkConfig,
) -> Result<Vec<OidcProvider>, CloudError> {
    let iam = aws_sdk_iam::Client::new(config);
    let list = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(classify)?;
    let mut providers = Vec::new();
    for entry in list.open_id_connect_provider_list() {
        let Some(arn) = entry.arn() else { continue };
        let p = iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .map_err(classify)?;
        providers.push(OidcProvider {
            url: p
                .url()
                .unwrap_or_default()
                .trim_start_matches("https://")
                .to_string(),
            client_ids: p.client_id_list().to_vec(),
        });
    }
    Ok(providers)
}
