//! Talking to cloud token and data services with each cloud's own SDK, so the plugin sees what
//! the pod's SDK sees. Endpoints follow the SDK conventions (AWS_ENDPOINT_URL, …) unless a flag
//! overrides them.

pub mod aws_account;
pub mod aws_assume_role;
pub mod aws_config;
pub mod aws_eks;
pub mod aws_eks_auth;
pub mod aws_iam;
pub mod aws_s3;
pub mod aws_sts;
pub mod aws_sts_answer;
pub mod azure_blob;
pub mod azure_config;
pub mod azure_entra;
pub mod gcp_adc;
pub mod gcp_credentials;
pub mod gcp_iam;
pub mod gcp_metadata;
pub mod gcp_sts;
pub mod gcp_tokeninfo;
pub mod gcs;
pub mod sdk_retry;

/// Why a cloud call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The service answered with an error code (e.g. `AccessDenied`).
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// No answer: DNS, connection, TLS or timeout.
    #[error("unreachable: {0}")]
    Unreachable(String),
}
