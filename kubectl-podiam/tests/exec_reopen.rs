//! A pod's exec session cut by kube-apiserver dying (SIGKILL: no graceful drain of the stream)
//! is opened again when the API server is back, and the next call is still made from inside
//! the pod, not lost to evidence from this machine. The seed's IRSA pod on the local cluster
//! calls STS's name through the harness's cloud front, before and after the kill.
//!
//! Needs root, the binaries of `e2e/k8s/build.sh` and the harness venv; fails naming what is
//! missing. The cluster takes the machine's cluster lock.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use podiam::evidence::Probe;
use podiam::manifest::{documents, subjects};
use podiam::pod_session::PodCall;
use podiam_e2e::cluster::cache_dir;
use podiam_e2e::demo::create_seed;
use podiam_e2e::runner::environment::{Cluster, Environment};
use podiam_e2e::sandbox::Clouds;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_by_the_api_server_dying_is_opened_again_and_the_call_made_from_the_pod() {
    let state_root = cache_dir().join("exec-reopen-test");
    let mut env = match Environment::start_local(&state_root).await {
        Ok(env) => env,
        Err(e) => panic!("the environment did not come up:\n{e:#}"),
    };
    let aws_only = Clouds {
        aws: true,
        gcp: false,
        azure: false,
    };
    create_seed(&env, aws_only, "", &[])
        .await
        .expect("the seed's IRSA pod runs");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let live = pods.get("s3-pod").await.expect("s3-pod is there");
    let yaml = serde_json::to_string(&live).unwrap();
    let docs = documents::parse(Path::new("s3-pod.json"), &yaml).unwrap();
    let subject = subjects::subjects(&docs, "default", None)
        .unwrap()
        .remove(0);
    let probe = Probe::Live {
        client: env.client.clone(),
        timeout: Duration::from_secs(30),
    };
    let runtime = probe
        .env(&subject, &[])
        .await
        .unwrap_or_else(|e| panic!("the session in s3-pod opens: {e:?}"));
    let session = runtime.session().expect("s3-pod's image has a shell");
    let call = PodCall::get("https://sts.amazonaws.com/", Duration::from_secs(10));
    let before = session.call(&call).await;
    assert!(before.is_ok(), "the pod reaches STS's name: {before:?}");

    let Some(Cluster::Local(cluster)) = env.cluster.as_mut() else {
        panic!("the local provider runs a local cluster");
    };
    // No grace: the process is killed, so the exec's stream is cut, not drained.
    let downtime = cluster
        .restart_apiserver(Duration::ZERO)
        .await
        .expect("kube-apiserver restarts");
    eprintln!("kube-apiserver killed and back in {downtime:?}");

    let after = session.call(&call).await;
    assert_eq!(
        after.as_ref().map(|a| a.status).ok(),
        before.as_ref().map(|a| a.status).ok(),
        "the same call answered from inside the pod on a new exec: {after:?}"
    );
    runtime.close().await;
    env.down().await.expect("the environment stops");
}
