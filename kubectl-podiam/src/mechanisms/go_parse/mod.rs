//! The Go standard library's parsers as the upstream webhooks call them (amazon-eks-pod-identity-
//! webhook, azure-workload-identity are Go): an annotation means what Go's parser makes of it,
//! not what a friendlier Rust parser would.

pub mod csv;
pub mod strconv;
