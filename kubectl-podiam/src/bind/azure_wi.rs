//! `bind --azure-client-id`: AKS Workload Identity, as `azwi serviceaccount create` does it
//! (phases `federated-identity` and `service-account`; the application and its role
//! assignments are the operator's): a federated identity credential on the application for
//! the cluster's issuer and the ServiceAccount's subject, the client-id (and, when given,
//! tenant-id) annotations on the ServiceAccount, and the workloads whose pods the webhook would
//! skip for want of the `azure.workload.identity/use` label.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use regex::Regex;
use serde_json::json;

use super::azure_graph::{
    AzureBindTarget, FederatedCredential, GraphOperation, GraphSession,
    MAX_CREDENTIALS_PER_APPLICATION, credential_name,
};
use super::plan::{Change, ChangeStatus, Operation, System};
use super::{BindRequest, CloudPlan, Operator, workload_labels};
use crate::cloud::azure as a;
use crate::error::{Error, Result};

/// What the user asked for with `--azure-client-id`.
#[derive(Debug, Clone)]
pub struct AzureRequest {
    pub client_id: String,
    /// `--azure-tenant-id`: annotated on the ServiceAccount; absent = the webhook's tenant.
    pub tenant_id: Option<String>,
    pub label_workloads: bool,
}

pub async fn plan(
    client: &kube::Client,
    target: &AzureBindTarget,
    azure: &AzureRequest,
    issuer: &str,
    request: &BindRequest,
) -> Result<(Operator, CloudPlan)> {
    validate(azure)?;
    if request.wildcard() {
        return Err(Error::Refused(format!(
            "{} is a wildcard subject, and Entra federated credentials match subjects exactly (no wildcards): bind each ServiceAccount",
            request.subject()
        )));
    }
    refuse_unusable_issuer(issuer)?;
    let session = GraphSession::from_environment(target, azure.tenant_id.as_deref())?;
    let application = session.application(&azure.client_id).await?.ok_or_else(|| {
        Error::Refused(format!(
            "no application with client id {} is visible to {} in Microsoft Graph.\n\
             If it is a user-assigned managed identity, its federated credentials live in Azure Resource Manager:\n  \
             az identity federated-credential create --name {} --identity-name IDENTITY --resource-group RG --issuer {issuer} --subject {} --audience {}",
            azure.client_id,
            session.source,
            credential_name(&request.namespace, &request.service_account, issuer),
            request.subject(),
            a::AUDIENCE
        ))
    })?;
    let existing = session.federated_credentials(&application).await?;
    let (changes, mut warnings) = plan_credential(
        &application.id,
        &azure.client_id,
        &existing,
        issuer,
        &request.namespace,
        &request.service_account,
        request.overwrite,
    )?;

    let unlabelled =
        workload_labels::find(client, &request.namespace, &request.service_account).await?;
    let (mut workload_changes, workload_warnings) =
        workload_labels::plan(&request.namespace, &unlabelled, azure.label_workloads);
    warnings.extend(workload_warnings);
    let mut changes = changes;
    // Carried out after the ServiceAccount's annotation (the run sorts workload changes last):
    // pods rolled before it would be mutated without AZURE_CLIENT_ID.
    changes.append(&mut workload_changes);

    let mut annotations = BTreeMap::from([(a::CLIENT_ID.to_owned(), azure.client_id.clone())]);
    if let Some(tenant) = &azure.tenant_id {
        annotations.insert(a::TENANT_ID.to_owned(), tenant.clone());
    }
    let client_id = azure.client_id.clone();
    let plan = CloudPlan {
        mechanism: "azure-workload-identity",
        identity: azure.client_id.clone(),
        changes,
        annotations,
        warnings,
        is_bound: Box::new(move |pod| runs_with_client_id(pod, &client_id)),
    };
    Ok((
        Operator {
            azure: Some(session),
            ..Operator::default()
        },
        plan,
    ))
}

