//! `bind --pod-identity --aws-role`: EKS Pod Identity. The role's trust policy must let EKS
//! (`pods.eks.amazonaws.com`) AssumeRole and TagSession, and the cluster gets an association
//! (namespace, ServiceAccount → role) through the EKS API. The ServiceAccount needs no
//! annotation, only to exist: the webhook injects the agent's credentials env into new pods of
//! associated ServiceAccounts.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use serde_json::{Value, json};

use super::aws_role::{self, RoleRequest, WantedTrust, cloud_error};
use super::plan::{Change, ChangeStatus, Operation, System};
use super::{BindRequest, CloudPlan, Operator};
use crate::cloud::aws::irsa;
use crate::cloud::aws::pod_identity as a;
use crate::error::{Error, Result};
use crate::exchange::CloudError;
use crate::exchange::aws_config::AwsTarget;
use crate::exchange::aws_eks::{self, Association};

/// What the user asked for with `--pod-identity --aws-role`.
#[derive(Debug, Clone)]
pub struct PodIdentityRequest {
    pub role: RoleRequest,
    /// `--eks-cluster-name`, `$PODIAM_EKS_CLUSTER_NAME`, or the kubeconfig's EKS context.
    pub cluster_name: String,
}

/// One EKS call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum EksOperation {
    CreateAssociation {
        cluster: String,
        namespace: String,
        service_account: String,
        role_arn: String,
    },
    UpdateAssociation {
        cluster: String,
        association_id: String,
        role_arn: String,
        previous_role_arn: String,
    },
}

impl EksOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            // The id is EKS's to choose: look it up by ServiceAccount.
            EksOperation::CreateAssociation {
                cluster,
                namespace,
                service_account,
                ..
            } => format!(
                "aws eks delete-pod-identity-association --cluster-name {cluster} --association-id \
                 $(aws eks list-pod-identity-associations --cluster-name {cluster} --namespace {namespace} \
                 --service-account {service_account} --query 'associations[0].associationId' --output text)"
            ),
            EksOperation::UpdateAssociation {
                cluster,
                association_id,
                previous_role_arn,
                ..
            } => format!(
                "aws eks update-pod-identity-association --cluster-name {cluster} --association-id {association_id} --role-arn {previous_role_arn}"
            ),
        }
    }
}

/// The statement EKS needs: `{"Service": "pods.eks.amazonaws.com"}` with both actions.
pub fn trust_statement() -> Value {
    json!({
        "Effect": "Allow",
        "Principal": {"Service": a::TRUST_PRINCIPAL},
        "Action": a::TRUST_ACTIONS,
    })
}

fn lists(value: Option<&Value>, wanted: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(wanted)),
        _ => false,
    }
}

/// Allow statements naming the EKS service principal.
fn eks_statements(statements: &[Value]) -> impl Iterator<Item = &Value> {
    statements.iter().filter(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && lists(s.pointer("/Principal/Service"), a::TRUST_PRINCIPAL)
    })
}

fn allows_action(statement: &Value, action: &str) -> bool {
    ["*", "sts:*", action]
        .iter()
        .any(|a| lists(statement.get("Action"), a))
}

/// Whether the trust policy's statements already let EKS AssumeRole and TagSession (possibly
/// across statements). A statement with conditions counts: the operator restricted it on
/// purpose, and adding an unconditional one would widen the trust (see [`conditioned`]).
pub fn grants_pod_identity(statements: &[Value]) -> bool {
    a::TRUST_ACTIONS
        .iter()
        .all(|action| eks_statements(statements).any(|s| allows_action(s, action)))
}

/// The conditions on the statements that let EKS in, which bind cannot evaluate.
fn conditioned(statements: &[Value]) -> Vec<String> {
    eks_statements(statements)
        .filter_map(|s| {
            s.get("Condition")
                .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
        })
        .map(Value::to_string)
        .collect()
}

fn wanted_trust() -> WantedTrust {
    WantedTrust {
        statement: trust_statement(),
        granted_by: Box::new(grants_pod_identity),
        trusted: format!("{} ({})", a::TRUST_PRINCIPAL, a::TRUST_ACTIONS.join(", ")),
    }
}

