//! The real kube-apiserver restarted in the middle of `verify -A` (issue 13, faults): the
//! seed's pods of every cloud and thirty more IRSA pods, judged one at a time
//! (`--concurrency 1`, ≈ 0.25 s a pod here, so the run lasts well past the restart: with eight
//! pods it sometimes ended inside the first two seconds); two seconds in, the local cluster's
//! kube-apiserver gets SIGTERM and starts again (connections refused in between). The plugin
//! retries what the gap refused (`kube/reconnect.rs`), so every pod is judged as it would be
//! without the restart, and the retries are said at `-v`. One pod is also deleted after the
//! list, before its turn (a pod deleted mid-run): it is `incomplete`, named, and the only
//! reason the run exits 3 — never a pass.
//!
//! Needs root, the binaries of `e2e/k8s/build.sh`, the harness venv and `kubectl-podiam`
//! built beside `podiam-e2e`; fails naming what is missing. The cluster takes the machine's
//! cluster lock.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use podiam_e2e::cluster::cache_dir;
use podiam_e2e::demo::create_seed;
use podiam_e2e::runner::environment::{Cluster, Environment};
use podiam_e2e::runner::plugin_command::{add_gcp_env, host_side_args, plugin_command};
use podiam_e2e::sandbox::Clouds;
use serde_json::Value;

/// IRSA pods besides the seed's `s3-pod` (`s3-pod-01` …): more pods judged after the restart.
const EXTRA_IRSA_PODS: usize = 30;

/// Deleted (no grace period) after the list, before its turn: judged last (name order).
const DELETED_POD: &str = "s3-pod-30";

fn extra_pod_names() -> Vec<String> {
    (1..=EXTRA_IRSA_PODS)
        .map(|n| format!("s3-pod-{n:02}"))
        .collect()
}

fn plugin_path() -> PathBuf {
    let built = std::env::var_os("PODIAM_PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_podiam-e2e")).with_file_name("kubectl-podiam")
        });
    assert!(
        built.is_file(),
        "missing prerequisite: {} (cargo build -p kubectl-podiam)",
        built.display()
    );
    built
}

fn extra_pods() -> String {
    let pod = include_str!("../../examples/aws/pod.yaml");
    extra_pod_names()
        .iter()
        .map(|name| pod.replace("name: s3-pod", &format!("name: {name}")))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_all_rides_out_a_real_apiserver_restart() {
    let plugin = plugin_path();
    let state_root = cache_dir().join("apiserver-restart-test");
    let mut env = match Environment::start_local(&state_root).await {
        Ok(env) => env,
        Err(e) => panic!("the environment did not come up:\n{e:#}"),
    };
    let names = extra_pod_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    create_seed(&env, Clouds::default(), &extra_pods(), &names)
        .await
        .expect("the seed's pods and the extra IRSA pods run");

    let args = ["verify", "-A", "-o", "json", "-v", "--concurrency", "1"];
    let mut command = plugin_command(&plugin, &env.kubeconfig, &env.aws, &env.azure, &args);
    add_gcp_env(&mut command, &env.gcp);
    let started = Instant::now();
    let run = command
        .args(args)
        .args(host_side_args(&args, &env.azure))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl-podiam");
    let output = tokio::spawn(run.wait_with_output());

    tokio::time::sleep(Duration::from_secs(2)).await;
    if output.is_finished() {
        let out = output.await.unwrap().unwrap();
        panic!(
            "verify -A ended before the restart (exit {:?}): the test needs a run that spans it; stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Listed, not yet judged (pods are judged in name order, one at a time), and now gone.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    pods.delete(DELETED_POD, &DeleteParams::default().grace_period(0))
        .await
        .expect("deleting a pod");
    let Some(Cluster::Local(cluster)) = env.cluster.as_mut() else {
        panic!("the local provider runs a local cluster");
    };
    let downtime = cluster
        .restart_apiserver(Duration::from_secs(10))
        .await
        .expect("kube-apiserver restarts");
    let restarted_at = started.elapsed();
    let out = tokio::time::timeout(Duration::from_secs(300), output)
        .await
        .expect("verify -A ends within 5 minutes")
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "kube-apiserver closed for {downtime:?} (restarted {restarted_at:?} into the run); \
         verify -A took {elapsed:?}, exit {:?}",
        out.status.code()
    );
    // Whether a pod's exec was cut, and opened again, depends on where the restart fell.
    for line in stderr.lines().filter(|l| l.contains("the exec in the pod")) {
        eprintln!("plugin: {line}");
    }
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
    env.down().await.expect("the environment stops");

    assert!(
        elapsed > restarted_at,
        "the run spanned the restart: {elapsed:?} vs {restarted_at:?}"
    );
    assert!(
        stderr.contains("probably restarting: retry 1 in 250ms"),
        "the plugin met the restart and retried: {stderr}"
    );
    let items = report["items"].as_array().expect("items");
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i["pod"]["name"] == name && i["pod"]["namespace"] == "default")
            .unwrap_or_else(|| panic!("no item for {name}: {report:#}"))
    };
    let mut judged: Vec<&str> = vec!["s3-pod", "gcs-pod", "azure-pod"];
    judged.extend(names.iter().filter(|p| **p != DELETED_POD));
    for name in judged {
        let item = item(name);
        assert_eq!(item["verdict"], "pass", "{name}: {item:#}\n{stderr}");
    }
    // The deleted pod: named, not judged, and the only reason for exit 3.
    let deleted = item(DELETED_POD);
    assert_eq!(deleted["verdict"], "incomplete", "{deleted:#}");
    assert!(
        deleted
            .to_string()
            .contains(&format!("pods \\\"{DELETED_POD}\\\" not found")),
        "{deleted:#}"
    );
    assert_eq!(report["summary"]["unreachable"], 1, "{report:#}");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(out.status.code(), Some(3), "{report:#}\n{stderr}");
}
