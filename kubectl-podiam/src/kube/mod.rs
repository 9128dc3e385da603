//! Everything that talks to the Kubernetes API.

pub mod access_review;
pub mod client;
pub mod credential_expiry;
pub mod eks_cluster;
pub mod exec;
pub mod issuer;
pub mod pods;
pub mod reconnect;
pub mod token_request;
