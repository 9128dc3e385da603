//! The parts of an http(s) URL the probe needs. User info (a proxy's credentials) is dropped.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an http(s) URL with a host")]
pub struct UrlError(pub String);

impl Url {
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let bad = || UrlError(text.to_string());
        let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(bad()),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None => default_port,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Url {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// `host` or `host:port` when the port is not the scheme's default (the Host header).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }

    pub fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_endpoints_produce() {
        let u = Url::parse("https://sts.us-east-1.amazonaws.com").unwrap();
        assert_eq!((u.https, u.port, u.path.as_str()), (true, 443, "/"));
        assert_eq!(u.authority(), "sts.us-east-1.amazonaws.com");
        let u = Url::parse("http://user:pw@proxy.corp:3128").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("proxy.corp", 3128));
        let u = Url::parse("http://169.254.169.254/latest/api/token?x=1").unwrap();
        assert_eq!((u.path_only(), u.query()), ("/latest/api/token", "x=1"));
        let u = Url::parse("https://[fd00::1]:8443/x").unwrap();
        assert_eq!(u.authority(), "[fd00::1]:8443");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("https:///x").is_err());
    }
}
