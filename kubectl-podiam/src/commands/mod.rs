//! Glue from the CLI to the judging flow. Commands never reach into a mechanism.

pub mod bind;
pub mod verify;
pub mod whoami;

use crate::cli::{CloudFlags, GlobalFlags};
use crate::exchange::aws_config::AwsTarget;
use crate::exchange::azure_config::AzureTarget;
use crate::kube::client::ConnectionFlags;
use crate::options::GcpTarget;

pub fn connection_flags(g: &GlobalFlags) -> ConnectionFlags {
    ConnectionFlags {
        kubeconfig: g.kubeconfig.clone(),
        context: g.context.clone(),
        cluster: g.cluster.clone(),
        user: g.user.clone(),
        namespace: g.namespace.clone(),
        request_timeout: g.request_timeout.filter(|d| !d.is_zero()),
        impersonate: g.impersonate.clone(),
        impersonate_groups: g.impersonate_groups.clone(),
    }
}

pub fn aws_target(g: &GlobalFlags, cloud: &CloudFlags) -> AwsTarget {
    AwsTarget {
        endpoint_url: cloud.aws_endpoint_url.clone(),
        region: cloud.region.clone(),
        timeout: g.request_timeout.filter(|d| !d.is_zero()),
        ..Default::default()
    }
}

pub fn eks_cluster_name(g: &GlobalFlags, cloud: &CloudFlags) -> Option<String> {
    crate::kube::eks_cluster::resolve(
        cloud.eks_cluster_name.as_deref(),
        g.kubeconfig.as_deref(),
        g.context.as_deref(),
    )
}

pub fn rbac_options(g: &GlobalFlags) -> crate::rbac::RbacOptions {
    crate::rbac::RbacOptions {
        operator_impersonates: g.impersonate.is_some() || !g.impersonate_groups.is_empty(),
        ..Default::default()
    }
}

pub fn gcp_target(g: &GlobalFlags, cloud: &CloudFlags) -> GcpTarget {
    GcpTarget {
        gcs_endpoint_url: cloud.gcs_endpoint_url.clone(),
        tokeninfo_url: cloud.gcp_tokeninfo_url.clone(),
        timeout: g.request_timeout.filter(|d| !d.is_zero()),
    }
}

pub fn azure_target(g: &GlobalFlags, cloud: &CloudFlags) -> AzureTarget {
    AzureTarget {
        authority_host: cloud.azure_authority_host.clone(),
        blob_endpoint: cloud.azure_blob_endpoint.clone(),
        timeout: g.request_timeout.filter(|d| !d.is_zero()),
    }
}
