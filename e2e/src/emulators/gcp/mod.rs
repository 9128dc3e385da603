//! Strict GCP emulators for GKE Workload Identity: the GKE metadata server, Google STS, IAM
//! Credentials and a Cloud Storage front, sharing one emulated project. Independent of the
//! plugin: every check here is the emulators' own.

mod attribute_mapping;
mod cel;
mod gcp_emulators;
mod gcs_front;
mod google_error;
mod iam_credentials;
mod iam_policy_api;
mod iam_roles;
mod metadata_server;
mod oauth_token;
mod object_store;
mod pod_resolver;
mod principal;
mod project_store;
pub mod setup;
mod state;
mod sts;
mod subject_token_check;
mod token_store;
mod tokeninfo;
mod user_store;

pub use gcp_emulators::{GcpEmulatorOptions, GcpEmulators};
pub use metadata_server::{ConnectionAddresses, MISSING_FLAVOR_MESSAGE};
pub use pod_resolver::{Caller, CallingPod, GSA_ANNOTATION, Location, PodResolver};
pub use setup::GcpSetup;

/// Default project id (GKE docs' `my-project`).
pub const DEFAULT_PROJECT_ID: &str = "my-project";
/// The Google account of the harness's operator (`authorized_user` credentials from
/// [`GcpEmulators::operator_credentials_file`]); owner of the project unless a setup says otherwise.
pub const DEFAULT_OPERATOR: &str = "operator@example.com";
/// Default project number.
pub const DEFAULT_PROJECT_NUMBER: &str = "1234567890";
/// The Compute Engine default service account of the default project: what GKE nodes (and
/// hostNetwork pods) run as unless the node pool names another.
pub const DEFAULT_NODE_SERVICE_ACCOUNT: &str = "1234567890-compute@developer.gserviceaccount.com";
/// The node label GKE sets on node pools with `workloadMetadataConfig.mode: GKE_METADATA`.
pub const GKE_METADATA_NODE_LABEL: &str = "iam.gke.io/gke-metadata-server-enabled";
