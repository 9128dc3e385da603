//! The EKS control-plane API for Pod Identity associations, as aws-sdk-eks and the AWS CLI send
//! it (restJson1, SigV4 service `eks`), over the same store EKS Auth and the webhook stand-in
//! read, so an association created through the API is what a new pod gets:
//!
//! - `POST   /clusters/{name}/pod-identity-associations` — Create (`namespace`,
//!   `serviceAccount`, `roleArn`); 409 `ResourceInUseException` when the ServiceAccount already
//!   has one (`Association already exists: a-…`).
//! - `GET    /clusters/{name}/pod-identity-associations?namespace=&serviceAccount=` — List
//!   (summaries: no role).
//! - `GET    /clusters/{name}/pod-identity-associations/{id}` — Describe.
//! - `POST   /clusters/{name}/pod-identity-associations/{id}` — Update (`roleArn`).
//! - `DELETE /clusters/{name}/pod-identity-associations/{id}` — Delete (answers the deleted one).
//!
//! An unknown cluster is a 404 `ResourceNotFoundException` (`No cluster found for name: X.`), a
//! malformed id or role a 400 `InvalidParameterException`.

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::credentials::AdminCredentials;
use super::eks_auth::{CreateRefusal, EksAuthStore, PodIdentityAssociation, check_signature_scope};
use super::eks_auth_error::EksAuthError;

/// What the control plane needs from the gate.
pub struct EksControlPlane<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    pub admin: &'a AdminCredentials,
    /// The gate's restricted key (the `bind` operator's), known to the account too.
    pub operator_key: Option<&'a str>,
    pub store: &'a EksAuthStore,
}

/// One call, as routed by the gate.
pub struct EksApiCall<'a> {
    pub method: &'a Method,
    pub cluster_name: &'a str,
    /// `None` on the collection path.
    pub association_id: Option<&'a str>,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl EksApiCall<'_> {
    /// The operation name, for the request log.
    pub fn action(&self) -> &'static str {
        match (self.method.as_str(), self.association_id.is_some()) {
            ("POST", false) => "CreatePodIdentityAssociation",
            ("GET", false) => "ListPodIdentityAssociations",
            ("GET", true) => "DescribePodIdentityAssociation",
            ("POST", true) => "UpdatePodIdentityAssociation",
            ("DELETE", true) => "DeletePodIdentityAssociation",
            _ => "UnknownOperation",
        }
    }
}

/// Answers one call: the JSON body of a 200, or the exception.
pub fn handle(plane: &EksControlPlane<'_>, call: &EksApiCall<'_>) -> Result<Value, EksAuthError> {
    check_signature_scope(call.headers, plane.admin, plane.operator_key, "eks")?;
    let cluster = call.cluster_name;
    if let Some(id) = call.association_id {
        check_association_id(id, cluster)?;
    }
    if !plane.store.has_cluster(cluster) {
        return Err(no_cluster(cluster));
    }
    match (call.method.as_str(), call.association_id) {
        ("POST", None) => create(plane, cluster, &body_json(call.body, cluster)?),
        ("GET", None) => Ok(list(plane.store, cluster, call.query)),
        ("GET", Some(id)) => found(plane.store.association(cluster, id), cluster, id),
        ("POST", Some(id)) => update(plane, cluster, id, &body_json(call.body, cluster)?),
        ("DELETE", Some(id)) => found(plane.store.delete_association(cluster, id), cluster, id),
        _ => Err(EksAuthError::invalid_request(format!(
            "{} is not supported on this resource.",
            call.method
        ))),
    }
}

fn create(plane: &EksControlPlane<'_>, cluster: &str, body: &Value) -> Result<Value, EksAuthError> {
    let namespace = required(body, "namespace", cluster)?;
    let service_account = required(body, "serviceAccount", cluster)?;
    let role_arn = required(body, "roleArn", cluster)?;
    check_role_arn(role_arn, plane.account_id, cluster)?;
    let target = target_role(body, cluster)?;
    match plane.store.create_association(
        plane.account_id,
        plane.region,
        cluster,
        namespace,
        service_account,
        role_arn,
    ) {
        Ok(association) => {
            let association = match target {
                Some(target) => plane
                    .store
                    .set_target_role(cluster, &association.association_id, Some(target))
                    .unwrap_or(association),
                None => association,
            };
            Ok(json!({"association": full(&association)}))
        }
        Err(CreateRefusal::UnknownCluster) => Err(no_cluster(cluster)),
        Err(CreateRefusal::InUse(existing)) => Err(EksAuthError::resource_in_use(format!(
            "Association already exists: {}",
            existing.association_id
        ))
        .for_cluster(cluster)),
    }
}

