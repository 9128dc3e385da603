//! The local provider changes the host only in ways that are safe on any machine, a cloud VM
//! included, and undoes them: what an earlier (crashed, or older) run left is cleaned by the
//! next one; during the run no interface carries a link-local service address and no route for
//! 169.254.0.0/16 appears (pods reach the metadata server and the agent by DNAT); pods reach
//! each other and the host even with the FORWARD policy at DROP (as Docker leaves it); a pod's
//! packet to a link-local address nobody serves is refused, not sent out by the uplink; after
//! `down` nothing of ours remains (addresses, routes, rules commented `podiam-e2e`, CNI's pod
//! chains even with no jump to them, bridge) and nothing of another CNI network is touched.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`. The cluster takes the machine's cluster
//! lock itself: never wrap the test in `flock` on it (it would wait for itself).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{AttachParams, PostParams};
use podiam_e2e::cluster::{BUSYBOX_IMAGE, CURL_IMAGE, cache_dir, pod_network};
use podiam_e2e::runner::environment::Environment;
use serde_json::json;
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "podiam-host-safety";
/// A bridge name only this test uses, for the rules an "earlier run" left.
const OLD_BRIDGE: &str = "podiam-old";
/// A pod chain of ours the bridge plugin was killed in the middle of: no jump leads to it.
const ORPHAN_CNI_CHAIN: &str = "CNI-podiam0host0safety0orph";
/// Another CNI network's pod chain (podman's), which the harness must leave alone.
const FOREIGN_CNI_CHAIN: &str = "CNI-podman0host0safety0test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_provider_is_safe_on_the_host_and_leaves_nothing() {
    let routes_before = link_local_routes();
    leave_what_an_older_run_left();
    let _foreign = ForeignCniChain::add();

    let env = match Environment::start_local(&cache_dir().join("host-safety-test")).await {
        Ok(env) => env,
        Err(e) => panic!("the environment did not come up:\n{e:#}"),
    };
    let bridge = pod_network().bridge().to_owned();
    let host_ip = pod_network().host_ip();

    // The older run's leftovers are gone.
    let addresses = ip_json(&["addr", "show"]);
    assert!(!addresses.contains("\"10.88.0.1\""), "{addresses}");
    let rules = iptables_save();
    assert!(!rules.contains(OLD_BRIDGE), "{rules}");
    assert!(!rules.contains(ORPHAN_CNI_CHAIN), "{rules}");
    assert!(
        rules.contains(&format!(":{FOREIGN_CNI_CHAIN} ")),
        "another network's CNI chain was removed:\n{rules}"
    );
    assert_eq!(
        rules
            .lines()
            .filter(|l| l.starts_with("-A INPUT") && l.contains("PODIAM-FAULTS"))
            .count(),
        1,
        "exactly one jump to the faults chain:\n{rules}"
    );

    // During the run: no link-local service address on any interface, no new route for them.
    let addresses = ip_json(&["addr", "show"]);
    for forbidden in ["\"169.254.", "\"fd00:ec2::23\""] {
        assert!(
            !addresses.contains(forbidden),
            "{forbidden} on an interface:\n{addresses}"
        );
    }
    assert_eq!(link_local_routes(), routes_before, "routes for 169.254/16");
    let rules = iptables_save();
    for service in ["169.254.169.254/32", "169.254.170.23/32"] {
        assert!(
            rules.lines().any(|l| l.contains("PREROUTING")
                && l.contains(&format!("-d {service} -i {bridge}"))
                && l.contains("podiam-e2e")
                && l.contains(&format!("--to-destination {host_ip}:"))),
            "no DNAT for {service}:\n{rules}"
        );
    }

    // Two pods: a web server, and a client.
    let client = env.client.clone();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let server_script = "mkdir -p /tmp/www && echo pod-a > /tmp/www/index.html && \
                         exec httpd -f -p 8080 -h /tmp/www";
    // busybox's static wget crashes resolving; the client is the curl image.
    for (name, image, command) in [
        ("server", BUSYBOX_IMAGE, vec!["sh", "-c", server_script]),
        ("client", CURL_IMAGE, vec!["sleep", "3600"]),
    ] {
        let pod = json!({
            "metadata": {"name": name},
            "spec": {
                "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": image,
                                "imagePullPolicy": "Never", "command": command}],
            },
        });
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .expect("pod");
    }
    let server_ip = wait_running(&pods, "server").await;
    wait_running(&pods, "client").await;

    // A service on the host's bridge address, as the emulators are.
    let host_service = TcpListener::bind((host_ip, 0)).expect("binding on the bridge");
    let host_port = host_service.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in host_service.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhost\n");
        }
    });

    // The server answers (httpd may start a moment after the container is Running).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (out, err, ok) = exec(
            &pods,
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                &format!("http://{server_ip}:8080/"),
            ],
        )
        .await;
        if ok && out.trim() == "pod-a" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pod to pod, FORWARD policy unchanged: {out} {err}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    {
        // As Docker leaves it when it started with forwarding off.
        let _policy = ForwardPolicyDrop::set();
        let (out, err, ok) = exec(
            &pods,
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                &format!("http://{server_ip}:8080/"),
            ],
        )
        .await;
        assert!(ok && out.trim() == "pod-a", "pod to pod: {out} {err}");
        let (out, err, ok) = exec(
            &pods,
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                &format!("http://{host_ip}:{host_port}/"),
            ],
        )
        .await;
        assert!(ok && out.trim() == "host", "pod to host: {out} {err}");
        // The metadata server, by DNAT: any HTTP answer (curl exits 0) means it was reached.
        let (out, err, ok) = exec(
            &pods,
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "-H",
                "Metadata-Flavor: Google",
                "http://169.254.169.254/computeMetadata/v1/project/project-id",
            ],
        )
        .await;
        assert!(ok, "metadata server: {out} {err}");
        // A link-local address nobody serves: refused at once, never routed out.
        let started = Instant::now();
        let (out, err, ok) = exec(
            &pods,
            "client",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://169.254.170.23:8080/",
            ],
        )
        .await;
        assert!(
            // curl's exit 7 (could not connect) at once, not 28 (timed out).
            !ok && err.contains("curl: (7)") && started.elapsed() < Duration::from_secs(4),
            "169.254.170.23:8080 must be refused: {out} {err} after {:?}",
            started.elapsed()
        );
    }

    env.down().await.expect("down");
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists(),
        "bridge {bridge} still exists"
    );
    let addresses = ip_json(&["addr", "show"]);
    for forbidden in ["\"169.254.", "\"fd00:ec2::23\"", &format!("\"{host_ip}\"")] {
        assert!(
            !addresses.contains(forbidden),
            "{forbidden} left on an interface:\n{addresses}"
        );
    }
    assert_eq!(link_local_routes(), routes_before, "routes for 169.254/16");
    let routes = ip_json(&["route", "show", "table", "all"]);
    assert!(
        !routes.contains(&pod_network().cidr()),
        "pod CIDR route left:\n{routes}"
    );
    let rules = iptables_save();
    for ours in ["podiam-e2e", "PODIAM-FAULTS", "name: \\\"podiam\\\""] {
        assert!(!rules.contains(ours), "{ours} left in iptables:\n{rules}");
    }
    assert!(
        rules.contains(&format!(":{FOREIGN_CNI_CHAIN} ")),
        "another network's CNI chain was removed:\n{rules}"
    );
}

