//! The file `GOOGLE_APPLICATION_CREDENTIALS` names: an `external_account` configuration (token
//! exchange, no secret in it) or a downloaded `service_account` key (a long-lived secret).
//! Only the fields the plugin needs are kept; a key's private fields are never deserialized.

use serde::Deserialize;

/// What the credentials file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsFile {
    ExternalAccount(ExternalAccount),
    /// A service-account key; only its account email is kept, never the key.
    ServiceAccountKey {
        client_email: Option<String>,
    },
    /// Another ADC type (`authorized_user`, `impersonated_service_account`, …).
    Other {
        kind: String,
    },
}

/// The fields of an external_account configuration the exchange needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExternalAccount {
    pub audience: String,
    pub subject_token_type: String,
    pub token_url: String,
    #[serde(default)]
    pub service_account_impersonation_url: Option<String>,
    pub credential_source: CredentialSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CredentialSource {
    /// File-sourced (the Kubernetes case: a projected ServiceAccount token).
    #[serde(default)]
    pub file: Option<String>,
    /// URL-sourced (e.g. a cloud's own metadata server); not read by the plugin.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub format: Option<SourceFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SourceFormat {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub subject_token_field_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("not JSON ({0})")]
    NotJson(String),
    #[error("JSON without a \"type\" field: not a Google credentials file")]
    NoType,
    #[error("invalid external_account configuration: {0}")]
    InvalidExternalAccount(String),
}

/// Shape of the wrapper only: `type` picks how to read the rest.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
}

pub fn parse(bytes: &[u8]) -> Result<CredentialsFile, CredentialsFileError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CredentialsFileError::NotJson(e.to_string()))?;
    let typed: Typed =
        serde_json::from_value(value.clone()).map_err(|_| CredentialsFileError::NoType)?;
    match typed.kind.as_deref() {
        None => Err(CredentialsFileError::NoType),
        Some("external_account") => {
            let config: ExternalAccount = serde_json::from_value(value)
                .map_err(|e| CredentialsFileError::InvalidExternalAccount(e.to_string()))?;
            if config.credential_source.file.is_none() && config.credential_source.url.is_none() {
                return Err(CredentialsFileError::InvalidExternalAccount(
                    "credential_source has neither \"file\" nor \"url\"".into(),
                ));
            }
            Ok(CredentialsFile::ExternalAccount(config))
        }
        Some("service_account") => Ok(CredentialsFile::ServiceAccountKey {
            client_email: typed.client_email,
        }),
        Some(other) => Ok(CredentialsFile::Other {
            kind: other.to_string(),
        }),
    }
}

impl ExternalAccount {
    /// The GSA email in `…/serviceAccounts/EMAIL:generateAccessToken`, when impersonating.
    pub fn impersonated_email(&self) -> Option<&str> {
        let url = self.service_account_impersonation_url.as_deref()?;
        let (_, rest) = url.rsplit_once("/serviceAccounts/")?;
        rest.strip_suffix(":generateAccessToken")
    }

    /// `(project number, pool id, provider id)` from
    /// `//iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`.
    pub fn pool(&self) -> Option<(&str, &str, &str)> {
        let rest = self.audience.split_once("/projects/")?.1;
        let (number, rest) = rest.split_once("/locations/global/workloadIdentityPools/")?;
        let (pool, provider) = rest.split_once("/providers/")?;
        Some((number, pool, provider))
    }

    /// The subject token from the source file's bytes (`text`, or `json` with a field name).
    pub fn subject_token(&self, file_bytes: &[u8]) -> Result<String, String> {
        let format = self.credential_source.format.as_ref();
        match format.and_then(|f| f.kind.as_deref()) {
            None | Some("text") => {
                let text = String::from_utf8_lossy(file_bytes).trim().to_string();
                if text.is_empty() {
                    return Err("the subject token file is empty".into());
                }
                Ok(text)
            }
            Some("json") => {
                let field = format
                    .and_then(|f| f.subject_token_field_name.as_deref())
                    .ok_or("format json without subject_token_field_name")?;
                let value: serde_json::Value = serde_json::from_slice(file_bytes)
                    .map_err(|e| format!("the subject token file is not JSON ({e})"))?;
                value
                    .get(field)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("the subject token file has no string field {field:?}"))
            }
            Some(other) => Err(format!("unknown credential_source format {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
      "type": "external_account",
      "audience": "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-pool/providers/my-provider",
      "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
      "token_url": "https://sts.googleapis.com/v1/token",
      "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/gke-service-account@my-project.iam.gserviceaccount.com:generateAccessToken",
      "credential_source": {"file": "/var/run/service-account/token", "format": {"type": "text"}}
    }"#;

    #[test]
    fn parses_an_external_account_config() {
        let CredentialsFile::ExternalAccount(config) = parse(CONFIG.as_bytes()).unwrap() else {
            panic!("not external_account");
        };
        assert_eq!(
            config.impersonated_email(),
            Some("gke-service-account@my-project.iam.gserviceaccount.com")
        );
        assert_eq!(
            config.pool(),
            Some(("1234567890", "my-pool", "my-provider"))
        );
        assert_eq!(
            config.credential_source.file.as_deref(),
            Some("/var/run/service-account/token")
        );
        assert_eq!(
            config.subject_token(b" abc.def.ghi\n").unwrap(),
            "abc.def.ghi"
        );
        assert!(config.subject_token(b"  \n").is_err());
    }

    #[test]
    fn json_sourced_subject_token() {
        let mut config = match parse(CONFIG.as_bytes()).unwrap() {
            CredentialsFile::ExternalAccount(c) => c,
            _ => unreachable!(),
        };
        config.credential_source.format = Some(SourceFormat {
            kind: Some("json".into()),
            subject_token_field_name: Some("id_token".into()),
        });
        assert_eq!(config.subject_token(br#"{"id_token":"t"}"#).unwrap(), "t");
        assert!(config.subject_token(br#"{"other":"t"}"#).is_err());
        assert!(config.subject_token(b"garbage").is_err());
    }

    #[test]
    fn key_files_and_other_types_are_told_apart() {
        let key = br#"{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":"-----BEGIN"}"#;
        assert_eq!(
            parse(key).unwrap(),
            CredentialsFile::ServiceAccountKey {
                client_email: Some("a@p.iam.gserviceaccount.com".into())
            }
        );
        assert_eq!(
            parse(br#"{"type":"authorized_user"}"#).unwrap(),
            CredentialsFile::Other {
                kind: "authorized_user".into()
            }
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            parse(b"\x00not json"),
            Err(CredentialsFileError::NotJson(_))
        ));
        assert_eq!(parse(b"[1,2]"), Err(CredentialsFileError::NoType));
        assert_eq!(parse(b"{}"), Err(CredentialsFileError::NoType));
        let missing = parse(br#"{"type":"external_account","audience":"a"}"#).unwrap_err();
        assert!(
            missing.to_string().contains("subject_token_type")
                || missing.to_string().contains("missing field"),
            "{missing}"
        );
        let no_source = parse(
            br#"{"type":"external_account","audience":"a","subject_token_type":"t","token_url":"u","credential_source":{}}"#,
        )
        .unwrap_err();
        assert!(no_source.to_string().contains("neither"), "{no_source}");
    }
}
