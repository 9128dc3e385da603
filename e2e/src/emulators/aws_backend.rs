//! What the strict AWS gate fronts for IAM, STS and S3 (`--aws-backend`): moto (default),
//! LocalStack community started here in host mode, LocalStack in a container, or an existing
//! LocalStack endpoint.

use std::fmt;
use std::str::FromStr;

/// `--aws-backend moto|localstack|localstack-docker|URL`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AwsBackend {
    /// moto_server from the project's venv, IAM enforced on S3 by moto itself.
    #[default]
    Moto,
    /// LocalStack community in host mode from the pinned venv (`e2e/localstack/`).
    LocalStack,
    /// LocalStack in a container started with testcontainers; `image` `None`: the default
    /// (see `localstack_docker`).
    LocalStackDocker { image: Option<String> },
    /// An existing LocalStack at this `http(s)://` URL (never started or stopped here; its
    /// account 123456789012 is emptied between scenarios).
    Url(String),
}

impl AwsBackend {
    /// Whether the backend itself refuses what identity policies do not allow (moto with
    /// `INITIAL_NO_AUTH_ACTION_COUNT`); LocalStack community enforces nothing, so the gate
    /// authorizes S3 requests in front of it.
    pub fn kind(&self) -> BackendKind {
        match self {
            AwsBackend::Moto => BackendKind::Moto,
            _ => BackendKind::LocalStack,
        }
    }

    /// With the image of `--localstack-image` (only meaningful for `localstack-docker`).
    pub fn with_localstack_image(self, image: Option<String>) -> Result<Self, AwsBackendError> {
        match (self, image) {
            (backend, None) => Ok(backend),
            (AwsBackend::LocalStackDocker { .. }, Some(image)) => {
                Ok(AwsBackend::LocalStackDocker { image: Some(image) })
            }
            (backend, Some(_)) => Err(AwsBackendError::ImageWithoutDocker(backend.to_string())),
        }
    }
}

/// How the gate treats what it fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// moto, IAM enforced: the gate passes S3 through.
    Moto,
    /// LocalStack (any form): the gate resolves each key's owner and authorizes S3 itself.
    LocalStack,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AwsBackendError {
    #[error(
        "--aws-backend {0:?}: expected moto, localstack, localstack-docker or an http(s):// URL of a running LocalStack"
    )]
    Unknown(String),
    #[error("--localstack-image applies to --aws-backend localstack-docker only (not {0})")]
    ImageWithoutDocker(String),
}

impl FromStr for AwsBackend {
    type Err = AwsBackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "moto" => Ok(AwsBackend::Moto),
            "localstack" => Ok(AwsBackend::LocalStack),
            "localstack-docker" => Ok(AwsBackend::LocalStackDocker { image: None }),
            url if (url.starts_with("http://") || url.starts_with("https://"))
                && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some()) =>
            {
                Ok(AwsBackend::Url(url.trim_end_matches('/').to_owned()))
            }
            other => Err(AwsBackendError::Unknown(other.to_owned())),
        }
    }
}

impl fmt::Display for AwsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsBackend::Moto => f.write_str("moto"),
            AwsBackend::LocalStack => f.write_str("localstack"),
            AwsBackend::LocalStackDocker { .. } => f.write_str("localstack-docker"),
            AwsBackend::Url(url) => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!("moto".parse(), Ok(AwsBackend::Moto));
        assert_eq!("localstack".parse(), Ok(AwsBackend::LocalStack));
        assert_eq!(
            "localstack-docker".parse(),
            Ok(AwsBackend::LocalStackDocker { image: None })
        );
        assert_eq!(
            "http://127.0.0.1:4566/".parse(),
            Ok(AwsBackend::Url("http://127.0.0.1:4566".to_owned()))
        );
        assert!(matches!(
            "localstak".parse::<AwsBackend>(),
            Err(AwsBackendError::Unknown(_))
        ));
        assert!("http://".parse::<AwsBackend>().is_err());
        assert_eq!(AwsBackend::default().kind(), BackendKind::Moto);
        assert_eq!(AwsBackend::LocalStack.kind(), BackendKind::LocalStack);
    }

    #[test]
    fn image_only_with_docker() {
        let docker = AwsBackend::LocalStackDocker { image: None }
            .with_localstack_image(Some("x:1".to_owned()));
        assert_eq!(
            docker,
            Ok(AwsBackend::LocalStackDocker {
                image: Some("x:1".to_owned())
            })
        );
        assert!(
            AwsBackend::Moto
                .with_localstack_image(Some("x:1".to_owned()))
                .is_err()
        );
    }
}
