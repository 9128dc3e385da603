//! podiam: which cloud identity does this pod really get, and why not the one I configured?
//!
//! Flow (one direction): pod + ServiceAccount → detect → static checks → evidence (exec,
//! TokenRequest, token file) → exchange with the cloud → checks → render.

pub mod answer_cache;
pub mod app;
pub mod bind;
pub mod cli;
pub mod cloud;
pub mod commands;
pub mod containers;
pub mod endpoints;
pub mod env_probe;
pub mod ephemeral;
pub mod error;
pub mod evidence;
pub mod exchange;
pub mod exec_trust;
pub mod expectations;
pub mod fleet;
pub mod judge;
pub mod kube;
pub mod manifest;
pub mod mechanisms;
pub mod model;
pub mod network_policy;
pub mod options;
pub mod pod_session;
pub mod rbac;
pub mod report;
pub mod sdk_version;
pub mod secret_shape;
pub mod subject;
pub mod token_claims;
pub mod unjudged;
pub mod webhook_health;
