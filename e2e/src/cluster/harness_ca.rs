//! The harness CA: the one certificate authority pods trust for the clouds' names (it is in
//! the images' CA bundle, next to Debian's public roots) and that signs the cloud front's
//! certificate. Persisted under the cache directory, not the cluster's state directory, so it
//! survives `down` and images that embed it stay the same from run to run.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::cache_dir;
use super::error::{ClusterError, IoContext, Result};

const CERT_FILE: &str = "ca.pem";
const KEY_FILE: &str = "ca-key.pem";
const COMMON_NAME: &str = "podiam-e2e harness CA";

/// A serving certificate issued by the harness CA (the key stays in memory).
pub struct IssuedCertificate {
    /// The leaf, then the CA.
    pub chain_der: Vec<Vec<u8>>,
    /// PKCS#8 DER.
    pub key_der: Vec<u8>,
}

pub struct HarnessCa {
    cert_pem: String,
    cert_file: PathBuf,
    key: KeyPair,
}

impl std::fmt::Debug for HarnessCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarnessCa")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl HarnessCa {
    /// `<cache>/harness-ca`.
    pub fn default_dir() -> PathBuf {
        cache_dir().join("harness-ca")
    }

    /// Loads the CA in `dir`, or makes one there (key mode 0600).
    pub fn load_or_generate(dir: &Path) -> Result<Self> {
        let cert_file = dir.join(CERT_FILE);
        let key_file = dir.join(KEY_FILE);
        if cert_file.is_file() && key_file.is_file() {
            let cert_pem = fs::read_to_string(&cert_file)
                .io_context(|| format!("reading {}", cert_file.display()))?;
            let key_pem = fs::read_to_string(&key_file)
                .io_context(|| format!("reading {}", key_file.display()))?;
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| ClusterError::other(format!("reading {}: {e}", key_file.display())))?;
            return Ok(Self {
                cert_pem,
                cert_file,
                key,
            });
        }
        fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
        let key = KeyPair::generate()
            .map_err(|e| ClusterError::other(format!("generating the harness CA key: {e}")))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(|e| ClusterError::other(format!("self-signing the harness CA: {e}")))?;
        write_secret(&key_file, &key.serialize_pem())?;
        let cert_pem = cert.pem();
        fs::write(&cert_file, &cert_pem)
            .io_context(|| format!("writing {}", cert_file.display()))?;
        Ok(Self {
            cert_pem,
            cert_file,
            key,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate (PEM), e.g. for `curl --cacert` or a client's trust store.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// A serving certificate for `dns_names` (wildcards allowed) and `ips`, with an RSA-2048
    /// key as the clouds' endpoints have.
    pub fn issue_server_certificate(
        &self,
        dns_names: &[String],
        ips: &[std::net::IpAddr],
    ) -> Result<IssuedCertificate> {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| ClusterError::other(format!("generating a serving key: {e}")))?;
        let mut params = CertificateParams::new(dns_names.to_vec())
            .map_err(|e| ClusterError::other(format!("certificate names: {e}")))?;
        params
            .subject_alt_names
            .extend(ips.iter().copied().map(rcgen::SanType::IpAddress));
        params
            .distinguished_name
            .push(DnType::CommonName, "podiam-e2e cloud front");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // The CA's own parameters are deterministic: the same subject and key as on disk.
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| ClusterError::other(format!("signing the serving certificate: {e}")))?;
        let ca_der = pem_to_der(&self.cert_pem)?;
        Ok(IssuedCertificate {
            chain_der: vec![cert.der().to_vec(), ca_der],
            key_der: key.serialize_der(),
        })
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The DER of the one certificate in `pem`.
fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| ClusterError::other(format!("the harness CA certificate PEM: {e}")))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_and_reloaded_ca_issues_certificates_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let first = HarnessCa::load_or_generate(dir.path()).unwrap();
        let again = HarnessCa::load_or_generate(dir.path()).unwrap();
        assert_eq!(
            first.cert_pem(),
            again.cert_pem(),
            "regenerated, not reloaded"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by others");

        // A certificate from the reloaded CA verifies against the first CA's PEM.
        let issued = again
            .issue_server_certificate(&["sts.amazonaws.com".to_owned()], &[])
            .unwrap();
        let leaf = dir.path().join("leaf.der");
        fs::write(&leaf, &issued.chain_der[0]).unwrap();
        let converted = std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&leaf)
            .arg("-out")
            .arg(dir.path().join("leaf.pem"))
            .status()
            .expect("openssl (Debian's openssl package) checks the chain");
        assert!(converted.success());
        let verify = std::process::Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(first.cert_file())
            .arg(dir.path().join("leaf.pem"))
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}
