//! Google from inside the pod: an external_account configuration (STS token exchange with the
//! credential_source file, then generateAccessToken when it impersonates a service account),
//! or the GKE metadata server's answer for the pod's KSA.

use serde::Deserialize;

use crate::aws::form;
use crate::endpoints::ca_bundle::Client as CaClient;
use crate::endpoints::gcp;
use crate::http::Request;
use crate::run::Probe;

const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

#[derive(Deserialize)]
struct AccessToken {
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Impersonated {
    access_token: String,
}

pub fn external_account(p: &mut Probe) {
    let Some(path) = p.var("GOOGLE_APPLICATION_CREDENTIALS") else {
        return p.error("GOOGLE_APPLICATION_CREDENTIALS is not set");
    };
    let config: serde_json::Value = match p.target.read_file(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => return p.error(format!("{path} is not JSON")),
        },
        Err(e) => return p.error(format!("cannot read {path}: {e}")),
    };
    if config.get("type").and_then(|t| t.as_str()) != Some("external_account") {
        return p.error(format!("{path} is not an external_account configuration"));
    }
    let str_field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let source = config.get("credential_source").cloned().unwrap_or_default();
    let Some(file) = str_field(&source, "file") else {
        return p.error("credential_source has no file (only file sources are probed)");
    };
    // The token file is read as the pod reads it; recorded under a pseudo-variable.
    let raw = match p.target.read_file(&file) {
        Ok(b) => b,
        Err(e) => {
            p.report.token = Some(crate::report::TokenRead {
                variable: "credential_source.file".into(),
                path: file.clone(),
                error: Some(e),
                ..Default::default()
            });
            return;
        }
    };
    let format = source.get("format").cloned().unwrap_or_default();
    let subject = if str_field(&format, "type").as_deref() == Some("json") {
        let field = str_field(&format, "subject_token_field_name").unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| str_field(&v, &field))
            .unwrap_or_default()
    } else {
        String::from_utf8_lossy(raw.trim_ascii()).into_owned()
    };
    p.report.token = Some(crate::report::TokenRead {
        variable: "credential_source.file".into(),
        path: file,
        read: true,
        error: None,
        bytes: raw.len(),
        claims: crate::jwt::claims(subject.as_bytes()),
    });
    drop(raw);
    let endpoints = gcp::external_account_endpoints(&config);
    let because = if endpoints.token_url_from_config {
        format!("token_url of {path}")
    } else {
        "the libraries' default token_url".to_string()
    };
    let audience = str_field(&config, "audience").unwrap_or_default();
    let subject_type = str_field(&config, "subject_token_type")
        .unwrap_or_else(|| "urn:ietf:params:oauth:token-type:jwt".into());
    let body = form(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("audience", &audience),
        ("scope", CLOUD_PLATFORM),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("subject_token", &subject),
        ("subject_token_type", &subject_type),
    ]);
    drop(subject);
    let request = Request::post(
        endpoints.token_url.clone(),
        "application/x-www-form-urlencoded",
        body.into_bytes(),
        p.options.timeout,
    );
    let Some(answer) = p.call("gcp-sts:token", &because, &request, CaClient::Go) else {
        return;
    };
    drop(request);
    if answer.status != 200 {
        let e: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        return p.cloud_error(str_field(&e, "error"), str_field(&e, "error_description"));
    }
    let Ok(federated) = serde_json::from_slice::<AccessToken>(&answer.body) else {
        return p.error("Google STS answered 200 without an access token");
    };
    drop(answer);
    let Some(impersonation) = endpoints.service_account_impersonation_url else {
        let principal = format!("the federated principal of audience {audience}");
        return p.identity("gcp", principal, &endpoints.token_url);
    };
    let request = Request::post(
        impersonation.clone(),
        "application/json",
        serde_json::json!({ "scope": [CLOUD_PLATFORM] })
            .to_string()
            .into_bytes(),
        p.options.timeout,
    )
    .header(
        "Authorization",
        &format!("Bearer {}", federated.access_token),
    );
    drop(federated);
    let because = format!("service_account_impersonation_url of {path}");
    let Some(answer) = p.call("iam:generateAccessToken", &because, &request, CaClient::Go) else {
        return;
    };
    drop(request);
    if answer.status != 200 {
        let e: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let error = e.get("error").cloned().unwrap_or_default();
        return p.cloud_error(str_field(&error, "status"), str_field(&error, "message"));
    }
    let granted = serde_json::from_slice::<Impersonated>(&answer.body)
        .is_ok_and(|i| !i.access_token.is_empty());
    if !granted {
        return p.error("generateAccessToken answered 200 without an access token");
    }
    p.identity("gcp", impersonated_email(&impersonation), &impersonation);
}

/// `…/serviceAccounts/EMAIL:generateAccessToken` → EMAIL.
pub fn impersonated_email(url: &str) -> String {
    url.rsplit_once("/serviceAccounts/")
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest).to_string())
        .unwrap_or_else(|| url.to_string())
}

/// The metadata host the pod's Google library uses (GCE_METADATA_HOST, else the IP).
pub fn metadata_base(p: &Probe) -> String {
    match p.var("GCE_METADATA_HOST") {
        Some(host) => format!("http://{}", host.trim_end_matches('/')),
        None => format!("http://{}", gcp::DEFAULT_METADATA_IP),
    }
}

/// GKE Workload Identity: the metadata server answers with the KSA's service account.
pub fn metadata(p: &mut Probe) {
    let base = metadata_base(p);
    let url = format!("{base}/computeMetadata/v1/instance/service-accounts/default/email");
    let request = Request::get(url.clone(), p.options.timeout).header("Metadata-Flavor", "Google");
    let Some(answer) = p.call(
        "gke-metadata:email",
        "GCE_METADATA_HOST or the metadata IP",
        &request,
        CaClient::Go,
    ) else {
        return;
    };
    let email = String::from_utf8_lossy(&answer.body).trim().to_string();
    if answer.status == 200 && !email.is_empty() {
        p.identity("gcp", email, &url);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_from_the_impersonation_url() {
        assert_eq!(
            super::impersonated_email(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/app@p.iam.gserviceaccount.com:generateAccessToken"
            ),
            "app@p.iam.gserviceaccount.com"
        );
    }
}
