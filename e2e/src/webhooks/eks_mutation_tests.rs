use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use serde_json::{Value, json};

use super::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/s3-reader";
const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("fixture pod")
}

/// A pod in `ns` with one container `app` and no volumes, env or mounts at all.
fn bare_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "p", "namespace": "ns" },
        "spec": {
            "serviceAccountName": "app",
            "containers": [{ "name": "app", "image": "amazonlinux" }]
        }
    })
}

fn sa(annotations: Value) -> ServiceAccount {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": "app", "namespace": "ns", "annotations": annotations }
    }))
    .expect("fixture service account")
}

fn irsa_sa() -> ServiceAccount {
    sa(json!({ ROLE_ARN_ANNOTATION: ROLE }))
}

fn settings() -> MutationSettings {
    MutationSettings {
        pod_identity_jitter: Jitter::Fixed(80_000),
        ..MutationSettings::default()
    }
}

/// Applies `mutation`'s patch to `pod` with an independent RFC 6902 implementation.
fn apply(pod: &Value, mutation: &Mutation) -> Value {
    let ops = serde_json::to_value(&mutation.patch).expect("patch serializes");
    let patch: json_patch::Patch = serde_json::from_value(ops).expect("valid JSON Patch");
    let mut doc = pod.clone();
    json_patch::patch(&mut doc, &patch).expect("patch applies");
    // The result must still be a valid Pod.
    let _: Pod = serde_json::from_value(doc.clone()).expect("patched pod decodes");
    doc
}

fn mutate(pod_json: &Value, sa: Option<&ServiceAccount>, settings: &MutationSettings) -> Value {
    let mutation = mutation_patch(&pod(pod_json.clone()), sa, settings);
    assert!(mutation.method.is_some(), "expected a patch: {mutation:?}");
    apply(pod_json, &mutation)
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap_or_default().to_owned(),
                        e["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn irsa_mount() -> Value {
    json!({
        "name": "aws-iam-token",
        "readOnly": true,
        "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    })
}

fn irsa_volume(audience: &str, expiration: i64) -> Value {
    json!({
        "name": "aws-iam-token",
        "projected": { "sources": [{ "serviceAccountToken": {
            "audience": audience, "expirationSeconds": expiration, "path": "token"
        }}]}
    })
}

#[test]
fn unannotated_service_account_gets_no_patch() {
    let m = mutation_patch(
        &pod(bare_pod()),
        Some(&sa(json!({ "other": "x" }))),
        &settings(),
    );
    assert_eq!(m.method, None);
    assert!(m.patch.is_empty());
    assert!(!m.changed);
}

#[test]
fn empty_role_arn_gets_no_patch() {
    let m = mutation_patch(
        &pod(bare_pod()),
        Some(&sa(json!({ ROLE_ARN_ANNOTATION: "" }))),
        &settings(),
    );
    assert_eq!(m.method, None);
}

#[test]
fn missing_service_account_gets_no_patch() {
    let m = mutation_patch(&pod(bare_pod()), None, &settings());
    assert_eq!(m.method, None);
    assert!(m.reason.contains("ns/app"), "{}", m.reason);
}

#[test]
fn annotated_service_account_adds_env_mount_and_volume() {
    let m = mutation_patch(&pod(bare_pod()), Some(&irsa_sa()), &settings());
    assert_eq!(m.method, Some(Method::WebIdentity));
    assert!(m.changed);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    // Upstream's order: volumes (added as a list: the pod had none), then containers.
    let paths: Vec<&str> = m.patch.iter().map(|op| op.path.as_str()).collect();
    assert_eq!(paths, ["/spec/volumes", "/spec/containers"]);
    assert!(m.patch.iter().all(|op| op.op == "add"));

    let out = apply(&bare_pod(), &m);
    assert_eq!(
        out["spec"]["volumes"],
        json!([irsa_volume("sts.amazonaws.com", 86_400)])
    );
    let container = &out["spec"]["containers"][0];
    assert_eq!(
        env_of(container),
        pairs(&[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE)
        ])
    );
    assert_eq!(container["volumeMounts"], json!([irsa_mount()]));
    assert_eq!(container["image"], "amazonlinux");
    // Nothing else in the pod moved.
    assert_eq!(out["metadata"], bare_pod()["metadata"]);
    assert_eq!(out["spec"]["serviceAccountName"], "app");
}

#[test]
fn matches_upstream_fixture_without_volumes() {
    // rawPodWithoutVolumes.pod.yaml's expected patch, less Go's empty `resources: {}`.
    let m = mutation_patch(&pod(bare_pod()), Some(&irsa_sa()), &settings());
    let expected = json!([
        {"op":"add","path":"/spec/volumes","value":[irsa_volume("sts.amazonaws.com", 86_400)]},
        {"op":"add","path":"/spec/containers","value":[{"name":"app","image":"amazonlinux",
            "env":[{"name":"AWS_ROLE_ARN","value":ROLE},
                   {"name":"AWS_WEB_IDENTITY_TOKEN_FILE","value":TOKEN_FILE}],
            "volumeMounts":[irsa_mount()]}]}
    ]);
    assert_eq!(serde_json::to_value(&m.patch).unwrap(), expected);
}

#[test]
fn preset_role_arn_gets_no_env_but_the_mount() {
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] =
        json!([{ "name": "AWS_ROLE_ARN", "value": "arn:aws:iam::999999999999:role/chart" }]);
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    let container = &out["spec"]["containers"][0];
    assert_eq!(
        env_of(container),
        pairs(&[("AWS_ROLE_ARN", "arn:aws:iam::999999999999:role/chart")])
    );
    assert_eq!(container["volumeMounts"], json!([irsa_mount()]));
    assert_eq!(out["spec"]["volumes"][0]["name"], "aws-iam-token");
}

#[test]
fn preset_token_file_also_blocks_env_injection() {
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] =
        json!([{ "name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/elsewhere" }]);
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(
        env_of(&out["spec"]["containers"][0]),
        pairs(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/elsewhere")])
    );
}

#[test]
fn fully_preset_container_gets_no_mount_either() {
    // Upstream returns early when credentials, region and regional STS are all set.
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] = json!([
        { "name": "AWS_ROLE_ARN", "value": ROLE },
        { "name": "AWS_REGION", "value": "eu-west-1" },
        { "name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional" }
    ]);
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(out["spec"]["containers"][0]["volumeMounts"], Value::Null);
    assert_eq!(out["spec"]["containers"], p["spec"]["containers"]);
    // The volume is still added.
    assert_eq!(out["spec"]["volumes"][0]["name"], "aws-iam-token");
}

