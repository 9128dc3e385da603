use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use serde_json::{Value, json};

use super::*;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const AUTHORITY: &str = "https://10.213.0.1:4443/";

fn pod(value: &Value) -> Pod {
    serde_json::from_value(value.clone()).expect("fixture pod")
}

fn bare_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "azure-pod", "namespace": "ns",
                      "labels": { "azure.workload.identity/use": "true" } },
        "spec": {
            "serviceAccountName": "aks-service-account",
            "containers": [{ "name": "app", "image": "mcr.microsoft.com/azure-cli" }]
        }
    })
}

fn sa(annotations: Value) -> ServiceAccount {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": "aks-service-account", "namespace": "ns", "annotations": annotations }
    }))
    .expect("fixture service account")
}

fn client_sa() -> ServiceAccount {
    sa(json!({ CLIENT_ID_ANNOTATION: CLIENT_ID }))
}

fn settings() -> AzureMutationSettings {
    AzureMutationSettings {
        tenant_id: "webhook-tenant".to_owned(),
        authority_host: AUTHORITY.to_owned(),
        ..AzureMutationSettings::default()
    }
}

/// Applies the patch with an independent RFC 6902 implementation; the result must decode.
fn mutate(pod_json: &Value, sa: &ServiceAccount) -> Value {
    mutate_with(pod_json, sa, &settings())
}

fn mutate_with(pod_json: &Value, sa: &ServiceAccount, settings: &AzureMutationSettings) -> Value {
    let mutation = azure_mutation(&pod(pod_json), "ns", sa, settings).expect("mutates");
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::to_value(&mutation.patch).unwrap()).unwrap();
    let mut doc = pod_json.clone();
    json_patch::patch(&mut doc, &patch).expect("patch applies");
    let _: Pod = serde_json::from_value(doc.clone()).expect("patched pod decodes");
    doc
}

fn env_of(doc: &Value, container: usize) -> Vec<(String, String)> {
    doc["spec"]["containers"][container]["env"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_owned(),
                        e["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn volume_name_is_prefix_plus_30_hex_of_sha256_of_the_pod_name() {
    let name = volume_name("azure-pod");
    assert!(name.starts_with("azure-workload-identity-reserved-"));
    assert_eq!(name.len(), 63);
    // sha256("azure-pod") computed independently (sha256sum).
    let expected_hex = {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"azure-pod")?;
                child.wait_with_output()
            })
            .expect("sha256sum (coreutils) runs");
        String::from_utf8(out.stdout).unwrap()[..30].to_owned()
    };
    assert_eq!(
        name,
        format!("azure-workload-identity-reserved-{expected_hex}")
    );
    assert_ne!(volume_name("other-pod"), name);
}

#[test]
fn generate_name_pods_hash_the_prefix_marker() {
    let mut p = bare_pod();
    p["metadata"] = json!({ "generateName": "job-", "namespace": "ns" });
    let mutation = azure_mutation(&pod(&p), "ns", &client_sa(), &settings()).unwrap();
    assert_eq!(mutation.volume_name, volume_name("job- (prefix)"));
}

