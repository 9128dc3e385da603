//! The EKS Auth API (`AssumeRoleForPodIdentity`) behind the gate: clusters with their issuer,
//! Pod Identity associations, and the checks EKS Auth makes before it hands out credentials.
//!
//! `POST /clusters/{clusterName}/assume-role-for-pod-identity` with `{"token": …}`, signed
//! (SigV4, service `eks-auth`) by a key the emulated account knows (the admin's, standing in
//! for the node role). The token must be a ServiceAccount token of that cluster's issuer
//! (signature from the issuer's JWKS), audience `pods.eks.amazonaws.com`, not expired; an
//! association must exist for its namespace and ServiceAccount; the associated role's trust
//! policy must let `pods.eks.amazonaws.com` AssumeRole and TagSession. Credentials come from
//! moto for that role.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use super::credentials::AdminCredentials;
use super::eks_auth_error::EksAuthError;
use super::iam_directory::IamDirectory;
use super::ids::uuid_like;
use super::jwks_cache::JwksCache;
use super::moto_web_identity::assume_role_in_moto;
use super::pod_identity_trust::{PodIdentityAssumeContext, eks_may_assume};

pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The cluster name scenarios get when their association names none.
pub const DEFAULT_CLUSTER_NAME: &str = "podiam-e2e";
const CLOCK_SKEW_SECONDS: i64 = 30;
const SESSION_SECONDS: i32 = 3600;
/// The emulator's wording (AWS's exact text for a refused target role is not documented).
const TARGET_DENIED: &str =
    "Unauthorized Exception! The association's role could not assume the target role";
const TRUST_DENIED: &str =
    "Unauthorized Exception! EKS does not have permissions to assume the associated role.";

/// One Pod Identity association, as `aws eks describe-pod-identity-association` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentityAssociation {
    pub cluster_name: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    /// `targetRoleArn` (EKS's cross-account role chaining, 2025): EKS Auth assumes `role_arn`,
    /// then this role with that session, and hands the pod the second session.
    pub target_role_arn: Option<String>,
    pub association_id: String,
    pub association_arn: String,
    /// Epoch seconds, as the EKS API answers timestamps.
    pub created_at: i64,
    pub modified_at: i64,
}

/// Why `CreatePodIdentityAssociation` was refused by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefusal {
    UnknownCluster,
    /// The ServiceAccount already has this association (EKS allows one per ServiceAccount).
    InUse(Box<PodIdentityAssociation>),
}

#[derive(Default)]
struct Store {
    /// Cluster name → its ServiceAccount issuer URL.
    clusters: BTreeMap<String, String>,
    associations: Vec<PodIdentityAssociation>,
}

/// Clusters and associations of the emulated account.
#[derive(Default)]
pub struct EksAuthStore {
    store: Mutex<Store>,
}

