//! Offline input (`verify -f`): the NetworkPolicy and Namespace documents of the input set.
//! Only what the input holds is seen: policies already in the cluster are not.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::de::DeserializeOwned;

use super::live::PolicyRead;
use crate::error::{Error, Result};
use crate::manifest::documents::Document;

#[derive(Debug, Clone, Default)]
pub struct ManifestNetworkPolicies {
    /// Every policy, its namespace filled in (`-n` for documents that name none).
    policies: Vec<NetworkPolicy>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

fn typed<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    serde_json::from_value(doc.value.clone()).map_err(|e| Error::Input {
        path: doc.file.clone(),
        message: format!("line {}: invalid {}: {e}", doc.line, doc.kind()),
    })
}

fn is_network_policy(doc: &Document) -> bool {
    doc.kind() == "NetworkPolicy"
        && doc.value.get("apiVersion").and_then(|v| v.as_str()) == Some("networking.k8s.io/v1")
}

impl ManifestNetworkPolicies {
    /// `default_namespace` is `-n`, for documents that name none (as for the pods).
    pub fn from_documents(docs: &[Document], default_namespace: &str) -> Result<Self> {
        let mut found = ManifestNetworkPolicies::default();
        for doc in docs {
            if is_network_policy(doc) {
                let mut policy: NetworkPolicy = typed(doc)?;
                if policy
                    .metadata
                    .namespace
                    .as_deref()
                    .is_none_or(str::is_empty)
                {
                    policy.metadata.namespace = Some(default_namespace.to_string());
                }
                found.policies.push(policy);
            } else if doc.kind() == "Namespace" {
                let ns: Namespace = typed(doc)?;
                let name = ns.metadata.name.unwrap_or_default();
                found
                    .namespaces
                    .insert(name, ns.metadata.labels.unwrap_or_default());
            }
        }
        Ok(found)
    }

    /// The policies of `namespace` in the input (the only ones that can select its pods).
    pub fn policies_in(&self, namespace: &str) -> Vec<NetworkPolicy> {
        self.policies
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .cloned()
            .collect()
    }

    /// [`Self::policies_in`] in the shape of a live read, for [`super::judge_egress`].
    pub fn read(&self, namespace: &str) -> PolicyRead {
        Ok(self.policies_in(namespace))
    }

    /// The labels of a Namespace document of the input; None when the input has none.
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(name).cloned()
    }

    /// No NetworkPolicy at all in the input.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}
