//! The endpoints a pod's mechanism must reach, judged against the NetworkPolicies that select
//! the pod (statically: a policy-enforcing plugin drops packets silently, and the local
//! harness's bridge CNI enforces nothing). Live the policies are read from the cluster,
//! offline from the `-f` input. Checks appear only for a pod that some policy isolates for
//! egress (or whose policies could not be read): a pod no policy selects gets no line.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::PodSpec;

use crate::cloud::aws::pod_identity;
use crate::cloud::gcp;
use crate::evidence::{Probe, RuntimeEnv};
use crate::model::{Check, MechanismId};
use crate::network_policy::{
    self, Destination, EgressVerdict, PolicyRead, SourcePod, dns_check, egress_check,
};
use crate::options::VerifyOptions;
use crate::subject::{PodSubject, env_value};

/// One endpoint: what it is (for messages) and where.
struct Target {
    label: String,
    destination: Destination,
}

pub async fn checks(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    mechanism: MechanismId,
    probe: &Probe,
    options: &VerifyOptions,
) -> Vec<Check> {
    let var = |name: &str| -> Option<String> {
        match env {
            Some(env) => env.get(name).map(str::to_string),
            None => spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == pod.container)
                .and_then(|c| env_value(c, name))
                .map(str::to_string),
        }
        .filter(|v| !v.is_empty())
    };
    let targets = targets(mechanism, &var);
    if targets.is_empty() {
        return Vec::new();
    }
    let policies: PolicyRead = match probe {
        Probe::Live { client, .. } => {
            network_policy::list_policies(client, &pod.namespace, &options.answers).await
        }
        Probe::Offline { .. } => match &options.manifest_network_policies {
            Some(manifests) => manifests.read(&pod.namespace),
            // No -f input: nothing to judge.
            None => return Vec::new(),
        },
    };
    let source = SourcePod::of(pod);
    let mut checks = Vec::new();
    let mut names_a_host = false;
    for target in &targets {
        let verdict = network_policy::judge_egress(&source, &policies, &target.destination);
        if matches!(verdict, EgressVerdict::NotIsolated) {
            continue;
        }
        names_a_host |= target.destination.ip.is_none();
        checks.push(egress_check(&target.label, &target.destination, &verdict));
        if matches!(verdict, EgressVerdict::Unreadable { .. }) {
            // One skip says it; the same read would fail for every endpoint.
            return checks;
        }
    }
    if names_a_host {
        let dns = network_policy::judge_dns(
            &source,
            &policies,
            None,
            Some(network_policy::kube_dns_pod(None)),
        );
        checks.push(dns_check(&dns));
    }
    checks
}

fn targets(mechanism: MechanismId, var: &dyn Fn(&str) -> Option<String>) -> Vec<Target> {
    match mechanism {
        MechanismId::AwsIrsa => {
            let lookup = |name: &str| var(name);
            let view = crate::endpoints::aws_sts::pod_view(&lookup);
            let mut endpoints = view.endpoints;
            endpoints.sort_by_key(|(_, families)| std::cmp::Reverse(families.len()));
            endpoints
                .into_iter()
                .take(1)
                .map(|(e, _)| Target {
                    label: format!("STS ({})", e.url),
                    destination: destination(&e.host, e.port),
                })
                .collect()
        }
        MechanismId::AwsPodIdentity => {
            let uri =
                var(pod_identity::ENV_FULL_URI).unwrap_or_else(|| pod_identity::AGENT_URI.into());
            url_target("the EKS Pod Identity Agent", &uri)
                .into_iter()
                .collect()
        }
        MechanismId::AzureWorkloadIdentity => {
            let lookup = |name: &str| var(name);
            match crate::endpoints::azure::authority_host(&lookup) {
                Ok(authority) => url_target("Entra", &authority.host).into_iter().collect(),
                Err(_) => Vec::new(),
            }
        }
        MechanismId::GcpWorkloadIdentity if var(gcp::ENV_CREDENTIALS).is_none() => {
            let host = var(gcp::ENV_METADATA_HOST).unwrap_or_else(|| gcp::METADATA_HOST.into());
            url_target("the GKE metadata server", &format!("http://{host}/"))
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    }
}

fn url_target(what: &str, url: &str) -> Option<Target> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_string();
    let port = parsed.port_or_known_default()?;
    Some(Target {
        label: format!("{what} ({host}:{port})"),
        destination: destination(&host, port),
    })
}

fn destination(host: &str, port: u16) -> Destination {
    match host.parse::<IpAddr>() {
        Ok(ip) => Destination::address(ip, port),
        Err(_) => Destination::host(host, port),
    }
}
