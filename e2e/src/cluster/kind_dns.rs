//! kind's CoreDNS pointed at the cloud front, and the change awaited where pods see it.
//!
//! The Corefile ([`kind_network::corefile`]) is patched and CoreDNS's pods are restarted. The
//! fresh pods answering when asked directly is not enough: pods ask the `kube-dns` Service, whose
//! endpoints follow the fresh pods' readiness probe (period 10 s in kind's manifest) while the old
//! pods, terminating in lameduck, still answer with kind's Corefile. A scenario started then saw
//! `Could not resolve host: sts.us-east-1.amazonaws.com` in its pod (CI, 2026-12-04). So this
//! also waits for the Service's endpoints to be exactly the fresh pods, then for a pod's lookup
//! through the Service to answer with the gateway.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};

use super::error::{ClusterError, Result};
use super::images::BUSYBOX_IMAGE;
use super::kind_network::{self, KIND_POD_CIDR};

const NAMESPACE: &str = "kube-system";
const COREDNS_PODS: &str = "k8s-app=kube-dns";
const SERVICE_SLICES: &str = "kubernetes.io/service-name=kube-dns";
/// The name every check asks for: one of the clouds' names the Corefile answers.
const CHECKED_NAME: &str = "sts.amazonaws.com";
const POLL: Duration = Duration::from_millis(500);

/// Points kind's CoreDNS at the cloud front (`gateway`) and returns once a pod's lookup through
/// the `kube-dns` Service gets the gateway, or fails naming the step that did not finish
/// within `timeout`.
pub async fn configure(client: &kube::Client, gateway: Ipv4Addr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let fresh = restart_with_corefile(client, gateway, deadline, timeout).await?;
    service_serves_only(client, &fresh, deadline, timeout).await?;
    lookup_from_a_pod(client, gateway, deadline, timeout).await
}

fn api_error(what: &str) -> impl Fn(kube::Error) -> ClusterError + '_ {
    move |e| ClusterError::other(format!("{what}: {e}"))
}

