//! The Kubernetes half of the identity: rule matching, the manifests' RBAC evaluated offline
//! (wildcards, cluster-admin, secrets read, aggregated roles, subjects), the automounted-token
//! heuristic, and the live review's fallbacks against a scripted API server.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podiam::answer_cache::AnswerCache;
use podiam::evidence::Probe;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{Check, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;
use podiam::rbac::rules::{Request, Rule};
use podiam::rbac::{ManifestRbac, RbacOptions};
use serde_json::{Value, json};

const POD: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: team}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team}
spec:
  serviceAccountName: app
  containers: [{name: app, image: nginx, command: [nginx, -g, "daemon off;"]}]
"#;

fn judge_yaml(yaml: &str) -> ReportItem {
    let docs = documents::parse(Path::new("test.yaml"), yaml).expect("fixture parses");
    let subjects = subjects::subjects(&docs, "team", None).expect("fixture has pods");
    assert_eq!(subjects.len(), 1, "expected one pod");
    let options = VerifyOptions {
        rbac: RbacOptions {
            manifests: ManifestRbac::from_documents(&docs, "team").expect("rbac parses"),
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(judge(
        &subjects[0],
        &Probe::Offline { token: None },
        &options,
    ))
}

fn with_rbac(rbac: &str) -> ReportItem {
    judge_yaml(&format!("{POD}\n---\n{rbac}"))
}

fn check<'a>(item: &'a ReportItem, id: &str) -> &'a Check {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", item.checks))
}

fn status(item: &ReportItem, id: &str) -> Status {
    check(item, id).status
}

const CLUSTER_ADMIN_BINDING: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: app-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: app, namespace: team}]
"#;

const SECRETS_READER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secrets-reader}
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, list, watch]
"#;

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    Rule {
        verbs: v(verbs),
        api_groups: v(groups),
        resources: v(resources),
        ..Default::default()
    }
}

fn req<'a>(verb: &'a str, group: &'a str, resource: &'a str, sub: &'a str) -> Request<'a> {
    Request {
        verb,
        group,
        resource,
        subresource: sub,
        namespace: Some("team"),
    }
}

#[test]
fn rules_match_like_the_rbac_authorizer() {
    let exec = rule(&["create"], &[""], &["pods/exec"]);
    assert!(exec.allows(&req("create", "", "pods", "exec")));
    assert!(!exec.allows(&req("create", "", "pods", "")));
    assert!(!exec.allows(&req("get", "", "pods", "exec")));
    let any_exec = rule(&["create"], &[""], &["*/exec"]);
    assert!(any_exec.allows(&req("create", "", "pods", "exec")));
    assert!(!any_exec.allows(&req("create", "", "pods", "log")));
    // A `*` request matches only a `*` rule: that is how "cluster-admin" is asked.
    let pods_all = rule(&["*"], &[""], &["pods"]);
    assert!(pods_all.allows(&req("delete", "", "pods", "")));
    assert!(!pods_all.allows(&req("*", "*", "*", "")));
    assert!(rule(&["*"], &["*"], &["*"]).allows(&req("*", "*", "*", "")));
    // Wrong group.
    assert!(!rule(&["get"], &["apps"], &["secrets"]).allows(&req("get", "", "secrets", "")));
    // resourceNames never match a request without a name.
    let mut named = rule(&["get"], &[""], &["secrets"]);
    named.resource_names = vec!["one".into()];
    assert!(!named.allows(&req("get", "", "secrets", "")));
    assert_eq!(
        rule(&["*"], &["*"], &["pods"]).wildcards(),
        vec!["verbs", "apiGroups"]
    );
    assert!(rule(&["get"], &[""], &["pods"]).wildcards().is_empty());
}

