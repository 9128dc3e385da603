//! The HTTP proxy a client would use for a URL, from the proxy variables and NO_PROXY, as three
//! implementations read them: curl (libcurl), Go's `net/http` (`golang.org/x/net/http/httpproxy`,
//! used by the Go SDKs) and Python's `urllib` (used by botocore). They differ: which variable
//! names count, whether lower or upper case wins, CIDR and port entries, and `*`. A node-local
//! address (instance metadata, the Pod Identity agent) sent to a proxy is the classic failure:
//! the reason then says NO_PROXY lacks it. Proxy credentials never appear in the output.
//! Sources: `docs/sdk-endpoints.md`.

use std::net::IpAddr;

use super::{Env, non_empty};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyClient {
    /// curl and libcurl (and so PHP, git, … built on it).
    Curl,
    /// Go's `http.ProxyFromEnvironment` (AWS SDK for Go v2, azidentity, Google's Go libraries).
    Go,
    /// Python's `urllib.request.getproxies` / `proxy_bypass` (botocore, boto3, AWS CLI).
    PythonUrllib,
}

impl ProxyClient {
    fn label(self) -> &'static str {
        match self {
            ProxyClient::Curl => "curl",
            ProxyClient::Go => "Go",
            ProxyClient::PythonUrllib => "Python urllib",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    Direct {
        because: String,
    },
    /// `proxy_url` has any user:password replaced by `***`.
    Via {
        proxy_url: String,
        because: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{0:?} is not an http(s) URL with a host")]
    InvalidUrl(String),
}

/// The proxy `client` would use to reach `url` with this environment.
pub fn proxy_for(env: Env<'_>, url: &str, client: ProxyClient) -> Result<ProxyChoice, ProxyError> {
    let target = Target::parse(url)?;
    let who = client.label();
    if client == ProxyClient::Go && target.is_localhost_or_loopback() {
        return Ok(ProxyChoice::Direct {
            because: format!("{who} never proxies localhost or loopback addresses"),
        });
    }
    let Some((proxy_var, proxy)) = proxy_var(env, client, &target) else {
        return Ok(ProxyChoice::Direct {
            because: format!(
                "no proxy variable for {} is set ({who} reads {})",
                target.scheme,
                proxy_names(client, target.scheme).join(", ")
            ),
        });
    };
    let no_proxy = no_proxy_var(env, client);
    if let Some((name, value)) = &no_proxy
        && let Some(entry) = bypass_entry(client, value, &target)
    {
        return Ok(ProxyChoice::Direct {
            because: format!(
                "{name} entry {entry:?} matches {}, so {who} does not use {proxy_var}",
                target.host
            ),
        });
    }
    let proxy_url = redact(&proxy);
    let mut because = match &no_proxy {
        Some((name, value)) => format!(
            "{proxy_var}={proxy_url} and {name}={value:?} has no entry matching {}",
            target.host
        ),
        None => format!("{proxy_var}={proxy_url} and NO_PROXY is unset"),
    };
    if let Some(note) = unsupported_entry_note(client, no_proxy.as_ref(), &target) {
        because.push_str(&format!(" ({note})"));
    }
    if target.is_node_local() {
        because.push_str(&format!(
            ": {} is a node-local address (instance metadata or the Pod Identity agent) that no proxy can reach; add {} to NO_PROXY",
            target.host, target.host
        ));
    }
    Ok(ProxyChoice::Via { proxy_url, because })
}

struct Target {
    scheme: &'static str,
    /// Lower case, IPv6 without brackets, no trailing dot.
    host: String,
    ip: Option<IpAddr>,
    explicit_port: Option<u16>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, ProxyError> {
        let invalid = || ProxyError::InvalidUrl(url.to_string());
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        let scheme = match uri.scheme_str() {
            Some("https") => "https",
            Some("http") => "http",
            _ => return Err(invalid()),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(invalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        Ok(Target {
            scheme,
            ip: host.parse().ok(),
            host,
            explicit_port: uri.port_u16(),
        })
    }

    fn port(&self) -> u16 {
        self.explicit_port
            .unwrap_or(if self.scheme == "https" { 443 } else { 80 })
    }

    fn is_localhost_or_loopback(&self) -> bool {
        self.host == "localhost" || self.ip.is_some_and(|ip| ip.is_loopback())
    }

    /// Link-local addresses and the names that resolve to them: IMDS 169.254.169.254, the EKS
    /// Pod Identity agent 169.254.170.23, their IPv6 twins, the GKE metadata server name.
    fn is_node_local(&self) -> bool {
        match self.ip {
            Some(IpAddr::V4(v4)) => v4.is_link_local(),
            Some(IpAddr::V6(v6)) => {
                (v6.segments()[0] & 0xffc0) == 0xfe80
                    || ["fd00:ec2::254", "fd00:ec2::23"]
                        .iter()
                        .any(|a| a.parse() == Ok(IpAddr::V6(v6)))
            }
            None => self.host == "metadata.google.internal",
        }
    }
}

fn proxy_names(client: ProxyClient, scheme: &str) -> &'static [&'static str] {
    match (client, scheme) {
        (ProxyClient::Curl, "https") => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        // curl ignores upper-case HTTP_PROXY (it can be set by a CGI request header).
        (ProxyClient::Curl, _) => &["http_proxy", "all_proxy", "ALL_PROXY"],
        (ProxyClient::Go, "https") => &["HTTPS_PROXY", "https_proxy"],
        (ProxyClient::Go, _) => &["HTTP_PROXY", "http_proxy"],
        (ProxyClient::PythonUrllib, "https") => &["https_proxy", "HTTPS_PROXY"],
        (ProxyClient::PythonUrllib, _) => &["http_proxy", "HTTP_PROXY"],
    }
}

fn proxy_var(env: Env<'_>, client: ProxyClient, target: &Target) -> Option<(&'static str, String)> {
    let names = proxy_names(client, target.scheme);
    let cgi = non_empty(env, "REQUEST_METHOD").is_some();
    match client {
        ProxyClient::Curl => super::first_set(env, names),
        // Under CGI, Go refuses HTTP_PROXY for http URLs.
        ProxyClient::Go if cgi && target.scheme == "http" => None,
        ProxyClient::Go => super::first_set(env, names),
        ProxyClient::PythonUrllib => {
            python_var(env, names[0], names[1], cgi && target.scheme == "http")
        }
    }
}

/// urllib: a lower-case variable wins, and a lower-case one set to "" removes the value.
fn python_var(
    env: Env<'_>,
    lower: &'static str,
    upper: &'static str,
    drop_upper: bool,
) -> Option<(&'static str, String)> {
    match env(lower) {
        Some(v) if v.is_empty() => None,
        Some(v) => Some((lower, v)),
        None if drop_upper => None,
        None => non_empty(env, upper).map(|v| (upper, v)),
    }
}

fn no_proxy_var(env: Env<'_>, client: ProxyClient) -> Option<(&'static str, String)> {
    match client {
        ProxyClient::Curl => super::first_set(env, &["no_proxy", "NO_PROXY"]),
        ProxyClient::Go => super::first_set(env, &["NO_PROXY", "no_proxy"]),
        ProxyClient::PythonUrllib => python_var(env, "no_proxy", "NO_PROXY", false),
    }
}

/// The NO_PROXY entry that sends `target` direct, if any.
fn bypass_entry(client: ProxyClient, no_proxy: &str, target: &Target) -> Option<String> {
    match client {
        ProxyClient::Curl => curl_entry(no_proxy, target),
        ProxyClient::Go => go_entry(no_proxy, target),
        ProxyClient::PythonUrllib => python_entry(no_proxy, target),
    }
}

/// libcurl `Curl_check_noproxy`: `*` only as the whole value; entries split on commas and
/// blanks; for an IP host, entries are IPs or CIDRs; for a name, one leading and trailing dot
/// are ignored and the entry matches the name or a suffix on a label boundary. No ports.
fn curl_entry(no_proxy: &str, target: &Target) -> Option<String> {
    if no_proxy.trim() == "*" {
        return Some("*".into());
    }
    let tokens = no_proxy.split([',', ' ', '\t']).filter(|t| !t.is_empty());
    for token in tokens {
        let matched = match target.ip {
            Some(ip) => {
                let (addr, bits) = match token.split_once('/') {
                    Some((a, b)) => (a, b.parse::<u8>().ok()),
                    None => (token, None),
                };
                match addr.parse::<IpAddr>() {
                    Ok(net) => ip_in(ip, net, bits.filter(|b| *b != 0)),
                    Err(_) => false,
                }
            }
            None => {
                let t = token.trim_end_matches('.');
                let t = t.strip_prefix('.').unwrap_or(t).to_ascii_lowercase();
                !t.is_empty() && label_suffix(&target.host, &t)
            }
        };
        if matched {
            return Some(token.to_string());
        }
    }
    None
}

/// `httpproxy`: `*` anywhere; CIDR; IP or name with an optional port; a name matches itself and
/// its subdomains, `.name` and `*.name` only subdomains.
fn go_entry(no_proxy: &str, target: &Target) -> Option<String> {
    let port = target.port().to_string();
    for raw in no_proxy.split(',') {
        let p = raw.trim().to_ascii_lowercase();
        if p.is_empty() {
            continue;
        }
        if p == "*" {
            return Some(p);
        }
        if let Some((net, bits)) = parse_cidr(&p) {
            if target.ip.is_some_and(|ip| ip_in(ip, net, Some(bits))) {
                return Some(p);
            }
            continue;
        }
        let (host, entry_port) = split_host_port(&p);
        let port_ok = entry_port.is_none_or(|ep| ep == port);
        if let Ok(entry_ip) = host.parse::<IpAddr>() {
            if target.ip == Some(entry_ip) && port_ok {
                return Some(p);
            }
            continue;
        }
        let host = host.strip_prefix('*').unwrap_or(host);
        let (suffix, match_host) = match host.strip_prefix('.') {
            Some(_) => (host.to_string(), false),
            None => (format!(".{host}"), true),
        };
        if port_ok && (target.host.ends_with(&suffix) || (match_host && target.host == suffix[1..]))
        {
            return Some(p);
        }
    }
    None
}

/// `urllib.request.proxy_bypass_environment`: `*` only as the whole value; leading dots
/// ignored; the entry matches the host (or `host:port` as written in the URL) or a suffix on a
/// label boundary. IP addresses are compared as text: no CIDR.
fn python_entry(no_proxy: &str, target: &Target) -> Option<String> {
    if no_proxy == "*" {
        return Some("*".into());
    }
    let with_port = target.explicit_port.map(|p| format!("{}:{p}", target.host));
    for raw in no_proxy.split(',') {
        let name = raw.trim().trim_start_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let dotted = format!(".{name}");
        let hit = |h: &str| h == name || h.ends_with(&dotted);
        if hit(&target.host) || with_port.as_deref().is_some_and(hit) {
            return Some(raw.trim().to_string());
        }
    }
    None
}

/// When NO_PROXY has an entry another client would honour for this target but this one does
/// not (a CIDR for urllib, a host:port for curl).
fn unsupported_entry_note(
    client: ProxyClient,
    no_proxy: Option<&(&'static str, String)>,
    target: &Target,
) -> Option<String> {
    let (name, value) = no_proxy?;
    match client {
        ProxyClient::PythonUrllib => {
            let ip = target.ip?;
            value.split(',').map(str::trim).find_map(|e| {
                let (net, bits) = parse_cidr(e)?;
                ip_in(ip, net, Some(bits)).then(|| {
                    format!("{name} has {e:?}, but Python urllib reads no CIDR entries: list the address itself")
                })
            })
        }
        ProxyClient::Curl => go_entry(value, target)
            .filter(|e| split_host_port(e).1.is_some())
            .map(|e| format!("{name} has {e:?}, but curl matches no host:port entries")),
        ProxyClient::Go => None,
    }
}

fn label_suffix(host: &str, entry: &str) -> bool {
    host == entry
        || (host.len() > entry.len()
            && host.ends_with(entry)
            && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Whether `ip` is in `net/bits`; `None` bits compares the whole address.
fn ip_in(ip: IpAddr, net: IpAddr, bits: Option<u8>) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = u32::from(bits.unwrap_or(32));
            if bits > 32 {
                return false;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = u32::from(bits.unwrap_or(128));
            if bits > 128 {
                return false;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

/// `host:port`, `[v6]:port`, or a bare host (a bare IPv6 address has more than one colon).
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host, after.strip_prefix(':'));
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (s, None),
    }
}

/// The proxy URL with any `user:password@` replaced by `***@`.
fn redact(proxy: &str) -> String {
    let (scheme, rest) = match proxy.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, proxy),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let redacted = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{redacted}"),
        None => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_env::env;

    const IMDS: &str = "http://169.254.169.254/latest/api/token";
    const AGENT: &str = "http://169.254.170.23/v1/credentials";
    const STS: &str = "https://sts.us-east-1.amazonaws.com/";
    const ALL: [ProxyClient; 3] = [
        ProxyClient::Curl,
        ProxyClient::Go,
        ProxyClient::PythonUrllib,
    ];

    fn https_no(no: &str) -> [(&'static str, &str); 4] {
        [
            ("HTTPS_PROXY", "http://p:1"),
            ("https_proxy", "http://p:1"),
            ("NO_PROXY", no),
            ("no_proxy", no),
        ]
    }

    fn http_no(no: &str) -> [(&'static str, &str); 4] {
        [
            ("HTTP_PROXY", "http://p:1"),
            ("http_proxy", "http://p:1"),
            ("NO_PROXY", no),
            ("no_proxy", no),
        ]
    }

    fn choice(pairs: &[(&str, &str)], url: &str, client: ProxyClient) -> ProxyChoice {
        proxy_for(&env(pairs), url, client).unwrap()
    }

    fn is_direct(pairs: &[(&str, &str)], url: &str, client: ProxyClient) -> bool {
        matches!(choice(pairs, url, client), ProxyChoice::Direct { .. })
    }

    #[test]
    fn no_proxy_variables_means_direct() {
        for client in ALL {
            let ProxyChoice::Direct { because } = choice(&[], STS, client) else {
                panic!("{client:?} proxied");
            };
            assert!(because.contains("no proxy variable for https"), "{because}");
        }
    }

    #[test]
    fn https_proxy_applies_to_https_only() {
        let pairs = [("HTTPS_PROXY", "http://proxy:3128")];
        for client in ALL {
            let ProxyChoice::Via { proxy_url, because } = choice(&pairs, STS, client) else {
                panic!("{client:?} went direct");
            };
            assert_eq!(proxy_url, "http://proxy:3128");
            assert!(because.contains("NO_PROXY is unset"), "{because}");
            assert!(is_direct(&pairs, IMDS, client), "{client:?}");
        }
    }

    #[test]
    fn metadata_through_a_proxy_names_the_missing_no_proxy_entry() {
        let pairs = [
            ("HTTP_PROXY", "http://proxy:3128"),
            ("http_proxy", "http://proxy:3128"),
            ("NO_PROXY", ".svc,.cluster.local"),
            ("no_proxy", ".svc,.cluster.local"),
        ];
        for client in ALL {
            for url in [IMDS, AGENT] {
                let ProxyChoice::Via { because, .. } = choice(&pairs, url, client) else {
                    panic!("{client:?} went direct for {url}");
                };
                assert!(
                    because.contains("has no entry matching 169.254.1"),
                    "{because}"
                );
                assert!(because.contains("node-local address"), "{because}");
                assert!(because.contains("to NO_PROXY"), "{because}");
            }
        }
    }

    #[test]
    fn upper_case_http_proxy_is_ignored_by_curl_only() {
        let pairs = [("HTTP_PROXY", "http://proxy:3128")];
        assert!(is_direct(&pairs, IMDS, ProxyClient::Curl));
        assert!(!is_direct(&pairs, IMDS, ProxyClient::Go));
        assert!(!is_direct(&pairs, IMDS, ProxyClient::PythonUrllib));
    }

    #[test]
    fn all_proxy_is_read_by_curl_only() {
        let pairs = [("ALL_PROXY", "socks5://proxy:1080")];
        assert!(!is_direct(&pairs, STS, ProxyClient::Curl));
        assert!(is_direct(&pairs, STS, ProxyClient::Go));
        assert!(is_direct(&pairs, STS, ProxyClient::PythonUrllib));
    }

    #[test]
    fn case_precedence_differs() {
        let pairs = [
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
        ];
        let via = |c| match choice(&pairs, STS, c) {
            ProxyChoice::Via { proxy_url, .. } => proxy_url,
            d => panic!("{d:?}"),
        };
        assert_eq!(via(ProxyClient::Curl), "http://lower:2");
        assert_eq!(via(ProxyClient::Go), "http://upper:1");
        assert_eq!(via(ProxyClient::PythonUrllib), "http://lower:2");
        // urllib: an empty lower-case variable removes the proxy.
        let emptied = [("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "")];
        assert!(is_direct(&emptied, STS, ProxyClient::PythonUrllib));
        assert!(!is_direct(&emptied, STS, ProxyClient::Go));
    }

    #[test]
    fn cgi_drops_http_proxy_in_go_and_python() {
        let pairs = [
            ("HTTP_PROXY", "http://proxy:3128"),
            ("REQUEST_METHOD", "GET"),
        ];
        assert!(is_direct(&pairs, IMDS, ProxyClient::Go));
        assert!(is_direct(&pairs, IMDS, ProxyClient::PythonUrllib));
    }

    #[test]
    fn exact_host_leading_dot_and_label_boundary() {
        let with = https_no;
        for client in ALL {
            assert!(is_direct(&with("amazonaws.com"), STS, client), "{client:?}");
            assert!(
                is_direct(&with("sts.us-east-1.amazonaws.com"), STS, client),
                "{client:?}"
            );
            assert!(!is_direct(&with("azonaws.com"), STS, client), "{client:?}");
            assert!(
                !is_direct(&with("other.com, example.org"), STS, client),
                "{client:?}"
            );
            assert!(
                is_direct(&with("other.com, .amazonaws.com"), STS, client),
                "{client:?}"
            );
        }
        // A leading dot: curl and urllib still match the name itself, Go only subdomains.
        let apex = "https://amazonaws.com/";
        assert!(is_direct(&with(".amazonaws.com"), apex, ProxyClient::Curl));
        assert!(is_direct(
            &with(".amazonaws.com"),
            apex,
            ProxyClient::PythonUrllib
        ));
        assert!(!is_direct(&with(".amazonaws.com"), apex, ProxyClient::Go));
    }

    #[test]
    fn asterisk() {
        let whole = [
            ("HTTP_PROXY", "http://p:1"),
            ("http_proxy", "http://p:1"),
            ("NO_PROXY", "*"),
            ("no_proxy", "*"),
        ];
        for client in ALL {
            assert!(is_direct(&whole, IMDS, client), "{client:?}");
        }
        // Only Go honours `*` inside a list.
        let listed = [
            ("HTTP_PROXY", "http://p:1"),
            ("http_proxy", "http://p:1"),
            ("NO_PROXY", "a.com,*"),
            ("no_proxy", "a.com,*"),
        ];
        assert!(is_direct(&listed, IMDS, ProxyClient::Go));
        assert!(!is_direct(&listed, IMDS, ProxyClient::Curl));
        assert!(!is_direct(&listed, IMDS, ProxyClient::PythonUrllib));
    }

    #[test]
    fn ip_and_cidr_entries() {
        let with = http_no;
        for client in ALL {
            assert!(
                is_direct(&with("169.254.169.254"), IMDS, client),
                "{client:?}"
            );
            assert!(
                !is_direct(&with("169.254.169.25"), IMDS, client),
                "{client:?}"
            );
        }
        // CIDR: curl (7.86+) and Go, not urllib — and the reason says so.
        assert!(is_direct(&with("169.254.0.0/16"), IMDS, ProxyClient::Curl));
        assert!(is_direct(&with("169.254.0.0/16"), AGENT, ProxyClient::Go));
        let ProxyChoice::Via { because, .. } =
            choice(&with("169.254.0.0/16"), IMDS, ProxyClient::PythonUrllib)
        else {
            panic!("urllib honoured a CIDR");
        };
        assert!(because.contains("reads no CIDR entries"), "{because}");
        assert!(!is_direct(&with("10.0.0.0/8"), IMDS, ProxyClient::Go));
    }

    #[test]
    fn port_entries() {
        let with = http_no;
        // Go compares the port (the scheme's default when the URL has none).
        assert!(is_direct(
            &with("169.254.169.254:80"),
            IMDS,
            ProxyClient::Go
        ));
        assert!(!is_direct(
            &with("169.254.169.254:8080"),
            IMDS,
            ProxyClient::Go
        ));
        // urllib matches host:port only against a port written in the URL.
        assert!(!is_direct(
            &with("169.254.169.254:80"),
            IMDS,
            ProxyClient::PythonUrllib
        ));
        assert!(is_direct(
            &with("169.254.169.254:80"),
            "http://169.254.169.254:80/",
            ProxyClient::PythonUrllib
        ));
        // curl has no port entries, and the reason says so.
        let ProxyChoice::Via { because, .. } =
            choice(&with("169.254.169.254:80"), IMDS, ProxyClient::Curl)
        else {
            panic!("curl honoured a port entry");
        };
        assert!(because.contains("no host:port entries"), "{because}");
    }

    #[test]
    fn go_never_proxies_loopback() {
        let pairs = [("HTTP_PROXY", "http://p:1"), ("http_proxy", "http://p:1")];
        assert!(is_direct(&pairs, "http://127.0.0.1:8080/", ProxyClient::Go));
        assert!(is_direct(&pairs, "http://localhost/", ProxyClient::Go));
        assert!(!is_direct(&pairs, "http://localhost/", ProxyClient::Curl));
    }

    #[test]
    fn proxy_credentials_are_redacted() {
        let pairs = [
            ("HTTPS_PROXY", "http://user:s3cret@proxy:3128"),
            ("https_proxy", "http://user:s3cret@proxy:3128"),
        ];
        for client in ALL {
            let ProxyChoice::Via { proxy_url, because } = choice(&pairs, STS, client) else {
                panic!("direct");
            };
            assert_eq!(proxy_url, "http://***@proxy:3128");
            assert!(
                !because.contains("s3cret") && !because.contains("user"),
                "{because}"
            );
        }
        assert_eq!(redact("proxy:3128"), "proxy:3128");
    }

    #[test]
    fn bad_urls_are_errors() {
        assert!(proxy_for(&env(&[]), "169.254.169.254", ProxyClient::Go).is_err());
        assert!(proxy_for(&env(&[]), "ftp://x/", ProxyClient::Curl).is_err());
    }
}
