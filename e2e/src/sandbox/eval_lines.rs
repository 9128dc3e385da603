//! The lines `up` prints for `eval`: the same environment scenario runs give the plugin
//! ([`crate::runner::plugin_command`]), except that the operator's credentials are FILES the
//! SDKs read (`AWS_SHARED_CREDENTIALS_FILE`, gcloud's ADC file, and Azure's client secret read
//! from its file by the shell at `eval` time), so no secret value is ever printed.
//! `PODIAM_AZURE_AUTHORITY_HOST` replaces the harness's `--azure-authority-host` flag: this
//! machine cannot resolve the real Entra name the pods use.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Clouds, SandboxError, io};
use crate::runner::environment::Environment;

/// Where the sandbox keeps the operator's credential files (0600, in a 0700 directory).
pub fn credentials_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("credentials")
}

/// Where `kubectl` and `kubectl-podiam` are linked for the user's PATH.
pub fn bin_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("bin")
}

/// Links `kubectl` (built with the other Kubernetes binaries) and `kubectl-podiam` (beside
/// this executable) into `<state>/bin`.
pub fn link_binaries(state_dir: &Path, kubectl: &Path, plugin: &Path) -> Result<(), SandboxError> {
    let bin = bin_dir(state_dir);
    fs::create_dir_all(&bin).map_err(io("creating", &bin))?;
    for (name, target) in [("kubectl", kubectl), ("kubectl-podiam", plugin)] {
        let link = bin.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).map_err(io("linking", &link))?;
    }
    Ok(())
}

/// Writes the credential files and returns the eval lines (no secret among them).
pub fn write_shell_env(
    env: &Environment,
    state_dir: &Path,
    clouds: Clouds,
) -> Result<String, SandboxError> {
    let credentials = credentials_dir(state_dir);
    fs::create_dir_all(&credentials).map_err(io("creating", &credentials))?;
    fs::set_permissions(&credentials, fs::Permissions::from_mode(0o700))
        .map_err(io("chmod", &credentials))?;

    let mut lines = vec![
        export("KUBECONFIG", &env.kubeconfig.display().to_string()),
        format!(
            "export PATH={}:\"$PATH\"",
            quote(&bin_dir(state_dir).display().to_string())
        ),
        // The emulators' CA bundle (Entra's and the cluster issuer's CAs).
        export(
            "SSL_CERT_FILE",
            &env.azure.ca_bundle_file().display().to_string(),
        ),
        export("PODIAM_PROBE_IMAGE", crate::cluster::PROBE_IMAGE),
    ];
    if clouds.aws {
        let (key, secret) = env.aws.admin_credentials();
        let credentials_file = credentials.join("aws-credentials");
        write_secret(
            &credentials_file,
            &format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
        )?;
        let config_file = credentials.join("aws-config");
        write_secret(
            &config_file,
            &format!("[default]\nregion = {}\n", env.aws.region()),
        )?;
        // Credentials in the environment would win over the file: the user's own must not.
        lines.push(
            "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE"
                .to_owned(),
        );
        lines.extend([
            export(
                "AWS_SHARED_CREDENTIALS_FILE",
                &credentials_file.display().to_string(),
            ),
            export("AWS_CONFIG_FILE", &config_file.display().to_string()),
            export("AWS_ENDPOINT_URL", env.aws.gate_url()),
            export("AWS_REGION", env.aws.region()),
            export("AWS_EC2_METADATA_DISABLED", "true"),
            export(
                "PODIAM_EKS_CLUSTER_NAME",
                crate::emulators::DEFAULT_CLUSTER_NAME,
            ),
        ]);
    }
    if clouds.gcp {
        // A stable copy of the operator's authorized_user file (the emulator's lives in a
        // temporary directory).
        let adc = credentials.join("gcp-application-default-credentials.json");
        let contents = fs::read_to_string(env.gcp.operator_credentials_file())
            .map_err(io("reading", env.gcp.operator_credentials_file()))?;
        write_secret(&adc, &contents)?;
        lines.extend([
            export("GOOGLE_APPLICATION_CREDENTIALS", &adc.display().to_string()),
            export("STORAGE_EMULATOR_HOST", env.gcp.gcs_url()),
            export(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM",
                &format!("{}/", env.gcp.iam_url()),
            ),
            // Google's tokeninfo, which confirms a pod's metadata answers from this machine
            // (this shell cannot resolve oauth2.googleapis.com to the emulators).
            export("PODIAM_GCP_TOKENINFO_URL", &env.gcp.tokeninfo_url()),
        ]);
    }
    if clouds.azure {
        let (client_id, secret) = env.azure.operator_credentials();
        let secret_file = credentials.join("azure-client-secret");
        write_secret(&secret_file, secret)?;
        let authority = format!("{}/", env.azure.entra_url());
        lines.extend([
            export("AZURE_TENANT_ID", &env.azure.tenant_id()),
            export("AZURE_CLIENT_ID", client_id),
            // Read by the shell from the 0600 file: the value itself is never printed.
            format!(
                "export AZURE_CLIENT_SECRET=\"$(cat {})\"",
                quote(&secret_file.display().to_string())
            ),
            export("AZURE_AUTHORITY_HOST", &authority),
            export("PODIAM_AZURE_AUTHORITY_HOST", &authority),
            export("PODIAM_AZURE_BLOB_ENDPOINT", env.azure.blob_endpoint()),
            export("PODIAM_AZURE_GRAPH_ENDPOINT", env.azure.graph_endpoint()),
        ]);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

fn export(name: &str, value: &str) -> String {
    format!("export {name}={}", quote(value))
}

/// POSIX single quotes: safe for any value.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A file only its owner reads, created with that mode (never briefly world-readable).
fn write_secret(path: &Path, contents: &str) -> Result<(), SandboxError> {
    use std::io::Write;
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("creating", path))?;
    file.write_all(contents.as_bytes())
        .map_err(io("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let value = "a b'c$HOME\"";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{}; printf %s \"$X\"", export("X", value)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), value);
    }

    #[test]
    fn secret_files_are_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s");
        write_secret(&path, "x").expect("write");
        write_secret(&path, "y").expect("rewrite");
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).expect("read"), "y");
    }
}