#[test]
fn cluster_admin_binding_warns_cluster_admin_secrets_and_wildcards() {
    let item = with_rbac(CLUSTER_ADMIN_BINDING);
    assert_eq!(status(&item, "k8s.rbac.review"), Status::Pass);
    assert!(
        check(&item, "k8s.rbac.review")
            .message
            .contains("ClusterRoleBinding app-admin → ClusterRole cluster-admin")
    );
    for id in [
        "k8s.rbac.cluster-admin",
        "k8s.rbac.secrets-read",
        "k8s.rbac.wildcard",
        "k8s.rbac.escalation",
    ] {
        assert_eq!(status(&item, id), Status::Warn, "{id}");
        assert!(
            check(&item, id)
                .message
                .contains("(from the manifests only)"),
            "{id}: {}",
            check(&item, id).message
        );
    }
    assert!(
        check(&item, "k8s.rbac.wildcard")
            .message
            .contains("verbs=[*] apiGroups=[*] resources=[*] cluster-wide")
    );
    // Warnings only: the verdict is decided by the cloud identity (none here → fail).
    assert!(
        item.checks
            .iter()
            .filter(|c| c.id.starts_with("k8s."))
            .all(|c| c.status != Status::Fail)
    );
    let permissions = serde_json::to_value(&item.kubernetes).unwrap();
    assert_eq!(permissions["permissions"][0]["cluster"], true);
    assert_eq!(permissions["permissions"][0]["verbs"], json!(["*"]));
    assert!(
        permissions["permissionsSource"]
            .as_str()
            .unwrap()
            .contains("the manifests only")
    );
    // The token is used by a cluster-admin workload, presumably.
    assert_eq!(status(&item, "k8s.token.automount"), Status::Pass);
}

#[test]
fn cluster_admin_bound_in_one_namespace_is_not_cluster_wide() {
    let item = with_rbac(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-admin, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: app}]
"#,
    );
    assert_eq!(status(&item, "k8s.rbac.cluster-admin"), Status::Pass);
    let secrets = check(&item, "k8s.rbac.secrets-read");
    assert_eq!(secrets.status, Status::Pass);
    assert!(
        secrets.message.contains("in namespace team only"),
        "{}",
        secrets.message
    );
    let wildcard = check(&item, "k8s.rbac.wildcard");
    assert_eq!(wildcard.status, Status::Warn);
    assert!(
        wildcard.message.contains("in namespace team"),
        "{}",
        wildcard.message
    );
}

#[test]
fn cluster_wide_secrets_reader_warns_secrets_only() {
    let item = with_rbac(&format!(
        "{SECRETS_READER}\n---\n{}",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: app-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secrets-reader}
subjects: [{kind: Group, name: "system:serviceaccounts:team"}]
"#
    ));
    let secrets = check(&item, "k8s.rbac.secrets-read");
    assert_eq!(secrets.status, Status::Warn);
    assert!(
        secrets
            .message
            .contains("get/list secrets in every namespace"),
        "{}",
        secrets.message
    );
    assert_eq!(status(&item, "k8s.rbac.cluster-admin"), Status::Pass);
    assert_eq!(status(&item, "k8s.rbac.wildcard"), Status::Pass);
    assert_eq!(status(&item, "k8s.rbac.escalation"), Status::Pass);
}

#[test]
fn aggregated_cluster_roles_fold_in_their_members() {
    let aggregated = |label: &str| {
        format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: monitoring}}
aggregationRule:
  clusterRoleSelectors: [{{matchLabels: {{example.com/aggregate-to-monitoring: "true"}}}}]
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: secret-peek, labels: {{{label}: "true"}}}}
rules: [{{apiGroups: [""], resources: [secrets], verbs: [list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: app-monitoring}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: monitoring}}
subjects: [{{kind: ServiceAccount, name: app, namespace: team}}]
"#
        )
    };
    let member = with_rbac(&aggregated("example.com/aggregate-to-monitoring"));
    assert_eq!(status(&member, "k8s.rbac.secrets-read"), Status::Warn);
    let stranger = with_rbac(&aggregated("example.com/aggregate-to-other"));
    assert_eq!(status(&stranger, "k8s.rbac.secrets-read"), Status::Pass);
}

