//! The cluster's service-account issuer, as clouds see it: the `issuer` of the apiserver's
//! OIDC discovery document (the value of `--service-account-issuer`).

use crate::error::{Error, Result};

pub async fn service_account_issuer(client: &kube::Client) -> Result<String> {
    let what = "read the cluster's OIDC discovery document (/.well-known/openid-configuration)";
    let request = http::Request::get("/.well-known/openid-configuration")
        .body(Vec::new())
        .map_err(|e| Error::Cluster {
            what: what.into(),
            message: e.to_string(),
        })?;
    let document: serde_json::Value = client
        .request(request)
        .await
        .map_err(|e| Error::from_kube(what, e))?;
    document
        .get("issuer")
        .and_then(serde_json::Value::as_str)
        .filter(|issuer| !issuer.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::Cluster {
            what: what.into(),
            message: "the document has no issuer: is --service-account-issuer an https URL?".into(),
        })
}
