//! The IAM API's service-account policy methods (`iam.googleapis.com`):
//! `POST /v1/projects/{PROJECT|-}/serviceAccounts/{EMAIL}:getIamPolicy` and `:setIamPolicy`.
//! As strict as Google: a bearer token this emulator issued, `iam.serviceAccounts.getIamPolicy`
//! / `setIamPolicy` on the project or the account (else 403), 404 for an unknown account when
//! the caller could have seen it, the etag compared on set (409 ABORTED when stale), a new etag
//! after each change, and GKE members only for the project's own workload pool.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::google_error::RpcError;
use super::iam_roles::{ServiceAccountPermission, has_service_account_permission};
use super::principal::Principal;
use super::project_store::SetPolicyError;
use super::setup::{IamBindingSetup, IamPolicySetup};
use super::state::GcpState;
use super::token_store::bearer_token;

/// Google's answer to a `setIamPolicy` whose etag is stale.
pub const CONCURRENT_CHANGE: &str = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.";
const UNKNOWN_ACCOUNT: &str = "Unknown service account";
/// Fields `updateMask` may name on a service account's policy.
const MASKABLE: &[&str] = &["bindings", "etag", "auditConfigs"];

pub fn router(state: Arc<GcpState>) -> Router {
    Router::new()
        .route(
            "/v1/projects/{project}/serviceAccounts/{name_and_method}",
            post(service_account_method),
        )
        .with_state(state)
}

