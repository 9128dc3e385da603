//! Smoke test of podiam's kind node image (`podiam-e2e setup --kind` builds it): a kind
//! cluster from it, with no registry, gets a Ready node; a busybox image loaded with
//! `kind load image-archive` runs in a pod and resolves `kubernetes.default.svc.cluster.local`
//! through the
//! cluster's CoreDNS to the API Service's address. The cluster is deleted afterwards.
//!
//! Fails, naming what is missing, when Docker, kind or the image is absent. Takes the
//! machine-wide cluster lock (`/tmp/podiam-cluster.lock`) for the cluster's lifetime.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use podiam_e2e::cluster::default_binaries_dir;
use podiam_e2e::kind_image::{kind_binary, require_node_image};

const CLUSTER: &str = "podiam-smoke";
/// Built by `build-image.sh` from the host's busybox-static.
const BUSYBOX_IMAGE: &str = "podiam.local/busybox:static";
const LOCK: &str = "/tmp/podiam-cluster.lock";

fn run(program: &Path, args: &[&str], kubeconfig: &Path) -> Output {
    Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

fn ok(program: &Path, args: &[&str], kubeconfig: &Path) -> String {
    let out = run(program, args, kubeconfig);
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{}{}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns Some or `timeout` passes.
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Deletes the cluster when the test ends, passed or not.
struct Cluster {
    kind: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.kind)
            .args(["delete", "cluster", "--name", CLUSTER])
            .output();
    }
}

#[test]
fn kind_cluster_from_the_local_node_image_runs_a_pod_that_resolves_the_api_service() {
    let image = require_node_image().unwrap_or_else(|e| panic!("{e}"));
    let has_busybox = Command::new("docker")
        .args(["image", "inspect", BUSYBOX_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_busybox,
        "missing prerequisite: no image {BUSYBOX_IMAGE} in Docker; run `podiam-e2e setup --kind`"
    );
    let kubectl = default_binaries_dir().join("kubectl");
    assert!(
        kubectl.exists(),
        "missing prerequisite: no kubectl at {}; run `podiam-e2e setup`",
        kubectl.display()
    );

    let lock = File::create(LOCK).expect("opening the cluster lock");
    let waited = Instant::now();
    // SAFETY: flock on a file descriptor this test owns; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    eprintln!("waited {:.1}s for {LOCK}", waited.elapsed().as_secs_f64());

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let kind = kind_binary();
    let _cluster = Cluster { kind: kind.clone() };
    let started = Instant::now();
    ok(
        &kind,
        &[
            "create",
            "cluster",
            "--name",
            CLUSTER,
            "--image",
            &image,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--wait",
            "120s",
        ],
        &kubeconfig,
    );
    eprintln!(
        "kind create cluster: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let ready = ok(
        &kubectl,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ],
        &kubeconfig,
    );
    assert_eq!(ready.trim(), "True", "node not Ready");

    // The stand-in CNI config makes the node Ready before kube-proxy's rules exist, so CoreDNS's
    // first calls to the API Service miss; it is Available once its informers have synced.
    ok(
        &kubectl,
        &[
            "-n",
            "kube-system",
            "wait",
            "--for=condition=Available",
            "deployment/coredns",
            "--timeout=120s",
        ],
        &kubeconfig,
    );
    eprintln!("CoreDNS Available: {:.1}s", started.elapsed().as_secs_f64());

    let archive = dir.path().join("busybox.tar");
    ok(
        Path::new("docker"),
        &["save", "-o", archive.to_str().unwrap(), BUSYBOX_IMAGE],
        &kubeconfig,
    );
    ok(
        &kind,
        &[
            "load",
            "image-archive",
            archive.to_str().unwrap(),
            "--name",
            CLUSTER,
        ],
        &kubeconfig,
    );

    // The namespace's ServiceAccount appears a moment after the control plane.
    wait_for(
        "ServiceAccount default/default",
        Duration::from_secs(60),
        || {
            run(&kubectl, &["get", "serviceaccount", "default"], &kubeconfig)
                .status
                .success()
                .then_some(())
        },
    );
    ok(
        &kubectl,
        &[
            "run",
            "resolver",
            "--image",
            BUSYBOX_IMAGE,
            "--image-pull-policy=Never",
            "--restart=Never",
            "--",
            "nslookup",
            // busybox's nslookup applies no search domains: the full name.
            "kubernetes.default.svc.cluster.local",
        ],
        &kubeconfig,
    );
    let phase = wait_for(
        "the resolver pod to finish",
        Duration::from_secs(120),
        || {
            let phase = ok(
                &kubectl,
                &["get", "pod", "resolver", "-o", "jsonpath={.status.phase}"],
                &kubeconfig,
            );
            matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
        },
    );
    eprintln!(
        "image loaded and resolver pod done: {:.1}s after create",
        started.elapsed().as_secs_f64()
    );
    let logs = ok(&kubectl, &["logs", "resolver"], &kubeconfig);
    assert_eq!(phase, "Succeeded", "nslookup failed:\n{logs}");
    let api_ip = ok(
        &kubectl,
        &[
            "get",
            "service",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
        &kubeconfig,
    );
    assert!(
        !api_ip.trim().is_empty() && logs.contains(&format!("Address: {}", api_ip.trim())),
        "kubernetes.default.svc.cluster.local did not resolve to {api_ip}:\n{logs}"
    );
}
