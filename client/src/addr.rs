//! Where a Ferrogram server lives: host, port, plain HTTP or TLS, and an optional
//! extra CA certificate for self-hosted servers with their own CA.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Port assumed when an address names none (the server's default in config.yaml).
pub const DEFAULT_PORT: u16 = 8080;

/// The address of a Ferrogram server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// DNS name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Speak HTTPS (rustls) instead of plain HTTP.
    pub tls: bool,
    /// A PEM file with extra CA certificates to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
}

/// Why a server address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server address {input:?}: {reason}")]
pub struct AddrParseError {
    pub input: String,
    pub reason: &'static str,
}

impl ServerAddr {
    /// A plain-HTTP address.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: false,
            ca_file: None,
        }
    }

    /// The same address over TLS.
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The same address, trusting the CA certificates in `path` as well.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Parses `host:port`, `host`, `[v6]:port`, `http://host:port/` or
    /// `https://host:port/`. Without a scheme the address is plain HTTP; without
    /// a port it is [`DEFAULT_PORT`] (443 for `https://` without a port).
    pub fn parse(input: &str) -> Result<Self, AddrParseError> {
        let fail = |reason| AddrParseError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
            (false, rest)
        } else if text.contains("://") {
            return Err(fail("the scheme must be http:// or https://"));
        } else {
            (false, text)
        };
        // Nothing but an optional trailing slash may follow the authority.
        let authority = match rest.find('/') {
            Some(i) if rest[i..] == *"/" => &rest[..i],
            Some(_) => return Err(fail("a server address has no path")),
            None => rest,
        };
        if authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(fail("only host and port are allowed"));
        }
        let default_port = if tls && text.contains("://") {
            443
        } else {
            DEFAULT_PORT
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| fail("unclosed '['"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(
                    p.strip_prefix(':')
                        .ok_or_else(|| fail("expected ':' after ']'"))?,
                )
                .ok_or_else(|| fail("the port must be a number from 1 to 65535"))?,
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(fail("not an IPv6 address inside [...]"));
            }
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(fail("write IPv6 addresses as [addr]:port"))
                }
                Some((host, p)) => (
                    host.to_owned(),
                    parse_port(p)
                        .ok_or_else(|| fail("the port must be a number from 1 to 65535"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(fail("the host is empty"));
        }
        if !host.contains(':')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(fail(
                "the host may contain only letters, digits, '.', '-' and '_'",
            ));
        }
        Ok(Self {
            host,
            port,
            tls,
            ca_file: None,
        })
    }

    /// `http://host:port` or `https://host:port`, IPv6 hosts in brackets, no
    /// trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Port 0 is refused: a client cannot connect to it.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

impl FromStr for ServerAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

impl From<std::net::SocketAddr> for ServerAddr {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self::new(addr.ip().to_string(), addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        let a = ServerAddr::parse("example.org:9000").unwrap();
        assert_eq!(a, ServerAddr::new("example.org", 9000));
        assert_eq!(a.base_url(), "http://example.org:9000");
        assert_eq!(a.to_string(), "http://example.org:9000");
    }

    #[test]
    fn bare_host_gets_the_default_port() {
        let a = ServerAddr::parse(" localhost ").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("localhost", DEFAULT_PORT, false)
        );
    }

    #[test]
    fn urls() {
        let a = ServerAddr::parse("https://chat.example.org/").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("chat.example.org", 443, true)
        );
        let b = ServerAddr::parse("HTTP://127.0.0.1:8080").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 8080, false));
        let c = ServerAddr::parse("https://10.0.0.1:8443").unwrap();
        assert_eq!(c.base_url(), "https://10.0.0.1:8443");
    }

    #[test]
    fn ipv6() {
        let a = ServerAddr::parse("[::1]:7000").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 7000));
        assert_eq!(a.base_url(), "http://[::1]:7000");
        let b = ServerAddr::parse("https://[2001:db8::2]").unwrap();
        assert_eq!(b.base_url(), "https://[2001:db8::2]:443");
        let from_socket: ServerAddr = "[::1]:9".parse::<std::net::SocketAddr>().unwrap().into();
        assert_eq!(from_socket, ServerAddr::new("::1", 9));
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            ":80",
            "host:",
            "host:0",
            "host:65536",
            "host:http",
            "host:-1",
            "ftp://host:21",
            "http://host:80/api",
            "user@host:80",
            "::1",
            "[::1",
            "[::1]x",
            "[nothex]:80",
            "ho st:80",
            "host:80?x",
        ] {
            let err = ServerAddr::parse(bad).unwrap_err();
            assert_eq!(err.input, bad);
            assert!(
                err.to_string().contains("invalid server address"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn builders() {
        let a = ServerAddr::new("h", 1)
            .with_tls(true)
            .with_ca_file("/tmp/ca.pem");
        assert!(a.tls);
        assert_eq!(
            a.ca_file.as_deref(),
            Some(std::path::Path::new("/tmp/ca.pem"))
        );
        assert_eq!(a.base_url(), "https://h:1");
    }
}
