//! Node packages by their installed `package.json`: its top-level `name` and `version`.

use serde::Deserialize;

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    version: Option<String>,
}

/// `(name, version)` of a package.json's text; None when it is not one (or was cut short).
pub fn package(text: &[u8]) -> Option<(String, String)> {
    let parsed: PackageJson = serde_json::from_slice(text).ok()?;
    Some((parsed.name?, parsed.version?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_name_and_version() {
        let text = br#"{
  "name": "@aws-sdk/client-s3",
  "description": "AWS SDK for JavaScript S3 Client",
  "version": "3.450.0",
  "engines": {"node": ">=14.0.0"},
  "dependencies": {"@aws-sdk/client-sts": "3.450.0"}
}"#;
        assert_eq!(
            package(text),
            Some(("@aws-sdk/client-s3".into(), "3.450.0".into()))
        );
        assert_eq!(
            package(br#"{"version":"2.1500.0","name":"aws-sdk"}"#),
            Some(("aws-sdk".into(), "2.1500.0".into()))
        );
        assert_eq!(package(br#"{"name": "aws-sdk", "vers"#), None);
        assert_eq!(package(br#"{"name": "aws-sdk"}"#), None);
    }
}
