//! EKS Pod Identity with a `targetRoleArn` (cross-account chaining): EKS Auth assumes the
//! association's role as `pods.eks.amazonaws.com`, then, as that role, the target role. An
//! AccessDeniedException does not say which hop refused: both trust policies are read with
//! the operator's credentials and evaluated to name it.

use crate::cloud::aws::pod_identity as a;
use crate::exchange::{aws_account, aws_eks, aws_iam, aws_sts};
use crate::mechanisms::aws_irsa::iam_condition::ContextKeys;
use crate::mechanisms::aws_irsa::iam_policy::{self, Caller, Decision, RoleSession};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;

/// Which hop of a chained association refused, as far as the trust policies tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// The association's role does not trust `pods.eks.amazonaws.com` (why).
    First { role: String, why: String },
    /// The target's trust policy does not admit the association's role (why).
    Target {
        role: String,
        target: String,
        why: String,
    },
    /// Both trust policies allow, or one could not be read/evaluated (why).
    Unknown {
        role: String,
        target: String,
        why: String,
    },
}

/// `None` when the ServiceAccount's association has no target (or cannot be looked up): then
/// the only hop is the association's role.
pub async fn diagnose(
    pod: &PodSubject,
    options: &VerifyOptions,
    operator: &aws_config::SdkConfig,
    cluster: &str,
) -> Option<Hop> {
    let found = aws_eks::find_association(
        operator,
        cluster,
        &pod.namespace,
        pod.service_account_name(),
    )
    .await
    .ok()??;
    let target = found.target_role_arn?;
    let role = found.role_arn;
    match first_hop(operator, &role).await {
        Ok(None) => {}
        Ok(Some(why)) => return Some(Hop::First { role, why }),
        Err(why) => return Some(Hop::Unknown { role, target, why }),
    }
    Some(match target_hop(options, &role, &target).await {
        Ok(None) => Hop::Unknown {
            role,
            target,
            why: "both trust policies allow the chain as podiam reads them".into(),
        },
        Ok(Some(why)) => Hop::Target { role, target, why },
        Err(why) => Hop::Unknown { role, target, why },
    })
}

/// The association's role, asked by EKS Auth: `Ok(Some(why))` when its trust refuses.
async fn first_hop(operator: &aws_config::SdkConfig, role: &str) -> Result<Option<String>, String> {
    let name = aws_sts::role_name(role).ok_or_else(|| format!("{role} is not a role ARN"))?;
    let policy = aws_iam::trust_policy(operator, name)
        .await
        .map_err(|e| format!("IAM GetRole {name}: {e}"))?;
    let context = ContextKeys::new();
    let refused = iam_policy::evaluate_pod_identity(&policy, &context, &a::TRUST_ACTIONS)
        .into_iter()
        .find(|(_, evaluation)| !evaluation.decision.allows())
        .map(|(action, evaluation)| format!("{action}: {}", refusal(&evaluation.decision)));
    Ok(refused)
}

/// The target role, asked by a session of the association's role: `Ok(Some(why))` when its
/// trust refuses. Read with credentials for the target's account.
async fn target_hop(
    options: &VerifyOptions,
    role: &str,
    target: &str,
) -> Result<Option<String>, String> {
    let (Some(account), Some(target_name)) = (aws_sts::account(target), aws_sts::role_name(target))
    else {
        return Err(format!("{target} is not a role ARN"));
    };
    let (Some(source_account), Some(source_name)) =
        (aws_sts::account(role), aws_sts::role_name(role))
    else {
        return Err(format!("{role} is not a role ARN"));
    };
    let config = match aws_account::for_account(&options.aws, account).await {
        aws_account::AccountCredentials::Ready { config, .. } => *config,
        aws_account::AccountCredentials::Missing(why) => return Err(why),
    };
    let policy = aws_iam::trust_policy(&config, target_name)
        .await
        .map_err(|e| format!("IAM GetRole {target_name}: {e}"))?;
    // EKS Auth's session name is its own; the role ARN is what a trust policy names.
    let session_arn = format!("arn:aws:sts::{source_account}:assumed-role/{source_name}/eks");
    let context = ContextKeys::new();
    let request = iam_policy::Request {
        caller: Caller::RoleSession(RoleSession {
            account: source_account,
            role_name: source_name,
            session_arn: &session_arn,
            assuming_itself: role == target,
        }),
        action: "sts:AssumeRole",
        context: &context,
    };
    let decision = iam_policy::evaluate(&policy, &request).decision;
    Ok((!decision.allows()).then(|| refusal(&decision)))
}

fn refusal(decision: &Decision) -> String {
    match decision {
        Decision::ExplicitDeny(statement) => format!("statement {statement} denies it explicitly"),
        Decision::ImplicitDeny => "no statement allows it".to_string(),
        Decision::Unreadable(problem) => format!("podiam cannot evaluate it: {problem}"),
        Decision::Allowed(_) => "it is allowed".to_string(),
    }
}