/// Refuses ids that are not GUIDs (checked before any cluster or cloud call).
pub fn validate(azure: &AzureRequest) -> Result<()> {
    let guid = Regex::new(a::GUID_PATTERN).expect("GUID pattern");
    if !guid.is_match(&azure.client_id) {
        return Err(Error::Usage(format!(
            "--azure-client-id {:?} is not a GUID: use the application's (or managed identity's) client id, e.g. `az ad app show --id APP --query appId -o tsv`",
            azure.client_id
        )));
    }
    if let Some(tenant) = &azure.tenant_id
        && !guid.is_match(tenant)
    {
        return Err(Error::Usage(format!(
            "--azure-tenant-id {tenant:?} is not a GUID (`az account show --query tenantId -o tsv`)"
        )));
    }
    Ok(())
}

/// Entra fetches the issuer's discovery document from the internet: an in-cluster issuer
/// (AKS without the OIDC issuer enabled reports `https://kubernetes.default.svc.cluster.local`)
/// or a non-HTTPS one can never be trusted.
fn refuse_unusable_issuer(issuer: &str) -> Result<()> {
    let host = issuer
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', ':']).next().unwrap_or_default());
    let in_cluster = host.is_some_and(|h| {
        h == "kubernetes"
            || h.starts_with("kubernetes.default")
            || h.ends_with(".svc")
            || h.ends_with(".cluster.local")
    });
    if host.is_none_or(str::is_empty) || in_cluster {
        return Err(Error::Refused(format!(
            "the cluster's service-account issuer {issuer} is not a public OIDC issuer, so Entra cannot verify its tokens.\n\
             On AKS, enable the OIDC issuer and workload identity first:\n  \
             az aks update -g RG -n CLUSTER --enable-oidc-issuer --enable-workload-identity\n\
             then read the issuer with:\n  \
             az aks show -g RG -n CLUSTER --query oidcIssuerProfile.issuerUrl -o tsv\n\
             (elsewhere: serve discovery and JWKS publicly and set --service-account-issuer to that URL)"
        )));
    }
    Ok(())
}

/// The credential change, if any. Matching is exact, as Entra's is (AADSTS700211 for an
/// issuer differing only by a trailing slash), so the issuer is used as the cluster reports it.
fn plan_credential(
    application: &str,
    client_id: &str,
    existing: &[FederatedCredential],
    issuer: &str,
    namespace: &str,
    service_account: &str,
    overwrite: bool,
) -> Result<(Vec<Change>, Vec<String>)> {
    let subject = format!("system:serviceaccount:{namespace}:{service_account}");
    let wanted = FederatedCredential {
        id: None,
        name: credential_name(namespace, service_account, issuer),
        issuer: issuer.to_owned(),
        subject: subject.clone(),
        audiences: vec![a::AUDIENCE.to_owned()],
        description: Some(format!(
            "Federated Service Account for {namespace}/{service_account}"
        )),
    };
    let mut warnings = Vec::new();
    for near in existing.iter().filter(|c| {
        c.subject == subject
            && c.issuer != issuer
            && c.issuer.trim_end_matches('/') == issuer.trim_end_matches('/')
    }) {
        warnings.push(format!(
            "federated credential {} trusts {} but the cluster's issuer is {issuer}: Entra compares issuers exactly (AADSTS700211), so it never matches; consider deleting it",
            near.name, near.issuer
        ));
    }
    let resource = |name: &str| format!("federated credential {name} of application {client_id}");
    let detail = format!(
        "issuer {issuer}, subject {subject}, audience {}",
        a::AUDIENCE
    );

    // Same issuer and subject: Graph allows one such credential per application.
    if let Some(current) = existing
        .iter()
        .find(|c| c.issuer == issuer && c.subject == subject)
    {
        if current.audiences == wanted.audiences {
            return Ok((Vec::new(), warnings));
        }
        if !overwrite {
            return Err(Error::Refused(format!(
                "{} already trusts {subject} from {issuer} but with audiences {:?} (pods present {}): pass --overwrite to replace them",
                resource(&current.name),
                current.audiences,
                a::AUDIENCE
            )));
        }
        return Ok((
            vec![update(
                application,
                client_id,
                current,
                &wanted,
                resource(&current.name),
                detail,
            )],
            warnings,
        ));
    }
    // Our name, but another issuer or subject (someone else's credential, or a changed issuer).
    if let Some(current) = existing.iter().find(|c| c.name == wanted.name) {
        if !overwrite {
            return Err(Error::Refused(format!(
                "{} exists with issuer {} and subject {}: pass --overwrite to point it at {issuer} and {subject}",
                resource(&current.name),
                current.issuer,
                current.subject
            )));
        }
        return Ok((
            vec![update(
                application,
                client_id,
                current,
                &wanted,
                resource(&current.name),
                detail,
            )],
            warnings,
        ));
    }
    if existing.len() >= MAX_CREDENTIALS_PER_APPLICATION {
        return Err(Error::Refused(format!(
            "application {client_id} already has {} federated identity credentials, Entra's maximum: delete an unused one (`az ad app federated-credential list --id {client_id}`), or bind another application",
            existing.len()
        )));
    }
    let change = Change {
        system: System::Azure,
        action: "create",
        resource: resource(&wanted.name),
        detail,
        before: None,
        after: Some(json!(wanted)),
        status: ChangeStatus::Planned,
        operation: Operation::AzureGraph(GraphOperation::CreateFederatedCredential {
            application: application.to_owned(),
            client_id: client_id.to_owned(),
            credential: Box::new(wanted),
        }),
    };
    Ok((vec![change], warnings))
}

