//! Secrets that cannot leak: one run of the real local environment, and every output channel
//! scanned for every secret the run created. The emulators record each secret they issue or are
//! handed (`emulators::issued_secrets`: AWS session keys and tokens, the admin's key, Entra
//! access tokens and client secret, Google access tokens, client secrets and refresh tokens,
//! IMDSv2 tokens, minted and projected service-account tokens), in memory only. The run:
//! seed scenarios of every cloud (Pod Identity, node role, `bind` included) and one whose
//! `catch` fires, through the runner as `podiam-e2e run` drives it, with its JUnit file; then
//! the plugin on the seed pods in every output format at `-vvvvv`. Scanned, for each secret
//! exactly and for token and key shapes: the plugin's stdout and stderr, the runner's report
//! and `catch` output, the JUnit file, and every file under the harness's state dirs
//! (emulator, cloud-front and cluster logs included).
//!
//! Allowed, and only these (each listed in [`ALLOWED_CREDENTIAL_FILES`] with why): the
//! credential files the harness writes, mode 0600, for SDKs to read — they exist to hold a
//! secret. Mount points under the state dirs (the pods' root filesystems and kubelet's
//! projected token volumes, where the cluster puts tokens by design) are not entered; token and
//! key shapes are not looked for in upstream images ([`UPSTREAM_CONTENT`]: they document
//! example keys such as botocore's `AKIAIOSFODNN7EXAMPLE`), exact secrets are.
//!
//! While everything runs, every listening TCP socket and bound UDP socket of the harness's
//! processes (this one, its descendants, the cluster's components) in the host's network
//! namespace must be on 127.0.0.1/::1 or the pod bridge's host address
//! (`cluster::pod_host_ip`), but for [`ALLOWED_WILDCARD_LISTENERS`].
//!
//! Needs root, the binaries of `e2e/k8s/build.sh`, the harness venv and `kubectl-podiam`
//! built beside `podiam-e2e`; fails naming what is missing. Takes the machine-wide cluster
//! lock (`/tmp/podiam-cluster.lock`) for the environment's lifetime. Secret values are never
//! printed: findings name the kind, the place and the offset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use podiam_e2e::cluster::{APISERVER_PORT, HarnessCa, cache_dir, pod_host_ip};
use podiam_e2e::demo::create_seed;
use podiam_e2e::emulators::issued_secrets::{self, IssuedSecret, SecretKind};
use podiam_e2e::runner::environment::{Cluster, Environment};
use podiam_e2e::runner::plugin_command::{add_gcp_env, host_side_args, plugin_command};
use podiam_e2e::runner::suite::{report_text, write_junit};
use podiam_e2e::runner::{RunContext, ScenarioOutcome};
use podiam_e2e::sandbox::Clouds;
use podiam_e2e::scenario::Scenario;
use regex::bytes::Regex;

/// Seed scenarios of every mechanism: each issues its cloud's credentials.
const SCENARIOS: &[&str] = &[
    "aws-irsa-seed.yaml",
    "aws-pod-identity-happy.yaml",
    "node-aws-instance-role-fallback.yaml",
    "gcp-wi-seed.yaml",
    "azure-wi-seed.yaml",
    "bind-gcp-wi.yaml",
    "bind-azure-wi.yaml",
];

/// Credential files the harness writes on purpose, mode 0600, for an SDK to read: a secret in
/// them is their point. (file name, why)
const ALLOWED_CREDENTIAL_FILES: &[(&str, &str)] = &[(
    "podiam-e2e-gcp-adc-",
    "the operator's gcloud application-default credentials (authorized_user: client secret \
     and refresh token) the plugin's `bind` reads through GOOGLE_APPLICATION_CREDENTIALS",
)];

