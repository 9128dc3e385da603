//! The built `kubectl-podiam`, started the way a user on the cluster would start it: the
//! cluster's kubeconfig, the emulators' endpoints, and the operator's AWS credentials (so the
//! plugin can explain refusals from IAM). Nothing else leaks in from the harness's environment.
//!
//! AWS operator: `bind` runs with the bind operator's key, which the gate holds to exactly
//! `deploy/iam/podiam-bind-policy.json` (`emulators::bind_operator`); every other subcommand
//! (`verify`, `whoami`: reads, `--can` probes, Pod Identity exchanges from this machine that the
//! bind policy does not cover) with the emulated account's administrator.
//!
//! Azure: `SSL_CERT_FILE` is the emulators' CA bundle (Entra's CA and the cluster issuer's),
//! `PODIAM_AZURE_BLOB_ENDPOINT` the Blob front. Pods have `AZURE_AUTHORITY_HOST` =
//! `https://login.microsoftonline.com/` (the webhook stand-in injects it, as on AKS), a name only
//! the cluster's DNS resolves: the exchange this machine makes goes to the emulator through
//! `--azure-authority-host` ([`host_side_args`]). For `bind`, the operator's Azure
//! identity is the emulators' operator principal through the SDKs' environment convention
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`), and
//! Microsoft Graph is at `PODIAM_AZURE_GRAPH_ENDPOINT`.

use std::path::Path;

use crate::emulators::AwsEmulators;
use crate::emulators::azure::AzureEmulators;
use crate::emulators::gcp::GcpEmulators;

pub fn plugin_command(
    plugin: &Path,
    kubeconfig: &Path,
    aws: &AwsEmulators,
    azure: &AzureEmulators,
    args: &[impl AsRef<str>],
) -> tokio::process::Command {
    let (key, secret) = if is_bind(args) {
        aws.bind_operator_credentials()
    } else {
        aws.admin_credentials()
    };
    let (azure_operator, azure_secret) = azure.operator_credentials();
    let mut cmd = tokio::process::Command::new(plugin);
    cmd.env_clear();
    for passed in ["PATH", "HOME", "TERM", "NO_COLOR"] {
        if let Some(value) = std::env::var_os(passed) {
            cmd.env(passed, value);
        }
    }
    cmd.env("KUBECONFIG", kubeconfig)
        .env("AWS_ENDPOINT_URL", aws.gate_url())
        .env("AWS_REGION", aws.region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PODIAM_PROBE_IMAGE", crate::cluster::PROBE_IMAGE)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("SSL_CERT_FILE", azure.ca_bundle_file())
        .env("PODIAM_AZURE_BLOB_ENDPOINT", azure.blob_endpoint())
        .env("PODIAM_AZURE_GRAPH_ENDPOINT", azure.graph_endpoint())
        .env("AZURE_AUTHORITY_HOST", format!("{}/", azure.entra_url()))
        .env("AZURE_TENANT_ID", azure.tenant_id())
        .env("AZURE_CLIENT_ID", azure_operator)
        .env("AZURE_CLIENT_SECRET", azure_secret)
        // The EKS cluster name for Pod Identity exchanges from the operator's machine.
        .env(
            "PODIAM_EKS_CLUSTER_NAME",
            crate::emulators::DEFAULT_CLUSTER_NAME,
        );
    cmd
}

/// Whether the plugin's arguments run `bind` (its first argument; global flags come after).
pub fn is_bind(args: &[impl AsRef<str>]) -> bool {
    args.first().is_some_and(|a| a.as_ref() == "bind")
}

/// Flags a plugin run needs on this machine after its own arguments: the Entra emulator's
/// address for `whoami`, `verify` and `bind` (this machine cannot resolve the real names the
/// pods use; in-pod exchanges do not go through here).
pub fn host_side_args(args: &[impl AsRef<str>], azure: &AzureEmulators) -> Vec<String> {
    let subcommand = args.first().map(AsRef::as_ref);
    if matches!(subcommand, Some("whoami" | "verify" | "bind"))
        && !args.iter().any(|a| a.as_ref() == "--azure-authority-host")
    {
        vec![
            "--azure-authority-host".to_owned(),
            format!("{}/", azure.entra_url()),
        ]
    } else {
        Vec::new()
    }
}

/// The GCP endpoints the plugin reads from its environment: the Cloud Storage front
/// (`STORAGE_EMULATOR_HOST`, google-cloud's convention), the IAM API for `bind`
/// (`CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM`, gcloud's), Google's tokeninfo that checks the
/// token a pod's metadata server returned (`PODIAM_GCP_TOKENINFO_URL`, the plugin's own: no
/// Google tool overrides it; this machine cannot resolve `oauth2.googleapis.com` to the front); and the operator's gcloud application
/// default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, an `authorized_user` file whose
/// `token_uri` is the emulator's). STS and IAM Credentials need nothing: external_account files
/// carry their URLs, and on GKE the metadata server exchanges itself.
pub fn add_gcp_env(cmd: &mut tokio::process::Command, gcp: &GcpEmulators) {
    cmd.env("STORAGE_EMULATOR_HOST", gcp.gcs_url())
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM",
            format!("{}/", gcp.iam_url()),
        )
        .env("PODIAM_GCP_TOKENINFO_URL", gcp.tokeninfo_url())
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            gcp.operator_credentials_file(),
        );
}
