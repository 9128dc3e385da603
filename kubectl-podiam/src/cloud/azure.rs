//! Exact strings of azure-workload-identity v1.6 (pkg/webhook/consts.go, deploy manifest).

/// Pod label matched by the webhook's objectSelector; only the exact value "true" matches.
pub const USE_LABEL: &str = "azure.workload.identity/use";
pub const USE_LABEL_VALUE: &str = "true";

/// ServiceAccount annotations.
pub const CLIENT_ID: &str = "azure.workload.identity/client-id";
pub const TENANT_ID: &str = "azure.workload.identity/tenant-id";
/// On the pod (wins) or the ServiceAccount.
pub const TOKEN_EXPIRATION: &str = "azure.workload.identity/service-account-token-expiration";

/// Pod annotations.
pub const SKIP_CONTAINERS: &str = "azure.workload.identity/skip-containers";
/// Presence alone injects the proxy (any value, even "false").
pub const INJECT_PROXY_SIDECAR: &str = "azure.workload.identity/inject-proxy-sidecar";
pub const PROXY_SIDECAR_PORT: &str = "azure.workload.identity/proxy-sidecar-port";

pub const MIN_EXPIRATION: i64 = 3600;
pub const MAX_EXPIRATION: i64 = 86400;
pub const DEFAULT_EXPIRATION: i64 = 3600;
pub const DEFAULT_PROXY_PORT: i32 = 8000;
pub const PROXY_INIT_CONTAINER: &str = "azwi-proxy-init";
pub const PROXY_SIDECAR_CONTAINER: &str = "azwi-proxy";

pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const ENV_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const ENV_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// A long-lived client secret (a static credential, never workload identity).
pub const ENV_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// The variables the webhook injects, each only when the container does not set it already.
pub const INJECTED_ENV: [&str; 4] = [
    ENV_CLIENT_ID,
    ENV_TENANT_ID,
    ENV_TOKEN_FILE,
    ENV_AUTHORITY_HOST,
];

/// v1.6.0: the volume is named after a hash of the pod name.
pub const VOLUME_PREFIX: &str = "azure-workload-identity-reserved-";
/// Up to v1.5.1 the volume had this fixed name (mounted at [`LEGACY_MOUNT_PATH`]).
pub const LEGACY_VOLUME_NAME: &str = "azure-identity-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/azure/wi";
/// Path inside the volume; the file is `MOUNT_PATH/TOKEN_FILE_PATH`.
pub const TOKEN_FILE_PATH: &str = "token/azure-identity-token";
pub const TOKEN_PATH: &str = "/var/run/secrets/azure/wi/token/azure-identity-token";
pub const LEGACY_MOUNT_PATH: &str = "/var/run/secrets/azure/tokens";

/// The only audience a federated identity credential accepts.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// The webhook's default (public cloud) authority host.
pub const PUBLIC_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";
/// The tenant the webhook defaults to (its config's AZURE_TENANT_ID); the project-wide
/// stand-in for "the cluster's tenant" when the ServiceAccount names none.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

pub const GUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
