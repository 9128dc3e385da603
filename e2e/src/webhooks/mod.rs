//! Admission webhooks the harness runs against its local cluster.
//!
//! [`EksPodIdentityWebhook`] is a stand-in for amazon-eks-pod-identity-webhook, which cannot
//! be built here. It is an independent re-implementation of upstream's pod mutation
//! (`pkg/handler/handler.go` with the ServiceAccount cache of `pkg/cache/cache.go`):
//!
//! - IRSA: a ServiceAccount annotated `eks.amazonaws.com/role-arn` gets its pods the
//!   `aws-iam-token` projected volume and mount plus `AWS_ROLE_ARN` /
//!   `AWS_WEB_IDENTITY_TOKEN_FILE` (and the optional region and regional-STS variables).
//! - EKS Pod Identity: upstream injects container credentials for the (namespace, service
//!   account) pairs of its container-credentials config file, which EKS fills from its Pod
//!   Identity associations; here those pairs are given in [`WebhookOptions`], added with
//!   [`EksPodIdentityWebhook::associate_pod_identity`], or read at each admission from the
//!   emulated EKS a namespace is routed to ([`EksPodIdentityWebhook::route_namespace`]), so an
//!   association created through the EKS API affects the next pod. Only the pod mutation is
//!   emulated: serving credentials to such pods needs the EKS Pod Identity agent and the EKS
//!   Auth API, which this module does not provide.
//!
//! Not emulated: the pod-identity-webhook ConfigMap (`--watch-config-map`), role-name
//! composition (`--compose-role-arn`), the ServiceAccount lookup grace period, and upstream's
//! metrics and debug handlers. The ServiceAccount is read from the API on every request
//! instead of from an informer cache, so an annotation is seen as soon as it is written.
//!
//! [`AzureWorkloadIdentityWebhook`] stands in for the Azure Workload Identity webhook (v1.6.0,
//! `pkg/webhook/webhook.go`), whose module the Go proxy does not serve: see
//! [`azure_mutation`] for what it injects.
//!
//! The opt-out label `eks.amazonaws.com/skip-pod-identity-webhook` works as on EKS: the
//! registered configuration's `objectSelector` keeps the apiserver from calling the webhook.

mod admission;
pub mod azure_mutation;
mod azure_webhook;
mod eks_mutation;
mod eks_pod_identity;
mod go_omitempty;
mod go_strconv;
pub(crate) mod tls;

pub use admission::PatchOperation;
pub use azure_webhook::{
    AZURE_CONFIGURATION_NAME, AZURE_MUTATE_PATH, AZURE_WEBHOOK_NAME, AzureAdmissionLogEntry,
    AzureWebhookOptions, AzureWorkloadIdentityWebhook, azure_webhook_configuration,
    proxy_placement_of,
};
pub use eks_mutation::{
    AUDIENCE_ANNOTATION, IRSA_MOUNT_PATH, IRSA_TOKEN_PATH, Jitter, Method, Mutation,
    MutationSettings, POD_IDENTITY_LABEL, ROLE_ARN_ANNOTATION, SKIP_CONTAINERS_ANNOTATION,
    SKIP_POD_LABEL, STS_REGIONAL_ENDPOINTS_ANNOTATION, TOKEN_EXPIRATION_ANNOTATION, mutation_patch,
};
pub use eks_pod_identity::{
    AdmissionLogEntry, AdmissionOutcome, AssociationLookup, CONFIGURATION_NAME,
    EksPodIdentityWebhook, WEBHOOK_NAME, WebhookOptions, webhook_configuration,
};
