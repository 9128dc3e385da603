//! The cluster's certificates and keys, generated with rcgen: a cluster CA; serving
//! certificates for the apiserver, kubelet, controller-manager and scheduler; client
//! certificates for admin, each component and the apiserver→kubelet link; a front-proxy CA
//! and client (so the apiserver's requestheader authentication is configured and quiet);
//! and the RSA-2048 service-account signing key (RS256, as cloud token services expect).
//!
//! TLS keys are ECDSA P-256 (fast to generate); files holding keys are mode 0600.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256,
};

use super::error::{ClusterError, IoContext, Result};

/// A certificate and its key on disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every credential file of one cluster.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: CertFiles,
    pub front_proxy_ca: CertFiles,
    pub front_proxy_client: CertFiles,
    pub apiserver: CertFiles,
    pub apiserver_kubelet_client: CertFiles,
    pub admin: CertFiles,
    pub controller_manager: CertFiles,
    pub controller_manager_serving: CertFiles,
    pub scheduler: CertFiles,
    pub scheduler_serving: CertFiles,
    pub kubelet: CertFiles,
    pub kubelet_serving: CertFiles,
    /// The service-account signing key (private, PEM) and its public half (PKIX PEM).
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
    pub service_account_public_key_pem: String,
}

/// What the certificates must name.
#[derive(Debug, Clone)]
pub struct PkiSubjects {
    pub node_name: String,
    /// Addresses the apiserver and kubelet are reached at (127.0.0.1 is always added).
    pub ips: Vec<IpAddr>,
    /// The first address of the service CIDR (the `kubernetes` Service).
    pub service_ip: IpAddr,
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(rcgen_error("generating a CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name, None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(Self { params, key })
    }

    fn write(&self, dir: &Path, stem: &str) -> Result<CertFiles> {
        let cert = self
            .params
            .clone()
            .self_signed(&self.key)
            .map_err(rcgen_error("self-signing a CA"))?;
        write_pair(dir, stem, &cert.pem(), &self.key.serialize_pem())
    }

    /// Issues a leaf: `sans` non-empty makes it a serving (and client) certificate.
    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        common_name: &str,
        organization: Option<&str>,
        sans: &[String],
    ) -> Result<CertFiles> {
        let key = KeyPair::generate().map_err(rcgen_error("generating a key"))?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(rcgen_error("certificate names"))?;
        params.distinguished_name = name(common_name, organization);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = if sans.is_empty() {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        };
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(rcgen_error("signing a certificate"))?;
        write_pair(dir, stem, &cert.pem(), &key.serialize_pem())
    }
}

impl Pki {
    /// Generates everything into `dir`. `service_account_key_pem` (an RSA private key, PKCS#1
    /// or PKCS#8) is used as the signing key when given, else a fresh RSA-2048 key is made.
    pub fn generate(
        dir: &Path,
        subjects: &PkiSubjects,
        service_account_key_pem: Option<&str>,
    ) -> Result<Self> {
        fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
        let ca = Ca::new("podiam-local-ca")?;
        let ca_files = ca.write(dir, "ca")?;
        let front_proxy = Ca::new("podiam-local-front-proxy-ca")?;
        let front_proxy_ca = front_proxy.write(dir, "front-proxy-ca")?;

        let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
        for ip in subjects.ips.iter().chain([&subjects.service_ip]) {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        let node = subjects.node_name.as_str();
        let mut apiserver_sans: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        apiserver_sans.extend(
            [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
            .map(String::from),
        );
        let mut kubelet_sans: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        kubelet_sans.extend([node.to_owned(), "localhost".to_owned()]);
        let loopback = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];

        let (sa_private_pem, sa_public_pem) = service_account_key(service_account_key_pem)?;
        let service_account_key = dir.join("service-account.key");
        write_secret(&service_account_key, &sa_private_pem)?;
        let service_account_public_key = dir.join("service-account.pub");
        write_file(&service_account_public_key, &sa_public_pem)?;

        Ok(Self {
            front_proxy_client: front_proxy.issue(
                dir,
                "front-proxy-client",
                "front-proxy-client",
                None,
                &[],
            )?,
            front_proxy_ca,
            apiserver: ca.issue(dir, "apiserver", "kube-apiserver", None, &apiserver_sans)?,
            apiserver_kubelet_client: ca.issue(
                dir,
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                Some("system:masters"),
                &[],
            )?,
            admin: ca.issue(dir, "admin", "podiam-admin", Some("system:masters"), &[])?,
            controller_manager: ca.issue(
                dir,
                "controller-manager",
                "system:kube-controller-manager",
                None,
                &[],
            )?,
            controller_manager_serving: ca.issue(
                dir,
                "controller-manager-serving",
                "kube-controller-manager",
                None,
                &loopback,
            )?,
            scheduler: ca.issue(dir, "scheduler", "system:kube-scheduler", None, &[])?,
            scheduler_serving: ca.issue(
                dir,
                "scheduler-serving",
                "kube-scheduler",
                None,
                &loopback,
            )?,
            kubelet: ca.issue(
                dir,
                "kubelet",
                &format!("system:node:{node}"),
                Some("system:nodes"),
                &[],
            )?,
            kubelet_serving: ca.issue(dir, "kubelet-serving", node, None, &kubelet_sans)?,
            ca: ca_files,
            service_account_key,
            service_account_public_key,
            service_account_public_key_pem: sa_public_pem,
        })
    }
}

/// (private PEM, public PKIX PEM) of the service-account key.
fn service_account_key(given: Option<&str>) -> Result<(String, String)> {
    match given {
        Some(pem) => {
            let key = KeyPair::from_pem_and_sign_algo(pem, &PKCS_RSA_SHA256).map_err(|e| {
                ClusterError::other(format!(
                    "service_account_signing_key_pem is not an RSA private key PEM: {e}"
                ))
            })?;
            Ok((pem.to_owned(), key.public_key_pem()))
        }
        None => {
            let key = KeyPair::generate_for(&PKCS_RSA_SHA256)
                .map_err(rcgen_error("generating the RSA service-account key"))?;
            Ok((key.serialize_pem(), key.public_key_pem()))
        }
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_pair(dir: &Path, stem: &str, cert_pem: &str, key_pem: &str) -> Result<CertFiles> {
    let files = CertFiles {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
    };
    write_file(&files.cert, cert_pem)?;
    write_secret(&files.key, key_pem)?;
    Ok(files)
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).io_context(|| format!("writing {}", path.display()))
}

/// Writes with mode 0600: throwaway keys, but keys.
fn write_secret(path: &Path, contents: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .io_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .io_context(|| format!("writing {}", path.display()))
}

fn rcgen_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> ClusterError {
    move |e| ClusterError::other(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_file_with_private_keys_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(
            dir.path(),
            &PkiSubjects {
                node_name: "node-a".into(),
                ips: vec!["10.213.0.1".parse().unwrap()],
                service_ip: "10.96.0.1".parse().unwrap(),
            },
            None,
        )
        .unwrap();
        for files in [&pki.ca, &pki.apiserver, &pki.kubelet, &pki.admin] {
            assert!(
                fs::read_to_string(&files.cert)
                    .unwrap()
                    .contains("BEGIN CERTIFICATE")
            );
            let mode = fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(
            pki.service_account_public_key_pem
                .contains("BEGIN PUBLIC KEY")
        );
        let again = KeyPair::from_pem_and_sign_algo(
            &fs::read_to_string(&pki.service_account_key).unwrap(),
            &PKCS_RSA_SHA256,
        )
        .unwrap();
        assert_eq!(again.public_key_pem(), pki.service_account_public_key_pem);
    }
}
