//! The pod's own network path to a cloud endpoint. A call made from inside the pod either got
//! an HTTP answer (the mechanism reads it), or failed; a failure becomes a check that names the
//! cause (DNS, refused, no route, timeout, TLS, proxy) and its fix. When the pod's path could
//! not be used at all (no shell, no client), the evidence comes from this machine instead and
//! says so.

use crate::endpoints::{self, proxy::ProxyChoice, proxy::ProxyClient};
use crate::evidence::RuntimeEnv;
use crate::model::Check;
use crate::pod_session::{CallFailure, PodCall};

/// The proxy the pod's client sends `url` through, from the pod's own environment (curl's
/// rules: the image's client made the call), with why; None when it goes direct.
pub fn proxy_for(env: &RuntimeEnv, url: &str) -> Option<String> {
    let lookup = |name: &str| env.get(name).map(str::to_string);
    match endpoints::proxy::proxy_for(&lookup, url, ProxyClient::Curl) {
        Ok(ProxyChoice::Via { proxy_url, because }) => Some(format!("{proxy_url} ({because})")),
        Ok(ProxyChoice::Direct { .. }) | Err(_) => None,
    }
}

/// What a mechanism calls the endpoint in messages ("STS", "Entra"), and its check id.
pub struct Endpoint<'a> {
    pub check_id: &'static str,
    pub service: &'a str,
    /// Why the pod's SDK calls this URL ("AWS_REGION=us-east-1, regional endpoint").
    pub because: &'a str,
}

/// A failed call from inside the pod, as a failing check with the cause and its fix.
pub fn failure_check(
    endpoint: &Endpoint<'_>,
    call: &PodCall,
    env: &RuntimeEnv,
    failure: &CallFailure,
) -> Check {
    let host = call.host();
    let proxy = proxy_for(env, &call.url);
    let via = proxy
        .as_deref()
        .map(|p| format!(" through the proxy {p}"))
        .unwrap_or_default();
    let head = format!(
        "the pod cannot reach {} at {}{via} ({})",
        endpoint.service, call.url, endpoint.because
    );
    let (cause, fix) = match failure {
        CallFailure::Dns { detail } => (
            format!("DNS: {host} does not resolve in the pod ({detail})"),
            format!("check the pod's resolver (/etc/resolv.conf, the cluster DNS and a NetworkPolicy allowing egress to it on port 53) and the variable naming {host}"),
        ),
        CallFailure::Refused { detail } if proxy.is_some() => (
            format!("proxy: the proxy refused the connection ({detail})"),
            format!("fix the proxy, or add {host} to NO_PROXY"),
        ),
        CallFailure::Refused { detail } => (
            format!("connection refused ({detail})"),
            format!("nothing listens at {host} as seen from the pod: check the endpoint variable and any VPC endpoint or firewall in between"),
        ),
        CallFailure::NoRoute { detail } => (
            format!("no route to {host} ({detail})"),
            "give the pod's subnet a route to the endpoint (NAT gateway, VPC endpoint)".to_string(),
        ),
        CallFailure::Timeout { after } if proxy.is_some() => (
            format!("proxy: no answer through the proxy within {}s", after.as_secs()),
            format!("fix the proxy, or add {host} to NO_PROXY"),
        ),
        CallFailure::Timeout { after } => (
            format!("timeout: no answer within {}s — egress from the pod to {host} is dropped", after.as_secs()),
            format!("allow egress from the pod to {host}:443 (security group, firewall, NetworkPolicy, a NAT gateway for private subnets), or use an endpoint the pod can reach"),
        ),
        CallFailure::TlsUntrusted { detail } => (
            format!("TLS: the pod does not trust {host}'s certificate ({detail})"),
            "add the CA that signed the endpoint's certificate (a TLS-inspecting proxy's, a private endpoint's) to the image's bundle, or point AWS_CA_BUNDLE / SSL_CERT_FILE / REQUESTS_CA_BUNDLE at it".to_string(),
        ),
        CallFailure::TlsName { detail } => (
            format!("TLS: the certificate does not name {host} ({detail})"),
            "call the endpoint by the name its certificate carries".to_string(),
        ),
        CallFailure::Tls { detail } => (
            format!("TLS: {detail}"),
            "check the endpoint speaks HTTPS and the image's TLS library".to_string(),
        ),
        CallFailure::Proxy { detail } => (
            format!("proxy: {detail}"),
            format!("fix the proxy, or add {host} to NO_PROXY"),
        ),
        other => (other.to_string(), "see the cause".to_string()),
    };
    Check::fail(endpoint.check_id, format!("{head}: {cause}"), fix)
}

/// The pod's own path was not usable: the reason, for the warning on evidence from this machine.
pub fn unusable(failure: &CallFailure) -> Option<String> {
    match failure {
        CallFailure::NoClient => {
            Some("the image has no curl, wget or python3 to call from inside the pod".into())
        }
        CallFailure::SessionBroken(why) => Some(format!("the exec in the pod ended ({why})")),
        CallFailure::TlsNotJudged => Some(
            "the pod reaches the endpoint over TCP, but its only client, busybox wget, cannot make or verify the TLS exchange".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(vars: &str) -> RuntimeEnv {
        RuntimeEnv::parse(vars.as_bytes())
    }

    #[test]
    fn the_pods_proxy_settings_decide() {
        let e = env("HTTPS_PROXY=http://proxy:3128\nNO_PROXY=.internal,169.254.170.23\n");
        assert!(proxy_for(&e, "https://sts.amazonaws.com/").is_some());
        assert!(proxy_for(&e, "https://x.internal/").is_none());
        assert!(proxy_for(&e, "http://169.254.170.23/v1/credentials").is_none());
        let e = env("http_proxy=http://proxy:3128\n");
        let via = proxy_for(&e, "http://169.254.170.23/v1/credentials").unwrap();
        assert!(via.contains("NO_PROXY"), "{via}");
    }

    #[test]
    fn a_timeout_through_a_proxy_is_named_as_the_proxy() {
        let e = env("HTTPS_PROXY=http://proxy:3128\n");
        let call = PodCall::get("https://sts.amazonaws.com/", Duration::from_secs(5));
        let check = failure_check(
            &Endpoint {
                check_id: "aws.sts.reachable",
                service: "STS",
                because: "no region",
            },
            &call,
            &e,
            &CallFailure::Timeout {
                after: Duration::from_secs(5),
            },
        );
        assert!(
            check.message.contains("proxy: no answer"),
            "{}",
            check.message
        );
        assert!(check.remediation.as_deref().unwrap().contains("NO_PROXY"));
    }
}