#[test]
fn already_mutated_pod_is_patched_but_unchanged() {
    let first = mutate(&bare_pod(), Some(&irsa_sa()), &settings());
    let m = mutation_patch(&pod(first.clone()), Some(&irsa_sa()), &settings());
    assert_eq!(m.method, Some(Method::WebIdentity));
    assert!(!m.changed);
    assert_eq!(
        m.patch.len(),
        1,
        "only /spec/containers is re-added: {:?}",
        m.patch
    );
    assert_eq!(apply(&first, &m), first);
}

#[test]
fn skip_containers_applies_to_init_and_normal_containers() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ SKIP_CONTAINERS_ANNOTATION: "init-a,sidecar" });
    p["spec"]["initContainers"] = json!([
        { "name": "init-a", "image": "busybox" },
        { "name": "init-b", "image": "busybox" }
    ]);
    p["spec"]["containers"] = json!([
        { "name": "app", "image": "amazonlinux" },
        { "name": "sidecar", "image": "envoy" }
    ]);
    let m = mutation_patch(&pod(p.clone()), Some(&irsa_sa()), &settings());
    let paths: Vec<&str> = m.patch.iter().map(|op| op.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/spec/volumes", "/spec/containers", "/spec/initContainers"]
    );
    let out = apply(&p, &m);
    let init = &out["spec"]["initContainers"];
    let containers = &out["spec"]["containers"];
    assert_eq!(init[0], p["spec"]["initContainers"][0]);
    assert_eq!(containers[1], p["spec"]["containers"][1]);
    for mutated in [&init[1], &containers[0]] {
        assert_eq!(
            env_of(mutated)[0],
            ("AWS_ROLE_ARN".to_owned(), ROLE.to_owned())
        );
        assert_eq!(mutated["volumeMounts"], json!([irsa_mount()]));
    }
}

