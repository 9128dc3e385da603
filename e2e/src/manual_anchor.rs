//! The manual anchor of `bench verify`: what a user does by hand to learn which identity an
//! IRSA pod gets, timed end to end like one plugin run:
//!
//! ```text
//! TOKEN=$(kubectl exec s3-pod -- cat /var/run/secrets/eks.amazonaws.com/serviceaccount/token)
//! aws sts assume-role-with-web-identity --role-arn … --role-session-name … --web-identity-token "$TOKEN"
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_SESSION_TOKEN=… aws sts get-caller-identity
//! ```
//!
//! kubectl is the one built with the other Kubernetes binaries, the AWS CLI the pinned one of
//! [`crate::awscli_env`], both against the same endpoints the plugin uses from this machine.
//! The token and the credentials stay in memory: never printed, logged or in an error (stderr
//! is redacted before it is kept), and dropped after each run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Where the EKS webhook (and its stand-in) mounts the IRSA token.
pub const IRSA_TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/// Session name of the anchor's AssumeRoleWithWebIdentity.
pub const SESSION_NAME: &str = "podiam-manual-anchor";

#[derive(Debug, thiserror::Error)]
pub enum ManualAnchorError {
    #[error(
        "kubectl not found at {}: run `podiam-e2e setup` (e2e/k8s/build.sh builds it with the other Kubernetes binaries)",
        .0.display()
    )]
    KubectlMissing(PathBuf),
    #[error("starting {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// `stderr` has every secret of the run replaced.
    #[error("{step} exited {code:?}: {stderr}")]
    Failed {
        step: &'static str,
        code: Option<i32>,
        stderr: String,
    },
    /// Says what was wrong with the output, never the output itself (it holds secrets).
    #[error("{step}: {what}")]
    UnexpectedOutput {
        step: &'static str,
        what: &'static str,
    },
    #[error("get-caller-identity answered {got}, expected {expected}")]
    WrongIdentity { got: String, expected: String },
}

/// kubectl with the environment's kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub kubectl: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    /// The projected token of `pod`, read by exec as a user would.
    pub async fn cat_token(&self, namespace: &str, pod: &str) -> Result<String, ManualAnchorError> {
        if !self.kubectl.is_file() {
            return Err(ManualAnchorError::KubectlMissing(self.kubectl.clone()));
        }
        let mut cmd = clean_command(&self.kubectl);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .args(kubectl_exec_args(namespace, pod));
        let out = run(cmd, &self.kubectl, "kubectl exec cat", &[]).await?;
        let token = String::from_utf8(out.stdout)
            .map_err(|_| unexpected("kubectl exec cat", "the token is not UTF-8"))?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(unexpected("kubectl exec cat", "the token file is empty"));
        }
        Ok(token)
    }
}

/// The pinned AWS CLI, pointed at the emulated endpoint (`AWS_ENDPOINT_URL`, as the plugin's).
#[derive(Debug, Clone)]
pub struct AwsCli {
    pub aws: PathBuf,
    pub endpoint_url: String,
    pub region: String,
}

/// Temporary credentials from AssumeRoleWithWebIdentity. Debug shows no value.
pub struct SessionCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .finish()
    }
}

impl SessionCredentials {
    fn secrets(&self) -> [&str; 3] {
        [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
    }
}

impl AwsCli {
    /// `aws sts assume-role-with-web-identity`. The token is in the CLI's argv, as when a
    /// user types it: visible in /proc to this machine's users while the child runs. That is
    /// the anchor's price (it measures the manual way); the plugin itself never does this.
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &str,
    ) -> Result<SessionCredentials, ManualAnchorError> {
        let step = "aws sts assume-role-with-web-identity";
        let mut cmd = self.command();
        cmd.args(assume_role_args(role_arn, session_name, token));
        let out = run(cmd, &self.aws, step, &[token]).await?;
        let text =
            String::from_utf8(out.stdout).map_err(|_| unexpected(step, "output is not UTF-8"))?;
        parse_credentials(&text)
    }

    /// `aws sts get-caller-identity` with `credentials` in the environment: the caller's ARN.
    pub async fn caller_arn(
        &self,
        credentials: &SessionCredentials,
    ) -> Result<String, ManualAnchorError> {
        let step = "aws sts get-caller-identity";
        let mut cmd = self.command();
        cmd.env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
            .env("AWS_SESSION_TOKEN", &credentials.session_token)
            .args(caller_identity_args());
        let out = run(cmd, &self.aws, step, &credentials.secrets()).await?;
        let arn = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !arn.starts_with("arn:") {
            return Err(unexpected(step, "the answer is not an ARN"));
        }
        Ok(arn)
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = clean_command(&self.aws);
        // No profile or keys from the developer's files: only what the anchor sets.
        cmd.env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", &self.endpoint_url)
            // CLI v1 reads AWS_DEFAULT_REGION only.
            .env("AWS_DEFAULT_REGION", &self.region)
            .env("AWS_REGION", &self.region);
        cmd
    }
}