/// What an older version of the harness, or a crashed run, leaves: the bridge with the
/// podman-range gateway and the link-local addresses on it, a DNAT and a FORWARD rule for
/// another bridge, a faults jump without comment, and a pod chain of ours with no jump to it.
fn leave_what_an_older_run_left() {
    let ip = |args: &[&str]| run("ip", args);
    let iptables = |args: &[&str]| run("iptables", &[&["-w"], args].concat());
    if !std::path::Path::new("/sys/class/net/podiam0").exists() {
        ip(&["link", "add", "podiam0", "type", "bridge"]);
    }
    for address in ["10.88.0.1/16", "169.254.169.254/32", "169.254.170.23/32"] {
        ip(&["addr", "replace", address, "dev", "podiam0"]);
    }
    iptables(&[
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        "-i",
        OLD_BRIDGE,
        "-d",
        "169.254.169.254/32",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-m",
        "comment",
        "--comment",
        "podiam-e2e link-local",
        "-j",
        "DNAT",
        "--to-destination",
        "10.99.0.1:1",
    ]);
    iptables(&[
        "-I",
        "FORWARD",
        "-i",
        OLD_BRIDGE,
        "-m",
        "comment",
        "--comment",
        "podiam-e2e",
        "-j",
        "ACCEPT",
    ]);
    let _ = Command::new("iptables")
        .args(["-w", "-N", "PODIAM-FAULTS"])
        .output();
    iptables(&["-I", "INPUT", "-i", "podiam0", "-j", "PODIAM-FAULTS"]);
    add_cni_chain(ORPHAN_CNI_CHAIN, "podiam", "10.244.0.0/16");
}

