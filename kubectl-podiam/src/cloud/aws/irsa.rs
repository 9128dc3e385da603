//! Exact strings of amazon-eks-pod-identity-webhook (pkg/annotations.go, pkg/handler/handler.go).

pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
/// A frequent typo: the annotation is silently ignored.
pub const ROLE_ARN_TYPO: &str = "eks.amazon.com/role-arn";
pub const AUDIENCE: &str = "eks.amazonaws.com/audience";
pub const STS_REGIONAL_ENDPOINTS: &str = "eks.amazonaws.com/sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "eks.amazonaws.com/token-expiration";
pub const SKIP_CONTAINERS: &str = "eks.amazonaws.com/skip-containers";
/// Pod label matched by the webhook's objectSelector to opt a pod out.
pub const SKIP_POD_LABEL: &str = "eks.amazonaws.com/skip-pod-identity-webhook";

pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
pub const DEFAULT_EXPIRATION: i64 = 86400;
pub const MIN_EXPIRATION: i64 = 600;

pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_REGIONAL: &str = "AWS_STS_REGIONAL_ENDPOINTS";

pub const VOLUME_NAME: &str = "aws-iam-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const TOKEN_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
pub const WINDOWS_TOKEN_PATH: &str = r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token";

/// The webhook's own validation pattern; an invalid ARN is only warned about there.
pub const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w\-/.@+=,]+$";