#[test]
fn injects_env_volume_and_mount() {
    let doc = mutate(&bare_pod(), &client_sa());
    let vname = volume_name("azure-pod");
    assert_eq!(
        env_of(&doc, 0),
        vec![
            ("AZURE_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
            ("AZURE_TENANT_ID".to_owned(), "webhook-tenant".to_owned()),
            (
                "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
                "/var/run/secrets/azure/wi/token/azure-identity-token".to_owned()
            ),
            ("AZURE_AUTHORITY_HOST".to_owned(), AUTHORITY.to_owned()),
        ]
    );
    assert_eq!(
        doc["spec"]["containers"][0]["volumeMounts"],
        json!([{ "name": vname, "mountPath": "/var/run/secrets/azure/wi", "readOnly": true }])
    );
    assert_eq!(
        doc["spec"]["volumes"],
        json!([{ "name": vname, "projected": { "sources": [{ "serviceAccountToken": {
            "audience": "api://AzureADTokenExchange", "expirationSeconds": 3600,
            "path": "token/azure-identity-token" } }] } }])
    );
}

#[test]
fn tenant_annotation_wins_over_the_webhook_tenant() {
    let doc = mutate(
        &bare_pod(),
        &sa(json!({ CLIENT_ID_ANNOTATION: CLIENT_ID, TENANT_ID_ANNOTATION: "sa-tenant" })),
    );
    assert!(env_of(&doc, 0).contains(&("AZURE_TENANT_ID".to_owned(), "sa-tenant".to_owned())));
}

#[test]
fn without_client_id_the_volume_is_still_added_but_not_the_client_id() {
    let doc = mutate(&bare_pod(), &sa(json!({})));
    let names: Vec<String> = env_of(&doc, 0).into_iter().map(|(n, _)| n).collect();
    assert!(!names.contains(&"AZURE_CLIENT_ID".to_owned()), "{names:?}");
    assert!(names.contains(&"AZURE_FEDERATED_TOKEN_FILE".to_owned()));
    assert_eq!(doc["spec"]["volumes"].as_array().unwrap().len(), 1);
}

#[test]
fn preset_variables_are_kept() {
    let mut p = bare_pod();
    p["spec"]["containers"][0]["env"] = json!([
        { "name": "AZURE_CLIENT_ID", "value": "preset-client" },
        { "name": "AZURE_FEDERATED_TOKEN_FILE", "value": "/stale/token" }
    ]);
    let doc = mutate(&p, &client_sa());
    let env = env_of(&doc, 0);
    assert!(env.contains(&("AZURE_CLIENT_ID".to_owned(), "preset-client".to_owned())));
    assert!(env.contains(&(
        "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
        "/stale/token".to_owned()
    )));
    assert!(!env.contains(&("AZURE_CLIENT_ID".to_owned(), CLIENT_ID.to_owned())));
    assert_eq!(
        env.iter().filter(|(n, _)| n == "AZURE_CLIENT_ID").count(),
        1
    );
}

#[test]
fn skip_containers_is_semicolon_separated_and_covers_init_containers() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ SKIP_CONTAINERS_ANNOTATION: "init; sidecar" });
    p["spec"]["initContainers"] = json!([{ "name": "init", "image": "busybox" }]);
    p["spec"]["containers"] = json!([
        { "name": "app", "image": "busybox" },
        { "name": "sidecar", "image": "busybox" }
    ]);
    let doc = mutate(&p, &client_sa());
    assert!(doc["spec"]["initContainers"][0].get("env").is_none());
    assert!(!env_of(&doc, 0).is_empty());
    assert!(env_of(&doc, 1).is_empty());
    assert!(doc["spec"]["containers"][1].get("volumeMounts").is_none());
}

#[test]
fn token_expiration_pod_wins_and_bounds_are_enforced() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ TOKEN_EXPIRATION_ANNOTATION: "7200" });
    let sa_86400 =
        sa(json!({ CLIENT_ID_ANNOTATION: CLIENT_ID, TOKEN_EXPIRATION_ANNOTATION: "86400" }));
    let mutation = azure_mutation(&pod(&p), "ns", &sa_86400, &settings()).unwrap();
    assert_eq!(mutation.expiration_seconds, 7200);
    let mutation = azure_mutation(&pod(&bare_pod()), "ns", &sa_86400, &settings()).unwrap();
    assert_eq!(mutation.expiration_seconds, 86400);

    for bad in ["600", "86401", "soon"] {
        let sa_bad =
            sa(json!({ CLIENT_ID_ANNOTATION: CLIENT_ID, TOKEN_EXPIRATION_ANNOTATION: bad }));
        let err = azure_mutation(&pod(&bare_pod()), "ns", &sa_bad, &settings()).unwrap_err();
        if bad == "soon" {
            assert_eq!(err, r#"strconv.ParseInt: parsing "soon": invalid syntax"#);
        } else {
            assert_eq!(
                err,
                format!(
                    "token expiration {bad} not valid. Expected value to be between 3600 and 86400"
                )
            );
        }
    }
}

#[test]
fn existing_volume_and_mount_of_the_same_name_are_replaced_not_duplicated() {
    let once = mutate(&bare_pod(), &client_sa());
    let twice = mutate(&once, &client_sa());
    assert_eq!(once, twice, "reinvocation changes nothing");
    let mutation = azure_mutation(&pod(&once), "ns", &client_sa(), &settings()).unwrap();
    assert!(mutation.patch.is_empty(), "{:?}", mutation.patch);
}

