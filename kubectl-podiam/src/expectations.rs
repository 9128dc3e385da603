//! No silent pass: every expectation the user gave (`--expect-role`, `--expect-gsa`,
//! `--expect-client-id`, `--can`, `--cannot`, `--assume-role`) ends as a check, whatever path the pod took.
//!
//! The mechanisms judge an expectation when their exchange answered. Afterwards, [`complete`]
//! adds a check for every expectation no check covers: judged against the principal the
//! configuration names (a mismatch fails, a match passes "from the configuration, not
//! exchanged"), or against the identity found, else a `skip` naming why. A skipped expectation
//! leaves the pod `incomplete` unless `--allow-skip` ([`crate::model::ReportItem::verdict_of`]).

use crate::exchange::aws_sts;
use crate::mechanisms::Configured;
use crate::model::{Check, Identity, MechanismId};
use crate::options::{AccessExpectation, VerifyOptions};

pub const EXPECTED_ROLE: &str = "aws.sts.expected-role";
pub const EXPECTED_GSA: &str = "gcp.expected-gsa";
pub const EXPECTED_CLIENT_ID: &str = "azure.entra.expected-client-id";

/// Every check id that judges a user's expectation: a `skip` among them makes the pod
/// incomplete unless `--allow-skip`. A new expectation flag adds its id here and to [`complete`].
pub const IDS: &[&str] = &[
    EXPECTED_ROLE,
    EXPECTED_GSA,
    EXPECTED_CLIENT_ID,
    "aws.access.can",
    "aws.access.cannot",
    "gcp.access.can",
    "gcp.access.cannot",
    "azure.access.can",
    "azure.access.cannot",
    crate::mechanisms::aws_role_chain::ID,
];

pub fn is_expectation(id: &str) -> bool {
    IDS.contains(&id)
}

/// Says the identity was read from the configuration, not answered by a cloud.
pub const CONFIGURED_SOURCE: &str = "configured (not exchanged)";

/// Whether `identity` is the configuration's (offline), not a cloud's answer.
pub fn is_configured(identity: &Identity) -> bool {
    identity.source.starts_with("configured (")
}

/// One `--expect-*` flag: which cloud's principal it names and how it is compared.
struct IdentityExpectation<'a> {
    id: &'static str,
    expected: &'a str,
    provider: &'static str,
    what: &'static str,
    mechanisms: &'static [MechanismId],
    fix: &'static str,
}

impl IdentityExpectation<'_> {
    fn matches(&self, actual: &str) -> bool {
        match self.id {
            // Role ARN or the session ARN of an assumed role: the same role in the same account.
            // Both must parse: two unparsable ARNs are not "the same role".
            EXPECTED_ROLE => {
                aws_sts::role_name(self.expected).is_some()
                    && aws_sts::account(self.expected).is_some()
                    && aws_sts::role_name(self.expected) == aws_sts::role_name(actual)
                    && aws_sts::account(self.expected) == aws_sts::account(actual)
            }
            _ => self.expected.eq_ignore_ascii_case(actual),
        }
    }

    /// Against a principal a cloud answered.
    fn against(&self, actual: &str) -> Check {
        let (id, expected, what) = (self.id, self.expected, self.what);
        if self.matches(actual) {
            Check::pass(id, format!("the pod gets the expected {what} {expected}"))
        } else {
            Check::fail(
                id,
                format!("expected {what} {expected}, but the pod gets {actual}"),
                self.fix,
            )
        }
    }

    /// Against the principal the configuration names (no exchange answered).
    fn against_configured(&self, c: &Configured) -> Check {
        const NOT_EXCHANGED: &str = "(from the configuration, not exchanged)";
        let (id, expected, what) = (self.id, self.expected, self.what);
        if self.matches(&c.principal) {
            Check::pass(
                id,
                format!(
                    "the pod is configured for the expected {what} {expected} by {} {NOT_EXCHANGED}",
                    c.origin
                ),
            )
        } else {
            Check::fail(
                id,
                format!(
                    "expected {what} {expected}, but {} names {} {NOT_EXCHANGED}",
                    c.origin, c.principal
                ),
                self.fix,
            )
        }
    }
}

