//! One access key whose every call the gate authorizes against an identity policy: the
//! harness's `bind` operator, restricted to `deploy/iam/podiam-bind-policy.json`. The backend
//! (moto) sees that key's user as an administrator; the gate alone decides, with the emulator's
//! own policy reading (`identity_policy`, `policy_condition`), never the plugin's.
//!
//! What a request needs (IAM Service Authorization Reference, "Actions, resources, and condition
//! keys" for IAM, STS, EKS, EKS Auth, S3):
//! - Query API (`Action=` form field; the service from the SigV4 scope): the IAM actions on a
//!   role (`RoleName`: `arn:aws:iam::ACCOUNT:role/PATH/NAME`), on an OIDC provider
//!   (`OpenIDConnectProviderArn`), `CreateOpenIDConnectProvider` (`oidc-provider/HOST/PATH` of
//!   its `Url`), `ListOpenIDConnectProviders` (`oidc-provider/*`), `ListRoles` (`role/PREFIX`),
//!   `sts:AssumeRole` (`RoleArn`); `sts:GetCallerIdentity` needs no permission ("No permissions
//!   are required to perform this operation", STS API reference).
//! - EKS REST (pod identity associations): Create and List on the cluster
//!   (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`), Describe, Update and Delete on the association
//!   (`…:podidentityassociation/CLUSTER/ID`); Create and Update with a `roleArn` also need
//!   `iam:PassRole` on it with `iam:PassedToService` = `pods.eks.amazonaws.com` (EKS User Guide,
//!   "Pod Identity associations": the caller passes the role to EKS).
//! - EKS Auth `AssumeRoleForPodIdentity` on the cluster; S3 as `s3_authorization` maps it.
//! - Anything else is refused: the gate does not guess a permission it cannot map.
//!
//! Refusals, in AWS's words (samples from public bug reports, 2020–2025):
//! - IAM: 403 `AccessDenied`, "User: arn:aws:iam::123456789012:user/NAME is not authorized to
//!   perform: iam:UpdateAssumeRolePolicy on resource: role my-role because no identity-based
//!   policy allows the iam:UpdateAssumeRolePolicy action" (" with an explicit deny in an
//!   identity-based policy" for a Deny). A call on an existing role names it "role NAME"
//!   (GetRole, UpdateAssumeRolePolicy, ListAttachedRolePolicies, AttachRolePolicy); CreateRole
//!   and PassRole name the ARN; ListOpenIDConnectProviders names
//!   `arn:aws:iam::ACCOUNT:oidc-provider/*`, ListRoles `arn:aws:iam::ACCOUNT:role/`. No sample
//!   was found for the OIDC-provider calls: the provider's ARN is named.
//! - EKS: 403 `AccessDeniedException`, "User: … is not authorized to perform:
//!   eks:DeletePodIdentityAssociation on resource: arn:aws:eks:us-west-2:…:podidentityassociation/
//!   CLUSTER/a-…" (no reason suffix). A refused PassRole is answered the same way, naming
//!   `iam:PassRole` and the role's ARN (as Lambda and Cognito word it; no EKS sample was found).
//! - EKS Auth: `AccessDeniedException` (400, its API reference), same wording.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::identity_policy::{Conditions, PolicyDecision, evaluate};
use super::ids::uuid_like;
use super::policy_condition::ConditionContext;
use super::sts_error::xml_escape;

/// The condition keys the gate models: for every request it knows whether each is present.
const MODELLED_KEYS: &[&str] = &["iam:passedtoservice", "iam:policyarn"];

/// The service principal EKS passes Pod Identity roles to.
pub const EKS_PODS_SERVICE: &str = "pods.eks.amazonaws.com";

/// An access key and the identity policy its calls are authorized against.
#[derive(Clone)]
pub struct RestrictedKey {
    pub access_key_id: String,
    /// The key's user, as AWS names the caller in a refusal.
    pub caller_arn: String,
    /// The policy's JSON text.
    pub policy: String,
}

impl std::fmt::Debug for RestrictedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestrictedKey")
            .field("access_key_id", &"<redacted>")
            .field("caller_arn", &self.caller_arn)
            .finish_non_exhaustive()
    }
}

/// One action on one resource a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub action: String,
    /// The ARN the policy is evaluated against.
    pub resource: String,
    /// How AWS names the resource in a refusal ("role NAME" for a call on an existing role).
    pub shown_resource: String,
    pub context: ConditionContext,
}

impl Permission {
    fn on(action: &str, resource: String) -> Self {
        Self {
            action: action.to_owned(),
            shown_resource: resource.clone(),
            resource,
            context: ConditionContext::new(),
        }
    }

    fn with_context(mut self, key: &str, value: String) -> Self {
        self.context.insert(key.to_owned(), vec![value]);
        self
    }

