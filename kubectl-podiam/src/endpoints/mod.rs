//! The endpoints a pod's own clients would choose, computed from the pod's environment alone:
//! AWS STS per SDK family, the HTTP proxy per client, the CA bundle variable per client, the
//! Entra authority and token URL, and Google's STS / metadata server. Pure functions, no I/O:
//! the caller passes the environment as a lookup function. Sources for every rule are in
//! `docs/sdk-endpoints.md`.

pub mod aws_partition;
pub mod aws_sts;
pub mod azure;
pub mod ca_bundle;
pub mod gcp;
pub mod proxy;

/// How the environment is read: a variable name to its value, `None` when unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A variable's value, an empty value counting as unset (every client here skips empty
/// values, or fails on them in a way this module does not model).
pub(crate) fn non_empty(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// The first of `names` that is set and not empty, with its name.
pub(crate) fn first_set(env: Env<'_>, names: &[&'static str]) -> Option<(&'static str, String)> {
    names
        .iter()
        .find_map(|name| non_empty(env, name).map(|v| (*name, v)))
}

#[cfg(test)]
pub(crate) mod test_env {
    use std::collections::HashMap;

    /// An environment made of `(name, value)` pairs, for tests.
    pub fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }
}
