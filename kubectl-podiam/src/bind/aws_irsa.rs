//! `bind --aws-role`: IRSA. The role's trust policy gets the ServiceAccount (eksctl's
//! statement, see `aws_role`), and the ServiceAccount gets the role annotation the EKS webhook
//! reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::aws_role::{self, RoleRequest};
use super::{BindRequest, CloudPlan, Operator};
use crate::cloud::aws::irsa;
use crate::error::{Error, Result};
use crate::exchange::aws_config::AwsTarget;

pub async fn plan(
    aws: &AwsTarget,
    role_request: &RoleRequest,
    issuer: &str,
    request: &BindRequest,
) -> Result<(Operator, CloudPlan)> {
    let config = aws.operator().await.ok_or_else(|| {
        Error::Cloud(
            "no AWS credentials in the standard chain (environment, profile, SSO): bind needs them to read and change IAM"
                .into(),
        )
    })?;
    let (role, changes) = aws_role::plan(&config, role_request, issuer, &request.subject()).await?;
    let mut annotations = BTreeMap::from([(irsa::ROLE_ARN.to_owned(), role.arn.clone())]);
    if role_request.audience != irsa::DEFAULT_AUDIENCE {
        annotations.insert(irsa::AUDIENCE.to_owned(), role_request.audience.clone());
    }
    let role_arn = role.arn.clone();
    let plan = CloudPlan {
        mechanism: "aws-irsa",
        identity: role.arn,
        changes,
        annotations,
        warnings: Vec::new(),
        is_bound: Box::new(move |pod| runs_with_role(pod, &role_arn)),
    };
    Ok((
        Operator {
            aws: Some(config),
            ..Operator::default()
        },
        plan,
    ))
}

/// Does a container of `pod` already run with this role (the webhook mutated it after the
/// annotation, or it presets the same role)?
fn runs_with_role(pod: &Pod, role_arn: &str) -> bool {
    pod.spec.iter().any(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.env.as_ref())
            .flatten()
            .any(|e| e.name == irsa::ENV_ROLE_ARN && e.value.as_deref() == Some(role_arn))
    })
}
