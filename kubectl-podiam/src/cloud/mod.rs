//! Cloud facts: the exact strings the clouds, their webhooks and their SDKs use (annotation and
//! label keys, environment variable names, token paths and audiences, well-known endpoints and
//! hosts, error texts). Plain constants and pure helpers only, so that `kube/`, `exchange/`,
//! `mechanisms/` and `bind/` all read them without depending on one another.
//! (`endpoints/` keeps its own literals: the probe compiles it alone, by `#[path]`.)

pub mod aws;
pub mod azure;
pub mod gcp;
