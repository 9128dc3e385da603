//! Exact strings of EKS Pod Identity: what amazon-eks-pod-identity-webhook injects for a
//! ServiceAccount with an association, what eks-pod-identity-agent serves, and the EKS Auth
//! API's names.

pub const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const ENV_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
/// ECS's variable: SDKs prefer it to the full URI, so a stray one hides Pod Identity.
pub const ENV_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";

/// The agent's IPv4 and IPv6 link-local addresses (port 80).
pub const AGENT_HOST: &str = "169.254.170.23";
pub const AGENT_HOST_V6: &str = "[fd00:ec2::23]";
pub const AGENT_URI: &str = "http://169.254.170.23/v1/credentials";

pub const VOLUME_NAME: &str = "eks-pod-identity-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
pub const TOKEN_PATH: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// Pod label the webhook adds (value `enabled`) when it injects Pod Identity.
pub const POD_LABEL: &str = "eks.amazonaws.com/pod-identity";

/// The service principal a role's trust policy must name, with both actions.
pub const TRUST_PRINCIPAL: &str = "pods.eks.amazonaws.com";
pub const TRUST_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

/// Hosts SDKs accept for a plain-http container credentials URI (botocore, aws-sdk-rust).
pub const HTTP_ALLOWED_HOSTS: [&str; 5] = [
    "127.0.0.1",
    "localhost",
    "169.254.170.2",
    "169.254.170.23",
    "[fd00:ec2::23]",
];

/// Where the cluster name comes from when `--eks-cluster-name` is not given.
pub const ENV_CLUSTER_NAME: &str = "PODIAM_EKS_CLUSTER_NAME";