fn identity_expectations(options: &VerifyOptions) -> Vec<IdentityExpectation<'_>> {
    let mut out = Vec::new();
    if let Some(expected) = &options.expect_role {
        out.push(IdentityExpectation {
            id: EXPECTED_ROLE,
            expected,
            provider: "aws",
            what: "role",
            mechanisms: &[MechanismId::AwsIrsa, MechanismId::AwsPodIdentity],
            fix: "fix the ServiceAccount annotation eks.amazonaws.com/role-arn (or a preset AWS_ROLE_ARN, or the Pod Identity association) and recreate the pod",
        });
    }
    if let Some(expected) = &options.expect_gsa {
        out.push(IdentityExpectation {
            id: EXPECTED_GSA,
            expected,
            provider: "gcp",
            what: "GSA",
            mechanisms: &[MechanismId::GcpWorkloadIdentity],
            fix: "annotate the KSA with iam.gke.io/gcp-service-account=EXPECTED (or fix the external_account impersonation URL)",
        });
    }
    if let Some(expected) = &options.expect_client_id {
        out.push(IdentityExpectation {
            id: EXPECTED_CLIENT_ID,
            expected,
            provider: "azure",
            what: "client id",
            mechanisms: &[MechanismId::AzureWorkloadIdentity],
            fix: "fix azure.workload.identity/client-id on the ServiceAccount (or a preset AZURE_CLIENT_ID) and recreate the pod",
        });
    }
    out
}

/// The `--expect-*` checks for a principal a cloud answered (e.g. the ephemeral probe's),
/// for the expectations on that principal's cloud.
pub fn against_identity(options: &VerifyOptions, identity: &Identity) -> Vec<Check> {
    identity_expectations(options)
        .iter()
        .filter(|e| e.provider == identity.provider)
        .map(|e| e.against(&identity.principal))
        .collect()
}

/// `(check id, cloud)` of a `--can`/`--cannot`, and the spec as the user wrote it.
fn access_parts(access: &AccessExpectation) -> (&'static str, &'static str, &str) {
    match access {
        AccessExpectation::S3 { allowed, spec, .. } => (
            if *allowed {
                "aws.access.can"
            } else {
                "aws.access.cannot"
            },
            "aws",
            spec,
        ),
        AccessExpectation::Gcs { allowed, spec, .. } => (
            if *allowed {
                "gcp.access.can"
            } else {
                "gcp.access.cannot"
            },
            "gcp",
            spec,
        ),
        AccessExpectation::Blob { allowed, spec, .. } => (
            if *allowed {
                "azure.access.can"
            } else {
                "azure.access.cannot"
            },
            "azure",
            spec,
        ),
    }
}

fn cloud_of(mechanism: MechanismId) -> Option<&'static str> {
    match mechanism {
        MechanismId::AwsIrsa | MechanismId::AwsPodIdentity => Some("aws"),
        MechanismId::GcpWorkloadIdentity => Some("gcp"),
        MechanismId::AzureWorkloadIdentity => Some("azure"),
        MechanismId::StaticCredentials | MechanismId::None => None,
    }
}

fn wired(mechanism: MechanismId) -> String {
    match mechanism {
        MechanismId::None => "the pod is wired to no cloud identity".into(),
        m => format!("the pod is wired for {}", m.as_str()),
    }
}

/// What [`complete`] knows of the judged pod.
pub struct Judged<'a> {
    /// The mechanism as reported (static credentials win over a wired mechanism).
    pub mechanism: MechanismId,
    pub identity: Option<&'a Identity>,
    /// What the detected mechanism's configuration names, or why it cannot tell.
    pub configured: Result<Configured, String>,
    /// No exchange could run by construction (`verify -f` without `--token-file`).
    pub offline: bool,
}

/// Adds a check for every expectation in `options` that no check in `checks` covers.
pub fn complete(checks: &mut Vec<Check>, options: &VerifyOptions, pod: &Judged<'_>) {
    let mut added = Vec::new();
    for e in identity_expectations(options) {
        if checks.iter().any(|c| c.id == e.id) {
            continue;
        }
        added.push(identity_check(&e, pod));
    }
    for access in &options.access {
        let (id, cloud, spec) = access_parts(access);
        // Several --can share an id: each check's message starts with its own spec.
        let prefix = format!("{spec}:");
        if checks
            .iter()
            .any(|c| c.id == id && c.message.starts_with(&prefix))
        {
            continue;
        }
        added.push(untried_access(access, id, cloud, spec, pod));
    }
    for target in &options.assume_roles {
        // One check per hop; each message starts with its own ARN (aws_role_chain.rs).
        let prefix = format!("{target}:");
        let id = crate::mechanisms::aws_role_chain::ID;
        if checks
            .iter()
            .any(|c| c.id == id && c.message.starts_with(&prefix))
        {
            continue;
        }
        added.push(Check::skip(
            id,
            format!("{target}: not tried — {}", no_credentials("aws", pod)),
        ));
    }
    checks.extend(added);
}