fn update(
    plane: &EksControlPlane<'_>,
    cluster: &str,
    id: &str,
    body: &Value,
) -> Result<Value, EksAuthError> {
    let updated = match body.get("roleArn").and_then(Value::as_str) {
        Some(role_arn) => {
            check_role_arn(role_arn, plane.account_id, cluster)?;
            plane.store.update_association_role(cluster, id, role_arn)
        }
        // Only the roles are modelled; an update without one changes nothing.
        None => plane.store.association(cluster, id),
    };
    let updated = match (updated, body.get("targetRoleArn").and_then(Value::as_str)) {
        // An empty targetRoleArn removes the target.
        (Some(_), Some("")) => plane.store.set_target_role(cluster, id, None),
        (Some(_), Some(target)) => {
            let account = target.split(':').nth(4).unwrap_or_default();
            check_role_arn(target, account, cluster)?;
            plane.store.set_target_role(cluster, id, Some(target))
        }
        (updated, None) => updated,
        (None, _) => None,
    };
    found(updated, cluster, id)
}

fn list(store: &EksAuthStore, cluster: &str, query: Option<&str>) -> Value {
    let params: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let associations: Vec<Value> = store
        .cluster_associations(cluster, param("namespace"), param("serviceAccount"))
        .iter()
        .map(summary)
        .collect();
    json!({"associations": associations})
}

fn found(
    association: Option<PodIdentityAssociation>,
    cluster: &str,
    id: &str,
) -> Result<Value, EksAuthError> {
    association
        .map(|a| json!({"association": full(&a)}))
        .ok_or_else(|| {
            EksAuthError::not_found(format!(
                "No Pod Identity Association found for id: {id} in cluster {cluster}."
            ))
            .for_cluster(cluster)
        })
}

/// `PodIdentityAssociation` as Create/Describe/Update/Delete answer it.
fn full(a: &PodIdentityAssociation) -> Value {
    json!({
        "clusterName": a.cluster_name,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "roleArn": a.role_arn,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
        "tags": {},
        "createdAt": a.created_at,
        "modifiedAt": a.modified_at,
        "disableSessionTags": false,
        "targetRoleArn": a.target_role_arn,
    })
}

/// `targetRoleArn` of a Create: an IAM role ARN, in this or another account.
fn target_role<'b>(body: &'b Value, cluster: &str) -> Result<Option<&'b str>, EksAuthError> {
    match body.get("targetRoleArn").and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(target) => {
            let account = target.split(':').nth(4).unwrap_or_default();
            check_role_arn(target, account, cluster)?;
            Ok(Some(target))
        }
    }
}

/// `PodIdentityAssociationSummary`: List answers without the role.
fn summary(a: &PodIdentityAssociation) -> Value {
    json!({
        "clusterName": a.cluster_name,
        "namespace": a.namespace,
        "serviceAccount": a.service_account,
        "associationArn": a.association_arn,
        "associationId": a.association_id,
    })
}

fn no_cluster(cluster: &str) -> EksAuthError {
    EksAuthError::not_found(format!("No cluster found for name: {cluster}.")).for_cluster(cluster)
}

fn body_json(body: &[u8], cluster: &str) -> Result<Value, EksAuthError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            EksAuthError::invalid_request("The request body is not valid JSON.")
                .for_cluster(cluster)
        })
}

fn required<'b>(body: &'b Value, member: &str, cluster: &str) -> Result<&'b str, EksAuthError> {
    body.get(member)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            EksAuthError::invalid_parameter(format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ))
            .for_cluster(cluster)
        })
}

/// Association ids are `a-` and 17 lowercase letters or digits.
fn check_association_id(id: &str, cluster: &str) -> Result<(), EksAuthError> {
    if id.len() != 19 {
        return Err(EksAuthError::invalid_parameter(
            "The parameter associationId should be 19 characters long.",
        )
        .for_cluster(cluster));
    }
    Ok(())
}

