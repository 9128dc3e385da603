//! `sdk.version`: the SDK packages the image ships against the oldest releases that support
//! the pod's mechanism (docs/sdk-versions.md).

use super::minimums::{Package, Use, minimum};
use super::scan::Found;
use super::version;
use crate::model::Check;

pub const ID: &str = "sdk.version";

/// Where the scan looks, for the message when it finds nothing.
const PLACES: &str = "Python site-packages/dist-packages, node_modules, jars under /app, /opt/app, /deployments, /usr/share/java and the working directory, the Go build info of PID 1";

/// The check for `what`, from everything the scan found.
pub fn judge(what: Use, found: &[Found]) -> Check {
    let cloud = what.cloud();
    let relevant: Vec<&Found> = found
        .iter()
        .filter(|f| f.package.cloud() == cloud)
        .collect();
    if relevant.is_empty() {
        return not_found(format!(
            "no {} SDK found in the image's usual places ({PLACES}); its version is not known",
            cloud.name()
        ));
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for f in &relevant {
        if let Some((min, source)) = minimum(what, f.package)
            && version::below(&f.version, min)
        {
            problems.push(format!(
                "{} {} ({}) is older than {min}, the first release that supports {}",
                f.package.name(),
                f.version,
                f.location,
                what.describe()
            ));
            fixes.push(format!("{} to {min} or later ({source})", f.package.name()));
        }
    }
    // Java v2 reads the web identity token only with the sts module on the classpath.
    let has = |p: Package| relevant.iter().any(|f| f.package == p);
    if what == Use::IrsaWebIdentity && has(Package::AwsJavaV2Core) && !has(Package::AwsJavaV2Sts) {
        problems.push(format!(
            "{} is there without {}: the Java v2 SDK assumes the IRSA role only with the sts module on the classpath",
            Package::AwsJavaV2Core.name(),
            Package::AwsJavaV2Sts.name()
        ));
        fixes.push("add software.amazon.awssdk:sts to the application's dependencies".into());
    }
    if !problems.is_empty() {
        return Check::warn(
            ID,
            format!("the image ships {}", problems.join("; ")),
            format!(
                "upgrade {} and rebuild the image (minimums: docs/sdk-versions.md)",
                fixes.join(", ")
            ),
        );
    }
    let listed: Vec<String> = relevant
        .iter()
        .map(|f| format!("{} {} ({})", f.package.name(), f.version, f.location))
        .collect();
    Check::pass(
        ID,
        format!(
            "the image ships {}: recent enough for {}",
            listed.join(", "),
            what.describe()
        ),
    )
}

/// Nothing to judge: not a finding about the pod.
/// An `info`: most images carry no SDK podiam can read (other languages, fat jars), which is
/// no fault; a warning here would fire on every such pod.
fn not_found(message: String) -> Check {
    Check::info(
        ID,
        message,
        "see docs/sdk-versions.md for where podiam looks and each SDK's minimum",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn found(package: Package, version: &str) -> Found {
        Found {
            package,
            version: version.into(),
            location: format!("/fixture/{}", package.name()),
        }
    }

    #[test]
    fn an_old_botocore_warns_for_irsa_and_names_the_minimum() {
        let check = judge(
            Use::IrsaWebIdentity,
            &[
                found(Package::Boto3, "1.9.220"),
                found(Package::Botocore, "1.12.100"),
            ],
        );
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.message.contains("botocore (Python) 1.12.100"),
            "{}",
            check.message
        );
        assert!(check.message.contains("1.12.200"), "{}", check.message);
        assert!(
            !check.message.contains("boto3"),
            "boto3 is recent enough: {}",
            check.message
        );
        assert!(
            check
                .remediation
                .unwrap()
                .contains("iam-roles-for-service-accounts-minimum-sdk")
        );
    }

    #[test]
    fn the_same_release_is_too_old_for_pod_identity_only() {
        let image = [found(Package::Botocore, "1.34.40")];
        assert_eq!(judge(Use::IrsaWebIdentity, &image).status, Status::Pass);
        let check = judge(Use::PodIdentity, &image);
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("1.34.41"), "{}", check.message);
    }

    #[test]
    fn recent_sdks_pass_naming_what_was_found() {
        let check = judge(
            Use::PodIdentity,
            &[
                found(Package::AwsGoV2Config, "v1.25.3"),
                found(Package::AwsGoV2Credentials, "v1.16.2"),
                // another cloud's SDK plays no part
                found(Package::AzureIdentityPython, "1.0.0"),
            ],
        );
        assert_eq!(check.status, Status::Pass, "{check:?}");
        assert!(
            check
                .message
                .contains("aws-sdk-go-v2/config (Go v2) v1.25.3")
        );
        assert!(!check.message.contains("azure"), "{}", check.message);
    }

    #[test]
    fn go_v2_before_the_pod_identity_release_warns() {
        let check = judge(
            Use::PodIdentity,
            &[found(Package::AwsGoV2Credentials, "v1.15.2")],
        );
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("1.16.0"));
    }

    #[test]
    fn java_v2_without_sts_cannot_do_irsa() {
        let check = judge(
            Use::IrsaWebIdentity,
            &[found(Package::AwsJavaV2Core, "2.25.0")],
        );
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("sts module"), "{}", check.message);
        let with_sts = [
            found(Package::AwsJavaV2Core, "2.25.0"),
            found(Package::AwsJavaV2Sts, "2.25.0"),
        ];
        assert_eq!(judge(Use::IrsaWebIdentity, &with_sts).status, Status::Pass);
    }

    #[test]
    fn azure_and_google_minimums() {
        let old = judge(
            Use::AzureWorkloadIdentity,
            &[found(Package::AzureIdentityJs, "3.1.4")],
        );
        assert_eq!(old.status, Status::Warn);
        assert!(old.message.contains("3.2.0"));
        let ext = judge(
            Use::GcpExternalAccount,
            &[found(Package::GoogleAuthPython, "1.26.1")],
        );
        assert_eq!(ext.status, Status::Warn);
        // The metadata server needs no particular release.
        let gke = judge(
            Use::GkeMetadataServer,
            &[found(Package::GoogleAuthPython, "1.26.1")],
        );
        assert_eq!(gke.status, Status::Pass);
    }

    #[test]
    fn nothing_found_is_not_a_finding() {
        let check = judge(
            Use::IrsaWebIdentity,
            &[found(Package::GoogleAuthJs, "9.0.0")],
        );
        assert_eq!(check.status, Status::Info);
        assert!(check.message.contains("no AWS SDK"));
    }
}