fn identity_check(e: &IdentityExpectation<'_>, pod: &Judged<'_>) -> Check {
    let exchanged = pod
        .identity
        .filter(|i| i.provider == e.provider && !is_configured(i));
    if e.mechanisms.contains(&pod.mechanism) {
        return match (&pod.configured, exchanged) {
            // A cloud's answer always wins over what the configuration names.
            (_, Some(identity)) => e.against(&identity.principal),
            (Ok(c), None) if c.provider == e.provider => e.against_configured(c),
            (Ok(_), None) => Check::skip(
                e.id,
                format!(
                    "expected {} {}: not judged — the configuration names another cloud's principal",
                    e.what, e.expected
                ),
            ),
            (Err(why), None) => Check::skip(
                e.id,
                format!(
                    "expected {} {}: not judged — no exchange answered and {why}",
                    e.what, e.expected
                ),
            ),
        };
    }
    if pod.mechanism == MechanismId::StaticCredentials {
        return Check::skip(
            e.id,
            format!(
                "expected {} {}: not judged — the container uses a static key, and podiam never uses static keys to ask whose they are",
                e.what, e.expected
            ),
        );
    }
    // Another cloud's mechanism, or none: what the pod really got (its node's identity), else
    // the configuration decides — it cannot be this principal.
    match exchanged {
        Some(identity) => e.against(&identity.principal),
        None => Check::fail(
            e.id,
            format!(
                "expected {} {}, but {}",
                e.what,
                e.expected,
                wired(pod.mechanism)
            ),
            e.fix,
        ),
    }
}

/// A `--can`/`--cannot` no call answered. When the pod is wired to another cloud (or none) and
/// nothing of `cloud` answered for it, the configuration decides: it has no `cloud` credentials,
/// so `--can` fails and `--cannot` holds. Otherwise a skip naming why it was not tried.
fn untried_access(
    access: &AccessExpectation,
    id: &'static str,
    cloud: &str,
    spec: &str,
    pod: &Judged<'_>,
) -> Check {
    let other_cloud = cloud_of(pod.mechanism) != Some(cloud)
        && pod.mechanism != MechanismId::StaticCredentials
        && pod.identity.is_none_or(|i| i.provider != cloud);
    if !other_cloud {
        return Check::skip(
            id,
            format!("{spec}: not tried — {}", no_credentials(cloud, pod)),
        );
    }
    let why = format!(
        "{}: the pod gets no {cloud} credentials (from the configuration, not exchanged)",
        wired(pod.mechanism)
    );
    if access.allowed() {
        Check::fail(
            id,
            format!("{spec}: cannot be allowed — {why}"),
            format!("wire the pod to a {cloud} identity that is granted {spec}"),
        )
    } else {
        Check::pass(id, format!("{spec}: denied — {why}"))
    }
}