/// A pod chain as the bridge plugin writes it for `network`, without the POSTROUTING jump.
fn add_cni_chain(chain: &str, network: &str, cidr: &str) {
    let _ = Command::new("iptables")
        .args(["-w", "-t", "nat", "-N", chain])
        .output();
    let comment = format!("name: \"{network}\" id: \"host-safety\"");
    let mut rule = vec!["-w", "-t", "nat", "-A", chain, "-d", cidr];
    rule.extend(["-m", "comment", "--comment", &comment, "-j", "ACCEPT"]);
    run("iptables", &rule);
}

/// Another CNI network's chain, present for the whole test and removed after it (even on panic).
struct ForeignCniChain;

impl ForeignCniChain {
    fn add() -> Self {
        add_cni_chain(FOREIGN_CNI_CHAIN, "podman", "10.88.0.0/16");
        Self
    }
}

impl Drop for ForeignCniChain {
    fn drop(&mut self) {
        for action in ["-F", "-X"] {
            let _ = Command::new("iptables")
                .args(["-w", "-t", "nat", action, FOREIGN_CNI_CHAIN])
                .output();
        }
    }
}

/// Sets the FORWARD policy to DROP; the previous policy comes back on drop (even on panic).
struct ForwardPolicyDrop {
    previous: String,
}

impl ForwardPolicyDrop {
    fn set() -> Self {
        let rules = iptables_save();
        let previous = rules
            .lines()
            .find_map(|l| l.strip_prefix(":FORWARD "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("ACCEPT")
            .to_owned();
        run("iptables", &["-w", "-P", "FORWARD", "DROP"]);
        Self { previous }
    }
}

impl Drop for ForwardPolicyDrop {
    fn drop(&mut self) {
        run("iptables", &["-w", "-P", "FORWARD", &self.previous]);
    }
}

/// Routes in any table whose destination is in 169.254.0.0/16.
fn link_local_routes() -> Vec<String> {
    let routes: serde_json::Value =
        serde_json::from_str(&ip_json(&["-4", "route", "show", "table", "all"])).unwrap();
    routes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["dst"].as_str().is_some_and(|d| d.starts_with("169.254.")))
        .map(|r| r.to_string())
        .collect()
}

fn ip_json(args: &[&str]) -> String {
    run("ip", &[&["-j"], args].concat())
}

/// The filter and nat tables (IPv4), as `iptables-save` prints them.
fn iptables_save() -> String {
    ["filter", "nat", "mangle", "raw"]
        .iter()
        .map(|t| run("iptables-save", &["-t", t]))
        .collect()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_running(pods: &Api<Pod>, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pod = pods.get(name).await.expect("pod");
        let status = pod.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running")
            && let Some(ip) = status.pod_ip
        {
            return ip;
        }
        assert!(Instant::now() < deadline, "{name} not Running: {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// stdout, stderr, and whether the command exited 0.
async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> (String, String, bool) {
    let params = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .stdin(false);
    let mut attached = pods
        .exec(pod, command.to_vec(), &params)
        .await
        .expect("exec");
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut stdout) = attached.stdout() {
        let _ = stdout.read_to_string(&mut out).await;
    }
    if let Some(mut stderr) = attached.stderr() {
        let _ = stderr.read_to_string(&mut err).await;
    }
    let status = attached.take_status().expect("status").await;
    let ok = status
        .as_ref()
        .is_some_and(|s| s.status.as_deref() == Some("Success"));
    if !ok {
        err.push_str(&format!(" (exec status: {status:?})"));
    }
    (out, err, ok)
}