#[test]
fn skip_containers_is_parsed_as_csv() {
    let names = |v: &str| first_csv_record(v);
    assert_eq!(names("a,b"), Some(vec!["a".into(), "b".into()]));
    // No trimming, as Go's encoding/csv: " b" names no container called "b".
    assert_eq!(names("a, b"), Some(vec!["a".into(), " b".into()]));
    assert_eq!(names("\"a,b\",c"), Some(vec!["a,b".into(), "c".into()]));
    assert_eq!(names("\"a\"\"b\""), Some(vec!["a\"b".into()]));
    assert_eq!(names("\n\na\nb"), Some(vec!["a".into()]));
    assert_eq!(names("a,"), Some(vec!["a".into(), String::new()]));
    // Parse errors skip nothing.
    assert_eq!(names(""), None);
    assert_eq!(names("a\"b"), None);
    assert_eq!(names("\"a"), None);
    assert_eq!(names("\"a\"b"), None);

    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ SKIP_CONTAINERS_ANNOTATION: "app\"" });
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([irsa_mount()])
    );
}

#[test]
fn skip_label_is_left_to_the_object_selector() {
    // Upstream never sees such pods: the configuration's objectSelector filters them out.
    let config = super::super::webhook_configuration("https://127.0.0.1:1/mutate", "pem");
    let webhook = &config.webhooks.as_ref().unwrap()[0];
    let selector = serde_json::to_value(webhook.object_selector.as_ref().unwrap()).unwrap();
    assert_eq!(
        selector,
        json!({ "matchExpressions": [{ "key": SKIP_POD_LABEL, "operator": "DoesNotExist" }] })
    );
    // And mutation_patch itself ignores the label.
    let mut p = bare_pod();
    p["metadata"]["labels"] = json!({ SKIP_POD_LABEL: "true" });
    let m = mutation_patch(&pod(p), Some(&irsa_sa()), &settings());
    assert_eq!(m.method, Some(Method::WebIdentity));
}

#[test]
fn webhook_configuration_matches_eks() {
    let config = super::super::webhook_configuration("https://127.0.0.1:8443/mutate", "PEM");
    let value = serde_json::to_value(&config).unwrap();
    let webhook = &value["webhooks"][0];
    assert_eq!(value["metadata"]["name"], "pod-identity-webhook");
    assert_eq!(webhook["name"], "iam-for-pods.amazonaws.com");
    assert_eq!(
        webhook["clientConfig"]["url"],
        "https://127.0.0.1:8443/mutate"
    );
    // caBundle is base64 of the PEM.
    assert_eq!(webhook["clientConfig"]["caBundle"], "UEVN");
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["timeoutSeconds"], 10);
    assert_eq!(webhook["reinvocationPolicy"], "IfNeeded");
    // Upstream's manifest: its answer has no apiVersion/kind, which only v1beta1 tolerates.
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1beta1"]));
    assert_eq!(
        webhook["rules"],
        json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                 "resources": ["pods"], "scope": "*" }])
    );
}