/// One anchor run: the three commands, in sequence, on one pod.
#[derive(Debug, Clone)]
pub struct ManualAnchor {
    pub kubectl: Kubectl,
    pub aws: AwsCli,
    pub namespace: String,
    pub pod: String,
    pub role_arn: String,
}

impl ManualAnchor {
    /// Runs the three commands and checks the caller is the role's session.
    pub async fn run(&self) -> Result<(), ManualAnchorError> {
        let token = self.kubectl.cat_token(&self.namespace, &self.pod).await?;
        let credentials = self
            .aws
            .assume_role_with_web_identity(&self.role_arn, SESSION_NAME, &token)
            .await?;
        drop(token);
        let arn = self.aws.caller_arn(&credentials).await?;
        let expected = assumed_role_arn(&self.role_arn, SESSION_NAME);
        if expected.as_deref() != Some(arn.as_str()) {
            return Err(ManualAnchorError::WrongIdentity {
                got: arn,
                expected: expected.unwrap_or_else(|| format!("a session of {}", self.role_arn)),
            });
        }
        Ok(())
    }
}

/// `exec -n NS POD -- cat TOKEN_FILE`.
pub fn kubectl_exec_args(namespace: &str, pod: &str) -> Vec<String> {
    ["exec", "-n", namespace, pod, "--", "cat", IRSA_TOKEN_FILE]
        .map(str::to_owned)
        .to_vec()
}

/// The CLI's AssumeRoleWithWebIdentity, printing the three credential fields as text.
pub fn assume_role_args(role_arn: &str, session_name: &str, token: &str) -> Vec<String> {
    [
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        role_arn,
        "--role-session-name",
        session_name,
        "--web-identity-token",
        token,
        "--query",
        "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]",
        "--output",
        "text",
    ]
    .map(str::to_owned)
    .to_vec()
}

pub fn caller_identity_args() -> Vec<String> {
    [
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The text output of [`assume_role_args`]: three fields separated by tabs.
pub fn parse_credentials(text: &str) -> Result<SessionCredentials, ManualAnchorError> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.as_slice() {
        [key, secret, session] => Ok(SessionCredentials {
            access_key_id: (*key).to_owned(),
            secret_access_key: (*secret).to_owned(),
            session_token: (*session).to_owned(),
        }),
        _ => Err(unexpected(
            "aws sts assume-role-with-web-identity",
            "expected three credential fields",
        )),
    }
}

/// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` → `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
pub fn assumed_role_arn(role_arn: &str, session_name: &str) -> Option<String> {
    let rest = role_arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(":iam::")?;
    let (account, role_path) = rest.split_once(":role/")?;
    let name = role_path.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some(format!(
        "arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"
    ))
}

/// `text` with every non-empty secret replaced by `<redacted>`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |acc, s| acc.replace(s, "<redacted>"))
}

/// Only PATH and HOME from the harness's environment, as for the plugin.
fn clean_command(program: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear();
    for passed in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(passed) {
            cmd.env(passed, value);
        }
    }
    cmd
}

async fn run(
    mut cmd: tokio::process::Command,
    program: &Path,
    step: &'static str,
    secrets: &[&str],
) -> Result<Output, ManualAnchorError> {
    let out = cmd
        .output()
        .await
        .map_err(|source| ManualAnchorError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(ManualAnchorError::Failed {
            step,
            code: out.status.code(),
            stderr: redact(String::from_utf8_lossy(&out.stderr).trim(), secrets),
        });
    }
    Ok(out)
}

