//! The IAM side of a GKE Workload Identity binding, as `gcloud iam service-accounts
//! add-iam-policy-binding` does it: read the GSA's policy with its etag, add the member to the
//! role's binding (every other binding kept), write it back with that etag, and start over
//! when IAM answers `ABORTED` (someone else changed the policy in between).

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::exchange::CloudError;
use crate::exchange::gcp_iam;
use crate::exchange::gcp_metadata::AccessToken;

/// Read-modify-write attempts before giving up on a policy that keeps changing.
const ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Between half and all of `backoff`, at random: binders that collided must not retry in step.
fn jittered(backoff: Duration) -> Duration {
    // RandomState is seeded randomly per instance: enough randomness for a jitter, no new crate.
    let random = RandomState::new().hash_one(backoff.as_nanos());
    let half = backoff / 2;
    half + Duration::from_nanos(random % (half.as_nanos() as u64).max(1))
}

/// The operator's session with the IAM API.
pub struct GcpOperator {
    pub http: reqwest::Client,
    /// The IAM API base URL (no trailing slash).
    pub iam_endpoint: String,
    pub token: AccessToken,
}

/// One IAM call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum GcpIamOperation {
    /// Grant `role` to `member` on the service account `email`.
    AddPolicyMember {
        email: String,
        role: String,
        member: String,
    },
}

impl GcpIamOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            GcpIamOperation::AddPolicyMember {
                email,
                role,
                member,
            } => format!(
                "gcloud iam service-accounts remove-iam-policy-binding {email} --role={role} --member=\"{member}\""
            ),
        }
    }
}

/// Is the binding unconditional (a conditional one grants only when its condition holds)?
fn unconditional(binding: &Value) -> bool {
    binding.get("condition").is_none_or(Value::is_null)
}

/// Does `policy` already grant `role` to `member` without a condition?
pub fn grants(policy: &Value, role: &str, member: &str) -> bool {
    bindings(policy).iter().any(|b| {
        b.get("role").and_then(Value::as_str) == Some(role)
            && unconditional(b)
            && b.get("members")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|x| x.as_str() == Some(member)))
    })
}