#[test]
fn proxy_sidecar_injection_and_host_network_refusal() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] =
        json!({ INJECT_PROXY_SIDECAR_ANNOTATION: "", PROXY_SIDECAR_PORT_ANNOTATION: "9000" });
    let doc = mutate(&p, &client_sa());
    let init = doc["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(init[0]["name"], "azwi-proxy");
    assert_eq!(init[0]["restartPolicy"], "Always");
    assert_eq!(init[0]["ports"][0]["containerPort"], 9000);
    assert_eq!(init[1]["name"], "azwi-proxy-init");
    assert_eq!(
        init[1]["env"][0],
        json!({ "name": "PROXY_PORT", "value": "9000" })
    );

    p["spec"]["hostNetwork"] = json!(true);
    let err = azure_mutation(&pod(&p), "ns", &client_sa(), &settings()).unwrap_err();
    assert_eq!(
        err,
        "hostNetwork is set to true, cannot inject proxy sidecar"
    );
}

// The nine differences measured against the real webhooks (FACTS.md, "Webhooks: upstream vs
// the stand-ins"): the Azure rows.

#[test]
fn unparsable_token_expiration_is_refused_with_go_s_message() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ TOKEN_EXPIRATION_ANNOTATION: "1h" });
    let err = azure_mutation(&pod(&p), "ns", &client_sa(), &settings()).unwrap_err();
    assert_eq!(err, r#"strconv.ParseInt: parsing "1h": invalid syntax"#);
}

#[test]
fn unparsable_proxy_port_is_refused_with_go_s_message() {
    let mut p = bare_pod();
    p["metadata"]["annotations"] =
        json!({ INJECT_PROXY_SIDECAR_ANNOTATION: "", PROXY_SIDECAR_PORT_ANNOTATION: "abc" });
    let err = azure_mutation(&pod(&p), "ns", &client_sa(), &settings()).unwrap_err();
    assert_eq!(
        err,
        r#"failed to parse proxy sidecar port: strconv.ParseInt: parsing "abc": invalid syntax"#
    );
    // ParseInt(s, 10, 32): a port beyond int32 is a range error, not a wrap-around.
    p["metadata"]["annotations"][PROXY_SIDECAR_PORT_ANNOTATION] = json!("4294967296");
    let err = azure_mutation(&pod(&p), "ns", &client_sa(), &settings()).unwrap_err();
    assert_eq!(
        err,
        r#"failed to parse proxy sidecar port: strconv.ParseInt: parsing "4294967296": value out of range"#
    );
}

#[test]
fn a_pod_without_namespace_gets_the_request_s_namespace_added() {
    let mut p = bare_pod();
    p["metadata"].as_object_mut().unwrap().remove("namespace");
    let mutation = azure_mutation(&pod(&p), "team-a", &client_sa(), &settings()).unwrap();
    let ops: Vec<(&str, &Value)> = mutation
        .patch
        .iter()
        .map(|op| (op.path.as_str(), op.value.as_ref().unwrap()))
        .collect();
    assert!(
        ops.contains(&("/metadata/namespace", &json!("team-a"))),
        "{ops:?}"
    );
    // A pod that has it already gets no such operation.
    let mutation = azure_mutation(&pod(&bare_pod()), "ns", &client_sa(), &settings()).unwrap();
    assert!(
        mutation
            .patch
            .iter()
            .all(|op| op.path != "/metadata/namespace"),
        "{:?}",
        mutation.patch
    );
}

