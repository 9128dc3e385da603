//! Name resolution as the pod's libc or Go resolver does it, without NSS: a static glibc
//! binary's `getaddrinfo` would load NSS modules the probe's image does not have. `/etc/hosts`
//! first, then A queries over UDP to the `nameserver`s of `/etc/resolv.conf`, with its
//! `search` list and `ndots` (Kubernetes writes `ndots:5`: `sts.amazonaws.com` is first tried
//! as `sts.amazonaws.com.<ns>.svc.cluster.local`, …).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Resolver {
    pub hosts: Vec<(String, IpAddr)>,
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("{name} does not resolve: no nameserver in /etc/resolv.conf and not in /etc/hosts")]
    NoNameserver { name: String },
    #[error("{name} does not resolve (resolver {resolver}: {answer})")]
    NotFound {
        name: String,
        resolver: String,
        answer: String,
    },
    #[error("{name}: the resolver {resolver} did not answer")]
    NoAnswer { name: String, resolver: String },
}

impl Resolver {
    /// The pod's own configuration (the kubelet writes both files into every container).
    pub fn system() -> Resolver {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Resolver::from_files(&hosts, &conf)
    }

    pub fn from_files(hosts: &str, resolv_conf: &str) -> Resolver {
        let mut r = Resolver {
            hosts: parse_hosts(hosts),
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for line in resolv_conf.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && r.nameservers.len() < 3
                    {
                        r.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") | Some("domain") => {
                    r.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for option in words {
                        let (key, value) = option.split_once(':').unwrap_or((option, ""));
                        let n = value.parse::<u64>().ok();
                        match (key, n) {
                            ("ndots", Some(n)) => r.ndots = n.min(15) as usize,
                            ("timeout", Some(n)) => r.timeout = Duration::from_secs(n.clamp(1, 30)),
                            ("attempts", Some(n)) => r.attempts = n.clamp(1, 5) as usize,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// The names tried for `name`, in order.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|s| format!("{name}.{s}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_string())).collect()
        }
    }

    /// The addresses of `name` (an IP literal is its own address), bounded by `deadline`.
    pub fn resolve(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let wanted = name.trim_end_matches('.').to_ascii_lowercase();
        let from_hosts: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(h, _)| *h == wanted)
            .map(|(_, ip)| *ip)
            .collect();
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        if self.nameservers.is_empty() {
            return Err(DnsError::NoNameserver { name: name.into() });
        }
        let resolver = self
            .nameservers
            .iter()
            .map(|s| s.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut answered = None;
        for candidate in self.candidates(name) {
            match self.query_all(&candidate, deadline) {
                Some(Answer::Addresses(ips)) => return Ok(ips),
                Some(other) => answered = Some(other),
                None => {}
            }
        }
        match answered {
            Some(answer) => Err(DnsError::NotFound {
                name: name.into(),
                resolver,
                answer: answer.describe(),
            }),
            None => Err(DnsError::NoAnswer {
                name: name.into(),
                resolver,
            }),
        }
    }

    /// Each nameserver in turn, `attempts` rounds; None when none answered.
    fn query_all(&self, name: &str, deadline: Instant) -> Option<Answer> {
        for _ in 0..self.attempts {
            for server in &self.nameservers {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                if let Some(answer) = query(*server, name, self.timeout.min(left)) {
                    return Some(answer);
                }
            }
        }
        None
    }
}

fn parse_hosts(text: &str) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            out.push((name.trim_end_matches('.').to_ascii_lowercase(), ip));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN, or no A record (NODATA), or another response code.
    Negative(u8),
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Addresses(_) => "addresses".into(),
            Answer::Negative(0) => "no A record".into(),
            Answer::Negative(2) => "SERVFAIL".into(),
            Answer::Negative(3) => "NXDOMAIN".into(),
            Answer::Negative(5) => "REFUSED".into(),
            Answer::Negative(code) => format!("response code {code}"),
        }
    }
}

/// One A query over UDP; None when the server did not answer in time.
pub fn query(server: SocketAddr, name: &str, timeout: Duration) -> Option<Answer> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(server).ok()?;
    let id = query_id();
    let packet = encode_query(id, name)?;
    socket.send(&packet).ok()?;
    let started = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.checked_sub(started.elapsed())?;
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = socket.recv(&mut buf).ok()?;
        // A late answer to another query, or a spoof: keep waiting for ours.
        if let Some(answer) = decode_answer(id, &buf[..n]) {
            return Some(answer);
        }
    }
}

