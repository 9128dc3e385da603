//! The CA roots the pod's client trusts: the bundle its SDK's variable names (AWS_CA_BUNDLE,
//! SSL_CERT_FILE, SSL_CERT_DIR), else the target image's system bundle (seen through
//! `/proc/<pid>/root`), else the probe image's own.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::endpoints::ca_bundle::{self, Client};
use crate::target::Target;

/// Go's list of system bundles (crypto/x509 root_linux.go), which most distroless workloads use.
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The roots for one call, and where they came from (for the report).
#[derive(Clone)]
pub struct Roots {
    pub store: Arc<RootCertStore>,
    pub origin: String,
}

/// The roots `client` trusts in the pod: its variable's bundle when set, else the system's.
pub fn roots(target: &Target, client: Client) -> Roots {
    let lookup = |name: &str| target.var(name);
    if let Some((var, path)) = ca_bundle::ca_bundle(&lookup, client) {
        let origin = format!("{var}={path}");
        let pems = if var == "SSL_CERT_DIR" {
            path.split(':')
                .flat_map(|dir| target.read_dir_files(dir))
                .collect::<Vec<_>>()
        } else {
            target.read_file(&path).ok().into_iter().collect()
        };
        return from_pems(&pems, origin);
    }
    for path in SYSTEM_BUNDLES {
        if let Some((bytes, whose)) = target.read_file_with_origin(path) {
            return from_pems(&[bytes], format!("{path} ({whose})"));
        }
    }
    from_pems(&[], "no CA bundle in the pod".into())
}

fn from_pems(pems: &[Vec<u8>], origin: String) -> Roots {
    let mut store = RootCertStore::empty();
    for pem in pems {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .filter_map(Result::ok)
            .collect();
        store.add_parsable_certificates(certs);
    }
    let origin = if store.is_empty() {
        format!("{origin}: no certificate loaded")
    } else {
        origin
    };
    Roots {
        store: Arc::new(store),
        origin,
    }
}

pub fn client_config(roots: &Roots) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.store.clone())
        .with_no_client_auth();
    Ok(Arc::new(config))
}
