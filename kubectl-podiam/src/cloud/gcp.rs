//! Exact strings of GKE Workload Identity and Google's auth libraries (GKE docs,
//! google-auth-library-python; see /work/shared/FACTS.md).

/// The KSA annotation naming the Google service account (GSA) the pod acts as.
pub const GSA: &str = "iam.gke.io/gcp-service-account";
/// Annotation prefix GKE owns: any other key under it next to a missing [`GSA`] is a typo.
pub const GKE_PREFIX: &str = "iam.gke.io/";
/// The last path segment of [`GSA`]: a key ending in it under another prefix is a typo too.
pub const GSA_NAME: &str = "gcp-service-account";

/// `NAME@PROJECT.iam.gserviceaccount.com`: a user-managed GSA (6–30 chars, lowercase, digits,
/// dashes; project ids 6–30 chars).
pub const GSA_PATTERN: &str =
    r"^([a-z][-a-z0-9]{4,28}[a-z0-9])@([a-z][-a-z0-9]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$";
/// Google-managed and default accounts (Compute Engine default SA and the like): a pod that
/// reports one of these sees the node's identity, not its own.
pub const NODE_SA_SUFFIXES: &[&str] = &[
    "-compute@developer.gserviceaccount.com",
    "@appspot.gserviceaccount.com",
];

pub const ROLE_WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// The workload identity pool of a GKE project: `PROJECT_ID.svc.id.goog`.
pub const POOL_SUFFIX: &str = ".svc.id.goog";

/// Node label set on node pools with `workloadMetadataConfig.mode: GKE_METADATA`.
pub const NODE_LABEL: &str = "iam.gke.io/gke-metadata-server-enabled";
/// Set by GKE on every node (the node pool's name): with [`NODE_LABEL`], the node is GKE's.
pub const NODEPOOL_LABEL: &str = "cloud.google.com/gke-nodepool";

pub const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// Overrides the metadata server's `host[:port]` in every Google auth library.
pub const ENV_METADATA_HOST: &str = "GCE_METADATA_HOST";
/// What pods reach when `metadata.google.internal` does not resolve (and on GKE anyway).
pub const METADATA_HOST: &str = "169.254.169.254";
pub const METADATA_FLAVOR: (&str, &str) = ("Metadata-Flavor", "Google");
pub const METADATA_EMAIL: &str = "/computeMetadata/v1/instance/service-accounts/default/email";
pub const METADATA_TOKEN: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
pub const METADATA_PROJECT_ID: &str = "/computeMetadata/v1/project/project-id";
pub const METADATA_PROJECT_NUMBER: &str = "/computeMetadata/v1/project/numeric-project-id";
/// 403 body when the GSA does not let the KSA act as it (missing binding or no such GSA).
pub const DENIED_GET_ACCESS_TOKEN: &str = "Permission 'iam.serviceAccounts.getAccessToken' denied";
/// 403 body when the request lacks `Metadata-Flavor: Google`.
pub const MISSING_HEADER: &str = "Missing required header";

/// external_account configuration (STS token exchange, then optional impersonation).
pub const EXTERNAL_ACCOUNT: &str = "external_account";
/// A downloaded key: a long-lived static credential.
pub const SERVICE_ACCOUNT_KEY: &str = "service_account";
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const SCOPE_CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// GCS JSON API base when neither `--gcs-endpoint-url` nor `STORAGE_EMULATOR_HOST` is set.
pub const GCS_DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
pub const ENV_STORAGE_EMULATOR_HOST: &str = "STORAGE_EMULATOR_HOST";

/// `principal://…` of a KSA in GKE's pool, for direct resource access without a GSA.
pub fn direct_principal(project_number: &str, project_id: &str, ns: &str, ksa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{project_id}{POOL_SUFFIX}/subject/ns/{ns}/sa/{ksa}"
    )
}

/// The IAM member a GSA must grant `roles/iam.workloadIdentityUser` to.
pub fn binding_member(project_id: &str, ns: &str, ksa: &str) -> String {
    format!("serviceAccount:{project_id}{POOL_SUFFIX}[{ns}/{ksa}]")
}

/// Is `key` a near miss of [`GSA`] (other prefix, other spelling under `iam.gke.io/`)?
pub fn is_gsa_typo(key: &str) -> bool {
    key != GSA
        && (key.ends_with(&format!("/{GSA_NAME}"))
            || key.starts_with(GKE_PREFIX) && key.contains("service")
            || key.trim_end_matches('s') == GSA)
}