    /// `iam:PassRole` of `role_arn` to `service`.
    pub fn pass_role(role_arn: &str, service: &str) -> Self {
        Self::on("iam:PassRole", role_arn.to_owned())
            .with_context("iam:passedtoservice", service.to_owned())
    }
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// No permission at all (`sts:GetCallerIdentity`).
    Nothing,
    /// Each of these, in order; the first refused one is the answer.
    All(Vec<Permission>),
    /// The gate cannot say what this needs (named for the refusal): refused.
    Unmapped(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Denied {
        permission: Permission,
        decision: PolicyDecision,
    },
    Unmapped(String),
}

impl RestrictedKey {
    /// `Ok` when the policy allows everything `needs` lists.
    pub fn authorize(&self, needs: Needs) -> Result<(), Refusal> {
        let permissions = match needs {
            Needs::Nothing => return Ok(()),
            Needs::Unmapped(what) => return Err(Refusal::Unmapped(what)),
            Needs::All(permissions) => permissions,
        };
        let policies = [self.policy.clone()];
        for permission in permissions {
            let decision = evaluate(
                &policies,
                &permission.action,
                &permission.resource,
                Conditions::Context {
                    context: &permission.context,
                    modelled: MODELLED_KEYS,
                },
            );
            if decision != PolicyDecision::Allowed {
                return Err(Refusal::Denied {
                    permission,
                    decision,
                });
            }
        }
        Ok(())
    }

