//! Brings the local cluster up, prints how to reach it, keeps it running for the given number
//! of seconds (default: until Ctrl-C), then takes it down.
//!
//! `cargo run -p podiam-e2e --example local_cluster -- [SECONDS]` (as root), then e.g.
//! `kubectl --kubeconfig ~/.cache/podiam/cluster/kubeconfig/admin.kubeconfig get nodes`.

use std::time::{Duration, Instant};

use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: Option<u64> = std::env::args().nth(1).map(|s| s.parse()).transpose()?;
    let started = Instant::now();
    let cluster =
        LocalCluster::up(LocalClusterOptions::new("https://oidc.podiam.test/local")).await?;
    println!("up in {:?}: {:?}", started.elapsed(), cluster.up_timings());
    println!("kubeconfig: {}", cluster.kubeconfig_path().display());
    println!("apiserver:  {}", cluster.api_server_url());
    println!("node ip:    {}", cluster.node_ip());
    println!("logs:       {}", cluster.state_dir().join("logs").display());
    match seconds {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    let started = Instant::now();
    cluster.down()?;
    println!("down in {:?}", started.elapsed());
    Ok(())
}