#[test]
fn wildcard_rules_are_named_and_escalation_found() {
    let item = with_rbac(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pods-all, namespace: team}
rules:
  - {apiGroups: [""], resources: [pods], verbs: ["*"]}
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pods-all, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pods-all}
subjects: [{kind: User, name: "system:serviceaccount:team:app"}]
"#,
    );
    let wildcard = check(&item, "k8s.rbac.wildcard");
    assert_eq!(wildcard.status, Status::Warn);
    assert!(
        wildcard
            .message
            .contains(r#"1 rule(s) granted to serviceaccount team/app use wildcards"#),
        "{}",
        wildcard.message
    );
    assert!(
        wildcard.message.contains(
            r#"verbs=[*] apiGroups=[""] resources=[pods] in namespace team (`*` in verbs)"#
        ),
        "{}",
        wildcard.message
    );
    // `*` on pods includes create on pods/exec? No: a subresource needs its own rule.
    assert_eq!(status(&item, "k8s.rbac.escalation"), Status::Pass);
    assert_eq!(status(&item, "k8s.rbac.cluster-admin"), Status::Pass);
}

#[test]
fn bindings_for_someone_else_are_not_this_service_account() {
    let item = with_rbac(&format!(
        "{SECRETS_READER}\n---\n{}",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: other}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secrets-reader}
subjects:
  - {kind: ServiceAccount, name: app, namespace: elsewhere}
  - {kind: ServiceAccount, name: app}
"#
    ));
    let review = check(&item, "k8s.rbac.review");
    assert_eq!(review.status, Status::Skip);
    assert!(
        review.message.contains(
            "no RoleBinding or ClusterRoleBinding in the manifests names serviceaccount team/app"
        ),
        "{}",
        review.message
    );
    assert!(item.checks.iter().all(|c| c.id != "k8s.rbac.secrets-read"));
    assert!(item.kubernetes.permissions.is_none());
}

#[test]
fn unresolved_roles_are_named() {
    let item = with_rbac(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: view, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: app, namespace: team}]
"#,
    );
    let review = check(&item, "k8s.rbac.review");
    assert_eq!(review.status, Status::Pass);
    assert!(
        review
            .message
            .contains("not evaluated, the role is not in the manifests: RoleBinding team/view → ClusterRole view"),
        "{}",
        review.message
    );
}

#[test]
fn automounted_token_heuristic() {
    // No RBAC in the input: the review is skipped and the warning says RBAC is unknown.
    let plain = judge_yaml(POD);
    assert_eq!(status(&plain, "k8s.rbac.review"), Status::Skip);
    let automount = check(&plain, "k8s.token.automount");
    assert_eq!(automount.status, Status::Info);
    assert!(
        automount.message.contains("heuristic"),
        "{}",
        automount.message
    );
    assert!(
        automount.message.contains("its RBAC was not reviewed"),
        "{}",
        automount.message
    );
    assert!(
        automount
            .remediation
            .as_deref()
            .unwrap()
            .contains("automountServiceAccountToken: false")
    );

    let off_on_pod = judge_yaml(&POD.replace(
        "serviceAccountName: app",
        "serviceAccountName: app\n  automountServiceAccountToken: false",
    ));
    assert_eq!(status(&off_on_pod, "k8s.token.automount"), Status::Pass);
    let off_on_sa = judge_yaml(&POD.replace(
        "metadata: {name: app, namespace: team}",
        "metadata: {name: app, namespace: team}\nautomountServiceAccountToken: false",
    ));
    assert_eq!(status(&off_on_sa, "k8s.token.automount"), Status::Pass);

    let kubectl = judge_yaml(&POD.replace("image: nginx", "image: bitnami/kubectl"));
    let used = check(&kubectl, "k8s.token.automount");
    assert_eq!(used.status, Status::Pass);
    assert!(
        used.message.contains("mentions kubectl"),
        "{}",
        used.message
    );

    // Only default-like grants (self reviews): still "never uses it", now with RBAC known.
    let defaults_only = with_rbac(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: self, namespace: team}
rules: [{apiGroups: [authorization.k8s.io], resources: [selfsubjectaccessreviews], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: self, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: self}
subjects: [{kind: ServiceAccount, name: app}]
"#,
    );
    let automount = check(&defaults_only, "k8s.token.automount");
    assert_eq!(automount.status, Status::Info);
    assert!(
        automount
            .message
            .contains("has no RBAC grants beyond the defaults"),
        "{}",
        automount.message
    );
    assert_eq!(
        defaults_only.kubernetes.permissions.as_deref(),
        Some(&[][..]),
        "defaults are not listed as permissions"
    );
}

#[test]
fn a_dump_without_the_api_volume_has_no_token() {
    let dump = |volumes: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: team, uid: u1}}
