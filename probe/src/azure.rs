//! Entra's client-assertion token request, made from inside the pod with its federated token
//! at the authority its azure-identity would use. The principal is read from the access
//! token's claims (appid/azp, oid); the token itself is dropped.

use serde::Deserialize;

use crate::aws::form;
use crate::endpoints::azure;
use crate::endpoints::ca_bundle::Client as CaClient;
use crate::http::Request;
use crate::jwt;
use crate::run::Probe;

/// The scope the plugin asks for too (`exchange/azure_entra.rs`: Blob storage).
pub const SCOPE: &str = "https://storage.azure.com/.default";

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
    error_codes: Vec<u64>,
}

pub fn workload_identity(p: &mut Probe) {
    let (Some(client_id), Some(tenant)) = (p.var("AZURE_CLIENT_ID"), p.var("AZURE_TENANT_ID"))
    else {
        return p.error("AZURE_CLIENT_ID or AZURE_TENANT_ID is not set");
    };
    let lookup = |name: &str| p.target.var(name);
    let authority = match azure::authority_host(&lookup) {
        Ok(a) => a,
        Err(e) => return p.error(e.to_string()),
    };
    let Some(assertion) = p.token("AZURE_FEDERATED_TOKEN_FILE") else {
        return;
    };
    let url = azure::token_url(&authority.host, &tenant);
    let body = form(&[
        ("client_id", &client_id),
        ("scope", SCOPE),
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        (
            "client_assertion",
            String::from_utf8_lossy(assertion.trim_ascii()).as_ref(),
        ),
    ]);
    drop(assertion);
    let request = Request::post(
        url.clone(),
        "application/x-www-form-urlencoded",
        body.into_bytes(),
        p.options.timeout,
    );
    let Some(answer) = p.call("entra:token", &authority.because, &request, CaClient::Go) else {
        return;
    };
    drop(request);
    if answer.status != 200 {
        let e: ErrorAnswer = serde_json::from_slice(&answer.body).unwrap_or_default();
        let code = e
            .error_codes
            .first()
            .map(|c| format!("AADSTS{c}"))
            .or(e.error);
        let message = e
            .error_description
            .map(|d| d.lines().next().unwrap_or("").to_string());
        return p.cloud_error(code, message);
    }
    let Ok(token) = serde_json::from_slice::<TokenAnswer>(&answer.body) else {
        return p.error("Entra answered 200 without an access token");
    };
    drop(answer);
    let claims = jwt::claims(token.access_token.as_bytes()).unwrap_or_default();
    drop(token);
    let app = claims.appid.or(claims.azp).unwrap_or(client_id);
    p.identity("azure", app, &url);
    if let Some(identity) = p.report.identity.as_mut() {
        identity.detail = Some(format!(
            "object id {}, tenant {}",
            claims.oid.as_deref().unwrap_or("?"),
            claims.tid.as_deref().unwrap_or("?")
        ));
    }
}
