//! AWS facts shared by IRSA, EKS Pod Identity and the node fallback: the SDKs' environment
//! variables, STS's global endpoint, IMDS, and EKS's node and pod markings. IRSA's and Pod
//! Identity's own strings are in [`irsa`] and [`pod_identity`].

pub mod irsa;
pub mod pod_identity;

/// The region variables, in the SDKs' own names (which SDK reads which: `endpoints/aws_sts.rs`).
pub const ENV_REGION: &str = "AWS_REGION";
pub const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";

/// Long-lived access keys in the environment.
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// STS's global endpoint (what an SDK without a region calls).
pub const STS_GLOBAL_HOST: &str = "sts.amazonaws.com";
pub const STS_GLOBAL_URL: &str = "https://sts.amazonaws.com";

/// The instance metadata service (also Azure IMDS's and the GCE metadata server's address).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
pub const ENV_EC2_METADATA_DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
pub const ENV_EC2_METADATA_SERVICE_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
pub const IMDS_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
pub const IMDS_TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";

/// EKS labels Fargate nodes with this; Fargate profiles also mark the pod.
pub const COMPUTE_TYPE_LABEL: &str = "eks.amazonaws.com/compute-type";
pub const FARGATE_PROFILE_ANNOTATION: &str = "eks.amazonaws.com/fargate-profile";
pub const FARGATE_SCHEDULER: &str = "fargate-scheduler";
