//! `--can/--cannot s3:…`: the real call with the exchanged credentials.

use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;

use super::CloudError;
use super::aws_sts::classify;

/// An S3 action the plugin knows how to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Action {
    ListBucket {
        bucket: String,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    /// Writes a zero-byte object when allowed: `--can` on PutObject is a real write.
    PutObject {
        bucket: String,
        key: String,
    },
}

impl S3Action {
    pub fn parse(action: &str, resource: &str) -> Result<Self, String> {
        let object = || {
            resource
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .map(|(b, k)| (b.to_string(), k.to_string()))
                .ok_or_else(|| format!("{action} needs BUCKET/KEY, got {resource:?}"))
        };
        match action {
            "s3:ListBucket" if !resource.is_empty() && !resource.contains('/') => {
                Ok(S3Action::ListBucket {
                    bucket: resource.to_string(),
                })
            }
            "s3:ListBucket" => Err(format!("s3:ListBucket needs BUCKET, got {resource:?}")),
            "s3:GetObject" => object().map(|(bucket, key)| S3Action::GetObject { bucket, key }),
            "s3:PutObject" => object().map(|(bucket, key)| S3Action::PutObject { bucket, key }),
            other => Err(format!(
                "unsupported action {other:?} (supported: s3:ListBucket, s3:GetObject, s3:PutObject)"
            )),
        }
    }
}

pub async fn attempt(
    config: &aws_config::SdkConfig,
    path_style: bool,
    credentials: &Credentials,
    action: &S3Action,
) -> Result<(), CloudError> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .credentials_provider(credentials.clone())
            .force_path_style(path_style)
            .build(),
    );
    match action {
        S3Action::ListBucket { bucket } => s3
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(1)
            .send()
            .await
            .map(drop)
            .map_err(classify),
        S3Action::GetObject { bucket, key } => s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_err(classify),
        S3Action::PutObject { bucket, key } => s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .map(drop)
            .map_err(classify),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions() {
        assert_eq!(
            S3Action::parse("s3:ListBucket", "my-bucket"),
            Ok(S3Action::ListBucket {
                bucket: "my-bucket".into()
            })
        );
        assert_eq!(
            S3Action::parse("s3:PutObject", "my-bucket/a/b"),
            Ok(S3Action::PutObject {
                bucket: "my-bucket".into(),
                key: "a/b".into()
            })
        );
        assert!(S3Action::parse("s3:GetObject", "my-bucket").is_err());
        assert!(S3Action::parse("s3:ListBucket", "").is_err());
        assert!(S3Action::parse("s3:DeleteBucket", "b").is_err());
    }
}