impl EksAuthStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register_cluster(&self, name: &str, issuer: &str) {
        self.lock()
            .clusters
            .insert(name.to_owned(), issuer.to_owned());
    }

    /// Adds (or replaces, for the same cluster/namespace/ServiceAccount) an association.
    pub fn associate(
        &self,
        account_id: &str,
        region: &str,
        cluster_name: &str,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
    ) -> PodIdentityAssociation {
        let association = new_association(
            account_id,
            region,
            cluster_name,
            namespace,
            service_account,
            role_arn,
        );
        let mut store = self.lock();
        store.associations.retain(|a| {
            !(a.cluster_name == cluster_name
                && a.namespace == namespace
                && a.service_account == service_account)
        });
        store.associations.push(association.clone());
        association
    }

    pub fn associations(&self) -> Vec<PodIdentityAssociation> {
        self.lock().associations.clone()
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.lock().clusters.contains_key(name)
    }

    /// `CreatePodIdentityAssociation`: one association per ServiceAccount, in a known cluster.
    pub fn create_association(
        &self,
        account_id: &str,
        region: &str,
        cluster_name: &str,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
    ) -> Result<PodIdentityAssociation, CreateRefusal> {
        let mut store = self.lock();
        if !store.clusters.contains_key(cluster_name) {
            return Err(CreateRefusal::UnknownCluster);
        }
        if let Some(existing) = store.associations.iter().find(|a| {
            a.cluster_name == cluster_name
                && a.namespace == namespace
                && a.service_account == service_account
        }) {
            return Err(CreateRefusal::InUse(Box::new(existing.clone())));
        }
        let association = new_association(
            account_id,
            region,
            cluster_name,
            namespace,
            service_account,
            role_arn,
        );
        store.associations.push(association.clone());
        Ok(association)
    }

    /// The associations of one cluster, optionally only one namespace's or ServiceAccount's.
    pub fn cluster_associations(
        &self,
        cluster_name: &str,
        namespace: Option<&str>,
        service_account: Option<&str>,
    ) -> Vec<PodIdentityAssociation> {
        self.lock()
            .associations
            .iter()
            .filter(|a| {
                a.cluster_name == cluster_name
                    && namespace.is_none_or(|n| a.namespace == n)
                    && service_account.is_none_or(|s| a.service_account == s)
            })
            .cloned()
            .collect()
    }

    pub fn association(&self, cluster_name: &str, id: &str) -> Option<PodIdentityAssociation> {
        self.lock()
            .associations
            .iter()
            .find(|a| a.cluster_name == cluster_name && a.association_id == id)
            .cloned()
    }

    /// `UpdatePodIdentityAssociation`: a new role for an existing association.
    pub fn update_association_role(
        &self,
        cluster_name: &str,
        id: &str,
        role_arn: &str,
    ) -> Option<PodIdentityAssociation> {
        let mut store = self.lock();
        let association = store
            .associations
            .iter_mut()
            .find(|a| a.cluster_name == cluster_name && a.association_id == id)?;
        association.role_arn = role_arn.to_owned();
        association.modified_at = now();
        Some(association.clone())
    }

    /// Sets (or with `None` removes) an association's target role.
    pub fn set_target_role(
        &self,
        cluster_name: &str,
        id: &str,
        target_role_arn: Option<&str>,
    ) -> Option<PodIdentityAssociation> {
        let mut store = self.lock();
        let association = store
            .associations
            .iter_mut()
            .find(|a| a.cluster_name == cluster_name && a.association_id == id)?;
        association.target_role_arn = target_role_arn.map(str::to_owned);
        association.modified_at = now();
        Some(association.clone())
    }

    pub fn delete_association(
        &self,
        cluster_name: &str,
        id: &str,
    ) -> Option<PodIdentityAssociation> {
        let mut store = self.lock();
        let index = store
            .associations
            .iter()
            .position(|a| a.cluster_name == cluster_name && a.association_id == id)?;
        Some(store.associations.remove(index))
    }

    /// Whether pods of `namespace`/`service_account` in `cluster_name` get Pod Identity: what
    /// EKS writes into the webhook's container-credentials configuration.
    pub fn is_associated(
        &self,
        cluster_name: &str,
        namespace: &str,
        service_account: &str,
    ) -> bool {
        self.find(cluster_name, namespace, service_account)
            .is_some()
    }

    /// Deletes every association (between scenarios); clusters stay.
    pub fn clear_associations(&self) {
        self.lock().associations.clear();
    }

    fn issuer(&self, cluster: &str) -> Option<String> {
        self.lock().clusters.get(cluster).cloned()
    }

    fn find(&self, cluster: &str, namespace: &str, sa: &str) -> Option<PodIdentityAssociation> {
        self.lock()
            .associations
            .iter()
            .find(|a| {
                a.cluster_name == cluster && a.namespace == namespace && a.service_account == sa
            })
            .cloned()
    }
}

