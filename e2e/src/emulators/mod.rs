//! Strict cloud-identity emulators: an OIDC issuer, an AWS gate in front of moto or LocalStack (STS, EKS
//! Auth, EKS Pod Identity associations), the EKS Pod Identity Agent, GCP's metadata server,
//! STS, IAM Credentials and Cloud Storage ([`gcp`]), Azure's Entra ID and Blob endpoints
//! ([`azure`]), and the node's own metadata services: EC2 IMDS and Azure IMDS
//! ([`node_metadata`]).

mod aws_backend;
mod aws_emulators;
mod aws_gate;
pub mod azure;
mod background_runtime;
pub mod bind_operator;
pub mod child_record;
pub mod cloud_front;
mod credentials;
mod eks_associations;
pub mod eks_auth;
mod eks_auth_error;
pub mod gcp;
pub mod hop_budgets;
pub mod iam_directory;
pub mod identity_policy;
mod ids;
pub mod issued_secrets;
mod jwks_cache;
pub mod localstack;
mod localstack_callers;
pub mod localstack_docker;
mod moto;
mod moto_web_identity;
pub mod node_metadata;
mod oidc_issuer;
pub mod operator_policy;
pub mod pod_identity_agent;
pub mod pod_identity_trust;
pub mod policy_condition;
mod request_log;
pub mod role_chaining;
pub mod s3_authorization;
pub mod sessions;
mod signing_key;
mod sts_error;
mod token_namespace;
pub mod trust_policy;
mod web_identity_check;
mod web_identity_token;
mod whole_body;

pub use aws_backend::{AwsBackend, AwsBackendError, BackendKind};
pub use aws_emulators::{AwsEmulatorOptions, AwsEmulators, SIGNING_KEY_FILE_NAME};
pub use aws_gate::AwsGate;
pub use cloud_front::{CloudFront, CloudFrontOptions, CloudFrontUpstreams, GoogleUpstreams};
pub use credentials::AdminCredentials;
pub use eks_auth::{DEFAULT_CLUSTER_NAME, PodIdentityAssociation};
pub use moto::{MotoAuth, MotoServer};
pub use oidc_issuer::{CA_FILE_NAME, DEFAULT_ISSUER_PATH, OidcIssuer};
pub use pod_identity_agent::PodIdentityAgent;
pub use request_log::{Phase, RequestLog, RequestLogEntry, RequestSummary};
pub use signing_key::SigningKey;
pub use web_identity_token::{TokenSpec, mint_token};

/// moto's default account; every emulated AWS resource lives here.
pub const ACCOUNT_ID: &str = "123456789012";

/// Region used for signing and SDK clients; moto accepts any.
pub const REGION: &str = "us-east-1";