spec:
  serviceAccountName: app
  containers:
    - name: app
      image: nginx
      volumeMounts: [{{name: kube-api-access-x1y2z, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}}]
  volumes: {volumes}
status: {{phase: Running}}
"#
        )
    };
    let mounted = judge_yaml(&dump(
        "[{name: kube-api-access-x1y2z, projected: {sources: [{serviceAccountToken: {path: token}}]}}]",
    ));
    let check_mounted = check(&mounted, "k8s.token.automount");
    assert_eq!(check_mounted.status, Status::Info);
    assert!(check_mounted.message.contains("kube-api-access-x1y2z"));
    let without = judge_yaml(&dump("[]"));
    assert_eq!(status(&without, "k8s.token.automount"), Status::Pass);
}

#[test]
fn rbac_warnings_never_fail_a_verified_pod() {
    // The seed example with its ServiceAccount bound to cluster-admin still verifies.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws");
    let mut docs = documents::load(&dir).unwrap();
    docs.extend(
        documents::parse(
            Path::new("binding.yaml"),
            &CLUSTER_ADMIN_BINDING.replace(
                "name: app, namespace: team",
                "name: s3-reader, namespace: default",
            ),
        )
        .unwrap(),
    );
    let subjects = subjects::subjects(&docs, "default", None).unwrap();
    let options = VerifyOptions {
        rbac: RbacOptions {
            manifests: ManifestRbac::from_documents(&docs, "default").unwrap(),
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let item = rt.block_on(judge(
        &subjects[0],
        &Probe::Offline { token: None },
        &options,
    ));
    assert_eq!(status(&item, "k8s.rbac.cluster-admin"), Status::Warn);
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
}

// ---- live review against a scripted API server ----

/// A scripted API server: which reviews are allowed, and the answers.
#[derive(Clone)]
struct ScriptedCluster {
    impersonation_allowed: bool,
    /// Answer 500 to every rules review.
    broken: bool,
    sar_allowed: bool,
    /// (verb, resource, namespace-or-empty) answered "allowed".
    allowed: Vec<(&'static str, &'static str, &'static str)>,
    rules: Value,
    calls: Arc<Mutex<Vec<String>>>,
}

impl ScriptedCluster {
    fn client(&self) -> kube::Client {
        let me = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let me = me.clone();
            async move {
                let path = req.uri().path().to_string();
                let impersonating = req
                    .headers()
                    .get("impersonate-user")
                    .map(|v| v.to_str().unwrap().to_string());
                let body = req.into_body().collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap();
                me.calls.lock().unwrap().push(format!(
                    "{} as {}",
                    path.rsplit('/').next().unwrap(),
                    impersonating.clone().unwrap_or("operator".into())
                ));
                let (code, answer) = me.answer(&path, impersonating.as_deref(), &body);
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(kube::client::Body::from(
                            serde_json::to_vec(&answer).unwrap(),
                        ))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "team")
    }

    fn answer(&self, path: &str, impersonating: Option<&str>, body: &Value) -> (u16, Value) {
        let forbidden = |message: &str| {
            (
                403,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": message, "reason": "Forbidden", "code": 403}),
            )
        };
        if let Some(user) = impersonating {
            assert!(user.starts_with("system:serviceaccount:team:"), "{user}");
            if !self.impersonation_allowed {
                return forbidden(
                    r#"serviceaccounts "app" is forbidden: User "auditor" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team""#,
                );
            }
        } else if path.ends_with("/subjectaccessreviews") {
            if !self.sar_allowed {
                return forbidden(
                    r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "auditor" cannot create resource "subjectaccessreviews""#,
                );
            }
            assert!(
                body["spec"]["user"]
                    .as_str()
                    .unwrap()
                    .starts_with("system:serviceaccount:team:")
            );
            assert_eq!(body["spec"]["groups"][1], "system:serviceaccounts:team");
        }
        if self.broken {
            return (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "etcdserver: request timed out", "code": 500}),
            );
        }
        if path.ends_with("/selfsubjectrulesreviews") {
            assert_eq!(body["spec"]["namespace"], "team");
            return (
                200,
                json!({"spec": {}, "status": {"incomplete": false, "resourceRules": self.rules, "nonResourceRules": [
                {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/healthz", "/version"]},
                {"verbs": ["get"], "nonResourceURLs": ["/.well-known/openid-configuration", "/openid/v1/jwks"]}]}}),
            );
        }
        let attrs = &body["spec"]["resourceAttributes"];
        let resource = match attrs["subresource"].as_str() {
            Some(sub) => format!("{}/{sub}", attrs["resource"].as_str().unwrap()),
            None => attrs["resource"].as_str().unwrap().to_string(),
        };
        let ns = attrs["namespace"].as_str().unwrap_or("");
        let allowed = self
            .allowed
            .iter()
            .any(|(v, r, n)| *v == attrs["verb"].as_str().unwrap() && *r == resource && *n == ns);
        (
            200,
            json!({"spec": body["spec"], "status": {"allowed": allowed}}),
        )
    }
}

fn scripted(impersonation_allowed: bool, sar_allowed: bool) -> ScriptedCluster {
    ScriptedCluster {
        impersonation_allowed,
        broken: false,
        sar_allowed,
        allowed: vec![("list", "secrets", ""), ("get", "secrets", "team")],
        rules: json!([
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
            {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["secrets"]}
        ]),
        calls: Arc::new(Mutex::new(Vec::new())),
    }
}

fn live_review(cluster: &ScriptedCluster, operator_impersonates: bool) -> ReportItem {
    let docs = documents::parse(Path::new("test.yaml"), POD).unwrap();
    let subject = subjects::subjects(&docs, "team", None).unwrap().remove(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let probe = Probe::Live {
            client: cluster.client(),
            timeout: Duration::from_secs(5),
        };
        let options = RbacOptions {
            operator_impersonates,
            ..Default::default()
        };
        let access =
            podiam::rbac::review(&subject, &probe, &options, &AnswerCache::default()).await;
        let mut item = judge(
            &subject,
            &Probe::Offline { token: None },
            &VerifyOptions::default(),
        )
        .await;
        item.checks = access.checks;
        item.kubernetes.permissions = access.permissions;
        item.kubernetes.permissions_source = access.permissions_source;
        item
    })
}

#[test]
fn live_review_impersonates_the_service_account() {
    let cluster = scripted(true, false);
    let item = live_review(&cluster, false);
    let calls = cluster.calls.lock().unwrap().clone();
    assert_eq!(
        calls[0],
        "selfsubjectrulesreviews as system:serviceaccount:team:app"
    );
    assert!(
        calls
            .iter()
            .all(|c| c.ends_with("as system:serviceaccount:team:app")),
        "{calls:?}"
    );
    assert!(
        check(&item, "k8s.rbac.review")
            .message
            .contains("SelfSubjectRulesReview in namespace team and SelfSubjectAccessReviews, impersonating system:serviceaccount:team:app")
    );
    assert_eq!(status(&item, "k8s.rbac.secrets-read"), Status::Warn);
    assert_eq!(status(&item, "k8s.rbac.wildcard"), Status::Pass);
    let k = serde_json::to_value(&item.kubernetes).unwrap();
    // The rules review's own grant (namespace) and the cluster-wide answer (cluster).
    assert_eq!(k["permissions"][0]["namespace"], "team");
    assert_eq!(k["permissions"][0]["resources"], json!(["secrets"]));
    assert_eq!(
        k["permissions"][1],
        json!({"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"], "cluster": true})
    );
    assert_eq!(k["permissions"].as_array().unwrap().len(), 2, "{k:#}");
    assert_eq!(status(&item, "k8s.token.automount"), Status::Pass);
}