/// Patches the Corefile, deletes CoreDNS's pods and waits until each new pod, asked from this
/// host over the route to the pods, answers [`CHECKED_NAME`] with the gateway. Returns the new
/// pods' addresses.
async fn restart_with_corefile(
    client: &kube::Client,
    gateway: Ipv4Addr,
    deadline: Instant,
    timeout: Duration,
) -> Result<BTreeSet<Ipv4Addr>> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = serde_json::json!({"data": {"Corefile": kind_network::corefile(gateway)}});
    config_maps
        .patch("coredns", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_error("patching ConfigMap kube-system/coredns"))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = ListParams::default().labels(COREDNS_PODS);
    let old: Vec<String> = pods
        .list(&selector)
        .await
        .map_err(api_error("listing CoreDNS pods"))?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    pods.delete_collection(&DeleteParams::default(), &selector)
        .await
        .map_err(api_error("restarting CoreDNS pods"))?;
    let mut last = String::from("no CoreDNS pod yet");
    loop {
        let listed = pods
            .list(&selector)
            .await
            .map_err(api_error("listing CoreDNS pods"))?;
        let fresh: BTreeSet<Ipv4Addr> = listed
            .items
            .iter()
            .filter(|p| p.metadata.uid.as_ref().is_some_and(|u| !old.contains(u)))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
            .collect();
        let answers: Vec<String> = fresh
            .iter()
            .map(|ip| {
                match super::cluster_dns::query(
                    (*ip, 53).into(),
                    CHECKED_NAME,
                    super::cluster_dns::QTYPE_A,
                    Duration::from_millis(500),
                ) {
                    Ok(a) if a.addresses == [gateway] => String::new(),
                    Ok(a) => format!("{ip}: {a:?}"),
                    Err(e) => format!("{ip}: {e}"),
                }
            })
            .collect();
        if !fresh.is_empty() && answers.iter().all(String::is_empty) {
            return Ok(fresh);
        }
        if !answers.is_empty() {
            last = answers.join("; ");
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::other(format!(
                "kind's CoreDNS never answered {CHECKED_NAME} with {gateway} within {timeout:?} \
                 (asked from this host over the route to {KIND_POD_CIDR}): {last}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The addresses the `kube-dns` Service sends queries to: its EndpointSlices' ready endpoints
/// (an unset `ready` counts as ready, as the API says consumers should read it).
fn ready_addresses(slices: &[EndpointSlice]) -> BTreeSet<Ipv4Addr> {
    slices
        .iter()
        .flat_map(|slice| &slice.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| &e.addresses)
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// Waits until the `kube-dns` Service's ready endpoints are exactly the fresh pods.
async fn service_serves_only(
    client: &kube::Client,
    fresh: &BTreeSet<Ipv4Addr>,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = ListParams::default().labels(SERVICE_SLICES);
    loop {
        let listed = slices
            .list(&selector)
            .await
            .map_err(api_error("listing the kube-dns Service's EndpointSlices"))?;
        let ready = ready_addresses(&listed.items);
        if &ready == fresh {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::other(format!(
                "the kube-dns Service's ready endpoints were {ready:?}, not the restarted \
                 CoreDNS pods {fresh:?}, within {timeout:?}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The script of the lookup pod: asks the cluster's resolver (the `kube-dns` Service, as every
/// `ClusterFirst` pod does) until the answer is the gateway; prints each other answer.
fn lookup_script(gateway: Ipv4Addr) -> String {
    format!(
        "while :; do\n\
         \x20 out=$(nslookup {CHECKED_NAME} 2>&1)\n\
         \x20 if printf '%s\\n' \"$out\" | grep -q '^Address:[[:space:]]*{gateway}$'; then exit 0; fi\n\
         \x20 printf '%s\\n' \"$out\" | tr '\\n' ' '; echo\n\
         \x20 sleep 0.2\n\
         done\n"
    )
}

fn lookup_pod(gateway: Ipv4Addr) -> Result<Pod> {
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "generateName": "podiam-dns-check-",
            "labels": {"app.kubernetes.io/managed-by": "podiam-e2e"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "lookup",
                "image": BUSYBOX_IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", lookup_script(gateway)],
            }],
        },
    }))
    .map_err(|e| ClusterError::other(format!("the DNS check pod: {e}")))
}

/// Runs [`lookup_script`] in a pod and waits for it to succeed; the pod is deleted either way.
async fn lookup_from_a_pod(
    client: &kube::Client,
    gateway: Ipv4Addr,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let created = pods
        .create(&PostParams::default(), &lookup_pod(gateway)?)
        .await
        .map_err(api_error("creating the DNS check pod"))?;
    let name = created.metadata.name.unwrap_or_default();
    let outcome = wait_for_lookup(&pods, &name, gateway, deadline, timeout).await;
    let _ = pods.delete(&name, &DeleteParams::default()).await;
    outcome
}

async fn wait_for_lookup(
    pods: &Api<Pod>,
    name: &str,
    gateway: Ipv4Addr,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    loop {
        let pod = pods
            .get(name)
            .await
            .map_err(api_error("reading the DNS check pod"))?;
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Succeeded" {
            return Ok(());
        }
        if phase == "Failed" || Instant::now() >= deadline {
            let params = LogParams {
                tail_lines: Some(3),
                ..LogParams::default()
            };
            let log = pods.logs(name, &params).await.unwrap_or_default();
            return Err(ClusterError::other(format!(
                "a pod's lookup of {CHECKED_NAME} through the kube-dns Service never answered \
                 {gateway} within {timeout:?} (pod {NAMESPACE}/{name}, phase {phase:?}); its \
                 last answers: {}",
                log.trim()
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

    fn endpoint(address: &str, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![address.into()],
            conditions: Some(EndpointConditions {
                ready,
                ..EndpointConditions::default()
            }),
            ..Endpoint::default()
        }
    }

    #[test]
    fn only_ready_endpoints_receive_queries() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: vec![
                endpoint("10.244.0.2", Some(false)),
                endpoint("10.244.0.5", Some(true)),
                endpoint("10.244.0.6", None),
            ],
            ..EndpointSlice::default()
        };
        let ready = ready_addresses(&[slice]);
        let expected: BTreeSet<Ipv4Addr> = ["10.244.0.5", "10.244.0.6"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(ready, expected);
    }

    /// Runs the lookup script in the host's busybox (what the image holds) with `nslookup`
    /// replaced by a function printing `answer`; true if it exits 0 within a second.
    fn script_accepts(answer: &str) -> bool {
        let fake = format!("nslookup() {{ printf '{answer}'; }}\n");
        let script = fake + &lookup_script(Ipv4Addr::new(172, 18, 0, 1));
        let status = std::process::Command::new("timeout")
            .args(["1", "/usr/bin/busybox", "sh", "-c", &script])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running /usr/bin/busybox (apt-get install -y busybox-static)");
        status.success()
    }

    #[test]
    fn the_lookup_script_accepts_only_the_gateway_as_an_answer() {
        let server = "Server:\\t\\t10.96.0.10\\nAddress:\\t10.96.0.10:53\\n\\n";
        assert!(script_accepts(&format!(
            "{server}Name:\\tsts.amazonaws.com\\nAddress: 172.18.0.1\\n"
        )));
        // kind's own Corefile: the real (unreachable) address.
        assert!(!script_accepts(&format!(
            "{server}Name:\\tsts.amazonaws.com\\nAddress: 209.54.177.164\\n"
        )));
        // No answer; and the gateway as the server is not an answer.
        assert!(!script_accepts(&format!(
            "{server}** server can't find sts.amazonaws.com: NXDOMAIN\\n"
        )));
        assert!(!script_accepts(
            "Server:\\t\\t172.18.0.1\\nAddress:\\t172.18.0.1:53\\n"
        ));
    }

    #[test]
    fn the_lookup_pod_needs_no_registry_and_no_token() {
        let pod = lookup_pod(Ipv4Addr::new(172, 18, 0, 1)).unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.automount_service_account_token, Some(false));
        let container = &spec.containers[0];
        assert_eq!(container.image.as_deref(), Some(BUSYBOX_IMAGE));
        assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
    }
}