/// Where token and key shapes are not looked for (exact secrets are). (path part, why)
const UPSTREAM_CONTENT: &[(&str, &str)] = &[
    (
        "/cluster/containerd/",
        "containerd's image content and snapshots: upstream files (botocore's docs quote \
         AKIAIOSFODNN7EXAMPLE)",
    ),
    (
        "/cluster/images/",
        "the image archives imported into containerd: the same upstream files",
    ),
];

/// Upstream components that listen on every address. (process name, port, why)
const ALLOWED_WILDCARD_LISTENERS: &[(&str, u16, &str)] = &[(
    "kube-apiserver",
    APISERVER_PORT,
    "one --bind-address only: the harness reaches it at 127.0.0.1 (its kubeconfig) and pods at \
     the bridge's address (--advertise-address, the `kubernetes` Service's endpoint); clients \
     must authenticate (no anonymous access beyond discovery)",
)];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `kubectl-podiam` (`$PODIAM_PLUGIN`, else the one beside `podiam-e2e`), copied out so a
/// concurrent build cannot replace it mid-run.
fn copy_plugin(dir: &Path) -> PathBuf {
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
    let plugin = dir.join("kubectl-podiam");
    std::fs::copy(&built, &plugin).expect("copying kubectl-podiam");
    plugin
}

