//! What SDKs the image ships: the session's listing (Python, Node, Java) and the Go build info
//! of the container's main process (`/proc/1/exe`), read in two bounded byte ranges.

use std::time::Duration;

use super::minimums::Package;
use super::{go_buildinfo, java, node, python};
use crate::pod_session::PodSession;
use crate::pod_session::inspect::{Inspect, InspectError, ListingEntry};

const WITHIN: Duration = Duration::from_secs(15);
const MAIN_PROCESS: &str = "/proc/1/exe";
const BLOCK: u64 = 4096;

/// One SDK package found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub package: Package,
    pub version: String,
    /// Where: the file or directory, or the Go binary.
    pub location: String,
}

/// Every SDK the image shows in the usual places; an error only when the session failed.
pub async fn scan(session: &PodSession) -> Result<Vec<Found>, InspectError> {
    let mut found: Vec<Found> = session
        .sdk_listing(WITHIN)
        .await?
        .iter()
        .filter_map(from_listing)
        .collect();
    found.extend(go_modules(session).await);
    found.sort_by(|a, b| {
        (a.package, &a.version, &a.location).cmp(&(b.package, &b.version, &b.location))
    });
    found.dedup();
    Ok(found)
}

/// The SDK a listing entry names, if any.
pub fn from_listing(entry: &ListingEntry) -> Option<Found> {
    let (package, version) = match entry.kind.as_str() {
        "py" => {
            let (dist, version) = python::distribution(&entry.path)?;
            let package = match dist.as_str() {
                "boto3" => Package::Boto3,
                "botocore" => Package::Botocore,
                "azure_identity" => Package::AzureIdentityPython,
                "google_auth" => Package::GoogleAuthPython,
                _ => return None,
            };
            (package, version)
        }
        "node" => {
            let (name, version) = node::package(entry.content.as_deref()?)?;
            let package = match name.as_str() {
                "aws-sdk" => Package::AwsJsV2,
                n if n.starts_with("@aws-sdk/client-") => Package::AwsJsV3,
                "@azure/identity" => Package::AzureIdentityJs,
                "google-auth-library" => Package::GoogleAuthJs,
                _ => return None,
            };
            (package, version)
        }
        "jar" => {
            let (artifact, version) = java::artifact(
                &entry.path,
                &[
                    "aws-java-sdk-core",
                    "sts",
                    "sdk-core",
                    "azure-identity",
                    "google-auth-library-oauth2-http",
                ],
            )?;
            let v2 = version.starts_with("2.");
            let package = match artifact {
                "aws-java-sdk-core" => Package::AwsJavaV1,
                "sts" if v2 => Package::AwsJavaV2Sts,
                "sdk-core" if v2 => Package::AwsJavaV2Core,
                "azure-identity" => Package::AzureIdentityJava,
                "google-auth-library-oauth2-http" => Package::GoogleAuthJava,
                _ => return None,
            };
            (package, version)
        }
        _ => return None,
    };
    Some(Found {
        package,
        version,
        location: entry.path.clone(),
    })
}

/// The SDK a Go module is, if any.
pub fn go_package(module: &str) -> Option<Package> {
    Some(match module {
        "github.com/aws/aws-sdk-go" => Package::AwsGoV1,
        "github.com/aws/aws-sdk-go-v2/config" => Package::AwsGoV2Config,
        "github.com/aws/aws-sdk-go-v2/credentials" => Package::AwsGoV2Credentials,
        "github.com/Azure/azure-sdk-for-go/sdk/azidentity" => Package::AzureIdentityGo,
        _ => return None,
    })
}

/// The SDK modules of the main process, when it is a Go binary (1.18+) the exec may read.
async fn go_modules(session: &PodSession) -> Vec<Found> {
    let read = |skip: u64, count: u64| Inspect::Bytes {
        path: MAIN_PROCESS.into(),
        skip,
        count,
    };
    let Ok(head) = session.inspect(&read(0, 1), WITHIN).await else {
        return Vec::new();
    };
    let Some(segment) = go_buildinfo::data_segment(&head) else {
        return Vec::new();
    };
    let lead = segment.offset % BLOCK;
    let wanted = lead + segment.size.min(go_buildinfo::READ_LEN);
    let Ok(data) = session
        .inspect(
            &read(segment.offset / BLOCK, wanted.div_ceil(BLOCK)),
            WITHIN,
        )
        .await
    else {
        return Vec::new();
    };
    let Some(info) = data
        .get(usize::try_from(lead).unwrap_or(usize::MAX)..)
        .and_then(go_buildinfo::parse)
    else {
        return Vec::new();
    };
    info.deps
        .iter()
        .filter_map(|(module, version)| {
            Some(Found {
                package: go_package(module)?,
                version: version.clone(),
                location: format!("the Go build info of {MAIN_PROCESS} ({})", info.go_version),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, path: &str, content: Option<&str>) -> ListingEntry {
        ListingEntry {
            kind: kind.into(),
            path: path.into(),
            content: content.map(|c| c.as_bytes().to_vec()),
        }
    }

    #[test]
    fn listing_entries_become_packages() {
        let found = |e| from_listing(&e).map(|f| (f.package, f.version));
        assert_eq!(
            found(entry("py", "/app/botocore-1.12.100.dist-info", None)),
            Some((Package::Botocore, "1.12.100".into()))
        );
        assert_eq!(
            found(entry(
                "py",
                "/usr/lib/python3/dist-packages/azure_identity-1.12.0.egg-info",
                None
            )),
            Some((Package::AzureIdentityPython, "1.12.0".into()))
        );
        assert_eq!(
            found(entry(
                "node",
                "/app/node_modules/@aws-sdk/client-sts/package.json",
                Some(r#"{"name":"@aws-sdk/client-sts","version":"3.400.0"}"#)
            )),
            Some((Package::AwsJsV3, "3.400.0".into()))
        );
        assert_eq!(
            found(entry(
                "node",
                "/app/node_modules/google-auth-library/package.json",
                Some(r#"{"name":"google-auth-library","version":"6.1.6"}"#)
            )),
            Some((Package::GoogleAuthJs, "6.1.6".into()))
        );
        assert_eq!(
            found(entry("jar", "/app/lib/sts-2.20.0.jar", None)),
            Some((Package::AwsJavaV2Sts, "2.20.0".into()))
        );
        assert_eq!(
            found(entry(
                "jar",
                "/app/lib/aws-java-sdk-core-1.12.700.jar",
                None
            )),
            Some((Package::AwsJavaV1, "1.12.700".into()))
        );
        // `sts-1.x` is not the AWS SDK v2 module.
        assert_eq!(found(entry("jar", "/app/lib/sts-1.0.jar", None)), None);
        assert_eq!(
            found(entry("py", "/app/requests-2.31.0.dist-info", None)),
            None
        );
        assert_eq!(found(entry("node", "/x/package.json", None)), None);
    }

    #[test]
    fn go_modules_that_are_sdks() {
        assert_eq!(
            go_package("github.com/aws/aws-sdk-go"),
            Some(Package::AwsGoV1)
        );
        assert_eq!(
            go_package("github.com/aws/aws-sdk-go-v2/credentials"),
            Some(Package::AwsGoV2Credentials)
        );
        assert_eq!(go_package("github.com/aws/aws-sdk-go-v2/service/s3"), None);
    }
}
