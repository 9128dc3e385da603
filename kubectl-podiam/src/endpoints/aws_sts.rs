//! The STS endpoint each AWS SDK family would call AssumeRoleWithWebIdentity on, from the
//! pod's environment: region variables, `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` (and the
//! ignore switch), `AWS_STS_REGIONAL_ENDPOINTS`, `AWS_USE_FIPS_ENDPOINT`,
//! `AWS_USE_DUALSTACK_ENDPOINT`, then the STS endpoint ruleset all the SDKs share. Shared config
//! files and values set in code are not seen here; the reason text says which variables decided.
//! Sources: `docs/sdk-endpoints.md`.

use std::fmt;

use super::aws_partition::partition_of;
use super::{Env, non_empty};

/// The SDK families whose defaults differ. botocore is split at 1.40.0, where its
/// `sts_regional_endpoints` default changed from `legacy` to `regional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdkFamily {
    /// botocore ≥ 1.40.0: boto3 ≥ 1.40.0, AWS CLI v1 ≥ 1.42.0.
    Botocore,
    /// botocore < 1.40.0: `sts_regional_endpoints` defaults to `legacy`.
    BotocoreBefore1_40,
    JsV3,
    GoV2,
    JavaV2,
    Rust,
}

impl SdkFamily {
    pub const ALL: [SdkFamily; 6] = [
        SdkFamily::GoV2,
        SdkFamily::JsV3,
        SdkFamily::JavaV2,
        SdkFamily::Rust,
        SdkFamily::Botocore,
        SdkFamily::BotocoreBefore1_40,
    ];

    /// A short human label.
    pub fn label(self) -> &'static str {
        match self {
            SdkFamily::Botocore => "botocore ≥ 1.40 (boto3 ≥ 1.40, AWS CLI v1 ≥ 1.42)",
            SdkFamily::BotocoreBefore1_40 => "botocore < 1.40 (boto3 < 1.40, AWS CLI v1 < 1.42)",
            SdkFamily::JsV3 => "JS v3",
            SdkFamily::GoV2 => "Go v2",
            SdkFamily::JavaV2 => "Java v2",
            SdkFamily::Rust => "Rust",
        }
    }

    fn is_botocore(self) -> bool {
        matches!(self, SdkFamily::Botocore | SdkFamily::BotocoreBefore1_40)
    }

    /// Region variables in the order the family reads them (system properties, profile files
    /// and IMDS come after and are not seen here).
    fn region_vars(self) -> &'static [&'static str] {
        match self {
            SdkFamily::Botocore | SdkFamily::BotocoreBefore1_40 => &["AWS_DEFAULT_REGION"],
            SdkFamily::GoV2 | SdkFamily::Rust => &["AWS_REGION", "AWS_DEFAULT_REGION"],
            SdkFamily::JsV3 | SdkFamily::JavaV2 => &["AWS_REGION"],
        }
    }
}

impl fmt::Display for SdkFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where the family would send AssumeRoleWithWebIdentity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsEndpoint {
    /// e.g. `https://sts.us-east-1.amazonaws.com`
    pub url: String,
    pub host: String,
    pub port: u16,
    /// The SigV4 region (None: a custom endpoint without a region).
    pub signing_region: Option<String>,
    /// Which variables decided, e.g. "AWS_REGION=us-east-1; STS is regional in this SDK".
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsEndpointError {
    #[error("{family}: no region ({reads} unset{fallback}): {sdk_error}")]
    NoRegion {
        family: SdkFamily,
        reads: String,
        fallback: &'static str,
        sdk_error: &'static str,
    },
    #[error("{family}: {name}={value:?} is not true or false, and this SDK refuses it")]
    InvalidBool {
        family: SdkFamily,
        name: &'static str,
        value: String,
    },
    #[error(
        "{family}: AWS_STS_REGIONAL_ENDPOINTS={value:?} is neither legacy nor regional (InvalidSTSRegionalEndpointsConfigError)"
    )]
    InvalidRegionalSetting { family: SdkFamily, value: String },
    #[error("{family}: region {region:?} is not a valid host label")]
    InvalidRegion { family: SdkFamily, region: String },
    #[error(
        "{family}: {name}={url} is used with {flag}=true: \"Invalid Configuration: {what} and custom endpoint are not supported\""
    )]
    VariantWithCustomEndpoint {
        family: SdkFamily,
        name: &'static str,
        url: String,
        flag: &'static str,
        what: &'static str,
    },
    #[error("{family}: {name}={url:?} is not an http(s) URL with a host")]
    InvalidEndpointUrl {
        family: SdkFamily,
        name: &'static str,
        url: String,
    },
    #[error(
        "{family}: no region, so botocore falls back to aws-global, which has no {what} endpoint; set AWS_DEFAULT_REGION"
    )]
    GlobalWithVariant {
        family: SdkFamily,
        what: &'static str,
    },
}

