//! The token the kubelet would mount, obtained with TokenRequest (used when exec is impossible).

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use crate::error::{Error, Result};

pub struct EquivalentTokenRequest<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub audience: &'a str,
    pub expiration_seconds: i64,
    /// Bind the token to the pod, as the kubelet does.
    pub pod: Option<(&'a str, &'a str)>,
}

pub async fn request(client: &kube::Client, req: &EquivalentTokenRequest<'_>) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), req.namespace);
    let body = TokenRequest {
        spec: TokenRequestSpec {
            // No audience: the API server's default audiences, as for a projection naming none.
            audiences: if req.audience.is_empty() {
                Vec::new()
            } else {
                vec![req.audience.to_string()]
            },
            // TokenRequest's minimum is 600 s, like the webhook's.
            expiration_seconds: Some(req.expiration_seconds.max(600)),
            bound_object_ref: req.pod.map(|(name, uid)| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
            }),
        },
        ..Default::default()
    };
    let what = format!(
        "TokenRequest for serviceaccount {}/{}",
        req.namespace, req.service_account
    );
    let answer = api
        .create_token_request(req.service_account, &PostParams::default(), &body)
        .await
        .map_err(|e| Error::from_kube(what.clone(), e))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or(Error::Cluster {
            what,
            message: "the API server returned no token".into(),
        })
}