fn new_association(
    account_id: &str,
    region: &str,
    cluster_name: &str,
    namespace: &str,
    service_account: &str,
    role_arn: &str,
) -> PodIdentityAssociation {
    // `a-` and 17 characters: EKS refuses ids of any other length.
    let id = format!("a-{}", &uuid_like().replace('-', "")[..17]);
    let created = now();
    PodIdentityAssociation {
        cluster_name: cluster_name.to_owned(),
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        role_arn: role_arn.to_owned(),
        target_role_arn: None,
        association_arn: format!(
            "arn:aws:eks:{region}:{account_id}:podidentityassociation/{cluster_name}/{id}"
        ),
        association_id: id,
        created_at: created,
        modified_at: created,
    }
}

/// What the operation needs from the gate.
pub struct EksAuthDeps<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    pub admin: &'a AdminCredentials,
    /// The gate's restricted key (the `bind` operator's), known to the account too.
    pub operator_key: Option<&'a str>,
    pub directory: &'a IamDirectory,
    pub jwks: &'a JwksCache,
    pub moto_http: &'a reqwest::Client,
    pub moto_url: &'a str,
    pub store: &'a EksAuthStore,
    /// Session keys handed out are recorded here (the caller of a later AssumeRole).
    pub sessions: &'a super::sessions::SessionDirectory,
}