/// Regions the ruleset sends to `sts.amazonaws.com` when the global endpoint is asked for
/// (botocore `LEGACY_GLOBAL_STS_REGIONS`, and the ruleset's first rule).
const LEGACY_GLOBAL_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "aws-global",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

const GLOBAL_URL: &str = "https://sts.amazonaws.com";

/// The endpoint `family` would use with this environment.
pub fn sts_endpoint(env: Env<'_>, family: SdkFamily) -> Result<StsEndpoint, StsEndpointError> {
    let mut reasons: Vec<String> = Vec::new();
    let region = region(env, family, &mut reasons)?;
    let fips = flag(env, family, "AWS_USE_FIPS_ENDPOINT", &mut reasons)?;
    let dual_stack = flag(env, family, "AWS_USE_DUALSTACK_ENDPOINT", &mut reasons)?;

    if let Some((name, url)) = configured_endpoint(env, family, &mut reasons)? {
        // botocore drops FIPS/dual-stack when an endpoint URL is given; the other SDKs pass
        // both to the ruleset, which refuses the combination.
        if !family.is_botocore() {
            for (on, flag, what) in [
                (fips, "AWS_USE_FIPS_ENDPOINT", "FIPS"),
                (dual_stack, "AWS_USE_DUALSTACK_ENDPOINT", "Dualstack"),
            ] {
                if on {
                    return Err(StsEndpointError::VariantWithCustomEndpoint {
                        family,
                        name,
                        url,
                        flag,
                        what,
                    });
                }
            }
        } else if fips || dual_stack {
            reasons.push("botocore ignores FIPS/dual-stack when an endpoint URL is set".into());
        }
        if region.is_none() {
            reasons.push("no region: the request is unsigned, so only the URL matters".into());
        }
        return build(family, name, &url, region, reasons);
    }

    let Some(region) = region else {
        // Only botocore gets here without a region (the others failed or defaulted above):
        // with no region it resolves STS's partition endpoint, aws-global.
        if fips || dual_stack {
            let what = if fips { "FIPS" } else { "dual-stack" };
            return Err(StsEndpointError::GlobalWithVariant { family, what });
        }
        reasons.push("no region: botocore uses STS's partition endpoint aws-global".into());
        return build(
            family,
            "ruleset",
            GLOBAL_URL,
            Some("us-east-1".into()),
            reasons,
        );
    };
    if !is_host_label(&region) {
        return Err(StsEndpointError::InvalidRegion { family, region });
    }

    let use_global = use_global_endpoint(env, family, &region, &mut reasons)?;
    let (url, signing_region) = ruleset(&region, fips, dual_stack, use_global);
    build(family, "ruleset", &url, Some(signing_region), reasons)
}

