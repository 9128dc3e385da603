//! Which EKS cluster this is: EKS Auth needs the cluster name next to the token.
//!
//! Order: `--eks-cluster-name`, then `$PODIAM_EKS_CLUSTER_NAME`, then the kubeconfig: the
//! context (or its cluster entry) named as `aws eks update-kubeconfig` writes it
//! (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`) or as eksctl does (`USER@NAME.REGION.eksctl.io`).

use std::path::Path;

use kube::config::Kubeconfig;

use crate::cloud::aws::pod_identity::ENV_CLUSTER_NAME;

pub fn resolve(
    flag: Option<&str>,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Option<String> {
    if let Some(name) = flag.filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    if let Some(name) = std::env::var(ENV_CLUSTER_NAME)
        .ok()
        .filter(|n| !n.is_empty())
    {
        return Some(name);
    }
    let config = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    let context_name = context
        .map(str::to_string)
        .or_else(|| config.current_context.clone())?;
    let cluster_entry = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    std::iter::once(context_name)
        .chain(cluster_entry)
        .find_map(|n| from_name(&n))
}

/// The cluster name inside an EKS ARN or an eksctl context name.
pub fn from_name(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("arn:aws")
        && rest.contains(":eks:")
    {
        return rest
            .rsplit_once(":cluster/")
            .map(|(_, n)| n.to_string())
            .filter(|n| !n.is_empty());
    }
    let host = name.rsplit('@').next()?;
    let base = host.strip_suffix(".eksctl.io")?;
    // NAME.REGION: the region has no dots, the name may not either.
    base.rsplit_once('.')
        .map(|(n, _)| n.to_string())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_eks_and_eksctl_contexts() {
        assert_eq!(
            from_name("arn:aws:eks:eu-west-1:123456789012:cluster/prod"),
            Some("prod".into())
        );
        assert_eq!(
            from_name("admin@dev-cluster.us-east-1.eksctl.io"),
            Some("dev-cluster".into())
        );
        assert_eq!(from_name("kind-kind"), None);
        assert_eq!(from_name("arn:aws:iam::1:role/x"), None);
    }
}
