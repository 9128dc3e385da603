//! Google endpoints a pod's client would use: from an `external_account` configuration the STS
//! token URL, the impersonation URL and the universe domain; and the metadata server host from
//! `GCE_METADATA_HOST` / `GCE_METADATA_IP` as each Google auth library reads them.
//! Sources: `docs/sdk-endpoints.md`.

use super::{Env, first_set};

pub const DEFAULT_UNIVERSE_DOMAIN: &str = "googleapis.com";
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
pub const DEFAULT_METADATA_IP: &str = "169.254.169.254";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccountEndpoints {
    /// The config's `token_url`, else `https://sts.{universe_domain}/v1/token`.
    pub token_url: String,
    /// Whether `token_url` came from the config (false: the libraries' default was used).
    pub token_url_from_config: bool,
    pub service_account_impersonation_url: Option<String>,
    pub universe_domain: String,
}

/// The endpoints of an `external_account` configuration. Fields that are absent or not
/// strings count as unset.
pub fn external_account_endpoints(config: &serde_json::Value) -> ExternalAccountEndpoints {
    let field = |name: &str| {
        config
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let universe_domain =
        field("universe_domain").unwrap_or_else(|| DEFAULT_UNIVERSE_DOMAIN.into());
    let configured = field("token_url");
    ExternalAccountEndpoints {
        token_url_from_config: configured.is_some(),
        token_url: configured.unwrap_or_else(|| format!("https://sts.{universe_domain}/v1/token")),
        service_account_impersonation_url: field("service_account_impersonation_url"),
        universe_domain,
    }
}

/// The Google auth libraries, which read the metadata variables differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcpLibrary {
    /// google-auth (Python).
    Python,
    /// cloud.google.com/go/compute/metadata (Go).
    Go,
    /// google-auth-library-java.
    Java,
    /// gcp-metadata (Node.js).
    Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataServer {
    /// `host` or `host:port` the library sends metadata requests to.
    pub host: String,
    pub because: String,
}

/// The metadata server `library` would contact for tokens with this environment.
pub fn metadata_server(env: Env<'_>, library: GcpLibrary) -> MetadataServer {
    let (vars, default): (&[&'static str], &str) = match library {
        // GCE_METADATA_ROOT is the variable's old name; GCE_METADATA_IP only serves the
        // IP-based detection ping (see `metadata_ip`).
        GcpLibrary::Python => (
            &["GCE_METADATA_HOST", "GCE_METADATA_ROOT"],
            DEFAULT_METADATA_HOST,
        ),
        GcpLibrary::Go => (&["GCE_METADATA_HOST"], DEFAULT_METADATA_IP),
        GcpLibrary::Java => (&["GCE_METADATA_HOST"], DEFAULT_METADATA_HOST),
        GcpLibrary::Node => (&["GCE_METADATA_IP"], DEFAULT_METADATA_IP),
    };
    match first_set(env, vars) {
        Some((name, value)) => MetadataServer {
            host: strip_scheme(&value),
            because: format!("{name}={value}"),
        },
        None => MetadataServer {
            host: default.to_string(),
            because: format!("{} unset: the library's default", vars.join(" and ")),
        },
    }
}

/// google-auth (Python)'s IP-based detection address: `GCE_METADATA_IP`, else 169.254.169.254.
pub fn metadata_ip(env: Env<'_>) -> String {
    first_set(env, &["GCE_METADATA_IP"])
        .map(|(_, v)| strip_scheme(&v))
        .unwrap_or_else(|| DEFAULT_METADATA_IP.to_string())
}

fn strip_scheme(value: &str) -> String {
    let v = value.trim();
    let v = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .unwrap_or(v);
    v.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_env::env;
    use serde_json::json;

    #[test]
    fn external_account_defaults() {
        let e = external_account_endpoints(&json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "credential_source": {"file": "/var/run/secrets/token"}
        }));
        assert_eq!(e.token_url, "https://sts.googleapis.com/v1/token");
        assert!(!e.token_url_from_config);
        assert_eq!(e.universe_domain, "googleapis.com");
        assert_eq!(e.service_account_impersonation_url, None);
    }

    #[test]
    fn external_account_values_from_the_config() {
        let e = external_account_endpoints(&json!({
            "token_url": "https://sts.emulator.test/v1/token",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@p.iam.gserviceaccount.com:generateAccessToken",
            "universe_domain": "example-universe.test"
        }));
        assert_eq!(e.token_url, "https://sts.emulator.test/v1/token");
        assert!(e.token_url_from_config);
        assert_eq!(e.universe_domain, "example-universe.test");
        assert!(
            e.service_account_impersonation_url
                .unwrap()
                .ends_with(":generateAccessToken")
        );
    }

    #[test]
    fn universe_domain_shapes_the_default_token_url() {
        let e = external_account_endpoints(&json!({"universe_domain": "u.test", "token_url": 7}));
        assert_eq!(e.token_url, "https://sts.u.test/v1/token");
        assert!(!e.token_url_from_config);
    }

    #[test]
    fn metadata_defaults_differ_by_library() {
        let none = env(&[]);
        assert_eq!(
            metadata_server(&none, GcpLibrary::Python).host,
            "metadata.google.internal"
        );
        assert_eq!(
            metadata_server(&none, GcpLibrary::Java).host,
            "metadata.google.internal"
        );
        assert_eq!(
            metadata_server(&none, GcpLibrary::Go).host,
            "169.254.169.254"
        );
        assert_eq!(
            metadata_server(&none, GcpLibrary::Node).host,
            "169.254.169.254"
        );
        assert_eq!(metadata_ip(&none), "169.254.169.254");
    }

    #[test]
    fn metadata_variables() {
        let host = env(&[("GCE_METADATA_HOST", "gke-metadata.test:8080")]);
        for library in [GcpLibrary::Python, GcpLibrary::Go, GcpLibrary::Java] {
            let m = metadata_server(&host, library);
            assert_eq!(m.host, "gke-metadata.test:8080", "{library:?}");
            assert_eq!(m.because, "GCE_METADATA_HOST=gke-metadata.test:8080");
        }
        // The gcp-metadata version read reads GCE_METADATA_IP only.
        assert_eq!(
            metadata_server(&host, GcpLibrary::Node).host,
            "169.254.169.254"
        );
        let ip = env(&[
            ("GCE_METADATA_IP", "http://10.0.0.5:8080/"),
            ("GCE_METADATA_ROOT", "old.test"),
        ]);
        assert_eq!(metadata_server(&ip, GcpLibrary::Node).host, "10.0.0.5:8080");
        assert_eq!(metadata_ip(&ip), "10.0.0.5:8080");
        assert_eq!(metadata_server(&ip, GcpLibrary::Python).host, "old.test");
    }
}