/// The association change: none when it already names the role, an update only with
/// `--overwrite` when it names another one.
pub fn plan_association(
    cluster: &str,
    namespace: &str,
    service_account: &str,
    existing: Option<&Association>,
    role_arn: &str,
    overwrite: bool,
) -> Result<Option<Change>> {
    let resource = format!("EKS Pod Identity association {cluster}/{namespace}/{service_account}");
    match existing {
        None => Ok(Some(Change {
            system: System::Aws,
            action: "create",
            resource,
            detail: format!("pods of {namespace}/{service_account} get role {role_arn}"),
            before: None,
            after: Some(json!({
                "clusterName": cluster,
                "namespace": namespace,
                "serviceAccount": service_account,
                "roleArn": role_arn,
            })),
            status: ChangeStatus::Planned,
            operation: Operation::AwsEks(EksOperation::CreateAssociation {
                cluster: cluster.to_owned(),
                namespace: namespace.to_owned(),
                service_account: service_account.to_owned(),
                role_arn: role_arn.to_owned(),
            }),
        })),
        Some(current) if current.role_arn == role_arn => Ok(None),
        Some(current) if !overwrite => Err(Error::Refused(format!(
            "{resource} ({}) already gives role {}: pass --overwrite to point it at {role_arn}",
            current.id, current.role_arn
        ))),
        Some(current) => Ok(Some(Change {
            system: System::Aws,
            action: "update",
            resource,
            detail: format!(
                "association {}: role {} → {role_arn}",
                current.id, current.role_arn
            ),
            before: Some(json!({"associationId": current.id, "roleArn": current.role_arn})),
            after: Some(json!({"associationId": current.id, "roleArn": role_arn})),
            status: ChangeStatus::Planned,
            operation: Operation::AwsEks(EksOperation::UpdateAssociation {
                cluster: cluster.to_owned(),
                association_id: current.id.clone(),
                role_arn: role_arn.to_owned(),
                previous_role_arn: current.role_arn.clone(),
            }),
        })),
    }
}

pub async fn plan(
    client: &kube::Client,
    aws: &AwsTarget,
    pod_identity: &PodIdentityRequest,
    request: &BindRequest,
) -> Result<(Operator, CloudPlan)> {
    if request.wildcard() {
        return Err(Error::Usage(format!(
            "{}: an EKS Pod Identity association names one namespace and one ServiceAccount; wildcards are for IRSA only",
            request.subject()
        )));
    }
    let config = aws.operator().await.ok_or_else(|| {
        Error::Cloud(
            "no AWS credentials in the standard chain (environment, profile, SSO): bind needs them to read and change IAM and EKS"
                .into(),
        )
    })?;
    let cluster = &pod_identity.cluster_name;
    let (namespace, service_account) = (&request.namespace, &request.service_account);
    // First: a wrong cluster name is the likeliest mistake, and nothing else matters then.
    let existing = aws_eks::find_association(&config, cluster, namespace, service_account)
        .await
        .map_err(|e| match e {
            CloudError::Rejected { code, message } if code == "ResourceNotFoundException" => {
                Error::Usage(format!(
                    "EKS cluster {cluster} was not found ({message}): give the cluster's name with --eks-cluster-name (and its --region)"
                ))
            }
            e => cloud_error(
                &format!("eks:ListPodIdentityAssociations in cluster {cluster}"),
                e,
            ),
        })?;

    let wanted = wanted_trust();
    let (account, name) = aws_role::account_and_name(&config, &pod_identity.role).await?;
    let (role, mut changes) =
        aws_role::plan_role(&config, &pod_identity.role, &account, &name, &wanted).await?;
    let mut warnings = Vec::new();
    let trust_changed = changes
        .iter()
        .any(|c| matches!(&c.operation, Operation::AwsIam(_)) && c.action != "attach");
    if !trust_changed {
        // The role exists and EKS is already let in: say when conditions bind cannot judge apply.
        if let Ok(policy) = crate::exchange::aws_iam::trust_policy(&config, &role.name).await {
            let conditions = conditioned(&aws_role::statements(&policy));
            if !conditions.is_empty() {
                warnings.push(format!(
                    "role {} lets {} in only under conditions ({}); bind left them as they are: if EKS Auth refuses the role, check they allow this cluster and ServiceAccount",
                    role.name,
                    a::TRUST_PRINCIPAL,
                    conditions.join("; ")
                ));
            }
        }
    }
    changes.extend(plan_association(
        cluster,
        namespace,
        service_account,
        existing.as_ref(),
        &role.arn,
        request.overwrite,
    )?);
    if let Some(warning) = irsa_also_configured(client, namespace, service_account).await? {
        warnings.push(warning);
    }
    let plan = CloudPlan {
        mechanism: "aws-pod-identity",
        identity: role.arn,
        changes,
        annotations: Default::default(),
        warnings,
        is_bound: Box::new(runs_with_pod_identity),
    };
    Ok((
        Operator {
            aws: Some(config),
            ..Operator::default()
        },
        plan,
    ))
}

/// IRSA on the same ServiceAccount: which one pods get (see the `aws.precedence` check).
async fn irsa_also_configured(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
) -> Result<Option<String>> {
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .get_opt(service_account)
        .await
        .map_err(|e| {
            Error::from_kube(
                format!("get ServiceAccount {namespace}/{service_account}"),
                e,
            )
        })?;
    let role = sa
        .and_then(|sa| sa.metadata.annotations)
        .and_then(|mut annotations| annotations.remove(irsa::ROLE_ARN));
    Ok(role.map(|role| {
        format!(
            "ServiceAccount {namespace}/{service_account} is also annotated for IRSA ({}={role}). \
             For pods created from now on the webhook injects Pod Identity only (an association wins), \
             so their SDK uses Pod Identity; a container that sets {} and {} itself still uses IRSA \
             (the SDK chain tries web identity before container credentials). Remove the annotation \
             once nothing needs IRSA",
            irsa::ROLE_ARN,
            irsa::ENV_ROLE_ARN,
            irsa::ENV_TOKEN_FILE
        )
    }))
}