fn proxied_pod() -> Value {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ INJECT_PROXY_SIDECAR_ANNOTATION: "true" });
    p["spec"]["initContainers"] = json!([{ "name": "migrate", "image": "busybox" }]);
    p
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn before_1_32_the_proxy_is_the_first_regular_container() {
    let before_1_32 = AzureMutationSettings {
        proxy_placement: ProxySidecarPlacement::for_server_version("v1.31.4").unwrap(),
        ..settings()
    };
    let doc = mutate_with(&proxied_pod(), &client_sa(), &before_1_32);
    assert_eq!(names(&doc["spec"]["containers"]), ["azwi-proxy", "app"]);
    assert_eq!(
        names(&doc["spec"]["initContainers"]),
        ["migrate", "azwi-proxy-init"]
    );
    assert!(doc["spec"]["containers"][0].get("restartPolicy").is_none());
    // Injected before the identity mutation, so the proxy gets the env and mount too.
    assert!(!env_of(&doc, 0).is_empty());
}

#[test]
fn from_1_32_the_proxy_is_a_native_sidecar_in_init_containers() {
    let from_1_32 = AzureMutationSettings {
        proxy_placement: ProxySidecarPlacement::for_server_version("v1.32.0").unwrap(),
        ..settings()
    };
    let doc = mutate_with(&proxied_pod(), &client_sa(), &from_1_32);
    assert_eq!(names(&doc["spec"]["containers"]), ["app"]);
    assert_eq!(
        names(&doc["spec"]["initContainers"]),
        ["azwi-proxy", "migrate", "azwi-proxy-init"]
    );
    assert_eq!(doc["spec"]["initContainers"][0]["restartPolicy"], "Always");
}

