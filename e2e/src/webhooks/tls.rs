//! TLS for webhook servers: a throwaway CA (its PEM goes into the webhook configuration's
//! `caBundle`) and a serving certificate signed by it (served by `crate::https_server`).

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA PEM and a rustls server configuration whose certificate it signed.
pub struct ServingTls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// A new CA and a serving certificate for 127.0.0.1, localhost and every address in `ips`.
pub fn serving_tls(common_name: &str, ips: &[IpAddr]) -> Result<ServingTls> {
    let ca_key = KeyPair::generate().context("generating the webhook CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{common_name} CA"));
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate().context("generating the webhook serving key")?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let mut addresses: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    for ip in ips {
        if !ip.is_unspecified() && !addresses.contains(ip) {
            addresses.push(*ip);
        }
    }
    server_params
        .subject_alt_names
        .extend(addresses.into_iter().map(SanType::IpAddress));
    let server_cert = server_params.signed_by(&server_key, &ca_issuer)?;

    let chain = vec![
        CertificateDer::from(server_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    // Explicit provider: the workspace links both ring and aws-lc-rs, so there is no default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .context("building the webhook TLS config")?;
    // The accept loop speaks HTTP/1.1 only; say so, so the apiserver does not try h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingTls {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}