/// Why a `--can`/`--cannot` on `cloud` could not be tried.
fn no_credentials(cloud: &str, pod: &Judged<'_>) -> String {
    match cloud_of(pod.mechanism) {
        Some(c) if c == cloud => {
            if pod.offline {
                "offline: no credentials to make the call with (pass --token-file to exchange the pod's token)".into()
            } else {
                "no credentials were obtained (see the exchange's checks)".into()
            }
        }
        _ if pod.mechanism == MechanismId::StaticCredentials => {
            "the container uses a static key, and podiam never uses static keys".into()
        }
        _ => format!(
            "{}: there are no {cloud} credentials to make the call with",
            wired(pod.mechanism)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn options() -> VerifyOptions {
        VerifyOptions {
            expect_role: Some("arn:aws:iam::111111111111:role/wanted".into()),
            expect_gsa: Some("gsa@p.iam.gserviceaccount.com".into()),
            access: vec![
                AccessExpectation::parse("s3:ListBucket=a", true).unwrap(),
                AccessExpectation::parse("s3:ListBucket=b", true).unwrap(),
            ],
            ..Default::default()
        }
    }

    fn configured(role: &str) -> Result<Configured, String> {
        Ok(Configured {
            provider: "aws",
            principal: role.into(),
            origin: "AWS_ROLE_ARN preset in container app".into(),
        })
    }

    fn by_id<'a>(checks: &'a [Check], id: &str) -> Vec<&'a Check> {
        checks.iter().filter(|c| c.id == id).collect()
    }

    #[test]
    fn offline_irsa_judges_the_role_from_the_configuration() {
        let mut checks = vec![Check::pass("aws.access.can", "s3:ListBucket=a: allowed")];
        let pod = Judged {
            mechanism: MechanismId::AwsIrsa,
            identity: None,
            configured: configured("arn:aws:iam::111111111111:role/wrong"),
            offline: true,
        };
        complete(&mut checks, &options(), &pod);
        let role = by_id(&checks, EXPECTED_ROLE);
        assert_eq!(role.len(), 1);
        assert_eq!(role[0].status, Status::Fail);
        assert!(
            role[0]
                .message
                .contains("from the configuration, not exchanged"),
            "{}",
            role[0].message
        );
        // The covered --can stays alone; the other one is a skip naming why.
        let can = by_id(&checks, "aws.access.can");
        assert_eq!(can.len(), 2);
        assert_eq!(can[1].status, Status::Skip);
        assert!(
            can[1]
                .message
                .starts_with("s3:ListBucket=b: not tried — offline")
        );
        // The GSA on an AWS pod: the configuration decides it cannot be.
        assert_eq!(by_id(&checks, EXPECTED_GSA)[0].status, Status::Fail);

        let mut checks = Vec::new();
        let pod = Judged {
            configured: configured("arn:aws:iam::111111111111:role/wanted"),
            ..pod
        };
        complete(&mut checks, &options(), &pod);
        assert_eq!(by_id(&checks, EXPECTED_ROLE)[0].status, Status::Pass);
    }

    #[test]
    fn every_assume_role_hop_ends_as_a_check() {
        let first = "arn:aws:iam::111111111111:role/first";
        let second = "arn:aws:iam::111111111111:role/second";
        let id = crate::mechanisms::aws_role_chain::ID;
        let options = VerifyOptions {
            assume_roles: vec![first.into(), second.into()],
            ..Default::default()
        };
        let pod = Judged {
            mechanism: MechanismId::AwsIrsa,
            identity: None,
            configured: configured("arn:aws:iam::111111111111:role/pod"),
            offline: true,
        };
        // The first hop was judged; the second vanished: it becomes a skip naming why.
        let mut checks = vec![Check::pass(id, format!("{first}: hop 1 assumed it"))];
        complete(&mut checks, &options, &pod);
        let hops = by_id(&checks, id);
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[1].status, Status::Skip);
        assert!(
            hops[1]
                .message
                .starts_with(&format!("{second}: not tried — offline")),
            "{}",
            hops[1].message
        );
        assert!(is_expectation(id));
    }

    #[test]
    fn an_expectation_already_judged_is_left_alone() {
        let mut checks = vec![Check::pass(EXPECTED_ROLE, "the pod gets the expected role")];
        let pod = Judged {
            mechanism: MechanismId::AwsIrsa,
            identity: None,
            configured: configured("arn:aws:iam::1:role/other"),
            offline: false,
        };
        let options = VerifyOptions {
            expect_role: options().expect_role,
            ..Default::default()
        };
        complete(&mut checks, &options, &pod);
        assert_eq!(checks.len(), 1);
    }

    #[test]
    fn without_configuration_or_answer_it_is_a_skip_naming_why() {
        let mut checks = Vec::new();
        let pod = Judged {
            mechanism: MechanismId::AwsPodIdentity,
            identity: None,
            configured: Err("the role is in the association".into()),
            offline: true,
        };
        let options = VerifyOptions {
            expect_role: options().expect_role,
            ..Default::default()
        };
        complete(&mut checks, &options, &pod);
        assert_eq!(checks[0].status, Status::Skip);
        assert!(checks[0].message.contains("the role is in the association"));
        assert!(is_expectation(checks[0].id));
    }

    #[test]
    fn the_probes_principal_is_judged() {
        let identity = Identity {
            provider: "aws",
            principal: "arn:aws:sts::111111111111:assumed-role/wanted/podiam-x".into(),
            source: "ephemeral probe".into(),
        };
        let checks = against_identity(&options(), &identity);
        assert_eq!(checks.len(), 1, "only the AWS expectation: {checks:?}");
        assert_eq!(checks[0].status, Status::Pass);
    }
}