fn bindings(policy: &Value) -> Vec<Value> {
    policy
        .get("bindings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `policy` with `member` added to the role's unconditional binding (created when missing);
/// `None` when it is already granted. Everything else (other bindings, conditions, version,
/// etag, audit configs) is kept as read.
pub fn with_member(policy: &Value, role: &str, member: &str) -> Option<Value> {
    if grants(policy, role, member) {
        return None;
    }
    let mut after = if policy.is_object() {
        policy.clone()
    } else {
        json!({})
    };
    let mut list = bindings(policy);
    match list
        .iter_mut()
        .find(|b| b.get("role").and_then(Value::as_str) == Some(role) && unconditional(b))
    {
        Some(binding) => {
            let mut members = binding
                .get("members")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            members.push(json!(member));
            binding["members"] = Value::Array(members);
        }
        None => list.push(json!({"role": role, "members": [member]})),
    }
    after["bindings"] = Value::Array(list);
    Some(after)
}

/// The policy as shown in a plan: without the etag (it changes with every write).
pub fn for_display(policy: &Value) -> Value {
    let mut shown = policy.clone();
    if let Some(object) = shown.as_object_mut() {
        object.remove("etag");
    }
    shown
}

/// `what: CODE: message`, with the permission to ask for when IAM refused.
pub fn cloud_error(what: &str, e: CloudError) -> Error {
    match e {
        CloudError::Unreachable(m) => Error::Cloud(format!("{what}: unreachable: {m}")),
        CloudError::Rejected { code, message } if code == "PERMISSION_DENIED" => {
            Error::Cloud(format!(
                "{what}: PERMISSION_DENIED: {message} (your Google credentials need roles/iam.serviceAccountAdmin on the service account or its project)"
            ))
        }
        CloudError::Rejected { code, message } => {
            Error::Cloud(format!("{what}: {code}: {message}"))
        }
    }
}

/// Carries out one GCP change: read-modify-write with the etag, retried on `ABORTED`.
pub async fn apply(operator: &GcpOperator, operation: &GcpIamOperation) -> Result<()> {
    let GcpIamOperation::AddPolicyMember {
        email,
        role,
        member,
    } = operation;
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let policy = gcp_iam::get_iam_policy(
            &operator.http,
            &operator.iam_endpoint,
            &operator.token,
            email,
        )
        .await
        .map_err(|e| cloud_error(&format!("getIamPolicy {email}"), e))?;
        let Some(after) = with_member(&policy, role, member) else {
            // Someone granted it meanwhile: nothing left to do.
            return Ok(());
        };
        match gcp_iam::set_iam_policy(
            &operator.http,
            &operator.iam_endpoint,
            &operator.token,
            email,
            &after,
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(CloudError::Rejected { code, .. }) if code == "ABORTED" && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "setIamPolicy {email}: concurrent change, retrying");
                tokio::time::sleep(jittered(backoff)).await;
                backoff *= 2;
            }
            Err(CloudError::Rejected { code, message })
                if message.contains("Identity Pool does not exist") =>
            {
                let pool = member
                    .strip_prefix("serviceAccount:")
                    .and_then(|m| m.split_once('['))
                    .map_or("PROJECT.svc.id.goog", |(pool, _)| pool);
                return Err(Error::Cloud(format!(
                    "setIamPolicy {email}: {code}: {message}\nThe workload pool {pool} exists once Workload Identity is enabled on a GKE cluster of its project:\n  gcloud container clusters update CLUSTER --location=LOCATION --workload-pool={pool}"
                )));
            }
            Err(e) => return Err(cloud_error(&format!("setIamPolicy {email}"), e)),
        }
    }
    Err(Error::Cloud(format!(
        "setIamPolicy {email}: the policy kept changing ({ATTEMPTS} attempts)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "roles/iam.workloadIdentityUser";
    const MEMBER: &str = "serviceAccount:my-project.svc.id.goog[default/ksa]";

    #[test]
    fn adds_to_an_empty_policy_and_keeps_its_etag() {
        let policy = json!({"version": 1, "etag": "ACAB"});
        let after = with_member(&policy, ROLE, MEMBER).expect("a change");
        assert_eq!(after["etag"], "ACAB");
        assert_eq!(
            after["bindings"],
            json!([{"role": ROLE, "members": [MEMBER]}])
        );
        assert!(grants(&after, ROLE, MEMBER));
        assert!(with_member(&after, ROLE, MEMBER).is_none(), "idempotent");
    }

    #[test]
    fn joins_the_existing_binding_and_keeps_the_others() {
        let other = "serviceAccount:my-project.svc.id.goog[batch/nightly]";
        let policy = json!({
            "version": 1, "etag": "BwX1",
            "bindings": [
                {"role": "roles/iam.serviceAccountTokenCreator", "members": ["user:a@example.com"]},
                {"role": ROLE, "members": [other]},
            ]
        });
        let after = with_member(&policy, ROLE, MEMBER).expect("a change");
        assert_eq!(after["bindings"][0], policy["bindings"][0]);
        assert_eq!(after["bindings"][1]["members"], json!([other, MEMBER]));
        assert_eq!(after["bindings"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_conditional_grant_is_not_the_binding() {
        let policy = json!({
            "version": 3, "etag": "BwX2",
            "bindings": [{"role": ROLE, "members": [MEMBER],
                          "condition": {"title": "t", "expression": "request.time < timestamp('2020-01-01T00:00:00Z')"}}]
        });
        assert!(!grants(&policy, ROLE, MEMBER));
        let after = with_member(&policy, ROLE, MEMBER).expect("a change");
        assert_eq!(after["version"], 3);
        assert_eq!(
            after["bindings"][0], policy["bindings"][0],
            "condition kept"
        );
        assert_eq!(
            after["bindings"][1],
            json!({"role": ROLE, "members": [MEMBER]})
        );
    }

    #[test]
    fn a_similar_member_is_not_this_one() {
        let policy = json!({"bindings": [{"role": ROLE, "members": [
            "serviceAccount:my-project.svc.id.goog[default/ksa2]",
            "serviceAccount:other.svc.id.goog[default/ksa]"
        ]}]});
        assert!(!grants(&policy, ROLE, MEMBER));
        assert!(!grants(&policy, "roles/viewer", MEMBER));
    }

    #[test]
    fn jitter_stays_within_half_and_all_of_the_backoff() {
        let backoff = Duration::from_millis(400);
        let waits: Vec<Duration> = (0..50).map(|_| jittered(backoff)).collect();
        assert!(
            waits.iter().all(|w| *w >= backoff / 2 && *w < backoff),
            "{waits:?}"
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "no jitter: {waits:?}");
    }

    #[test]
    fn display_drops_the_etag_and_undo_names_the_binding() {
        assert_eq!(
            for_display(&json!({"etag": "x", "version": 1})),
            json!({"version": 1})
        );
        let hint = GcpIamOperation::AddPolicyMember {
            email: "gsa@my-project.iam.gserviceaccount.com".into(),
            role: ROLE.into(),
            member: MEMBER.into(),
        }
        .undo_hint();
        assert_eq!(
            hint,
            "gcloud iam service-accounts remove-iam-policy-binding gsa@my-project.iam.gserviceaccount.com --role=roles/iam.workloadIdentityUser --member=\"serviceAccount:my-project.svc.id.goog[default/ksa]\""
        );
    }
}
