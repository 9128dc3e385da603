//! The Entra authority and token URL a pod's azure-identity would use: `AZURE_AUTHORITY_HOST`,
//! else the public cloud, normalised as azure-identity (Python) does it — `https://` added when
//! there is no scheme, any other scheme refused, trailing spaces and slashes removed — and the
//! token URL `{authority}/{tenant}/oauth2/v2.0/token`. Sources: `docs/sdk-endpoints.md`.

use super::{Env, non_empty};

pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Normalised, without a trailing slash, e.g. `https://login.microsoftonline.com`.
    pub host: String,
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureEndpointError {
    #[error("AZURE_AUTHORITY_HOST={0:?} is not a TLS protected (https) URL")]
    NotHttps(String),
}

/// The authority from `AZURE_AUTHORITY_HOST`, else the public cloud's.
pub fn authority_host(env: Env<'_>) -> Result<Authority, AzureEndpointError> {
    match non_empty(env, "AZURE_AUTHORITY_HOST") {
        Some(raw) => Ok(Authority {
            host: normalize(&raw)?,
            because: format!("AZURE_AUTHORITY_HOST={raw}"),
        }),
        None => Ok(Authority {
            host: normalize(DEFAULT_AUTHORITY_HOST)?,
            because: "AZURE_AUTHORITY_HOST unset: the public cloud's authority".into(),
        }),
    }
}

fn normalize(raw: &str) -> Result<String, AzureEndpointError> {
    let trimmed = raw.trim_end_matches([' ', '/']);
    match trimmed.split_once("://") {
        None => Ok(format!("https://{trimmed}")),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => Ok(trimmed.to_string()),
        Some(_) => Err(AzureEndpointError::NotHttps(raw.to_string())),
    }
}

/// `{authority}/{tenant}/oauth2/v2.0/token` with exactly one slash between the parts.
pub fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        authority.trim_end_matches('/'),
        tenant.trim_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_env::env;

    #[test]
    fn default_is_the_public_cloud() {
        let a = authority_host(&env(&[])).unwrap();
        assert_eq!(a.host, "https://login.microsoftonline.com");
        assert!(a.because.contains("unset"));
        assert_eq!(
            token_url(&a.host, "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
    }

    #[test]
    fn trailing_slashes_and_spaces_are_removed() {
        for raw in [
            "https://login.microsoftonline.us",
            "https://login.microsoftonline.us/",
            "https://login.microsoftonline.us//",
            "https://login.microsoftonline.us/ ",
        ] {
            let a = authority_host(&env(&[("AZURE_AUTHORITY_HOST", raw)])).unwrap();
            assert_eq!(a.host, "https://login.microsoftonline.us", "{raw:?}");
            assert_eq!(
                token_url(&a.host, "t"),
                "https://login.microsoftonline.us/t/oauth2/v2.0/token"
            );
        }
        assert_eq!(
            token_url("https://login.chinacloudapi.cn/", "/t/"),
            "https://login.chinacloudapi.cn/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn scheme_is_added_or_checked() {
        let a = authority_host(&env(&[(
            "AZURE_AUTHORITY_HOST",
            "login.microsoftonline.com/",
        )]))
        .unwrap();
        assert_eq!(a.host, "https://login.microsoftonline.com");
        let err = authority_host(&env(&[(
            "AZURE_AUTHORITY_HOST",
            "http://entra.local:8080/",
        )]));
        assert_eq!(
            err,
            Err(AzureEndpointError::NotHttps(
                "http://entra.local:8080/".into()
            ))
        );
    }

    #[test]
    fn a_path_in_the_authority_is_kept() {
        let a = authority_host(&env(&[(
            "AZURE_AUTHORITY_HOST",
            "https://entra.emulator:8443/prefix/",
        )]))
        .unwrap();
        assert_eq!(
            token_url(&a.host, "t"),
            "https://entra.emulator:8443/prefix/t/oauth2/v2.0/token"
        );
    }
}