    /// AWS's message for a refusal; `with_reason`: IAM's and S3's suffix naming the cause.
    pub fn message(&self, refusal: &Refusal, with_reason: bool) -> String {
        match refusal {
            Refusal::Denied {
                permission,
                decision,
            } => {
                let reason = match (with_reason, decision) {
                    (false, _) => String::new(),
                    (true, PolicyDecision::ExplicitDeny) => {
                        " with an explicit deny in an identity-based policy".to_owned()
                    }
                    (true, _) => format!(
                        " because no identity-based policy allows the {} action",
                        permission.action
                    ),
                };
                format!(
                    "User: {} is not authorized to perform: {} on resource: {}{reason}",
                    self.caller_arn, permission.action, permission.shown_resource
                )
            }
            Refusal::Unmapped(what) => format!(
                "User: {} may call only what the emulator's AWS gate can authorize against its identity policy; the gate cannot tell which permission {what} needs, so it is refused",
                self.caller_arn
            ),
        }
    }
}

/// What a Query API call (`service` from the SigV4 scope, `action` its `Action`) needs.
/// `role_arn`: the ARN (with path) of the role named by `RoleName`, when IAM has it.
pub fn query_needs(
    service: &str,
    action: &str,
    param: &dyn Fn(&str) -> Option<String>,
    account: &str,
    role_arn: Option<&str>,
) -> Needs {
    let unmapped = || Needs::Unmapped(format!("{service}:{action}"));
    let full = format!("{service}:{action}");
    let one = |permission: Permission| Needs::All(vec![permission]);
    match (service, action) {
        ("sts", "GetCallerIdentity") => Needs::Nothing,
        ("sts", "AssumeRole") => match param("RoleArn") {
            Some(role) => one(Permission::on(&full, role)),
            None => unmapped(),
        },
        ("iam", "CreateRole") => match param("RoleName") {
            Some(name) => {
                let path = param("Path").unwrap_or_else(|| "/".to_owned());
                one(Permission::on(
                    &full,
                    format!("arn:aws:iam::{account}:role{path}{name}"),
                ))
            }
            None => unmapped(),
        },
        ("iam", action) if ROLE_ACTIONS.contains(&action) => {
            let Some(name) = param("RoleName") else {
                return unmapped();
            };
            let resource = role_arn
                .map(str::to_owned)
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{name}"));
            let mut permission = Permission::on(&full, resource);
            permission.shown_resource = format!("role {name}");
            if let ("AttachRolePolicy" | "DetachRolePolicy", Some(policy)) =
                (action, param("PolicyArn"))
            {
                permission = permission.with_context("iam:policyarn", policy);
            }
            one(permission)
        }
        ("iam", action) if PROVIDER_ACTIONS.contains(&action) => {
            match param("OpenIDConnectProviderArn") {
                Some(arn) => one(Permission::on(&full, arn)),
                None => unmapped(),
            }
        }
        ("iam", "CreateOpenIDConnectProvider") => match param("Url") {
            Some(url) => {
                let host_path = url
                    .strip_prefix("https://")
                    .unwrap_or(&url)
                    .trim_end_matches('/');
                one(Permission::on(
                    &full,
                    format!("arn:aws:iam::{account}:oidc-provider/{host_path}"),
                ))
            }
            None => unmapped(),
        },
        ("iam", "ListOpenIDConnectProviders") => one(Permission::on(
            &full,
            format!("arn:aws:iam::{account}:oidc-provider/*"),
        )),
        ("iam", "ListRoles") => {
            let prefix = param("PathPrefix").unwrap_or_else(|| "/".to_owned());
            one(Permission::on(
                &full,
                format!("arn:aws:iam::{account}:role{prefix}"),
            ))
        }
        _ => unmapped(),
    }
}

/// IAM actions on one role, named by `RoleName`.
const ROLE_ACTIONS: &[&str] = &[
    "GetRole",
    "DeleteRole",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "ListRolePolicies",
    "GetRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
];

/// IAM actions on one OIDC provider, named by `OpenIDConnectProviderArn`.
const PROVIDER_ACTIONS: &[&str] = &[
    "GetOpenIDConnectProvider",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "TagOpenIDConnectProvider",
    "UntagOpenIDConnectProvider",
    "ListOpenIDConnectProviderTags",
];

/// What an EKS pod-identity-association call needs: `association_id` `None` on the collection
/// path; `role_arn`: the body's `roleArn` (Create, Update).
pub fn eks_association_needs(
    method: &Method,
    cluster: &str,
    association_id: Option<&str>,
    role_arn: Option<&str>,
    account: &str,
    region: &str,
) -> Needs {
    let cluster_arn = format!("arn:aws:eks:{region}:{account}:cluster/{cluster}");
    let association_arn =
        |id: &str| format!("arn:aws:eks:{region}:{account}:podidentityassociation/{cluster}/{id}");
    let (action, resource, passes_role) = match (method.as_str(), association_id) {
        ("POST", None) => ("eks:CreatePodIdentityAssociation", cluster_arn, true),
        ("GET", None) => ("eks:ListPodIdentityAssociations", cluster_arn, false),
        ("GET", Some(id)) => (
            "eks:DescribePodIdentityAssociation",
            association_arn(id),
            false,
        ),
        ("POST", Some(id)) => (
            "eks:UpdatePodIdentityAssociation",
            association_arn(id),
            true,
        ),
        ("DELETE", Some(id)) => (
            "eks:DeletePodIdentityAssociation",
            association_arn(id),
            false,
        ),
        (method, _) => return Needs::Unmapped(format!("eks {method} on {cluster_arn}")),
    };
    let mut permissions = vec![Permission::on(action, resource)];
    if let (true, Some(role)) = (passes_role, role_arn) {
        permissions.push(Permission::pass_role(role, EKS_PODS_SERVICE));
    }
    Needs::All(permissions)
}

/// What EKS Auth `AssumeRoleForPodIdentity` needs.
pub fn eks_auth_needs(cluster: &str, account: &str, region: &str) -> Needs {
    Needs::All(vec![Permission::on(
        "eks-auth:AssumeRoleForPodIdentity",
        format!("arn:aws:eks:{region}:{account}:cluster/{cluster}"),
    )])
}

/// A Query API refusal: 403 `AccessDenied` in the service's `ErrorResponse` XML.
pub fn query_refusal(service: &str, message: &str) -> Response {
    let namespace = match service {
        "iam" => "https://iam.amazonaws.com/doc/2010-05-08/",
        _ => "https://sts.amazonaws.com/doc/2011-06-15/",
    };
    let request_id = uuid_like();
    let body = format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message)
    );
    let mut response = (StatusCode::FORBIDDEN, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";
    const SHIPPED: &str = include_str!("../../../deploy/iam/podiam-bind-policy.json");

    fn operator(policy: &str) -> RestrictedKey {
        RestrictedKey {
            access_key_id: "AKIAOPERATOR".to_owned(),
            caller_arn: format!("arn:aws:iam::{ACCOUNT}:user/bind-operator"),
            policy: policy.to_owned(),
        }
    }

    fn query(action: &str, params: &[(&str, &str)]) -> Needs {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let service = if action == "GetCallerIdentity" || action == "AssumeRole" {
            "sts"
        } else {
            "iam"
        };
        query_needs(service, action, &param, ACCOUNT, None)
    }

    #[test]
    fn the_shipped_policy_allows_what_bind_calls() {
        let key = operator(SHIPPED);
        let role = [("RoleName", "my-pod-role")];
        for action in [
            "GetRole",
            "ListAttachedRolePolicies",
            "CreateRole",
            "UpdateAssumeRolePolicy",
            "ListOpenIDConnectProviders",
        ] {
            assert_eq!(key.authorize(query(action, &role)), Ok(()), "{action}");
        }
        let attach = query(
            "AttachRolePolicy",
            &[
                ("RoleName", "r"),
                ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            ],
        );
        assert_eq!(key.authorize(attach), Ok(()));
        let provider = query(
            "GetOpenIDConnectProvider",
            &[(
                "OpenIDConnectProviderArn",
                "arn:aws:iam::123456789012:oidc-provider/127.0.0.1:1/id/X",
            )],
        );
        assert_eq!(key.authorize(provider), Ok(()));
        assert_eq!(key.authorize(query("GetCallerIdentity", &[])), Ok(()));
        for (method, id) in [
            (Method::POST, None),
            (Method::GET, None),
            (Method::GET, Some("a-1")),
            (Method::POST, Some("a-1")),
        ] {
            let needs = eks_association_needs(
                &method,
                "podiam-e2e",
                id,
                Some("arn:aws:iam::123456789012:role/my-pod-role"),
                ACCOUNT,
                "us-east-1",
            );
            assert_eq!(key.authorize(needs), Ok(()), "{method} {id:?}");
        }
    }

    #[test]
    fn refusals_name_caller_action_and_resource_as_aws_does() {
        let key = operator(SHIPPED);
        let refusal = key
            .authorize(query("PutRolePolicy", &[("RoleName", "my-pod-role")]))
            .expect_err("not in the policy");
        assert_eq!(
            key.message(&refusal, true),
            "User: arn:aws:iam::123456789012:user/bind-operator is not authorized to perform: iam:PutRolePolicy on resource: role my-pod-role because no identity-based policy allows the iam:PutRolePolicy action"
        );
        let delete = eks_association_needs(
            &Method::DELETE,
            "podiam-e2e",
            Some("a-1"),
            None,
            ACCOUNT,
            "us-east-1",
        );
        let refusal = key.authorize(delete).expect_err("not in the policy");
        assert_eq!(
            key.message(&refusal, false),
            "User: arn:aws:iam::123456789012:user/bind-operator is not authorized to perform: eks:DeletePodIdentityAssociation on resource: arn:aws:eks:us-east-1:123456789012:podidentityassociation/podiam-e2e/a-1"
        );
        let deny = r#"{"Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"},{"Effect":"Deny","Action":"iam:CreateRole","Resource":"*"}]}"#;
        let key = operator(deny);
        let refusal = key
            .authorize(query(
                "CreateRole",
                &[("RoleName", "x"), ("Path", "/team/")],
            ))
            .expect_err("denied");
        assert_eq!(
            key.message(&refusal, true),
            "User: arn:aws:iam::123456789012:user/bind-operator is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/team/x with an explicit deny in an identity-based policy"
        );
    }

    #[test]
    fn pass_role_is_allowed_only_to_eks_pods() {
        let key = operator(SHIPPED);
        let role = "arn:aws:iam::123456789012:role/my-pod-role";
        assert_eq!(
            key.authorize(Needs::All(vec![Permission::pass_role(
                role,
                EKS_PODS_SERVICE
            )])),
            Ok(())
        );
        let refusal = key
            .authorize(Needs::All(vec![Permission::pass_role(
                role,
                "ec2.amazonaws.com",
            )]))
            .expect_err("another service");
        assert_eq!(
            key.message(&refusal, false),
            "User: arn:aws:iam::123456789012:user/bind-operator is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/my-pod-role"
        );
        // Without the PassRole statement, creating an association is refused at the PassRole.
        let mut policy: serde_json::Value = serde_json::from_str(SHIPPED).expect("json");
        policy["Statement"]
            .as_array_mut()
            .expect("statements")
            .retain(|s| s["Sid"] != "PassRoleToPodIdentity");
        let key = operator(&policy.to_string());
        let create = eks_association_needs(
            &Method::POST,
            "podiam-e2e",
            None,
            Some(role),
            ACCOUNT,
            "us-east-1",
        );
        match key.authorize(create) {
            Err(Refusal::Denied { permission, .. }) => {
                assert_eq!(permission.action, "iam:PassRole")
            }
            other => panic!("expected the PassRole refusal, got {other:?}"),
        }
    }

    #[test]
    fn unmapped_calls_are_refused() {
        let key = operator(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
        for needs in [
            query("CreateUser", &[("UserName", "x")]),
            query_needs("ec2", "DescribeInstances", &|_: &str| None, ACCOUNT, None),
            // A role action without its role cannot be mapped either.
            query("GetRole", &[]),
            eks_association_needs(&Method::PUT, "c", None, None, ACCOUNT, "us-east-1"),
        ] {
            let refusal = key.authorize(needs).expect_err("unmapped");
            assert!(matches!(refusal, Refusal::Unmapped(_)));
            assert!(
                key.message(&refusal, true)
                    .contains("cannot tell which permission")
            );
        }
    }
}