#[test]
fn forbidden_impersonation_falls_back_to_subject_access_reviews() {
    let cluster = scripted(false, true);
    let item = live_review(&cluster, false);
    let review = check(&item, "k8s.rbac.review");
    assert_eq!(review.status, Status::Pass);
    assert!(
        review
            .message
            .contains("SubjectAccessReviews for system:serviceaccount:team:app"),
        "{}",
        review.message
    );
    assert!(
        review
            .message
            .contains("needs `impersonate` on serviceaccounts in namespace team"),
        "{}",
        review.message
    );
    assert_eq!(status(&item, "k8s.rbac.secrets-read"), Status::Warn);
    assert_eq!(status(&item, "k8s.rbac.wildcard"), Status::Skip);
    let calls = cluster.calls.lock().unwrap().clone();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("subjectaccessreviews as operator"))
            .count(),
        10,
        "{calls:?}"
    );
}

#[test]
fn both_forbidden_is_a_skip_naming_both_permissions() {
    let cluster = scripted(false, false);
    let item = live_review(&cluster, false);
    assert_eq!(
        item.checks
            .iter()
            .filter(|c| c.id.starts_with("k8s.rbac."))
            .count(),
        1
    );
    let review = check(&item, "k8s.rbac.review");
    assert_eq!(review.status, Status::Skip);
    assert!(
        review
            .message
            .contains("needs `impersonate` on serviceaccounts"),
        "{}",
        review.message
    );
    assert!(
        review
            .message
            .contains("needs `create` on subjectaccessreviews.authorization.k8s.io"),
        "{}",
        review.message
    );
    assert!(item.kubernetes.permissions.is_none());
    assert_eq!(status(&item, "k8s.token.automount"), Status::Info);
}

