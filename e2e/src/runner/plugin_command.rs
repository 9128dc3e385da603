//! The built `kubectl-podiam`, started the way a user on the cluster would start it: the
//! cluster's kubeconfig, the emulators' endpoints, and the operator's AWS credentials (so the
//! plugin can explain refusals from IAM). Nothing else leaks in from the harness's environment.

use std::path::Path;

use crate::emulators::AwsEmulators;

pub fn plugin_command(
    plugin: &Path,
    kubeconfig: &Path,
    aws: &AwsEmulators,
) -> tokio::process::Command {
    let (key, secret) = aws.admin_credentials();
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
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        // The EKS cluster name for Pod Identity exchanges from the operator's machine.
        .env(
            "PODIAM_EKS_CLUSTER_NAME",
            crate::emulators::DEFAULT_CLUSTER_NAME,
        );
    cmd
}