fn query_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ (std::process::id() << 7)) as u16
}

pub fn encode_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    Some(p)
}

/// The A records of an answer to query `id`; None when the packet is not that answer.
pub fn decode_answer(id: u16, packet: &[u8]) -> Option<Answer> {
    if packet.len() < 12 || u16::from_be_bytes([packet[0], packet[1]]) != id {
        return None;
    }
    if packet[2] & 0x80 == 0 {
        return None; // not a response
    }
    let rcode = packet[3] & 0x0f;
    let questions = u16::from_be_bytes([packet[4], packet[5]]);
    let answers = u16::from_be_bytes([packet[6], packet[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..answers {
        at = skip_name(packet, at)?;
        let fixed = packet.get(at..at + 10)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = packet.get(at + 10..at + 10 + len)?;
        if kind == 1 && class == 1 && len == 4 {
            ips.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            )));
        }
        at += 10 + len;
    }
    Some(if rcode == 0 && !ips.is_empty() {
        Answer::Addresses(ips)
    } else {
        Answer::Negative(rcode)
    })
}

fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBE_RESOLV: &str = "search ns1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5 timeout:1\n";

    #[test]
    fn kubernetes_resolv_conf_tries_the_search_list_first() {
        let r = Resolver::from_files(
            "127.0.0.1 localhost\n10.1.2.3 sts.amazonaws.com # alias\n",
            KUBE_RESOLV,
        );
        assert_eq!(r.ndots, 5);
        assert_eq!(r.timeout, Duration::from_secs(1));
        let c = r.candidates("sts.amazonaws.com");
        assert_eq!(
            c.first().unwrap(),
            "sts.amazonaws.com.ns1.svc.cluster.local"
        );
        assert_eq!(c.last().unwrap(), "sts.amazonaws.com");
        assert_eq!(
            r.candidates("sts.amazonaws.com."),
            vec!["sts.amazonaws.com"]
        );
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            r.resolve("STS.amazonaws.com", deadline).unwrap(),
            vec![IpAddr::from([10, 1, 2, 3])]
        );
        assert_eq!(
            r.resolve("169.254.169.254", deadline).unwrap(),
            vec![IpAddr::from([169, 254, 169, 254])]
        );
    }

    /// A DNS server on a loopback port: answers `found.test` with an A record, NXDOMAIN else.
    fn fake_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 512];
            for _ in 0..4 {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    return;
                };
                let q = &buf[..n];
                let qend = skip_name(q, 12).unwrap() + 4;
                let found = q[12..qend].windows(5).any(|w| w == b"found");
                let mut a = q[..qend].to_vec();
                a[2] = 0x81;
                a[3] = if found { 0x80 } else { 0x83 };
                a[6..8].copy_from_slice(&[0, u8::from(found)]);
                if found {
                    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7]);
                }
                socket.send_to(&a, from).unwrap();
            }
        });
        (addr, handle)
    }

    #[test]
    fn queries_a_nameserver_and_names_nxdomain() {
        let (server, handle) = fake_server();
        let mut r = Resolver::from_files("", "options ndots:1\n");
        r.nameservers = vec![server];
        r.attempts = 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            r.resolve("found.test", deadline).unwrap(),
            vec![IpAddr::from([10, 9, 8, 7])]
        );
        let err = r.resolve("missing.test", deadline).unwrap_err();
        assert!(err.to_string().contains("NXDOMAIN"), "{err}");
        drop(handle);
    }

    #[test]
    fn a_silent_resolver_is_named() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = Resolver::from_files("", "");
        r.nameservers = vec![silent.local_addr().unwrap()];
        r.timeout = Duration::from_millis(200);
        r.attempts = 1;
        let err = r
            .resolve("x.test", Instant::now() + Duration::from_secs(2))
            .unwrap_err();
        assert!(matches!(err, DnsError::NoAnswer { .. }), "{err}");
        let none = Resolver::from_files("", "");
        assert!(matches!(
            none.resolve("x.test", Instant::now()).unwrap_err(),
            DnsError::NoNameserver { .. }
        ));
    }
}
