//! `podiam-probe`: what `kubectl podiam`'s in-pod session does, as one static binary for images
//! without a shell or an HTTP client. Started as an ephemeral container with the target
//! container's user, env and volume mounts, it reads the token files, performs the exchange at
//! the endpoint the pod's SDK would choose (through the pod's proxy, trusting the pod's CA
//! bundle), names the cause of each failed call, asks the node's metadata service, and prints
//! ONE JSON line ([`report::Report`]) without any secret: the kubelet keeps container logs.

pub mod aws;
pub mod azure;
pub mod dns;
pub mod gcp;
pub mod http;
pub mod jwt;
pub mod node;
pub mod report;
pub mod run;
pub mod sigv4;
pub mod target;
pub mod tls;
pub mod url;

/// The plugin's pure endpoint rules (STS per SDK family, proxy per client, CA variables, Entra
/// authority, Google URLs), compiled here from the plugin's own source: one set of rules, no
/// SDK pulled in.
#[path = "../../kubectl-podiam/src/endpoints/mod.rs"]
#[allow(dead_code, unused_imports)]
pub mod endpoints;