#[test]
fn token_expiration_precedence_and_minimum() {
    let expiration = |pod_annotation: Option<&str>, sa_annotation: Option<&str>| {
        let mut p = bare_pod();
        if let Some(v) = pod_annotation {
            p["metadata"]["annotations"] = json!({ TOKEN_EXPIRATION_ANNOTATION: v });
        }
        let mut annotations = json!({ ROLE_ARN_ANNOTATION: ROLE });
        if let Some(v) = sa_annotation {
            annotations[TOKEN_EXPIRATION_ANNOTATION] = json!(v);
        }
        let out = mutate(&p, Some(&sa(annotations)), &settings());
        out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(expiration(None, None), 86_400);
    assert_eq!(expiration(None, Some("3600")), 3600);
    assert_eq!(expiration(None, Some("60")), 600);
    assert_eq!(expiration(None, Some("-5")), 600);
    assert_eq!(expiration(None, Some("soon")), 86_400);
    assert_eq!(expiration(Some("7200"), Some("3600")), 7200);
    assert_eq!(expiration(Some("100"), Some("3600")), 600);
    assert_eq!(expiration(Some("soon"), Some("3600")), 3600);
    assert_eq!(expiration(Some("+1200"), None), 1200);
}

#[test]
fn audience_annotation_overrides_default() {
    let annotated = sa(json!({ ROLE_ARN_ANNOTATION: ROLE, AUDIENCE_ANNOTATION: "custom-aud" }));
    let out = mutate(&bare_pod(), Some(&annotated), &settings());
    assert_eq!(
        out["spec"]["volumes"],
        json!([irsa_volume("custom-aud", 86_400)])
    );
}

#[test]
fn regional_sts_annotation_and_default() {
    let env_names = |annotation: Option<&str>, default: bool| {
        let mut annotations = json!({ ROLE_ARN_ANNOTATION: ROLE });
        if let Some(v) = annotation {
            annotations[STS_REGIONAL_ENDPOINTS_ANNOTATION] = json!(v);
        }
        let s = MutationSettings {
            regional_sts_default: default,
            ..settings()
        };
        let out = mutate(&bare_pod(), Some(&sa(annotations)), &s);
        env_of(&out["spec"]["containers"][0])
    };
    let regional = pairs(&[
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
    ]);
    let plain = pairs(&[
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
    ]);
    assert_eq!(env_names(Some("true"), false), regional);
    assert_eq!(env_names(Some("True"), false), regional);
    assert_eq!(env_names(None, false), plain);
    assert_eq!(env_names(None, true), regional);
    assert_eq!(env_names(Some("false"), true), plain);
    assert_eq!(env_names(Some("yes"), false), plain);
    assert_eq!(env_names(Some("yes"), true), regional);
}

#[test]
fn region_setting_injects_both_region_variables_unless_one_is_set() {
    let s = MutationSettings {
        region: Some("cn-north-1".to_owned()),
        ..settings()
    };
    let out = mutate(&bare_pod(), Some(&irsa_sa()), &s);
    assert_eq!(
        env_of(&out["spec"]["containers"][0]),
        pairs(&[
            ("AWS_DEFAULT_REGION", "cn-north-1"),
            ("AWS_REGION", "cn-north-1"),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
        ])
    );
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] =
        json!([{ "name": "AWS_DEFAULT_REGION", "value": "eu-west-1" }]);
    let out = mutate(&p, Some(&irsa_sa()), &s);
    assert_eq!(
        env_of(&out["spec"]["containers"][0]),
        pairs(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE),
        ])
    );
}

#[test]
fn windows_pods_get_a_windows_token_path() {
    for key in ["kubernetes.io/os", "beta.kubernetes.io/os"] {
        let mut p = bare_pod();
        p["spec"]["nodeSelector"] = json!({ key: "windows" });
        let out = mutate(&p, Some(&irsa_sa()), &settings());
        let container = &out["spec"]["containers"][0];
        assert_eq!(
            env_of(container)[1],
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
                r"C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token".to_owned()
            )
        );
        // The mount path itself stays in Unix form, as upstream.
        assert_eq!(container["volumeMounts"], json!([irsa_mount()]));
    }
    let mut p = bare_pod();
    p["spec"]["nodeSelector"] = json!({ "kubernetes.io/os": "linux" });
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(env_of(&out["spec"]["containers"][0])[1].1, TOKEN_FILE);
}

