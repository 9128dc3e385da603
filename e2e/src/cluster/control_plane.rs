//! The control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
//! each a process with its flags built here.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::Result;
use super::network::SERVICE_CIDR;
use super::pki::Pki;
use super::pod_network::pod_host_ip;
use super::process::{ManagedProcess, ProcessFiles};

pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;
pub const APISERVER_PORT: u16 = 6443;
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
pub const SCHEDULER_PORT: u16 = 10259;

/// What the apiserver is told about service-account tokens.
#[derive(Debug, Clone)]
pub struct ServiceAccountIssuer {
    /// `--service-account-issuer` (an https URL for OIDC discovery to be served).
    pub issuer: String,
    /// `--service-account-jwks-uri`, when the JWKS is published elsewhere.
    pub jwks_uri: Option<String>,
}

pub fn spawn_etcd(binaries: &Path, data_dir: &Path, files: ProcessFiles) -> Result<ManagedProcess> {
    let client = format!("http://127.0.0.1:{ETCD_CLIENT_PORT}");
    let peer = format!("http://127.0.0.1:{ETCD_PEER_PORT}");
    let args = vec![
        "--name=podiam".to_owned(),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=podiam={peer}"),
        "--initial-cluster-state=new".to_owned(),
        "--listen-metrics-urls=".to_owned(),
        "--log-level=warn".to_owned(),
        // A throwaway store: no fsync cost on every write.
        "--unsafe-no-fsync=true".to_owned(),
        "--snapshot-count=100000".to_owned(),
    ];
    ManagedProcess::spawn("etcd", &binaries.join("etcd"), &args, files)
}

pub fn spawn_apiserver(
    binaries: &Path,
    pki: &Pki,
    issuer: &ServiceAccountIssuer,
    extra_args: &[String],
    files: ProcessFiles,
) -> Result<ManagedProcess> {
    let p = |path: &PathBuf| path.display().to_string();
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
        "--bind-address=0.0.0.0".to_owned(),
        format!("--secure-port={APISERVER_PORT}"),
        format!("--advertise-address={}", pod_host_ip()),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        format!("--tls-cert-file={}", p(&pki.apiserver.cert)),
        format!("--tls-private-key-file={}", p(&pki.apiserver.key)),
        format!("--client-ca-file={}", p(&pki.ca.cert)),
        format!("--kubelet-client-certificate={}", p(&pki.apiserver_kubelet_client.cert)),
        format!("--kubelet-client-key={}", p(&pki.apiserver_kubelet_client.key)),
        format!("--kubelet-certificate-authority={}", p(&pki.ca.cert)),
        // The node name does not resolve here; exec and logs go to the InternalIP.
        "--kubelet-preferred-address-types=InternalIP,Hostname".to_owned(),
        format!("--service-account-issuer={}", issuer.issuer),
        format!("--service-account-key-file={}", p(&pki.service_account_public_key)),
        format!("--service-account-signing-key-file={}", p(&pki.service_account_key)),
        "--authorization-mode=Node,RBAC".to_owned(),
        "--enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook".to_owned(),
        "--allow-privileged=true".to_owned(),
        format!("--requestheader-client-ca-file={}", p(&pki.front_proxy_ca.cert)),
        "--requestheader-allowed-names=front-proxy-client".to_owned(),
        "--requestheader-username-headers=X-Remote-User".to_owned(),
        "--requestheader-group-headers=X-Remote-Group".to_owned(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".to_owned(),
        format!("--proxy-client-cert-file={}", p(&pki.front_proxy_client.cert)),
        format!("--proxy-client-key-file={}", p(&pki.front_proxy_client.key)),
        "--profiling=false".to_owned(),
    ];
    if let Some(uri) = &issuer.jwks_uri {
        args.push(format!("--service-account-jwks-uri={uri}"));
    }
    args.extend(extra_args.iter().cloned());
    ManagedProcess::spawn(
        "kube-apiserver",
        &binaries.join("kube-apiserver"),
        &args,
        files,
    )
}

pub fn spawn_controller_manager(
    binaries: &Path,
    pki: &Pki,
    kubeconfig: &Path,
    files: ProcessFiles,
) -> Result<ManagedProcess> {
    let p = |path: &PathBuf| path.display().to_string();
    let kc = kubeconfig.display();
    let args = vec![
        format!("--kubeconfig={kc}"),
        format!("--authentication-kubeconfig={kc}"),
        format!("--authorization-kubeconfig={kc}"),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--secure-port={CONTROLLER_MANAGER_PORT}"),
        format!(
            "--tls-cert-file={}",
            p(&pki.controller_manager_serving.cert)
        ),
        format!(
            "--tls-private-key-file={}",
            p(&pki.controller_manager_serving.key)
        ),
        format!("--client-ca-file={}", p(&pki.ca.cert)),
        format!(
            "--requestheader-client-ca-file={}",
            p(&pki.front_proxy_ca.cert)
        ),
        "--controllers=*".to_owned(),
        "--use-service-account-credentials=true".to_owned(),
        format!(
            "--service-account-private-key-file={}",
            p(&pki.service_account_key)
        ),
        format!("--root-ca-file={}", p(&pki.ca.cert)),
        format!("--cluster-signing-cert-file={}", p(&pki.ca.cert)),
        format!("--cluster-signing-key-file={}", p(&pki.ca.key)),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--allocate-node-cidrs=false".to_owned(),
        "--leader-elect=false".to_owned(),
        "--profiling=false".to_owned(),
    ];
    ManagedProcess::spawn(
        "kube-controller-manager",
        &binaries.join("kube-controller-manager"),
        &args,
        files,
    )
}

pub fn spawn_scheduler(
    binaries: &Path,
    pki: &Pki,
    kubeconfig: &Path,
    files: ProcessFiles,
) -> Result<ManagedProcess> {
    let p = |path: &PathBuf| path.display().to_string();
    let kc = kubeconfig.display();
    let args = vec![
        format!("--kubeconfig={kc}"),
        format!("--authentication-kubeconfig={kc}"),
        format!("--authorization-kubeconfig={kc}"),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--secure-port={SCHEDULER_PORT}"),
        format!("--tls-cert-file={}", p(&pki.scheduler_serving.cert)),
        format!("--tls-private-key-file={}", p(&pki.scheduler_serving.key)),
        format!("--client-ca-file={}", p(&pki.ca.cert)),
        format!(
            "--requestheader-client-ca-file={}",
            p(&pki.front_proxy_ca.cert)
        ),
        "--leader-elect=false".to_owned(),
        "--profiling=false".to_owned(),
    ];
    ManagedProcess::spawn(
        "kube-scheduler",
        &binaries.join("kube-scheduler"),
        &args,
        files,
    )
}

/// Waits until `proc` accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_listening(proc: &mut ManagedProcess, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        proc.ensure_running()?;
        if TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(proc.failure(format!(
                "not listening on 127.0.0.1:{port} after {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