#[test]
fn an_operator_already_impersonating_is_not_nested() {
    let cluster = scripted(true, true);
    let item = live_review(&cluster, true);
    let calls = cluster.calls.lock().unwrap().clone();
    assert!(
        calls.iter().all(|c| c.ends_with("as operator")),
        "{calls:?}"
    );
    assert!(
        check(&item, "k8s.rbac.review")
            .message
            .contains("does not nest impersonation")
    );
}

#[test]
fn a_failing_api_is_a_skip_without_retrying_as_access_reviews() {
    let mut cluster = scripted(true, true);
    cluster.broken = true;
    let item = live_review(&cluster, false);
    let review = check(&item, "k8s.rbac.review");
    assert_eq!(review.status, Status::Skip);
    assert!(
        review.message.contains("etcdserver: request timed out"),
        "{}",
        review.message
    );
    let calls = cluster.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        !item.unreachable,
        "an RBAC review never makes the run unreachable"
    );
}

/// `verify -A`: pods of one ServiceAccount share one review (the API server's answer is the
/// ServiceAccount's, whatever the pod); another ServiceAccount gets its own.
#[test]
fn pods_of_one_service_account_share_one_review() {
    let cluster = scripted(true, false);
    let fleet = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: team}
spec: {serviceAccountName: app, containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: team}
spec: {serviceAccountName: app, containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: team}
spec: {serviceAccountName: other, containers: [{name: app, image: nginx}]}
"#;
    let docs = documents::parse(Path::new("fleet.yaml"), fleet).unwrap();
    let pods = subjects::subjects(&docs, "team", None).unwrap();
    assert_eq!(pods.len(), 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers = AnswerCache::default();
    let access: Vec<_> = rt.block_on(async {
        let probe = Probe::Live {
            client: cluster.client(),
            timeout: Duration::from_secs(5),
        };
        let options = RbacOptions::default();
        let reviews = pods
            .iter()
            .map(|p| podiam::rbac::review(p, &probe, &options, &answers));
        futures::future::join_all(reviews).await
    });
    let calls = cluster.calls.lock().unwrap().clone();
    let per_sa = |sa: &str| {
        calls
            .iter()
            .filter(|c| c.ends_with(&format!("as system:serviceaccount:team:{sa}")))
            .count()
    };
    // One rules review and the ten access reviews, once per ServiceAccount.
    assert_eq!(per_sa("app"), 11, "{calls:?}");
    assert_eq!(per_sa("other"), 11, "{calls:?}");
    assert_eq!(calls.len(), 22, "{calls:?}");
    assert_eq!(answers.tallies()[podiam::rbac::RBAC_REVIEW].computed, 2);
    assert_eq!(answers.tallies()[podiam::rbac::RBAC_REVIEW].reused, 1);
    // Each pod's report still names its own ServiceAccount.
    let review_of = |i: usize| {
        access[i]
            .checks
            .iter()
            .find(|c| c.id == "k8s.rbac.review")
            .unwrap()
            .message
            .clone()
    };
    assert_eq!(review_of(0), review_of(1));
    assert!(review_of(2).contains("system:serviceaccount:team:other"));
    assert!(!review_of(2).contains("team:app"));
}
