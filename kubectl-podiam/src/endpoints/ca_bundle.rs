//! Which CA-bundle variables a client honours, in its order, and the first one the pod sets.
//! A private CA the pod's client does not trust fails its TLS handshake; a variable the client
//! does not read changes nothing. Sources: `docs/sdk-endpoints.md`.

use super::{Env, first_set};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// botocore, boto3, AWS CLI v1: `AWS_CA_BUNDLE`, else certifi's bundle (requests' and
    /// OpenSSL's variables are not read: botocore hands urllib3 an explicit CA file).
    Botocore,
    /// AWS SDK for Go v2: `AWS_CA_BUNDLE` replaces the roots; else Go's system pool.
    AwsGoV2,
    /// AWS SDK for Rust with rustls and native roots (rustls-native-certs 0.8).
    AwsRust,
    /// AWS SDK for Java v2: the JVM trust store; no environment variable.
    AwsJavaV2,
    /// Node.js (AWS SDK for JS v3, google-auth-library, @azure/identity): extra roots.
    Node,
    /// Python requests (google-auth, azure-identity's default transport).
    PythonRequests,
    /// curl.
    Curl,
    /// OpenSSL's default verify paths (Python's `ssl` default context, wget built on OpenSSL).
    OpenSsl,
    /// Go's crypto/x509 system pool on Linux (azidentity, Google's Go libraries).
    Go,
}

impl Client {
    /// The variables, in the order the client reads them.
    pub fn honoured_vars(self) -> &'static [&'static str] {
        match self {
            Client::Botocore => &["AWS_CA_BUNDLE"],
            Client::AwsGoV2 => &["AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"],
            Client::AwsRust => &["SSL_CERT_FILE", "SSL_CERT_DIR"],
            Client::AwsJavaV2 => &[],
            Client::Node => &["NODE_EXTRA_CA_CERTS"],
            Client::PythonRequests => &["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"],
            Client::Curl => &["CURL_CA_BUNDLE", "SSL_CERT_DIR", "SSL_CERT_FILE"],
            Client::OpenSsl | Client::Go => &["SSL_CERT_FILE", "SSL_CERT_DIR"],
        }
    }
}

/// The first honoured variable the environment sets, and its value (a path).
pub fn ca_bundle(env: Env<'_>, client: Client) -> Option<(&'static str, String)> {
    first_set(env, client.honoured_vars())
}

/// CA variables the pod sets that `client` does not read (a private CA set for another client).
pub fn ignored_vars(env: Env<'_>, client: Client) -> Vec<&'static str> {
    const ALL: [&str; 6] = [
        "AWS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    ];
    ALL.into_iter()
        .filter(|v| !client.honoured_vars().contains(v))
        .filter(|v| super::non_empty(env, v).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_env::env;

    #[test]
    fn first_honoured_variable_wins() {
        let pairs = [
            ("SSL_CERT_FILE", "/etc/ssl/private-ca.pem"),
            ("AWS_CA_BUNDLE", "/aws/ca.pem"),
            ("REQUESTS_CA_BUNDLE", "/py/ca.pem"),
        ];
        let e = env(&pairs);
        assert_eq!(
            ca_bundle(&e, Client::Botocore),
            Some(("AWS_CA_BUNDLE", "/aws/ca.pem".into()))
        );
        assert_eq!(
            ca_bundle(&e, Client::AwsGoV2),
            Some(("AWS_CA_BUNDLE", "/aws/ca.pem".into()))
        );
        assert_eq!(
            ca_bundle(&e, Client::AwsRust),
            Some(("SSL_CERT_FILE", "/etc/ssl/private-ca.pem".into()))
        );
        assert_eq!(
            ca_bundle(&e, Client::PythonRequests),
            Some(("REQUESTS_CA_BUNDLE", "/py/ca.pem".into()))
        );
        assert_eq!(ca_bundle(&e, Client::Node), None);
        assert_eq!(ca_bundle(&e, Client::AwsJavaV2), None);
    }

    #[test]
    fn curl_prefers_its_own_variable_then_the_directory() {
        let e = env(&[("SSL_CERT_FILE", "/f.pem"), ("SSL_CERT_DIR", "/certs")]);
        assert_eq!(
            ca_bundle(&e, Client::Curl),
            Some(("SSL_CERT_DIR", "/certs".into()))
        );
        assert_eq!(
            ca_bundle(&e, Client::OpenSsl),
            Some(("SSL_CERT_FILE", "/f.pem".into()))
        );
        let e = env(&[("CURL_CA_BUNDLE", "/c.pem"), ("SSL_CERT_DIR", "/certs")]);
        assert_eq!(
            ca_bundle(&e, Client::Curl),
            Some(("CURL_CA_BUNDLE", "/c.pem".into()))
        );
        assert_eq!(
            ca_bundle(&e, Client::PythonRequests),
            Some(("CURL_CA_BUNDLE", "/c.pem".into()))
        );
    }

    #[test]
    fn empty_values_do_not_count() {
        let e = env(&[("AWS_CA_BUNDLE", ""), ("SSL_CERT_FILE", "/f.pem")]);
        assert_eq!(
            ca_bundle(&e, Client::AwsGoV2),
            Some(("SSL_CERT_FILE", "/f.pem".into()))
        );
        assert_eq!(ca_bundle(&e, Client::Botocore), None);
    }

    #[test]
    fn variables_set_for_other_clients_are_listed() {
        let e = env(&[
            ("SSL_CERT_FILE", "/f.pem"),
            ("REQUESTS_CA_BUNDLE", "/r.pem"),
        ]);
        assert_eq!(
            ignored_vars(&e, Client::Botocore),
            vec!["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]
        );
        assert_eq!(
            ignored_vars(&e, Client::PythonRequests),
            vec!["SSL_CERT_FILE"]
        );
    }
}
