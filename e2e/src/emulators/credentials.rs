//! Admin credentials for moto: used by the gate and setup to read and write IAM.

use std::fmt;

/// The access key of the bootstrap IAM admin user in moto.
///
/// `Debug` is redacted so the secret never reaches logs by accident.
#[derive(Clone)]
pub struct AdminCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl AdminCredentials {
    /// Credentials in the shape the AWS SDK clients take.
    pub fn sdk_credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            None,
            None,
            "podiam-e2e-admin",
        )
    }

    /// An IAM client talking to `endpoint` (the gate or moto) as the admin.
    pub fn iam_client(&self, endpoint: &str) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new(super::REGION))
            .endpoint_url(endpoint)
            .credentials_provider(self.sdk_credentials())
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// An S3 client (path-style, as moto needs) talking to `endpoint` as the admin.
    pub fn s3_client(&self, endpoint: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(super::REGION))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(self.sdk_credentials())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}