#[test]
fn existing_volume_lists_and_mounts_are_extended() {
    let mut p = bare_pod();
    p["spec"]["volumes"] = json!([{ "name": "kube-api-access-x", "emptyDir": {} }]);
    p["spec"]["containers"][0]["env"] = json!([{ "name": "FOO", "value": "bar" }]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([{ "name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true }]);
    let m = mutation_patch(&pod(p.clone()), Some(&irsa_sa()), &settings());
    assert_eq!(m.patch[0].path, "/spec/volumes/0");
    let out = apply(&p, &m);
    // Prepended, as upstream.
    assert_eq!(
        out["spec"]["volumes"][0],
        irsa_volume("sts.amazonaws.com", 86_400)
    );
    assert_eq!(out["spec"]["volumes"][1]["name"], "kube-api-access-x");
    let container = &out["spec"]["containers"][0];
    assert_eq!(env_of(container)[0], ("FOO".to_owned(), "bar".to_owned()));
    assert_eq!(env_of(container).len(), 3);
    assert_eq!(container["volumeMounts"][0]["name"], "kube-api-access-x");
    assert_eq!(container["volumeMounts"][1], irsa_mount());
}

#[test]
fn empty_volume_list_is_appended_to() {
    let mut p = bare_pod();
    p["spec"]["volumes"] = json!([]);
    let m = mutation_patch(&pod(p.clone()), Some(&irsa_sa()), &settings());
    assert_eq!(m.patch[0].path, "/spec/volumes/0");
    let out = apply(&p, &m);
    assert_eq!(
        out["spec"]["volumes"],
        json!([irsa_volume("sts.amazonaws.com", 86_400)])
    );
}

#[test]
fn existing_token_volume_and_mount_are_kept() {
    let mut p = bare_pod();
    p["spec"]["volumes"] = json!([{ "name": "aws-iam-token", "emptyDir": {} }]);
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "aws-iam-token", "mountPath": "/custom" }]);
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(out["spec"]["volumes"], p["spec"]["volumes"]);
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        p["spec"]["containers"][0]["volumeMounts"]
    );
    assert_eq!(env_of(&out["spec"]["containers"][0]).len(), 2);
}

#[test]
fn invalid_role_arn_warns_but_still_mutates() {
    let m = mutation_patch(
        &pod(bare_pod()),
        Some(&sa(json!({ ROLE_ARN_ANNOTATION: "s3-reader" }))),
        &settings(),
    );
    assert_eq!(m.method, Some(Method::WebIdentity));
    assert_eq!(m.warnings, ["arn is invalid: s3-reader"]);
    let out = apply(&bare_pod(), &m);
    assert_eq!(env_of(&out["spec"]["containers"][0])[0].1, "s3-reader");
    for valid in [
        ROLE,
        "arn:aws-cn:iam::111122223333:role/path/to/r+=,.@-_",
        "arn:aws-us-gov:iam::111122223333:role/x",
    ] {
        assert!(ROLE_ARN_PATTERN.is_match(valid), "{valid}");
    }
    for invalid in [
        "arn:aws:iam::11112222333:role/x",
        "arn:aws:iam::111122223333:user/x",
        "arn:aws:iam::111122223333:role/",
        "arn:aws:iam::١١١١٢٢٢٢٣٣٣٣:role/x",
    ] {
        assert!(!ROLE_ARN_PATTERN.is_match(invalid), "{invalid}");
    }
}

fn pod_identity_settings() -> MutationSettings {
    MutationSettings {
        pod_identity_associations: BTreeSet::from([("ns".to_owned(), "app".to_owned())]),
        ..settings()
    }
}

#[test]
fn pod_identity_association_wins_over_irsa() {
    let m = mutation_patch(&pod(bare_pod()), Some(&irsa_sa()), &pod_identity_settings());
    assert_eq!(m.method, Some(Method::ContainerCredentials));
    assert_eq!(m.patch[0].path, "/metadata/labels");
    let out = apply(&bare_pod(), &m);
    assert_eq!(
        out["metadata"]["labels"],
        json!({ POD_IDENTITY_LABEL: "enabled" })
    );
    let container = &out["spec"]["containers"][0];
    assert_eq!(
        env_of(container),
        pairs(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials"
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
            ),
        ])
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{ "name": "eks-pod-identity-token", "readOnly": true,
                 "mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount" }])
    );
    // Default expiration is jittered (fixed here).
    assert_eq!(
        out["spec"]["volumes"],
        json!([{ "name": "eks-pod-identity-token", "projected": { "sources": [{
            "serviceAccountToken": { "audience": "pods.eks.amazonaws.com",
                "expirationSeconds": 80_000, "path": "eks-pod-identity-token" } }] } }])
    );
}

