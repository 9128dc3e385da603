//! The clouds' real host names, as pods in the local cluster use them: the cluster DNS answers
//! them with the cloud front's address, the front's certificate (from the harness CA) names
//! them, and the front routes each to its emulator. One list, so the three never disagree.

/// The emulator behind a cloud host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudService {
    /// AWS STS, global, regional, FIPS or dual-stack.
    AwsSts,
    /// S3, path style or virtual-hosted.
    AwsS3,
    /// Entra ID (`login.microsoftonline.com`).
    EntraId,
    /// Google Security Token Service (`sts.googleapis.com`).
    GoogleSts,
    /// `iamcredentials.googleapis.com`.
    GoogleIamCredentials,
    /// `oauth2.googleapis.com`.
    GoogleOauth2,
    /// `storage.googleapis.com`.
    GoogleStorage,
    /// `iam.googleapis.com`.
    GoogleIam,
}

/// Names that are one fixed host each (the DNS `hosts` plugin answers them).
pub const FIXED_HOSTS: &[(&str, CloudService)] = &[
    ("sts.amazonaws.com", CloudService::AwsSts),
    ("s3.amazonaws.com", CloudService::AwsS3),
    ("login.microsoftonline.com", CloudService::EntraId),
    ("sts.googleapis.com", CloudService::GoogleSts),
    (
        "iamcredentials.googleapis.com",
        CloudService::GoogleIamCredentials,
    ),
    ("oauth2.googleapis.com", CloudService::GoogleOauth2),
    ("storage.googleapis.com", CloudService::GoogleStorage),
    ("iam.googleapis.com", CloudService::GoogleIam),
];

/// AWS regions with regional STS and S3 names (commercial and GovCloud).
pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

/// Regional names, as `(prefix, suffix)`: `<prefix>.<region>.<suffix>`.
const REGIONAL: &[(&str, &str, CloudService)] = &[
    ("sts", "amazonaws.com", CloudService::AwsSts),
    ("sts-fips", "amazonaws.com", CloudService::AwsSts),
    ("sts", "api.aws", CloudService::AwsSts),
    ("sts-fips", "api.aws", CloudService::AwsSts),
    ("s3", "amazonaws.com", CloudService::AwsS3),
];

/// The service behind `host` (a Host header: case, port and a trailing dot ignored).
pub fn service_of(host: &str) -> Option<CloudService> {
    let host = host_name(host);
    if let Some((_, service)) = FIXED_HOSTS.iter().find(|(name, _)| *name == host) {
        return Some(*service);
    }
    if let Some(service) = regional_service(&host) {
        return Some(service);
    }
    // Virtual-hosted S3: `<bucket>.s3.amazonaws.com`, `<bucket>.s3.<region>.amazonaws.com`.
    let (bucket, rest) = host.split_once('.')?;
    if bucket.is_empty() {
        return None;
    }
    if rest == "s3.amazonaws.com" || regional_service(rest) == Some(CloudService::AwsS3) {
        return Some(CloudService::AwsS3);
    }
    None
}

/// `host` without port or trailing dot, lower case.
pub fn host_name(host: &str) -> String {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn regional_service(host: &str) -> Option<CloudService> {
    let (prefix, rest) = host.split_once('.')?;
    let (region, suffix) = rest.split_once('.')?;
    if !AWS_REGIONS.contains(&region) {
        return None;
    }
    REGIONAL
        .iter()
        .find(|(p, s, _)| *p == prefix && *s == suffix)
        .map(|(_, _, service)| *service)
}

/// Every exact regional name (`sts.us-east-1.amazonaws.com`, …).
pub fn regional_hosts() -> Vec<String> {
    let mut hosts = Vec::new();
    for region in AWS_REGIONS {
        for (prefix, suffix, _) in REGIONAL {
            hosts.push(format!("{prefix}.{region}.{suffix}"));
        }
    }
    hosts
}

/// RE2 patterns (fully qualified, with the trailing dot) for the names that are not fixed:
/// regional endpoints and virtual-hosted S3 buckets. CoreDNS's `template` plugin answers them.
pub fn dns_patterns() -> Vec<String> {
    let regions = AWS_REGIONS.join("|");
    vec![
        format!(r"^(sts|sts-fips|s3)\.({regions})\.amazonaws\.com\.$"),
        format!(r"^(sts|sts-fips)\.({regions})\.api\.aws\.$"),
        format!(r"^[a-z0-9-]+\.s3(\.({regions}))?\.amazonaws\.com\.$"),
    ]
}

/// The names the cloud front's certificate must carry: the fixed and regional names, and
/// wildcards for virtual-hosted S3 buckets (buckets without dots, as wildcards match one label).
pub fn certificate_names() -> Vec<String> {
    let mut names: Vec<String> = FIXED_HOSTS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.extend(regional_hosts());
    names.push("*.s3.amazonaws.com".to_owned());
    names.extend(
        AWS_REGIONS
            .iter()
            .map(|r| format!("*.s3.{r}.amazonaws.com")),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_names_sdks_choose() {
        assert_eq!(service_of("sts.amazonaws.com"), Some(CloudService::AwsSts));
        assert_eq!(
            service_of("STS.us-east-1.amazonaws.com:443"),
            Some(CloudService::AwsSts)
        );
        assert_eq!(
            service_of("sts-fips.us-gov-west-1.amazonaws.com"),
            Some(CloudService::AwsSts)
        );
        assert_eq!(
            service_of("sts.eu-west-1.api.aws."),
            Some(CloudService::AwsSts)
        );
        assert_eq!(
            service_of("my-bucket.s3.us-west-2.amazonaws.com"),
            Some(CloudService::AwsS3)
        );
        assert_eq!(
            service_of("login.microsoftonline.com"),
            Some(CloudService::EntraId)
        );
        assert_eq!(
            service_of("iamcredentials.googleapis.com"),
            Some(CloudService::GoogleIamCredentials)
        );
        assert_eq!(service_of("sts.mars-1.amazonaws.com"), None);
        assert_eq!(service_of("example.com"), None);
        assert_eq!(service_of("x.sts.amazonaws.com"), None);
    }

    /// Every name in the certificate is routed, and every exact name is answered by the DNS
    /// (a fixed host or a pattern).
    #[test]
    fn certificate_dns_and_routing_agree() {
        let patterns: Vec<regex::Regex> = dns_patterns()
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        for name in certificate_names() {
            let concrete = name.replace('*', "bucket");
            assert!(service_of(&concrete).is_some(), "{name} is not routed");
            let fixed = FIXED_HOSTS.iter().any(|(n, _)| *n == concrete);
            let fqdn = format!("{concrete}.");
            assert!(
                fixed || patterns.iter().any(|p| p.is_match(&fqdn)),
                "{name} is not in the DNS"
            );
        }
        assert!(
            !patterns
                .iter()
                .any(|p| p.is_match("sts.amazonaws.com.evil."))
        );
    }
}