fn unexpected(step: &'static str, what: &'static str) -> ManualAnchorError {
    ManualAnchorError::UnexpectedOutput { step, what }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::webhooks::{IRSA_MOUNT_PATH, IRSA_TOKEN_PATH};

    #[test]
    fn the_token_file_is_where_the_webhook_mounts_it() {
        assert_eq!(
            IRSA_TOKEN_FILE,
            format!("{IRSA_MOUNT_PATH}/{IRSA_TOKEN_PATH}")
        );
    }

    #[test]
    fn kubectl_execs_cat_of_the_token_in_the_pod() {
        assert_eq!(
            kubectl_exec_args("default", "s3-pod"),
            [
                "exec",
                "-n",
                "default",
                "s3-pod",
                "--",
                "cat",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
            ]
        );
    }

    #[test]
    fn assume_role_passes_each_value_after_its_flag() {
        let args = assume_role_args("arn:aws:iam::1:role/r", "sess", "tok.en.x");
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).expect(flag);
            args[i + 1].clone()
        };
        assert_eq!(args[..2], ["sts", "assume-role-with-web-identity"]);
        assert_eq!(after("--role-arn"), "arn:aws:iam::1:role/r");
        assert_eq!(after("--role-session-name"), "sess");
        assert_eq!(after("--web-identity-token"), "tok.en.x");
        assert_eq!(after("--output"), "text");
        assert_eq!(
            after("--query"),
            "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]"
        );
    }

    #[test]
    fn caller_identity_prints_the_arn_only() {
        assert_eq!(
            caller_identity_args(),
            [
                "sts",
                "get-caller-identity",
                "--query",
                "Arn",
                "--output",
                "text"
            ]
        );
    }

    #[test]
    fn three_text_fields_are_the_credentials() {
        let creds = parse_credentials("ASIAKEY\tsecret/with+chars\tFwoGZXIvYXdzE==\n")
            .expect("three fields");
        assert_eq!(creds.access_key_id, "ASIAKEY");
        assert_eq!(creds.secret_access_key, "secret/with+chars");
        assert_eq!(creds.session_token, "FwoGZXIvYXdzE==");
    }

    #[test]
    fn other_shapes_fail_without_echoing_the_output() {
        for text in ["", "ASIAKEY\tsecret", "a\tb\tc\td", "None\n"] {
            let err = parse_credentials(text).expect_err(text).to_string();
            assert!(err.contains("three credential fields"), "{err}");
            if !text.is_empty() {
                assert!(!err.contains(text.trim()), "{err}");
            }
        }
    }

    #[test]
    fn debug_of_credentials_shows_no_value() {
        let creds = parse_credentials("ASIAKEYID\tSECRETVALUE\tSESSIONTOKEN").expect("parses");
        let debug = format!("{creds:?}");
        for secret in ["ASIAKEYID", "SECRETVALUE", "SESSIONTOKEN"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn the_expected_caller_is_the_roles_session() {
        assert_eq!(
            assumed_role_arn("arn:aws:iam::123456789012:role/my-pod-role", "s").as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/my-pod-role/s")
        );
        assert_eq!(
            assumed_role_arn("arn:aws-cn:iam::1:role/team/app", "s").as_deref(),
            Some("arn:aws-cn:sts::1:assumed-role/app/s")
        );
        assert_eq!(assumed_role_arn("arn:aws:iam::1:user/u", "s"), None);
    }

    #[test]
    fn redaction_replaces_every_secret() {
        let text = "An error occurred (InvalidIdentityToken): tok.en.x is bad; key AKIA1 AKIA1";
        let redacted = redact(text, &["tok.en.x", "AKIA1", ""]);
        assert_eq!(
            redacted,
            "An error occurred (InvalidIdentityToken): <redacted> is bad; key <redacted> <redacted>"
        );
    }

    #[tokio::test]
    async fn a_missing_kubectl_names_setup() {
        let kubectl = Kubectl {
            kubectl: PathBuf::from("/nonexistent/kubectl"),
            kubeconfig: PathBuf::from("/nonexistent/kubeconfig"),
        };
        let err = kubectl
            .cat_token("default", "s3-pod")
            .await
            .expect_err("no kubectl")
            .to_string();
        assert!(err.contains("podiam-e2e setup"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_cli_reports_its_stderr_without_the_token() {
        // A stand-in CLI that fails the way the real one does, echoing its argv to stderr.
        let dir = tempfile::tempdir().expect("temp dir");
        let fake = dir.path().join("aws");
        std::fs::write(&fake, "#!/bin/sh\necho \"refused: $*\" >&2\nexit 254\n").expect("fake");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let cli = AwsCli {
            aws: fake,
            endpoint_url: "http://127.0.0.1:9".to_owned(),
            region: "us-east-1".to_owned(),
        };
        let err = cli
            .assume_role_with_web_identity("arn:aws:iam::1:role/r", "sess", "SECRET.TOKEN.VALUE")
            .await
            .expect_err("the stand-in fails");
        let text = err.to_string();
        assert!(text.contains("exited Some(254)"), "{text}");
        assert!(text.contains("--web-identity-token <redacted>"), "{text}");
        assert!(!text.contains("SECRET.TOKEN.VALUE"), "{text}");
    }
}