/// Does a container of `pod` already get the agent's credentials (the webhook mutated it
/// after the association)?
fn runs_with_pod_identity(pod: &Pod) -> bool {
    pod.spec.iter().any(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.env.as_ref())
            .flatten()
            .any(|e| e.name == a::ENV_FULL_URI)
    })
}

/// Carries out one EKS change.
pub async fn apply(config: &aws_config::SdkConfig, operation: &EksOperation) -> Result<()> {
    match operation {
        EksOperation::CreateAssociation {
            cluster,
            namespace,
            service_account,
            role_arn,
        } => aws_eks::create_association(config, cluster, namespace, service_account, role_arn)
            .await
            .map(|_| ())
            .map_err(|e| {
                cloud_error(
                    &format!(
                        "eks:CreatePodIdentityAssociation {cluster}/{namespace}/{service_account}"
                    ),
                    e,
                )
            }),
        EksOperation::UpdateAssociation {
            cluster,
            association_id,
            role_arn,
            ..
        } => aws_eks::update_association(config, cluster, association_id, role_arn)
            .await
            .map_err(|e| {
                cloud_error(
                    &format!("eks:UpdatePodIdentityAssociation {cluster} {association_id}"),
                    e,
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/my-pod-role";

    #[test]
    fn the_eks_statement_is_recognised_and_near_misses_are_not() {
        assert!(grants_pod_identity(&[trust_statement()]));
        // Both actions are needed, possibly from two statements.
        let assume_only = json!({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"});
        assert!(!grants_pod_identity(std::slice::from_ref(&assume_only)));
        let tag_only = json!({"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "pods.eks.amazonaws.com"]}, "Action": ["sts:TagSession"]});
        assert!(grants_pod_identity(&[assume_only, tag_only]));
        // Another service, a Deny, or an IRSA statement do not let EKS in.
        let ec2 = json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]});
        assert!(!grants_pod_identity(&[ec2]));
        let mut deny = trust_statement();
        deny["Effect"] = json!("Deny");
        assert!(!grants_pod_identity(&[deny]));
        let irsa = aws_role::irsa_statement(
            "arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X",
            "oidc.example/id/X",
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        assert!(!grants_pod_identity(&[irsa]));
        let wildcard = json!({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:*"});
        assert!(grants_pod_identity(&[wildcard]));
    }

    #[test]
    fn conditions_on_the_eks_statement_are_reported_not_widened() {
        let mut statement = trust_statement();
        assert!(conditioned(std::slice::from_ref(&statement)).is_empty());
        statement["Condition"] = json!({"StringEquals": {"aws:SourceAccount": "123456789012"}});
        let statements = [statement];
        assert!(grants_pod_identity(&statements));
        assert_eq!(
            conditioned(&statements),
            vec![r#"{"StringEquals":{"aws:SourceAccount":"123456789012"}}"#.to_owned()]
        );
    }

    #[test]
    fn association_created_kept_or_replaced_only_with_overwrite() {
        let created = plan_association("prod", "apps", "reader", None, ROLE, false)
            .unwrap()
            .expect("a create");
        assert_eq!(created.action, "create");
        assert_eq!(created.after.as_ref().unwrap()["roleArn"], ROLE);
        assert!(created.undo_hint().starts_with(
            "aws eks delete-pod-identity-association --cluster-name prod --association-id $(aws eks list-pod-identity-associations --cluster-name prod --namespace apps --service-account reader"
        ));

        let same = Association {
            id: "a-0123456789abcdefg".into(),
            role_arn: ROLE.into(),
            target_role_arn: None,
        };
        assert!(
            plan_association("prod", "apps", "reader", Some(&same), ROLE, false)
                .unwrap()
                .is_none()
        );

        let other = Association {
            id: "a-0123456789abcdefg".into(),
            role_arn: "arn:aws:iam::123456789012:role/old".into(),
            target_role_arn: None,
        };
        let refused =
            plan_association("prod", "apps", "reader", Some(&other), ROLE, false).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("--overwrite"), "{message}");
        assert!(message.contains("role/old"), "{message}");

        let update = plan_association("prod", "apps", "reader", Some(&other), ROLE, true)
            .unwrap()
            .expect("an update");
        assert_eq!(update.action, "update");
        assert_eq!(
            update.undo_hint(),
            "aws eks update-pod-identity-association --cluster-name prod --association-id a-0123456789abcdefg --role-arn arn:aws:iam::123456789012:role/old"
        );
    }

    #[test]
    fn pods_with_the_agent_env_are_bound() {
        let pod = |env: &str| -> Pod {
            serde_json::from_value(json!({
                "spec": {"containers": [{"name": "app", "env": [{"name": env, "value": "x"}]}]}
            }))
            .unwrap()
        };
        assert!(runs_with_pod_identity(&pod(a::ENV_FULL_URI)));
        assert!(!runs_with_pod_identity(&pod(irsa::ENV_ROLE_ARN)));
    }
}