/// `AssumeRoleForPodIdentity`: the JSON answer, or the error EKS Auth would give.
pub async fn assume_role_for_pod_identity(
    deps: &EksAuthDeps<'_>,
    cluster_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, EksAuthError> {
    check_signature_scope(headers, deps.admin, deps.operator_key, "eks-auth")?;
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| EksAuthError::invalid_request("The request body is not valid JSON."))?;
    let token = request
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            EksAuthError::invalid_parameter(
                "1 validation error detected: Value null at 'token' failed to satisfy constraint: Member must not be null",
            )
        })?;
    // The pod's projected token (through the agent): a secret of the run, valid or not.
    super::issued_secrets::record(
        super::issued_secrets::SecretKind::ServiceAccountToken,
        token,
    );
    let issuer = deps.store.issuer(cluster_name).ok_or_else(|| {
        EksAuthError::not_found(format!("No cluster found for name: {cluster_name}."))
    })?;
    let claims = validated_claims(token, &issuer, deps.jwks).await?;

    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parts: Vec<&str> = subject.split(':').collect();
    let ["system", "serviceaccount", namespace, service_account] = parts.as_slice() else {
        return Err(EksAuthError::invalid_token(
            "The token's subject is not a Kubernetes ServiceAccount.",
        ));
    };
    let (namespace, service_account) = (*namespace, *service_account);
    let association = deps
        .store
        .find(cluster_name, namespace, service_account)
        .ok_or_else(|| {
            EksAuthError::not_found(format!(
                "No Pod Identity Association found for namespace {namespace} and service account {service_account} in cluster {cluster_name}."
            ))
        })?;

    let pod = claims.get("kubernetes.io").and_then(|k| k.get("pod"));
    let pod_name = pod
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pod_uid = pod
        .and_then(|p| p.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cluster_arn = format!(
        "arn:aws:eks:{}:{}:cluster/{cluster_name}",
        deps.region, deps.account_id
    );
    let session_tags = BTreeMap::from([
        ("eks-cluster-arn".to_owned(), cluster_arn.clone()),
        ("eks-cluster-name".to_owned(), cluster_name.to_owned()),
        ("kubernetes-namespace".to_owned(), namespace.to_string()),
        (
            "kubernetes-service-account".to_owned(),
            service_account.to_string(),
        ),
        ("kubernetes-pod-name".to_owned(), pod_name.to_owned()),
        ("kubernetes-pod-uid".to_owned(), pod_uid.to_owned()),
    ]);

    let role_name = association
        .role_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let role = deps
        .directory
        .role(&role_name)
        .await
        .map_err(|e| EksAuthError::internal(format!("{e:#}")))?
        .filter(|r| r.arn == association.role_arn)
        .ok_or_else(|| EksAuthError::access_denied(TRUST_DENIED))?;
    let context = PodIdentityAssumeContext {
        source_account: deps.account_id.to_owned(),
        source_arn: cluster_arn,
        session_tags: session_tags.clone(),
    };
    if !eks_may_assume(&role.trust_policy, &context) {
        return Err(EksAuthError::access_denied(TRUST_DENIED));
    }

    let session = session_name(cluster_name, pod_name);
    let credentials = assume_role_in_moto(
        deps.moto_http,
        deps.moto_url,
        deps.admin,
        &role.arn,
        &session,
        SESSION_SECONDS,
    )
    .await
    .map_err(|e| EksAuthError::internal(format!("{e:#}")))?;
    let mut session_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session}",
        deps.account_id, role.name
    );
    deps.sessions.record(
        &credentials.access_key_id,
        super::sessions::KeyOwner::RoleSession {
            role_arn: role.arn.clone(),
            session_arn: session_arn.clone(),
        },
    );
    let mut assumed_role_id = format!("{}:{session}", role.role_id);
    // targetRoleArn: the association role's session assumes the target, as `sts:AssumeRole`
    // with the gate's own trust and permission model (role_chaining.rs).
    let credentials = match &association.target_role_arn {
        None => credentials,
        Some(target) => {
            let chain = super::role_chaining::ChainDeps {
                account_id: deps.account_id,
                admin: deps.admin,
                directory: deps.directory,
                sessions: deps.sessions,
                moto_http: deps.moto_http,
                moto_url: deps.moto_url,
            };
            let granted = super::role_chaining::assume_role(
                &chain,
                &credentials.access_key_id,
                target,
                &session,
                SESSION_SECONDS,
            )
            .await
            .map_err(|e| match e.code {
                "AccessDenied" => {
                    EksAuthError::access_denied(format!("{TARGET_DENIED} {target}: {}", e.message))
                }
                _ => EksAuthError::internal(e.message),
            })?;
            session_arn = granted.session_arn;
            assumed_role_id = granted.assumed_role_id;
            granted.credentials
        }
    };
    let expiration = aws_sdk_sts::primitives::DateTime::from_str(
        &credentials.expiration,
        aws_sdk_sts::primitives::DateTimeFormat::DateTime,
    )
    .map(|d| d.secs())
    .unwrap_or_else(|_| now() + i64::from(SESSION_SECONDS));
    tracing::debug!(?session_tags, "EKS Auth session tags");
    Ok(json!({
        "subject": {"namespace": namespace, "serviceAccount": service_account},
        "audience": POD_IDENTITY_AUDIENCE,
        "podIdentityAssociation": {
            "associationArn": association.association_arn,
            "associationId": association.association_id,
        },
        "assumedRoleUser": {
            "arn": session_arn,
            "assumeRoleId": assumed_role_id,
        },
        "credentials": {
            "sessionToken": credentials.session_token,
            "secretAccessKey": credentials.secret_access_key,
            "accessKeyId": credentials.access_key_id,
            "expiration": expiration,
        },
    }))
}

/// SigV4 by a key of this account, scoped to `service` (`eks-auth`, or `eks` for the control
/// plane). (The signature itself is not recomputed: the keys the emulated account has are the
/// admin's and the restricted operator's, whose permissions the gate checked before.)
pub(super) fn check_signature_scope(
    headers: &HeaderMap,
    admin: &AdminCredentials,
    operator_key: Option<&str>,
    service: &str,
) -> Result<(), EksAuthError> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(EksAuthError::missing_authentication)?;
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .and_then(|rest| rest.split(", ").find_map(|p| p.strip_prefix("Credential=")))
        .ok_or_else(EksAuthError::missing_authentication)?;
    let mut scope = credential.split('/');
    let access_key = scope.next().unwrap_or_default();
    let scope_service = scope.nth(2).unwrap_or_default();
    let known = access_key == admin.access_key_id || operator_key == Some(access_key);
    if !known || scope_service != service {
        return Err(EksAuthError::unrecognized_client());
    }
    Ok(())
}