fn update(
    application: &str,
    client_id: &str,
    current: &FederatedCredential,
    wanted: &FederatedCredential,
    resource: String,
    detail: String,
) -> Change {
    let after = FederatedCredential {
        id: current.id.clone(),
        name: current.name.clone(),
        description: current.description.clone(),
        ..wanted.clone()
    };
    Change {
        system: System::Azure,
        action: "update",
        resource,
        detail,
        before: Some(json!(current)),
        after: Some(json!(after)),
        status: ChangeStatus::Planned,
        operation: Operation::AzureGraph(GraphOperation::UpdateFederatedCredential {
            application: application.to_owned(),
            client_id: client_id.to_owned(),
            credential_id: current.id.clone().unwrap_or_else(|| current.name.clone()),
            before: Box::new(current.clone()),
            after: Box::new(after),
        }),
    }
}

/// Does a container of `pod` already run with this client id (the webhook mutated it after the
/// annotation, or it presets the same id)?
fn runs_with_client_id(pod: &Pod, client_id: &str) -> bool {
    pod.spec.iter().any(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.env.as_ref())
            .flatten()
            .any(|e| {
                e.name == a::ENV_CLIENT_ID
                    && e.value
                        .as_deref()
                        .is_some_and(|v| v.eq_ignore_ascii_case(client_id))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "obj-id";
    const CID: &str = "11111111-2222-3333-4444-555555555555";
    const ISSUER: &str = "https://oidc.example/cluster/";

    fn credential(name: &str, issuer: &str, subject: &str, audience: &str) -> FederatedCredential {
        FederatedCredential {
            id: Some(format!("id-{name}")),
            name: name.into(),
            issuer: issuer.into(),
            subject: subject.into(),
            audiences: vec![audience.into()],
            description: None,
        }
    }

    fn plan_for(
        existing: &[FederatedCredential],
        overwrite: bool,
    ) -> Result<(Vec<Change>, Vec<String>)> {
        plan_credential(APP, CID, existing, ISSUER, "default", "aks-sa", overwrite)
    }

    #[test]
    fn a_new_binding_creates_one_credential_named_as_azwi_does() {
        let (changes, warnings) = plan_for(&[], false).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(changes.len(), 1);
        let Operation::AzureGraph(GraphOperation::CreateFederatedCredential { credential, .. }) =
            &changes[0].operation
        else {
            panic!("not a create: {:?}", changes[0].operation);
        };
        assert_eq!(
            credential.name,
            credential_name("default", "aks-sa", ISSUER)
        );
        assert_eq!(
            credential.issuer, ISSUER,
            "the issuer exactly as the cluster reports it"
        );
        assert_eq!(credential.subject, "system:serviceaccount:default:aks-sa");
        assert_eq!(credential.audiences, [a::AUDIENCE]);
        assert!(
            changes[0]
                .undo_hint()
                .starts_with("az ad app federated-credential delete --id 1111")
        );
    }

    #[test]
    fn an_existing_matching_credential_is_a_no_op_whatever_its_name() {
        let existing = [credential(
            "hand-made",
            ISSUER,
            "system:serviceaccount:default:aks-sa",
            a::AUDIENCE,
        )];
        let (changes, _) = plan_for(&existing, false).unwrap();
        assert!(changes.is_empty());
    }

    #[test]
    fn a_trailing_slash_variant_does_not_count_and_is_named() {
        let existing = [credential(
            "old",
            ISSUER.trim_end_matches('/'),
            "system:serviceaccount:default:aks-sa",
            a::AUDIENCE,
        )];
        let (changes, warnings) = plan_for(&existing, false).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, "create");
        assert!(warnings[0].contains("AADSTS700211"), "{}", warnings[0]);
    }

    #[test]
    fn a_different_audience_or_a_taken_name_needs_overwrite_then_patches() {
        let wrong_audience = [credential(
            "x",
            ISSUER,
            "system:serviceaccount:default:aks-sa",
            "sts.amazonaws.com",
        )];
        let err = plan_for(&wrong_audience, false).unwrap_err().to_string();
        assert!(err.contains("--overwrite"), "{err}");
        let (changes, _) = plan_for(&wrong_audience, true).unwrap();
        assert_eq!(changes[0].action, "update");
        let Operation::AzureGraph(GraphOperation::UpdateFederatedCredential {
            credential_id,
            after,
            ..
        }) = &changes[0].operation
        else {
            panic!("not an update");
        };
        assert_eq!(credential_id, "id-x");
        assert_eq!(after.audiences, [a::AUDIENCE]);
        assert_eq!(after.name, "x", "names are immutable in Graph");

        let ours = credential_name("default", "aks-sa", ISSUER);
        let taken = [credential(
            &ours,
            "https://elsewhere/",
            "system:serviceaccount:o:p",
            a::AUDIENCE,
        )];
        assert!(plan_for(&taken, false).is_err());
        let (changes, _) = plan_for(&taken, true).unwrap();
        assert_eq!(changes[0].action, "update");
        assert_eq!(
            changes[0].before.as_ref().unwrap()["issuer"],
            "https://elsewhere/"
        );
    }

    #[test]
    fn the_twenty_first_credential_is_refused() {
        let full: Vec<_> = (0..20)
            .map(|i| {
                credential(
                    &format!("c{i}"),
                    ISSUER,
                    &format!("system:serviceaccount:default:other{i}"),
                    a::AUDIENCE,
                )
            })
            .collect();
        let err = plan_for(&full, false).unwrap_err().to_string();
        assert!(err.contains("maximum"), "{err}");
    }

    #[test]
    fn in_cluster_and_plain_http_issuers_are_refused_with_the_fix() {
        let err = refuse_unusable_issuer("https://kubernetes.default.svc.cluster.local")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--enable-oidc-issuer --enable-workload-identity"),
            "{err}"
        );
        assert!(err.contains("oidcIssuerProfile.issuerUrl"), "{err}");
        assert!(refuse_unusable_issuer("https://kubernetes.default.svc").is_err());
        assert!(refuse_unusable_issuer("http://oidc.example/").is_err());
        assert!(refuse_unusable_issuer("https://eastus.oic.prod-aks.azure.com/t/c/").is_ok());
        assert!(refuse_unusable_issuer("https://10.213.0.1:8443/issuer").is_ok());
    }

    #[test]
    fn client_and_tenant_ids_must_be_guids() {
        let mut request = AzureRequest {
            client_id: "aks-pod-identity-client-id".into(),
            tenant_id: None,
            label_workloads: false,
        };
        assert!(validate(&request).is_err());
        request.client_id = CID.into();
        assert!(validate(&request).is_ok());
        request.tenant_id = Some("contoso".into());
        assert!(validate(&request).is_err());
    }

    #[test]
    fn bound_pods_carry_the_client_id() {
        let pod: Pod = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "app", "env": [{"name": "AZURE_CLIENT_ID", "value": CID}]}
        ]}}))
        .unwrap();
        assert!(runs_with_client_id(&pod, CID));
        assert!(!runs_with_client_id(
            &pod,
            "99999999-2222-3333-4444-555555555555"
        ));
    }
}