/// An IAM role of the cluster's own account.
fn check_role_arn(arn: &str, account_id: &str, cluster: &str) -> Result<(), EksAuthError> {
    let invalid = |why: &str| {
        Err(EksAuthError::invalid_parameter(format!("Role ARN {arn} {why}.")).for_cluster(cluster))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return invalid("is not a valid IAM role ARN");
    };
    let name = resource.strip_prefix("role/").unwrap_or_default();
    if *prefix != "arn"
        || !partition.starts_with("aws")
        || *service != "iam"
        || !region.is_empty()
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || name.is_empty()
    {
        return invalid("is not a valid IAM role ARN");
    }
    if *account != account_id {
        return invalid("must be in the same account as the cluster");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "podiam-e2e";

    fn admin() -> AdminCredentials {
        AdminCredentials {
            access_key_id: "AKIAADMIN".into(),
            secret_access_key: "unused".into(),
        }
    }

    fn signed(service: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAADMIN/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        h.insert("authorization", value.parse().unwrap());
        h
    }

    fn call<'a>(
        method: &'a Method,
        id: Option<&'a str>,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> EksApiCall<'a> {
        EksApiCall {
            method,
            cluster_name: CLUSTER,
            association_id: id,
            query,
            headers,
            body,
        }
    }

    #[test]
    fn create_list_update_delete_and_the_refusals() {
        let store = EksAuthStore::default();
        store.register_cluster(CLUSTER, "https://issuer.example");
        let admin = admin();
        let plane = EksControlPlane {
            account_id: "123456789012",
            region: "us-east-1",
            admin: &admin,
            operator_key: None,
            store: &store,
        };
        let headers = signed("eks");
        let body = br#"{"namespace":"apps","serviceAccount":"reader","roleArn":"arn:aws:iam::123456789012:role/r"}"#;
        let created = handle(&plane, &call(&Method::POST, None, None, &headers, body)).unwrap();
        let id = created["association"]["associationId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 19);
        assert!(store.is_associated(CLUSTER, "apps", "reader"));

        let again = handle(&plane, &call(&Method::POST, None, None, &headers, body)).unwrap_err();
        assert_eq!(again.code, "ResourceInUseException");
        assert_eq!(again.message, format!("Association already exists: {id}"));

        let listed = handle(
            &plane,
            &call(&Method::GET, None, Some("namespace=apps"), &headers, b""),
        )
        .unwrap();
        assert_eq!(listed["associations"][0]["associationId"], id.as_str());
        assert!(listed["associations"][0].get("roleArn").is_none());
        let other_ns = handle(
            &plane,
            &call(&Method::GET, None, Some("namespace=other"), &headers, b""),
        )
        .unwrap();
        assert_eq!(other_ns["associations"], json!([]));

        let updated = handle(
            &plane,
            &call(
                &Method::POST,
                Some(&id),
                None,
                &headers,
                br#"{"roleArn":"arn:aws:iam::123456789012:role/other"}"#,
            ),
        )
        .unwrap();
        assert_eq!(
            updated["association"]["roleArn"],
            "arn:aws:iam::123456789012:role/other"
        );

        let foreign = handle(
            &plane,
            &call(
                &Method::POST,
                Some(&id),
                None,
                &headers,
                br#"{"roleArn":"arn:aws:iam::999999999999:role/x"}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(foreign.code, "InvalidParameterException");

        handle(
            &plane,
            &call(&Method::DELETE, Some(&id), None, &headers, b""),
        )
        .unwrap();
        assert!(!store.is_associated(CLUSTER, "apps", "reader"));
        let gone = handle(&plane, &call(&Method::GET, Some(&id), None, &headers, b"")).unwrap_err();
        assert_eq!(gone.code, "ResourceNotFoundException");
        let short = handle(
            &plane,
            &call(&Method::GET, Some("a-1"), None, &headers, b""),
        )
        .unwrap_err();
        assert_eq!(short.code, "InvalidParameterException");
    }

    #[test]
    fn unknown_clusters_and_other_services_signatures_are_refused() {
        let store = EksAuthStore::default();
        let admin = admin();
        let plane = EksControlPlane {
            account_id: "123456789012",
            region: "us-east-1",
            admin: &admin,
            operator_key: None,
            store: &store,
        };
        let headers = signed("eks");
        let error = handle(&plane, &call(&Method::GET, None, None, &headers, b"")).unwrap_err();
        assert_eq!(error.code, "ResourceNotFoundException");
        assert_eq!(error.message, "No cluster found for name: podiam-e2e.");
        store.register_cluster(CLUSTER, "https://issuer.example");
        let wrong_service = signed("eks-auth");
        let error =
            handle(&plane, &call(&Method::GET, None, None, &wrong_service, b"")).unwrap_err();
        assert_eq!(error.code, "UnrecognizedClientException");
        let missing = handle(
            &plane,
            &call(
                &Method::POST,
                None,
                None,
                &headers,
                br#"{"namespace":"apps"}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(missing.code, "InvalidParameterException");
        assert!(missing.message.contains("'serviceAccount'"));
    }
}
