//! Scenario files: Kubernetes-shaped YAML (`apiVersion: podiam.dev/v1alpha1`, `kind: Scenario`),
//! shaped after Chainsaw: cloud-side `setup`, ordered `steps`, and `catch` diagnostics.

pub mod assertion;
pub mod schema;

pub use assertion::Assertion;
pub use schema::{
    BlockAction, BlockStep, BlockVia, CatchItem, Cloud, PodPhase, Scenario, Step, WebhookName,
    WebhookState, WebhookStep,
};