#[test]
fn placement_follows_upstream_s_semantic_version_comparison() {
    use ProxySidecarPlacement::{FirstContainer, NativeSidecar};
    for (version, placement) in [
        ("v1.31.9", FirstContainer),
        ("v1.32.0-rc.1", FirstContainer), // a pre-release sorts before 1.32.0
        ("v1.32.0", NativeSidecar),
        ("v1.33.2+k3s1", NativeSidecar),
        ("v1.34.4", NativeSidecar),
        ("v2.0.0", NativeSidecar),
        ("v0.99.0", FirstContainer),
    ] {
        assert_eq!(
            ProxySidecarPlacement::for_server_version(version),
            Ok(placement),
            "{version}"
        );
    }
    for bad in ["v1.32", "1", "", "v1.x.0", "v1.32.0-"] {
        assert!(
            ProxySidecarPlacement::for_server_version(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn the_proxy_logs_at_the_webhook_s_own_level() {
    let sidecar_args = |settings: &AzureMutationSettings| {
        let doc = mutate_with(&proxied_pod(), &client_sa(), settings);
        let proxy = doc["spec"]["initContainers"][0].clone();
        (
            proxy["args"].clone(),
            proxy["lifecycle"]["postStart"]["exec"]["command"].clone(),
        )
    };
    // Upstream's deployment runs the webhook without --log-level.
    let (args, probe) = sidecar_args(&settings());
    assert_eq!(args, json!(["--proxy-port=8000", "--log-level="]));
    assert_eq!(
        probe,
        json!(["/proxy", "--proxy-port=8000", "--probe", "--log-level="])
    );
    let debug = AzureMutationSettings {
        log_level: WebhookLogLevel::Debug,
        ..settings()
    };
    let (args, probe) = sidecar_args(&debug);
    assert_eq!(args, json!(["--proxy-port=8000", "--log-level=debug"]));
    assert_eq!(probe[3], "--log-level=debug");
}

const CUSTOM_AUDIENCE: &str = "api://custom-endpoint";

fn custom_settings(ca: Option<CustomCa>) -> AzureMutationSettings {
    AzureMutationSettings {
        custom_token_endpoint: CustomTokenEndpoint::from_flags(
            "proxy",
            CUSTOM_AUDIENCE,
            "https://token-proxy.example:8443",
            "token-proxy.example",
            ca,
        )
        .unwrap(),
        ..settings()
    }
}

fn custom_pod(value: &str) -> Value {
    let mut p = bare_pod();
    p["metadata"]["annotations"] = json!({ "azure.workload.identity/use-proxy": value });
    p
}

#[test]
fn custom_token_endpoint_adds_env_audience_and_the_ca_config_map() {
    let settings = custom_settings(Some(CustomCa::ConfigMap("kube-root-ca".to_owned())));
    let doc = mutate_with(&custom_pod("TRUE"), &client_sa(), &settings);
    let env = env_of(&doc, 0);
    for expected in [
        (
            "AZURE_KUBERNETES_TOKEN_PROXY",
            "https://token-proxy.example:8443",
        ),
        ("AZURE_KUBERNETES_SNI_NAME", "token-proxy.example"),
        (
            "AZURE_KUBERNETES_CA_FILE",
            "/var/run/secrets/azure/wi/ca-cert/ca.crt",
        ),
    ] {
        assert!(
            env.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {env:?}"
        );
    }
    // Empty values are never injected: no CA data configured here.
    assert!(env.iter().all(|(n, _)| n != "AZURE_KUBERNETES_CA_DATA"));
    let sources = &doc["spec"]["volumes"][0]["projected"]["sources"];
    assert_eq!(
        sources[0]["serviceAccountToken"]["audience"],
        CUSTOM_AUDIENCE
    );
    assert_eq!(
        sources[1],
        json!({ "configMap": { "name": "kube-root-ca", "optional": false,
                               "items": [{ "key": "ca.crt", "path": "ca-cert/ca.crt" }] } })
    );
}

#[test]
fn custom_token_endpoint_with_ca_data_or_a_trust_bundle() {
    let data = custom_settings(Some(CustomCa::Data("PEM DATA".to_owned())));
    let doc = mutate_with(&custom_pod("true"), &client_sa(), &data);
    assert!(
        env_of(&doc, 0).contains(&("AZURE_KUBERNETES_CA_DATA".to_owned(), "PEM DATA".to_owned()))
    );
    let sources = doc["spec"]["volumes"][0]["projected"]["sources"].clone();
    assert_eq!(sources.as_array().unwrap().len(), 1, "{sources}");

    let bundle = custom_settings(Some(CustomCa::ClusterTrustBundle {
        signer_name: "example.com/token-proxy".to_owned(),
        label_selector: None,
    }));
    let doc = mutate_with(&custom_pod("true"), &client_sa(), &bundle);
    assert_eq!(
        doc["spec"]["volumes"][0]["projected"]["sources"][1],
        json!({ "clusterTrustBundle": { "signerName": "example.com/token-proxy",
                                        "path": "ca-cert/ca.crt", "optional": false } })
    );
}

#[test]
fn pods_not_opted_into_the_custom_endpoint_are_mutated_as_usual() {
    let settings = custom_settings(Some(CustomCa::ConfigMap("kube-root-ca".to_owned())));
    for p in [bare_pod(), custom_pod("false"), custom_pod("yes")] {
        let doc = mutate_with(&p, &client_sa(), &settings);
        assert!(
            env_of(&doc, 0)
                .iter()
                .all(|(n, _)| !n.starts_with("AZURE_KUBERNETES_")),
            "{p}"
        );
        let sources = &doc["spec"]["volumes"][0]["projected"]["sources"];
        assert_eq!(sources.as_array().unwrap().len(), 1);
        assert_eq!(
            sources[0]["serviceAccountToken"]["audience"],
            "api://AzureADTokenExchange"
        );
    }
}

#[test]
fn custom_token_endpoint_flags_are_validated_as_upstream_does() {
    let flags = |suffix: &str, audience: &str| {
        CustomTokenEndpoint::from_flags(suffix, audience, "", "", None)
    };
    assert_eq!(flags("", ""), Ok(None));
    assert_eq!(
        flags("", CUSTOM_AUDIENCE),
        Err(CustomTokenEndpointError::EmptySuffix)
    );
    assert_eq!(flags("x", ""), Err(CustomTokenEndpointError::EmptyAudience));
    assert_eq!(
        flags("x", "API://AzureADTokenExchange"),
        Err(CustomTokenEndpointError::DefaultAudience(
            "api://AzureADTokenExchange".to_owned()
        ))
    );
    for bad in ["a/b", "bad suffix", "-", &"x".repeat(60)] {
        assert!(
            matches!(
                flags(bad, CUSTOM_AUDIENCE),
                Err(CustomTokenEndpointError::InvalidAnnotationKey(_))
            ),
            "{bad}"
        );
    }
    let ok = flags("Proxy.v2", CUSTOM_AUDIENCE).unwrap().unwrap();
    assert_eq!(ok.annotation, "azure.workload.identity/use-Proxy.v2");
}