/// The ruleset's answer for a region without a custom endpoint: `(url, signing region)`.
fn ruleset(region: &str, fips: bool, dual_stack: bool, use_global: bool) -> (String, String) {
    let p = partition_of(region);
    let regional = || {
        (
            format!("https://sts.{region}.{}", p.dns_suffix),
            region.to_string(),
        )
    };
    if use_global && !fips && !dual_stack {
        if LEGACY_GLOBAL_REGIONS.contains(&region) {
            return (GLOBAL_URL.into(), "us-east-1".into());
        }
        return regional();
    }
    match (fips, dual_stack) {
        (true, true) if p.supports_fips && p.supports_dual_stack => (
            format!("https://sts-fips.{region}.{}", p.dual_stack_dns_suffix),
            region.into(),
        ),
        // GovCloud's regular STS endpoints are the FIPS ones: the ruleset keeps `sts.`.
        (true, false) if p.name == "aws-us-gov" => {
            (format!("https://sts.{region}.amazonaws.com"), region.into())
        }
        (true, false) if p.supports_fips => (
            format!("https://sts-fips.{region}.{}", p.dns_suffix),
            region.into(),
        ),
        (false, true) if p.supports_dual_stack => (
            format!("https://sts.{region}.{}", p.dual_stack_dns_suffix),
            region.into(),
        ),
        _ if region == "aws-global" => (GLOBAL_URL.into(), "us-east-1".into()),
        _ => regional(),
    }
}

fn region(
    env: Env<'_>,
    family: SdkFamily,
    reasons: &mut Vec<String>,
) -> Result<Option<String>, StsEndpointError> {
    for name in family.region_vars() {
        if let Some(v) = non_empty(env, name) {
            reasons.push(format!("{name}={v}"));
            return Ok(Some(v));
        }
    }
    let reads = family.region_vars().join(" and ");
    match family {
        SdkFamily::Botocore | SdkFamily::BotocoreBefore1_40 => {
            if non_empty(env, "AWS_REGION").is_some() {
                reasons.push("AWS_REGION is set but botocore reads only AWS_DEFAULT_REGION".into());
            }
            Ok(None)
        }
        SdkFamily::JsV3 => {
            reasons.push(format!(
                "{reads} unset: the STS client of the credential chain defaults to us-east-1"
            ));
            Ok(Some("us-east-1".into()))
        }
        SdkFamily::GoV2 => Err(StsEndpointError::NoRegion {
            family,
            reads,
            fallback: "",
            sdk_error: "the STS client has no region (Invalid Configuration: Missing Region, or an unresolvable sts..amazonaws.com)",
        }),
        SdkFamily::JavaV2 => Err(StsEndpointError::NoRegion {
            family,
            reads,
            fallback: "; then the profile file and the instance metadata service",
            sdk_error: "Unable to load region from any of the providers in the chain",
        }),
        SdkFamily::Rust => Err(StsEndpointError::NoRegion {
            family,
            reads,
            fallback: "; then the profile file and the instance metadata service",
            sdk_error: "the STS ruleset answers Invalid Configuration: Missing Region",
        }),
    }
}

/// A boolean setting as the family parses it: botocore takes anything but `true`
/// (case-insensitive) as false; Rust logs and ignores other values; Go, JS and Java refuse them.
fn flag(
    env: Env<'_>,
    family: SdkFamily,
    name: &'static str,
    reasons: &mut Vec<String>,
) -> Result<bool, StsEndpointError> {
    let Some(value) = non_empty(env, name) else {
        return Ok(false);
    };
    let parsed = if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    };
    let on = match (parsed, family) {
        (Some(b), _) => b,
        (None, SdkFamily::Botocore | SdkFamily::BotocoreBefore1_40) => false,
        (None, SdkFamily::Rust) => {
            reasons.push(format!("{name}={value} is ignored (not true/false)"));
            return Ok(false);
        }
        (None, _) => {
            return Err(StsEndpointError::InvalidBool {
                family,
                name,
                value,
            });
        }
    };
    if on {
        reasons.push(format!("{name}={value}"));
    }
    Ok(on)
}

/// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, unless the ignore switch is on.
fn configured_endpoint(
    env: Env<'_>,
    family: SdkFamily,
    reasons: &mut Vec<String>,
) -> Result<Option<(&'static str, String)>, StsEndpointError> {
    let found = super::first_set(env, &["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]);
    let mut ignore_reasons = Vec::new();
    let ignore = flag(
        env,
        family,
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        &mut ignore_reasons,
    )?;
    if ignore {
        if let Some((name, _)) = found {
            reasons.push(format!(
                "{name} is ignored: AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true"
            ));
        }
        return Ok(None);
    }
    Ok(found)
}

/// Whether the ruleset's UseGlobalEndpoint is on: botocore's `sts_regional_endpoints` only;
/// every other family leaves it false whatever `AWS_STS_REGIONAL_ENDPOINTS` says.
fn use_global_endpoint(
    env: Env<'_>,
    family: SdkFamily,
    region: &str,
    reasons: &mut Vec<String>,
) -> Result<bool, StsEndpointError> {
    let setting = non_empty(env, "AWS_STS_REGIONAL_ENDPOINTS");
    if !family.is_botocore() {
        match setting {
            Some(v) => reasons.push(format!(
                "AWS_STS_REGIONAL_ENDPOINTS={v} is not read: STS is regional in this SDK"
            )),
            None => reasons.push("STS is regional in this SDK".into()),
        }
        return Ok(false);
    }
    let default = if family == SdkFamily::Botocore {
        "regional"
    } else {
        "legacy"
    };
    let value = match setting {
        Some(v) => {
            reasons.push(format!("AWS_STS_REGIONAL_ENDPOINTS={v}"));
            v
        }
        None => {
            reasons.push(format!(
                "AWS_STS_REGIONAL_ENDPOINTS unset (default {default})"
            ));
            default.to_string()
        }
    };
    match value.as_str() {
        "regional" => Ok(false),
        "legacy" => {
            let global = LEGACY_GLOBAL_REGIONS.contains(&region);
            if !global {
                reasons.push(format!("{region} has no global endpoint in legacy mode"));
            }
            Ok(global)
        }
        _ => Err(StsEndpointError::InvalidRegionalSetting { family, value }),
    }
}

fn build(
    family: SdkFamily,
    source: &'static str,
    url: &str,
    signing_region: Option<String>,
    reasons: Vec<String>,
) -> Result<StsEndpoint, StsEndpointError> {
    let invalid = || StsEndpointError::InvalidEndpointUrl {
        family,
        name: source,
        url: url.to_string(),
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return Err(invalid()),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(invalid)?;
    let mut because = reasons;
    if source != "ruleset" {
        because.insert(0, format!("{source}={url}"));
    }
    Ok(StsEndpoint {
        url: url.to_string(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: uri.port_u16().unwrap_or(default_port),
        signing_region,
        because: because.join("; "),
    })
}

fn is_host_label(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 63
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// What the pod's possible SDKs would do: the distinct endpoints with the families that use
/// each, and the families that would fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// One entry per distinct (URL, signing region); `because` is the first family's reason.
    pub endpoints: Vec<(StsEndpoint, Vec<SdkFamily>)>,
    pub failures: Vec<(SdkFamily, StsEndpointError)>,
}

pub fn pod_view(env: Env<'_>) -> PodView {
    let mut view = PodView {
        endpoints: Vec::new(),
        failures: Vec::new(),
    };
    for family in SdkFamily::ALL {
        match sts_endpoint(env, family) {
            Ok(endpoint) => {
                match view.endpoints.iter_mut().find(|(e, _)| {
                    e.url == endpoint.url && e.signing_region == endpoint.signing_region
                }) {
                    Some((_, families)) => families.push(family),
                    None => view.endpoints.push((endpoint, vec![family])),
                }
            }
            Err(e) => view.failures.push((family, e)),
        }
    }
    view
}

impl PodView {
    /// One line, e.g. "Go v2, JS v3 use https://sts.us-east-1.amazonaws.com; botocore < 1.40 …
    /// uses https://sts.amazonaws.com".
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .endpoints
            .iter()
            .map(|(e, families)| {
                let names: Vec<&str> = families.iter().map(|f| f.label()).collect();
                let verb = if families.len() == 1 { "uses" } else { "use" };
                format!("{} {verb} {}", names.join(", "), e.url)
            })
            .collect();
        parts.extend(
            self.failures
                .iter()
                .map(|(family, _)| format!("{family} fails")),
        );
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_env::env;

    fn url(pairs: &[(&str, &str)], family: SdkFamily) -> String {
        sts_endpoint(&env(pairs), family).unwrap().url
    }

    #[test]
    fn regional_by_default_in_every_sdk_but_old_botocore() {
        let pairs = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ];
        for family in [
            SdkFamily::GoV2,
            SdkFamily::JsV3,
            SdkFamily::JavaV2,
            SdkFamily::Rust,
            SdkFamily::Botocore,
        ] {
            let e = sts_endpoint(&env(&pairs), family).unwrap();
            assert_eq!(e.url, "https://sts.eu-west-1.amazonaws.com", "{family}");
            assert_eq!(e.host, "sts.eu-west-1.amazonaws.com");
            assert_eq!(e.port, 443);
            assert_eq!(e.signing_region.as_deref(), Some("eu-west-1"));
        }
        let old = sts_endpoint(&env(&pairs), SdkFamily::BotocoreBefore1_40).unwrap();
        assert_eq!(old.url, "https://sts.amazonaws.com");
        assert_eq!(old.signing_region.as_deref(), Some("us-east-1"));
        assert!(old.because.contains("default legacy"), "{}", old.because);
    }

    #[test]
    fn regional_setting_moves_old_botocore_only() {
        let regional = [
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ];
        let e = sts_endpoint(&env(&regional), SdkFamily::BotocoreBefore1_40).unwrap();
        assert_eq!(e.url, "https://sts.us-east-1.amazonaws.com");
        assert!(e.because.contains("AWS_DEFAULT_REGION=us-east-1"));
        assert!(e.because.contains("AWS_STS_REGIONAL_ENDPOINTS=regional"));

        let legacy = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "legacy"),
        ];
        assert_eq!(
            url(&legacy, SdkFamily::Botocore),
            "https://sts.amazonaws.com"
        );
        let go = sts_endpoint(&env(&legacy), SdkFamily::GoV2).unwrap();
        assert_eq!(go.url, "https://sts.us-east-1.amazonaws.com");
        assert!(go.because.contains("is not read"), "{}", go.because);
    }

    #[test]
    fn legacy_keeps_newer_regions_regional() {
        let pairs = [
            ("AWS_DEFAULT_REGION", "ap-east-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "legacy"),
        ];
        assert_eq!(
            url(&pairs, SdkFamily::Botocore),
            "https://sts.ap-east-1.amazonaws.com"
        );
    }

    #[test]
    fn invalid_regional_setting_fails_botocore() {
        let pairs = [
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "true"),
        ];
        assert!(matches!(
            sts_endpoint(&env(&pairs), SdkFamily::Botocore),
            Err(StsEndpointError::InvalidRegionalSetting { .. })
        ));
        // Go never reads the setting.
        assert!(sts_endpoint(&env(&pairs), SdkFamily::GoV2).is_ok());
        let js_pairs = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "true"),
        ];
        assert!(sts_endpoint(&env(&js_pairs), SdkFamily::JsV3).is_ok());
    }

    #[test]
    fn fips() {
        let pairs = [
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ];
        for family in SdkFamily::ALL {
            let e = sts_endpoint(&env(&pairs), family).unwrap();
            assert_eq!(
                e.url, "https://sts-fips.us-west-2.amazonaws.com",
                "{family}"
            );
            assert!(e.because.contains("AWS_USE_FIPS_ENDPOINT=true"));
        }
    }

    #[test]
    fn dual_stack_and_fips_with_dual_stack() {
        let dual = [
            ("AWS_REGION", "eu-central-1"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "TRUE"),
        ];
        assert_eq!(
            url(&dual, SdkFamily::GoV2),
            "https://sts.eu-central-1.api.aws"
        );
        let both = [
            ("AWS_REGION", "eu-central-1"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ];
        assert_eq!(
            url(&both, SdkFamily::Rust),
            "https://sts-fips.eu-central-1.api.aws"
        );
    }

    #[test]
    fn china_and_govcloud_partitions() {
        let cn = [("AWS_REGION", "cn-north-1")];
        assert_eq!(
            url(&cn, SdkFamily::JavaV2),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        let cn_dual = [
            ("AWS_REGION", "cn-north-1"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
        ];
        assert_eq!(
            url(&cn_dual, SdkFamily::JsV3),
            "https://sts.cn-north-1.api.amazonwebservices.com.cn"
        );
        let gov = [("AWS_REGION", "us-gov-west-1")];
        assert_eq!(
            url(&gov, SdkFamily::GoV2),
            "https://sts.us-gov-west-1.amazonaws.com"
        );
        // GovCloud's FIPS endpoint is its ordinary one.
        let gov_fips = [
            ("AWS_REGION", "us-gov-west-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ];
        assert_eq!(
            url(&gov_fips, SdkFamily::GoV2),
            "https://sts.us-gov-west-1.amazonaws.com"
        );
        // Legacy mode sends only the listed aws regions to the global endpoint.
        let cn_legacy = [("AWS_DEFAULT_REGION", "cn-northwest-1")];
        assert_eq!(
            url(&cn_legacy, SdkFamily::BotocoreBefore1_40),
            "https://sts.cn-northwest-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn service_endpoint_wins_over_global_and_both_over_the_ruleset() {
        let pairs = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://localstack:4566"),
            (
                "AWS_ENDPOINT_URL_STS",
                "https://vpce-1.sts.us-east-1.vpce.amazonaws.com",
            ),
        ];
        for family in SdkFamily::ALL {
            let e = sts_endpoint(&env(&pairs), family).unwrap();
            assert_eq!(
                e.host, "vpce-1.sts.us-east-1.vpce.amazonaws.com",
                "{family}"
            );
            assert!(
                e.because.starts_with("AWS_ENDPOINT_URL_STS="),
                "{}",
                e.because
            );
        }
        let global_only = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://localstack:4566"),
        ];
        let e = sts_endpoint(&env(&global_only), SdkFamily::GoV2).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("localstack", 4566));
        assert_eq!(e.signing_region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn ignore_switch_restores_the_ruleset() {
        let pairs = [
            ("AWS_REGION", "us-east-2"),
            ("AWS_ENDPOINT_URL_STS", "http://localhost:4566"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        let e = sts_endpoint(&env(&pairs), SdkFamily::Rust).unwrap();
        assert_eq!(e.url, "https://sts.us-east-2.amazonaws.com");
        assert!(e.because.contains("is ignored"), "{}", e.because);
        // Go refuses a switch that is not true/false.
        let bad = [
            ("AWS_REGION", "us-east-2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "yes"),
        ];
        assert!(matches!(
            sts_endpoint(&env(&bad), SdkFamily::GoV2),
            Err(StsEndpointError::InvalidBool { .. })
        ));
    }

    #[test]
    fn fips_with_custom_endpoint_fails_except_in_botocore() {
        let pairs = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_ENDPOINT_URL_STS", "https://sts.internal:8443"),
        ];
        assert!(matches!(
            sts_endpoint(&env(&pairs), SdkFamily::JavaV2),
            Err(StsEndpointError::VariantWithCustomEndpoint { .. })
        ));
        let e = sts_endpoint(&env(&pairs), SdkFamily::Botocore).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("sts.internal", 8443));
    }

    #[test]
    fn default_region_only() {
        let pairs = [("AWS_DEFAULT_REGION", "eu-west-3")];
        assert_eq!(
            url(&pairs, SdkFamily::GoV2),
            "https://sts.eu-west-3.amazonaws.com"
        );
        assert_eq!(
            url(&pairs, SdkFamily::Rust),
            "https://sts.eu-west-3.amazonaws.com"
        );
        assert_eq!(
            url(&pairs, SdkFamily::Botocore),
            "https://sts.eu-west-3.amazonaws.com"
        );
        // JS v3 reads only AWS_REGION: its STS client falls back to us-east-1.
        let js = sts_endpoint(&env(&pairs), SdkFamily::JsV3).unwrap();
        assert_eq!(js.url, "https://sts.us-east-1.amazonaws.com");
        assert!(js.because.contains("defaults to us-east-1"));
        assert!(matches!(
            sts_endpoint(&env(&pairs), SdkFamily::JavaV2),
            Err(StsEndpointError::NoRegion { .. })
        ));
    }

    #[test]
    fn region_only_in_aws_region_is_unseen_by_botocore() {
        let pairs = [("AWS_REGION", "eu-west-3")];
        let e = sts_endpoint(&env(&pairs), SdkFamily::Botocore).unwrap();
        assert_eq!(e.url, "https://sts.amazonaws.com");
        assert!(
            e.because.contains("reads only AWS_DEFAULT_REGION"),
            "{}",
            e.because
        );
    }

    #[test]
    fn no_region() {
        let none = env(&[]);
        let go = sts_endpoint(&none, SdkFamily::GoV2).unwrap_err();
        assert!(go.to_string().contains("Missing Region"), "{go}");
        assert!(sts_endpoint(&none, SdkFamily::Rust).is_err());
        assert!(sts_endpoint(&none, SdkFamily::JavaV2).is_err());
        assert_eq!(
            sts_endpoint(&none, SdkFamily::JsV3).unwrap().url,
            "https://sts.us-east-1.amazonaws.com"
        );
        assert_eq!(
            sts_endpoint(&none, SdkFamily::Botocore).unwrap().url,
            "https://sts.amazonaws.com"
        );
        let fips = env(&[("AWS_USE_FIPS_ENDPOINT", "true")]);
        assert!(matches!(
            sts_endpoint(&fips, SdkFamily::Botocore),
            Err(StsEndpointError::GlobalWithVariant { .. })
        ));
    }

    #[test]
    fn flag_parsing_differs() {
        let pairs = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_USE_FIPS_ENDPOINT", "1"),
        ];
        assert_eq!(
            url(&pairs, SdkFamily::Botocore),
            "https://sts.us-east-1.amazonaws.com"
        );
        assert_eq!(
            url(&pairs, SdkFamily::Rust),
            "https://sts.us-east-1.amazonaws.com"
        );
        assert!(sts_endpoint(&env(&pairs), SdkFamily::GoV2).is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let region = [("AWS_REGION", "us east 1")];
        assert!(matches!(
            sts_endpoint(&env(&region), SdkFamily::GoV2),
            Err(StsEndpointError::InvalidRegion { .. })
        ));
        let endpoint = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_STS", "localhost:4566"),
        ];
        assert!(matches!(
            sts_endpoint(&env(&endpoint), SdkFamily::GoV2),
            Err(StsEndpointError::InvalidEndpointUrl { .. })
        ));
    }

    #[test]
    fn pod_view_groups_families_by_endpoint() {
        let pairs = [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ];
        let view = pod_view(&env(&pairs));
        assert!(view.failures.is_empty());
        assert_eq!(view.endpoints.len(), 2);
        let (regional, families) = &view.endpoints[0];
        assert_eq!(regional.url, "https://sts.us-east-1.amazonaws.com");
        assert_eq!(families.len(), 5);
        let (global, old) = &view.endpoints[1];
        assert_eq!(global.url, "https://sts.amazonaws.com");
        assert_eq!(old, &vec![SdkFamily::BotocoreBefore1_40]);
        let summary = view.summary();
        assert!(
            summary.contains(
                "botocore < 1.40 (boto3 < 1.40, AWS CLI v1 < 1.42) uses https://sts.amazonaws.com"
            ),
            "{summary}"
        );
        assert!(
            summary.starts_with("Go v2, JS v3, Java v2, Rust"),
            "{summary}"
        );
    }

    #[test]
    fn pod_view_lists_failures() {
        let view = pod_view(&env(&[("AWS_DEFAULT_REGION", "eu-west-1")]));
        let failed: Vec<SdkFamily> = view.failures.iter().map(|(f, _)| *f).collect();
        assert_eq!(failed, vec![SdkFamily::JavaV2]);
        assert!(view.summary().contains("Java v2 fails"));
    }
}