/// The checks on the ServiceAccount token, in order; the first failure is the answer.
async fn validated_claims(
    token: &str,
    issuer: &str,
    jwks: &JwksCache,
) -> Result<Value, EksAuthError> {
    let (header, claims) = parse_unverified(token)?;
    let token_issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if token_issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(EksAuthError::invalid_token(
            "The token was not issued by the cluster's OIDC issuer.",
        ));
    }
    let key = jwks
        .decoding_key(token_issuer, header.get("kid").and_then(Value::as_str))
        .await
        .map_err(|_| EksAuthError::invalid_token("The token's signature could not be verified."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| EksAuthError::invalid_token("The token's signature could not be verified."))?;
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&POD_IDENTITY_AUDIENCE) {
        return Err(EksAuthError::invalid_token(format!(
            "The token's audience must be {POD_IDENTITY_AUDIENCE}."
        )));
    }
    let Some(expiry) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(EksAuthError::invalid_token("The token has no expiration."));
    };
    let now = now();
    if now >= expiry + CLOCK_SKEW_SECONDS {
        return Err(EksAuthError::expired_token("The token has expired."));
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = claims.get(claim).and_then(Value::as_i64)
            && now + CLOCK_SKEW_SECONDS < at
        {
            return Err(EksAuthError::invalid_token(format!(
                "The token is not valid yet: its {claim} ({at}) is after the current time ({now})."
            )));
        }
    }
    Ok(claims)
}

fn parse_unverified(token: &str) -> Result<(Value, Value), EksAuthError> {
    let malformed = || EksAuthError::invalid_token("The token is not a valid JWT.");
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        return Err(malformed());
    };
    let decode = |part: &str| -> Result<Value, EksAuthError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(malformed)
    };
    Ok((decode(header)?, decode(payload)?))
}

/// `eks-CLUSTER-POD-UUID`, cut to STS's 64 characters and its character set.
fn session_name(cluster: &str, pod: &str) -> String {
    let raw = format!("eks-{cluster}-{pod}-{}", uuid_like());
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts() {
        let name = session_name(
            "podiam-e2e",
            "a-very-long-pod-name-from-a-deployment-7d9f8c6b5-x2x4z",
        );
        assert!(name.starts_with("eks-podiam-e2e-a-very-long-pod-name"));
        assert_eq!(name.len(), 64);
        let odd = session_name("c", "pod/with:odd");
        assert!(odd.starts_with("eks-c-pod-with-odd-"), "{odd}");
    }

    #[test]
    fn signature_scope_must_be_eks_auth_by_a_known_key() {
        let admin = AdminCredentials {
            access_key_id: "AKIAADMIN".into(),
            secret_access_key: "unused".into(),
        };
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", value.parse().unwrap());
            h
        };
        let ok = "AWS4-HMAC-SHA256 Credential=AKIAADMIN/20260101/us-east-1/eks-auth/aws4_request, SignedHeaders=host, Signature=00";
        assert!(check_signature_scope(&headers(ok), &admin, None, "eks-auth").is_ok());
        assert!(check_signature_scope(&headers(ok), &admin, None, "eks").is_err());
        let operator = ok.replace("AKIAADMIN", "AKIAOPERATOR");
        assert!(check_signature_scope(&headers(&operator), &admin, None, "eks-auth").is_err());
        assert!(
            check_signature_scope(
                &headers(&operator),
                &admin,
                Some("AKIAOPERATOR"),
                "eks-auth"
            )
            .is_ok()
        );
        let sts = ok.replace("/eks-auth/", "/sts/");
        assert_eq!(
            check_signature_scope(&headers(&sts), &admin, None, "eks-auth")
                .unwrap_err()
                .code,
            "UnrecognizedClientException"
        );
        assert_eq!(
            check_signature_scope(&HeaderMap::new(), &admin, None, "eks-auth")
                .unwrap_err()
                .code,
            "MissingAuthenticationTokenException"
        );
    }
}