/// The seed's AWS scenario, failing at its last step (verify runs, then exit code 7 is
/// expected), with every kind of `catch`.
fn failing_scenario(dir: &Path) -> PathBuf {
    let seed = std::fs::read_to_string(repo().join("scenarios/aws-irsa-seed.yaml")).unwrap();
    let examples = repo().join("examples/aws");
    let text = seed
        .replace("name: aws-irsa-seed", "name: secrets-catch-fires")
        .replace("../examples/aws", &examples.display().to_string())
        .replace("exitCode: 0", "exitCode: 7")
        .replace(
            "    - events: {}\n",
            "    - events: {}\n    - logs: {pod: s3-pod}\n",
        );
    assert!(text.contains("exitCode: 7") && text.contains("logs: {pod: s3-pod}"));
    let path = dir.join("secrets-catch-fires.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One thing scanned: a captured stream or a file.
struct Scanned {
    place: String,
    bytes: Vec<u8>,
    /// Look for token and key shapes too (not in upstream images).
    shapes: bool,
    /// Also the generic 40-character secret shape (the plugin's and the runner's text only:
    /// files hold certificates and digests).
    generic: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_the_run_created_reaches_any_output_and_nothing_listens_beyond_loopback_or_the_bridge()
 {
    let bin = tempfile::tempdir().unwrap();
    let plugin = copy_plugin(bin.path());
    // The machine's cluster lock is taken by the cluster itself (`cluster::MachineLock`).

    let state_root = cache_dir().join("secrets-never-leak-test");
    // An earlier run's files would be scanned as this one's. The cluster's own directory is
    // cleaned by the cluster (it unmounts what a killed run left first).
    if let Ok(entries) = std::fs::read_dir(&state_root) {
        for entry in entries.flatten() {
            if entry.file_name() != "cluster" {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    }
    let env = match Environment::start_local(&state_root).await {
        Ok(env) => env,
        Err(e) => panic!("the environment did not come up:\n{e:#}"),
    };
    let work = tempfile::tempdir().unwrap();
    let mut scanned: Vec<Scanned> = Vec::new();

    // 1. Scenarios, as `podiam-e2e run --junit` runs them.
    let mut paths: Vec<PathBuf> = SCENARIOS
        .iter()
        .map(|s| repo().join("scenarios").join(s))
        .collect();
    paths.push(failing_scenario(work.path()));
    let scenarios = Scenario::load_all(&paths).expect("scenarios load");
    let ctx = RunContext {
        client: env.client.clone(),
        kubeconfig: env.kubeconfig.clone(),
        plugin: plugin.clone(),
        plugin_args: env.plugin_args.clone(),
        aws: &env.aws,
        gcp: Some(&env.gcp),
        azure: &env.azure,
        issuer: env.issuer.clone(),
        keep: false,
        webhook: env.webhook.as_ref(),
        azure_webhook: env.azure_webhook.as_ref(),
        pod_identity_agent: env.pod_identity_agent.as_ref(),
        node_metadata: Some(env.gcp.node_metadata()),
        cloud_front: env.cloud_front.as_ref(),
        egress_faults: env.egress_faults.as_ref(),
        kind: None,
    };
    let mut outcomes: Vec<ScenarioOutcome> = Vec::new();
    for scenario in &scenarios {
        let outcome = podiam_e2e::runner::run(scenario, &ctx).await;
        eprintln!(
            "{} {}",
            if outcome.passed() { "PASS" } else { "FAIL" },
            outcome.name
        );
        scanned.push(Scanned {
            place: format!("the runner's report of {}", outcome.name),
            bytes: report_text(&outcome).into_bytes(),
            shapes: true,
            generic: false,
        });
        scanned.push(Scanned {
            place: format!("the catch output of {}", outcome.name),
            bytes: outcome.diagnostics.clone().into_bytes(),
            shapes: true,
            generic: false,
        });
        outcomes.push(outcome);
    }
    drop(ctx);
    let junit = work.path().join("junit.xml");
    write_junit(&junit, &outcomes).expect("writing the JUnit file");

    // 2. The plugin on the seed pods, every format, at the highest verbosity.
    create_seed(&env, Clouds::default(), "", &[])
        .await
        .expect("the seed's pods run");
    let mut plugin_runs = Vec::new();
    for pod in ["s3-pod", "gcs-pod", "azure-pod"] {
        let mut runs: Vec<Vec<&str>> = ["text", "json", "yaml", "junit"]
            .into_iter()
            .map(|format| vec!["verify", pod, "-o", format])
            .collect();
        runs.push(vec!["whoami", pod, "-o", "json"]);
        for args in runs {
            let mut command = plugin_command(&plugin, &env.kubeconfig, &env.aws, &env.azure, &args);
            add_gcp_env(&mut command, &env.gcp);
            let out = command
                .arg("-vvvvv")
                .args(&args)
                .args(host_side_args(&args, &env.azure))
                .output()
                .await
                .expect("running kubectl-podiam");
            let what = format!("kubectl podiam -vvvvv {}", args.join(" "));
            plugin_runs.push((
                what.clone(),
                out.status.code(),
                out.stdout.len(),
                out.stderr.len(),
            ));
            for (stream, bytes) in [("stdout", out.stdout), ("stderr", out.stderr)] {
                scanned.push(Scanned {
                    place: format!("{stream} of {what}"),
                    bytes,
                    shapes: true,
                    generic: true,
                });
            }
        }
    }

    // 3. Every listening socket while it all runs.
    let cluster_pids = match &env.cluster {
        Some(Cluster::Local(cluster)) => cluster.status().all_pids(),
        _ => panic!("the local provider runs a local cluster"),
    };
    let sockets = listening_sockets(&cluster_pids);

    // 4. The scan: the captured outputs, then every file under the harness's state dirs, before
    // `down` removes the cluster's (read one at a time: images are large).
    assert_eq!(
        issued_secrets::dropped(),
        0,
        "the registry of issued secrets overflowed: the scan would be incomplete"
    );
    let mut scanner = Scanner::new(issued_secrets::issued_secrets());
    for item in &scanned {
        scanner.scan(&item.place, &item.bytes, item.shapes, item.generic);
    }
    let mut roots = vec![
        state_root.clone(),
        work.path().to_path_buf(),
        HarnessCa::default_dir(),
    ];
    roots.extend(
        env.gcp
            .operator_credentials_file()
            .parent()
            .map(Path::to_path_buf),
    );
    let mut walk = Walk::default();
    for root in &roots {
        walk.files(root, &mut scanner);
    }
    env.down().await.expect("down");

    let by_kind: BTreeMap<SecretKind, usize> =
        scanner.secrets.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.kind).or_default() += 1;
            m
        });
    eprintln!(
        "secrets scanned for: {} ({by_kind:?}); places scanned: {}, {} bytes ({} files, {} mount points not entered, {} allowed credential files)",
        scanner.secrets.len(),
        scanner.places,
        scanner.bytes,
        walk.files,
        walk.mount_points,
        walk.allowed.len()
    );
    eprintln!(
        "listening sockets of the harness: {} ({} processes in the host's network namespace, {} elsewhere)",
        sockets.sockets.len(),
        sockets.processes,
        sockets.other_namespace
    );
    for s in &sockets.sockets {
        eprintln!("  {} {}:{} {}", s.protocol, s.address, s.port, s.process);
    }
    for (what, code, out, err) in &plugin_runs {
        eprintln!("  {what}: exit {code:?}, {out} bytes stdout, {err} bytes stderr");
    }

    // Checked after scanning, so no message below can carry an unscanned secret.
    assert!(
        scanner.findings.is_empty(),
        "secrets leaked:\n{}",
        scanner.findings.join("\n")
    );
    for kind in [
        SecretKind::AwsAccessKeyId,
        SecretKind::AwsSecretAccessKey,
        SecretKind::AwsSessionToken,
        SecretKind::ServiceAccountToken,
        SecretKind::EntraAccessToken,
        SecretKind::EntraClientSecret,
        SecretKind::GoogleAccessToken,
        SecretKind::GoogleClientSecret,
        SecretKind::GoogleRefreshToken,
        SecretKind::ImdsSessionToken,
    ] {
        assert!(
            by_kind.get(&kind).is_some_and(|n| *n > 0),
            "the run issued no {kind:?}: the scan would prove nothing about it"
        );
    }
    let (failing, seeds): (Vec<&ScenarioOutcome>, Vec<&ScenarioOutcome>) = outcomes
        .iter()
        .partition(|o| o.name == "secrets-catch-fires");
    for seed in seeds {
        assert!(seed.passed(), "{}", report_text(seed));
    }
    let failing = failing[0];
    assert!(!failing.passed(), "the catch scenario must fail");
    for part in [
        "--- pod ",
        "--- events in ",
        "--- logs of ",
        "--- AWS emulator requests",
    ] {
        assert!(
            failing.diagnostics.contains(part),
            "catch output lacks {part:?}"
        );
    }
    let junit_text = std::fs::read_to_string(&junit).unwrap_or_default();
    assert!(junit_text.contains("secrets-catch-fires") && junit_text.contains("<failure"));
    for (what, code, out, err) in &plugin_runs {
        assert_eq!(*code, Some(0), "{what} must pass on the seed's pod");
        assert!(
            *out > 0 && *err > 0,
            "{what} printed nothing (stdout {out}, stderr {err})"
        );
    }
    assert!(
        !walk.allowed.is_empty(),
        "the operator's gcloud credential file was not found among the scanned dirs"
    );
    let unexpected: Vec<String> = sockets
        .sockets
        .iter()
        .filter(|s| !s.allowed())
        .map(|s| format!("{} {}:{} ({})", s.protocol, s.address, s.port, s.process))
        .collect();
    assert!(
        unexpected.is_empty(),
        "sockets beyond loopback and the pod bridge's {}:\n{}",
        pod_host_ip(),
        unexpected.join("\n")
    );
    assert!(
        sockets
            .sockets
            .iter()
            .any(|s| s.address == IpAddr::from(pod_host_ip())),
        "nothing listens on the bridge: the socket listing is broken"
    );
}

/// Finds each secret exactly, and token and key shapes, in what it is given.
struct Scanner {
    secrets: Vec<IssuedSecret>,
    exact: AhoCorasick,
    shapes: Vec<(&'static str, Regex)>,
    generic: Regex,
    findings: Vec<String>,
    places: usize,
    bytes: u64,
}

impl Scanner {
    fn new(secrets: Vec<IssuedSecret>) -> Self {
        let exact = AhoCorasick::new(secrets.iter().map(|s| s.value().as_bytes()))
            .expect("an automaton of the secrets");
        let shapes = [
            ("a JWT", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
            ("an AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
            ("a Google access token", r"ya29\.[A-Za-z0-9_-]{16,}"),
            ("a Google client secret", r"GOCSPX-[A-Za-z0-9_-]{16,}"),
            ("a Google refresh token", r"1//[A-Za-z0-9_-]{16,}"),
        ]
        .into_iter()
        .map(|(what, pattern)| (what, Regex::new(pattern).unwrap()))
        .collect();
        Self {
            secrets,
            exact,
            shapes,
            // Without '+': at -vvvvv kube's request lines quote the exec URL, whose encoded
            // script joins words with '+'. Standard-base64 secrets are all issued here, and
            // found exactly above.
            generic: Regex::new(r"[A-Za-z0-9=_-]{40,}").unwrap(),
            findings: Vec::new(),
            places: 0,
            bytes: 0,
        }
    }

    fn scan(&mut self, place: &str, bytes: &[u8], shapes: bool, generic: bool) {
        self.places += 1;
        self.bytes += bytes.len() as u64;
        for m in self.exact.find_iter(bytes) {
            self.findings.push(format!(
                "{:?} in {place} at byte {}",
                self.secrets[m.pattern().as_usize()].kind,
                m.start()
            ));
        }
        if shapes {
            for (what, shape) in &self.shapes {
                if let Some(m) = shape.find(bytes) {
                    self.findings.push(format!(
                        "{what}-shaped string in {place} at byte {}",
                        m.start()
                    ));
                }
            }
        }
        // Random secrets mix cases and digits; digests (lowercase hex) and hyphenated names
        // do not.
        let mixed = |s: &[u8]| {
            s.iter().any(u8::is_ascii_uppercase)
                && s.iter().any(u8::is_ascii_lowercase)
                && s.iter().any(u8::is_ascii_digit)
        };
        if generic && let Some(m) = self.generic.find_iter(bytes).find(|m| mixed(m.as_bytes())) {
            // Its shape only (A, a, 9 for letters and digits): enough to tell what it is.
            let shape: String = m
                .as_bytes()
                .iter()
                .map(|b| match b {
                    b'A'..=b'Z' => 'A',
                    b'a'..=b'z' => 'a',
                    b'0'..=b'9' => '9',
                    other => char::from(*other),
                })
                .collect();
            self.findings.push(format!(
                "a secret-shaped string {shape:?} in {place} at byte {}",
                m.start()
            ));
        }
    }
}

#[derive(Default)]
struct Walk {
    files: usize,
    mount_points: usize,
    allowed: Vec<String>,
}

impl Walk {
    /// Every regular file under `root`, not entering other filesystems and not following links.
    fn files(&mut self, root: &Path, scanner: &mut Scanner) {
        let Ok(root_meta) = std::fs::symlink_metadata(root) else {
            return;
        };
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.dev() != root_meta.dev() {
                    self.mount_points += 1;
                } else if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    self.file(&path, &meta, scanner);
                }
            }
        }
    }

    fn file(&mut self, path: &Path, meta: &std::fs::Metadata, scanner: &mut Scanner) {
        let shown = path.display().to_string();
        if meta.permissions().mode() & 0o777 == 0o600
            && ALLOWED_CREDENTIAL_FILES
                .iter()
                .any(|(name, _)| shown.contains(name))
        {
            self.allowed.push(shown);
            return;
        }
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        self.files += 1;
        let shapes = !UPSTREAM_CONTENT.iter().any(|(dir, _)| shown.contains(dir));
        scanner.scan(&shown, &bytes, shapes, false);
    }
}

struct Socket {
    protocol: &'static str,
    address: IpAddr,
    port: u16,
    process: String,
}

impl Socket {
    fn allowed(&self) -> bool {
        let bridge = IpAddr::from(pod_host_ip());
        let address = match self.address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(self.address, IpAddr::from),
            v4 => v4,
        };
        if address == IpAddr::from(Ipv4Addr::LOCALHOST)
            || address == IpAddr::from(Ipv6Addr::LOCALHOST)
            || address == bridge
        {
            return true;
        }
        address.is_unspecified()
            && ALLOWED_WILDCARD_LISTENERS
                .iter()
                .any(|(name, port, _)| self.process.starts_with(name) && *port == self.port)
    }
}

struct Sockets {
    sockets: Vec<Socket>,
    processes: usize,
    other_namespace: usize,
}

/// Listening TCP and bound UDP sockets of this process, its descendants and `extra` pids in
/// this network namespace (processes in pods' namespaces are counted, not listed: their
/// addresses are not the host's).
fn listening_sockets(extra: &[u32]) -> Sockets {
    let mut parents: HashMap<u32, u32> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after the last ')'.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    let me = std::process::id();
    let mut ours: BTreeSet<u32> = extra.iter().copied().collect();
    ours.insert(me);
    loop {
        let more: Vec<u32> = parents
            .iter()
            .filter(|(pid, ppid)| ours.contains(ppid) && !ours.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        ours.extend(more);
    }
    let my_namespace = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut inode_owner: HashMap<u64, String> = HashMap::new();
    let mut processes = 0;
    let mut other_namespace = 0;
    for pid in &ours {
        match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            Ok(ns) if ns == my_namespace => processes += 1,
            Ok(_) => {
                other_namespace += 1;
                continue;
            }
            Err(_) => continue, // gone
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
            {
                inode_owner.insert(inode, format!("{comm} (pid {pid})"));
            }
        }
    }
    let mut sockets = Vec::new();
    for (file, protocol, listening) in [
        ("tcp", "tcp", "0A"),
        ("tcp6", "tcp", "0A"),
        ("udp", "udp", "07"),
        ("udp6", "udp", "07"),
    ] {
        let table = std::fs::read_to_string(format!("/proc/self/net/{file}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != listening {
                continue;
            }
            let Ok(inode) = fields[9].parse::<u64>() else {
                continue;
            };
            let Some(process) = inode_owner.get(&inode) else {
                continue;
            };
            let (address, port) = parse_address(fields[1]);
            sockets.push(Socket {
                protocol,
                address,
                port,
                process: process.clone(),
            });
        }
    }
    sockets.sort_by(|a, b| (a.protocol, a.port, &a.process).cmp(&(b.protocol, b.port, &b.process)));
    Sockets {
        sockets,
        processes,
        other_namespace,
    }
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host byte order.
fn parse_address(field: &str) -> (IpAddr, u16) {
    let (hex, port) = field.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).unwrap())
        .collect();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let address = match bytes.len() {
        4 => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
        _ => IpAddr::from(<[u8; 16]>::try_from(bytes.as_slice()).unwrap()),
    };
    (address, port)
}

#[test]
fn reads_proc_net_addresses() {
    assert_eq!(
        parse_address("0100007F:1F90"),
        (IpAddr::from([127, 0, 0, 1]), 8080)
    );
    assert_eq!(
        parse_address("00000000000000000000000001000000:0035"),
        (IpAddr::from(Ipv6Addr::LOCALHOST), 53)
    );
    let wildcard = Socket {
        protocol: "tcp",
        address: IpAddr::from([0, 0, 0, 0]),
        port: 8080,
        process: "moto_server (pid 1)".to_owned(),
    };
    assert!(!wildcard.allowed());
    let apiserver = Socket {
        process: "kube-apiserver (pid 2)".to_owned(),
        port: APISERVER_PORT,
        ..wildcard
    };
    assert!(apiserver.allowed());
}
