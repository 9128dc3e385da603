//! The cloud SDK inside the image: which AWS, Azure and Google SDK releases the container
//! ships (Python dist-info, Node package.json, Java jar names, Go build info of PID 1), read
//! through the pod's open session with a bounded listing — no filesystem walk — and judged
//! against the oldest releases that support the pod's mechanism (docs/sdk-versions.md).

pub mod check;
pub mod go_buildinfo;
pub mod java;
pub mod minimums;
pub mod node;
pub mod python;
pub mod scan;
pub mod version;

use crate::evidence::RuntimeEnv;
use crate::model::{Check, MechanismId};
use minimums::Use;

/// `sdk.version` for a live pod with an open session; nothing offline, for an image without a
/// shell, or for a pod wired to no cloud identity.
pub async fn checks(mechanism: MechanismId, env: Option<&RuntimeEnv>) -> Vec<Check> {
    let Some(env) = env else {
        return Vec::new();
    };
    let what = match mechanism {
        MechanismId::AwsIrsa => Use::IrsaWebIdentity,
        MechanismId::AwsPodIdentity => Use::PodIdentity,
        MechanismId::AzureWorkloadIdentity => Use::AzureWorkloadIdentity,
        // Google's default credentials read this file before the metadata server.
        MechanismId::GcpWorkloadIdentity
            if env.get(crate::cloud::gcp::ENV_CREDENTIALS).is_some() =>
        {
            Use::GcpExternalAccount
        }
        MechanismId::GcpWorkloadIdentity => Use::GkeMetadataServer,
        MechanismId::StaticCredentials | MechanismId::None => return Vec::new(),
    };
    let Some(session) = env.session() else {
        return Vec::new();
    };
    match scan::scan(session).await {
        Ok(found) => {
            tracing::debug!(?found, "SDKs in the image");
            vec![check::judge(what, &found)]
        }
        Err(e) => vec![Check::skip(
            check::ID,
            format!("the image could not be inspected for SDK versions: {e}"),
        )],
    }
}

#[cfg(test)]
mod tests {
    /// docs/sdk-versions.md states every minimum the code applies.
    #[test]
    fn the_documentation_lists_every_minimum() {
        let docs = include_str!("../../../docs/sdk-versions.md");
        for (what, package, version) in super::minimums::table() {
            let row = docs.lines().find(|l| {
                l.contains(&format!("| {} |", package.name())) && l.contains(what.describe())
            });
            let row = row.unwrap_or_else(|| {
                panic!(
                    "docs/sdk-versions.md has no row for {} / {}",
                    what.describe(),
                    package.name()
                )
            });
            assert!(
                row.contains(&format!("| {version} |")),
                "docs/sdk-versions.md gives another minimum for {} / {}: {row}",
                what.describe(),
                package.name()
            );
        }
    }
}