async fn service_account_method(
    State(state): State<Arc<GcpState>>,
    Path((project, name_and_method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (email, method) = name_and_method
        .rsplit_once(':')
        .unwrap_or((name_and_method.as_str(), ""));
    let path = format!("/v1/projects/{project}/serviceAccounts/{email}:{method}");
    let outcome = match authenticate(&state, &headers) {
        Err(error) => Err(error),
        Ok(caller) => {
            let result = match method {
                "getIamPolicy" => get_policy(&state, &project, email, &caller),
                "setIamPolicy" => set_policy(&state, &project, email, &caller, &body),
                other => Err(RpcError::not_found(format!(
                    "Method {other} is not emulated."
                ))),
            };
            result.map(|answer| (caller, answer))
        }
    };
    let (caller, logged) = match &outcome {
        Ok((caller, _)) => (caller.display(), "200".to_owned()),
        Err(error) => (String::new(), error.status.to_owned()),
    };
    state.record(
        "POST",
        &path,
        format!("iam:{method} {caller}").trim_end().to_owned(),
        logged,
    );
    match outcome {
        Ok((_, answer)) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

fn authenticate(state: &GcpState, headers: &HeaderMap) -> Result<Principal, RpcError> {
    bearer_token(headers)
        .and_then(|token| state.tokens.lookup(token))
        .map(|issued| issued.principal)
        .ok_or_else(RpcError::unauthenticated)
}

/// The account's current policy, after the permission check (404 only for a caller who may
/// see the project's accounts; everyone else learns nothing).
fn authorized_policy(
    state: &GcpState,
    project: &str,
    email: &str,
    caller: &Principal,
    permission: ServiceAccountPermission,
) -> Result<(IamPolicySetup, String), RpcError> {
    let snapshot = state.project.snapshot();
    let project_bindings = &snapshot.project_iam_policy.bindings;
    let in_project = project == "-" || project == snapshot.project_id;
    let found = in_project.then(|| state.project.policy(email)).flatten();
    let Some((policy, etag)) = found else {
        return Err(
            if has_service_account_permission(project_bindings, &[], caller, permission) {
                RpcError::not_found(UNKNOWN_ACCOUNT)
            } else {
                RpcError::permission_denied(permission.name())
            },
        );
    };
    if !has_service_account_permission(project_bindings, &policy.bindings, caller, permission) {
        return Err(RpcError::permission_denied(permission.name()));
    }
    Ok((policy, etag))
}

fn get_policy(
    state: &GcpState,
    project: &str,
    email: &str,
    caller: &Principal,
) -> Result<Value, RpcError> {
    let (policy, etag) = authorized_policy(
        state,
        project,
        email,
        caller,
        ServiceAccountPermission::GetIamPolicy,
    )?;
    Ok(policy_json(&policy.bindings, &etag))
}

/// `{"version": 1, "etag", "bindings"?}`: Google leaves `bindings` out when there are none.
fn policy_json(bindings: &[IamBindingSetup], etag: &str) -> Value {
    let mut policy = json!({"version": 1, "etag": etag});
    if !bindings.is_empty() {
        policy["bindings"] = json!(bindings);
    }
    policy
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetIamPolicyRequest {
    policy: Option<PolicyRequest>,
    #[serde(default)]
    update_mask: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyRequest {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    bindings: Vec<BindingRequest>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    audit_configs: Option<Value>,
}

#[derive(Deserialize)]
struct BindingRequest {
    role: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    condition: Option<Value>,
}

fn set_policy(
    state: &GcpState,
    project: &str,
    email: &str,
    caller: &Principal,
    body: &Bytes,
) -> Result<Value, RpcError> {
    authorized_policy(
        state,
        project,
        email,
        caller,
        ServiceAccountPermission::SetIamPolicy,
    )?;
    let request: SetIamPolicyRequest = serde_json::from_slice(body).map_err(|err| {
        RpcError::invalid_argument(format!("Invalid JSON payload received. {err}"))
    })?;
    let policy = request
        .policy
        .ok_or_else(|| RpcError::invalid_argument("Request contains an invalid argument."))?;
    if let Some(mask) = &request.update_mask
        && let Some(field) = mask
            .split(',')
            .map(str::trim)
            .find(|f| !MASKABLE.contains(f))
    {
        return Err(RpcError::invalid_argument(format!(
            "Invalid update mask path: {field}"
        )));
    }
    if policy.audit_configs.is_some() {
        return Err(RpcError::invalid_argument(
            "Audit configs are not emulated on service accounts.",
        ));
    }
    if policy.version.is_some_and(|v| ![0, 1, 3].contains(&v)) {
        return Err(RpcError::invalid_argument("Invalid policy version."));
    }
    let workload_pool = state.project.snapshot().workload_pool();
    let mut bindings: Vec<IamBindingSetup> = Vec::new();
    for binding in policy.bindings {
        if binding.condition.is_some() {
            return Err(RpcError::invalid_argument(
                "Conditional role bindings are not emulated.",
            ));
        }
        check_role(&binding.role)?;
        for member in &binding.members {
            check_member(member, &workload_pool)?;
        }
        // Google drops bindings without members and merges repeated roles.
        if binding.members.is_empty() {
            continue;
        }
        match bindings.iter_mut().find(|b| b.role == binding.role) {
            Some(existing) => {
                for member in binding.members {
                    if !existing.members.contains(&member) {
                        existing.members.push(member);
                    }
                }
            }
            None => bindings.push(IamBindingSetup {
                role: binding.role,
                members: binding.members,
            }),
        }
    }
    let etag = state
        .project
        .set_policy(email, bindings.clone(), policy.etag.as_deref())
        .map_err(|err| match err {
            SetPolicyError::StaleEtag => RpcError::aborted(CONCURRENT_CHANGE),
            SetPolicyError::NoSuchAccount => RpcError::not_found(UNKNOWN_ACCOUNT),
        })?;
    Ok(policy_json(&bindings, &etag))
}

fn check_role(role: &str) -> Result<(), RpcError> {
    let predefined = role
        .strip_prefix("roles/")
        .is_some_and(|name| !name.is_empty());
    let custom = (role.starts_with("projects/") || role.starts_with("organizations/"))
        && role.contains("/roles/");
    if predefined || custom {
        Ok(())
    } else {
        Err(RpcError::invalid_argument(format!(
            "Role {role} is not supported for this resource."
        )))
    }
}

/// Member syntax, and GKE's `serviceAccount:POOL[NS/KSA]` only for a workload pool that exists.
fn check_member(member: &str, workload_pool: &str) -> Result<(), RpcError> {
    let invalid = || RpcError::invalid_argument(format!("Invalid member: {member}"));
    if member == "allUsers" || member == "allAuthenticatedUsers" {
        return Ok(());
    }
    if member.starts_with("principal://") || member.starts_with("principalSet://") {
        return Ok(());
    }
    let (kind, value) = member.split_once(':').ok_or_else(invalid)?;
    if value.is_empty() {
        return Err(invalid());
    }
    match kind {
        "user" | "group" | "domain" => Ok(()),
        "serviceAccount" => match value.split_once('[') {
            None if value.contains('@') => Ok(()),
            None => Err(invalid()),
            Some((pool, rest)) => {
                let well_formed = rest
                    .strip_suffix(']')
                    .and_then(|r| r.split_once('/'))
                    .is_some_and(|(ns, ksa)| !ns.is_empty() && !ksa.is_empty());
                if !well_formed || !pool.ends_with(".svc.id.goog") {
                    return Err(invalid());
                }
                if pool != workload_pool {
                    return Err(RpcError::invalid_argument(format!(
                        "Identity Pool does not exist ({pool}). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API."
                    )));
                }
                Ok(())
            }
        },
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_roles() {
        let pool = "my-project.svc.id.goog";
        assert!(check_member("serviceAccount:my-project.svc.id.goog[ns/ksa]", pool).is_ok());
        let other = check_member("serviceAccount:other.svc.id.goog[ns/ksa]", pool).unwrap_err();
        assert!(
            other
                .message
                .contains("Identity Pool does not exist (other.svc.id.goog)")
        );
        assert!(check_member("serviceAccount:my-project.svc.id.goog[ns]", pool).is_err());
        assert!(check_member("user:a@example.com", pool).is_ok());
        assert!(check_member("serviceAccount:a@p.iam.gserviceaccount.com", pool).is_ok());
        assert!(check_member("bob", pool).is_err());
        assert!(check_role("roles/iam.workloadIdentityUser").is_ok());
        assert!(check_role("iam.workloadIdentityUser").is_err());
    }
}