#[test]
fn pod_identity_without_service_account_and_with_labels() {
    let mut p = bare_pod();
    p["metadata"]["labels"] = json!({ "app": "x" });
    p["metadata"]["annotations"] = json!({ TOKEN_EXPIRATION_ANNOTATION: "3600" });
    let m = mutation_patch(&pod(p.clone()), None, &pod_identity_settings());
    assert_eq!(m.method, Some(Method::ContainerCredentials));
    assert_eq!(
        m.patch[0].path,
        "/metadata/labels/eks.amazonaws.com~1pod-identity"
    );
    let out = apply(&p, &m);
    assert_eq!(
        out["metadata"]["labels"],
        json!({ "app": "x", POD_IDENTITY_LABEL: "enabled" })
    );
    // A non-default expiration is not jittered.
    assert_eq!(
        out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
}

#[test]
fn pod_identity_keeps_preset_container_credentials() {
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] =
        json!([{ "name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://elsewhere" }]);
    let out = mutate(&p, Some(&irsa_sa()), &pod_identity_settings());
    assert_eq!(
        env_of(&out["spec"]["containers"][0]),
        pairs(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://elsewhere")])
    );
}

#[test]
fn random_jitter_stays_in_range() {
    for _ in 0..100 {
        let value = jittered_expiration(Jitter::Random);
        assert!((DEFAULT_MIN_TOKEN_EXPIRATION..=DEFAULT_TOKEN_EXPIRATION).contains(&value));
    }
}

#[test]
fn association_for_another_namespace_does_not_apply() {
    let mut s = pod_identity_settings();
    s.pod_identity_associations = BTreeSet::from([("other".to_owned(), "app".to_owned())]);
    let m = mutation_patch(&pod(bare_pod()), Some(&irsa_sa()), &s);
    assert_eq!(m.method, Some(Method::WebIdentity));
}

// The nine differences measured against the real webhook v0.6.17 (FACTS.md, "Webhooks:
// upstream vs the stand-ins"): the EKS rows.

#[test]
fn a_pod_without_service_account_name_is_not_mutated() {
    // Upstream looks up the ServiceAccount named "", even when `default` is annotated.
    let mut p = bare_pod();
    p["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceAccountName");
    let mut default_sa = irsa_sa();
    default_sa.metadata.name = Some("default".to_owned());
    let m = mutation_patch(&pod(p.clone()), Some(&default_sa), &settings());
    assert_eq!(m.method, None, "{m:?}");
    assert!(m.patch.is_empty());
    // An empty name is the same as none.
    p["spec"]["serviceAccountName"] = json!("");
    let m = mutation_patch(&pod(p), Some(&default_sa), &settings());
    assert_eq!(m.method, None);
}

#[test]
fn a_read_write_token_mount_comes_back_without_read_only() {
    // Go re-encodes the container: `readOnly: false` (omitempty) is dropped, not kept.
    let mut p = bare_pod();
    p["spec"]["containers"][0]["volumeMounts"] = json!([{ "name": "aws-iam-token",
        "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": false }]);
    let out = mutate(&p, Some(&irsa_sa()), &settings());
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([{ "name": "aws-iam-token",
                 "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount" }])
    );
    // The mount the webhook adds itself is read-only.
    let out = mutate(&bare_pod(), Some(&irsa_sa()), &settings());
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([irsa_mount()])
    );
}

#[test]
fn an_empty_audience_annotation_leaves_the_projection_without_audience() {
    let sa_empty_audience = sa(json!({ ROLE_ARN_ANNOTATION: ROLE, AUDIENCE_ANNOTATION: "" }));
    let out = mutate(&bare_pod(), Some(&sa_empty_audience), &settings());
    let projection = &out["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert!(projection.get("audience").is_none(), "{projection}");
    assert_eq!(projection["expirationSeconds"], 86400);
}
