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
    let mutation = azure_mutation(&pod(pod_json), sa, &settings()).expect("mutates");
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
    let mutation = azure_mutation(&pod(&p), &client_sa(), &settings()).unwrap();
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
    let mutation = azure_mutation(&pod(&p), &sa_86400, &settings()).unwrap();
    assert_eq!(mutation.expiration_seconds, 7200);
    let mutation = azure_mutation(&pod(&bare_pod()), &sa_86400, &settings()).unwrap();
    assert_eq!(mutation.expiration_seconds, 86400);

    for bad in ["600", "86401", "soon"] {
        let sa_bad =
            sa(json!({ CLIENT_ID_ANNOTATION: CLIENT_ID, TOKEN_EXPIRATION_ANNOTATION: bad }));
        let err = azure_mutation(&pod(&bare_pod()), &sa_bad, &settings()).unwrap_err();
        if bad == "soon" {
            assert!(err.contains("parsing"), "{err}");
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
    let mutation = azure_mutation(&pod(&once), &client_sa(), &settings()).unwrap();
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
    let err = azure_mutation(&pod(&p), &client_sa(), &settings()).unwrap_err();
    assert_eq!(
        err,
        "hostNetwork is set to true, cannot inject proxy sidecar"
    );
}
