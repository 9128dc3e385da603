//! Python distributions by their metadata directory name: `NAME-VERSION.dist-info` (pip,
//! names normalised with `_`) or `NAME-VERSION[-pyX.Y].egg-info` (setuptools, Debian's
//! python3-* packages).

/// `(distribution, version)` from a path ending in a dist-info or egg-info directory.
pub fn distribution(path: &str) -> Option<(String, String)> {
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    let stem = name
        .strip_suffix(".dist-info")
        .or_else(|| name.strip_suffix(".egg-info"))?;
    let (dist, rest) = stem.split_once('-')?;
    let version = rest.split('-').next()?;
    if dist.is_empty() || version.is_empty() {
        return None;
    }
    Some((
        dist.to_ascii_lowercase().replace('-', "_"),
        version.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_and_egg_info_names() {
        assert_eq!(
            distribution("/usr/local/lib/python3.12/site-packages/botocore-1.34.41.dist-info"),
            Some(("botocore".into(), "1.34.41".into()))
        );
        assert_eq!(
            distribution("/usr/lib/python3/dist-packages/boto3-1.26.27.egg-info"),
            Some(("boto3".into(), "1.26.27".into()))
        );
        assert_eq!(
            distribution("/app/azure_identity-1.12.0-py3.11.egg-info/"),
            Some(("azure_identity".into(), "1.12.0".into()))
        );
        assert_eq!(
            distribution("/app/google_auth-2.23.0.dist-info"),
            Some(("google_auth".into(), "2.23.0".into()))
        );
        assert_eq!(distribution("/app/botocore"), None);
        assert_eq!(distribution("/app/botocore-.dist-info"), None);
    }
}
