//! Java artifacts by their jar file name, as Maven and Gradle copy them: `ARTIFACT-VERSION.jar`.

/// `(artifact, version)` when the jar's name is `artifact-VERSION.jar` for one of `artifacts`
/// (the longest matching artifact wins, so `sts` does not claim `sts-…-foo`).
pub fn artifact<'a>(path: &str, artifacts: &[&'a str]) -> Option<(&'a str, String)> {
    let name = path.rsplit('/').next()?.strip_suffix(".jar")?;
    artifacts
        .iter()
        .filter_map(|a| {
            let version = name.strip_prefix(a)?.strip_prefix('-')?;
            version
                .starts_with(|c: char| c.is_ascii_digit())
                .then(|| (*a, version.to_string()))
        })
        .max_by_key(|(a, _)| a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTIFACTS: &[&str] = &["aws-java-sdk-core", "sts", "sdk-core", "azure-identity"];

    #[test]
    fn names_and_versions() {
        assert_eq!(
            artifact("/app/lib/aws-java-sdk-core-1.12.700.jar", ARTIFACTS),
            Some(("aws-java-sdk-core", "1.12.700".into()))
        );
        assert_eq!(
            artifact("/app/lib/sts-2.21.29.jar", ARTIFACTS),
            Some(("sts", "2.21.29".into()))
        );
        assert_eq!(
            artifact("/app/azure-identity-1.8.0-beta.1.jar", ARTIFACTS),
            Some(("azure-identity", "1.8.0-beta.1".into()))
        );
        assert_eq!(artifact("/app/lib/sts-client.jar", ARTIFACTS), None);
        assert_eq!(artifact("/app/lib/sdk-core-2.20.0.zip", ARTIFACTS), None);
    }
}
