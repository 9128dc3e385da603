//! The parts of `admission.k8s.io/v1` (and `v1beta1`, same shape) AdmissionReview that a
//! mutating webhook reads and writes, plus RFC 6902 JSON Patch operations.
//!
//! k8s-openapi does not ship the admission API group, so the wire types live here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One RFC 6902 operation. The webhook only ever emits `add` (which replaces an existing
/// object member, as `/spec/containers` always is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOperation {
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        Self {
            op: "add".to_owned(),
            path: path.into(),
            value: Some(value),
        }
    }
}

/// The review the apiserver POSTs. `apiVersion`/`kind` are echoed back unchanged.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewIn {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub request: Option<AdmissionRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The object as admitted so far (built-in admission plugins have already run).
    #[serde(default)]
    pub object: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub response: AdmissionResponse,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    /// Base64 of the JSON-encoded patch operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl AdmissionResponse {
    /// Allowed, object unchanged.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    /// Allowed with a JSON Patch.
    pub fn allow_with_patch(patch: &[PatchOperation]) -> serde_json::Result<Self> {
        let bytes = serde_json::to_vec(patch)?;
        Ok(Self {
            allowed: true,
            patch: Some(STANDARD.encode(bytes)),
            patch_type: Some("JSONPatch".to_owned()),
            ..Self::default()
        })
    }

    /// Not allowed, with a message: what the upstream webhook answers when it cannot decode
    /// the review or the pod (`allowed` left false, `result.message` set).
    pub fn reject(message: impl Into<String>) -> Self {
        Self {
            status: Some(serde_json::json!({ "message": message.into() })),
            ..Self::default()
        }
    }
}
