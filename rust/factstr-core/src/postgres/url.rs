//! Connection URLs: libpq's `sslmode`/`sslrootcert` (which the driver does not know in full),
//! and a form of the URL that is safe to show (no password).

use crate::error::{Error, Result};

/// libpq's TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS if the server offers it, without verifying the certificate (libpq's default).
    Prefer,
    /// TLS, without verifying the certificate.
    Require,
    /// TLS, with a certificate signed by a trusted root, for any host name.
    VerifyCa,
    /// TLS, with a certificate signed by a trusted root, for this host name.
    VerifyFull,
}

pub struct ParsedUrl {
    /// The URL as the driver takes it (our TLS parameters taken out).
    pub driver_url: String,
    pub ssl_mode: SslMode,
    pub root_cert: Option<String>,
    /// The URL without its password, for messages and `repr`.
    pub redacted: String,
    pub password: Option<String>,
}

pub fn parse(url: &str) -> Result<ParsedUrl> {
    let redacted = redact(url);
    let bad = |why: &str| Error::InvalidInput(format!("invalid PostgreSQL URL {redacted}: {why}"));
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| bad("it must start with postgresql:// or postgres://"))?;
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, query),
        None => (rest, ""),
    };
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                ssl_mode = match value {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(bad(&format!("unknown sslmode {other:?}"))),
                };
            }
            "sslrootcert" => root_cert = Some(percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    // The driver knows disable/prefer/require; we verify certificates ourselves.
    kept.push(match ssl_mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        _ => "sslmode=require",
    });
    let scheme = if url.starts_with("postgres://") { "postgres://" } else { "postgresql://" };
    let driver_url = format!("{scheme}{base}?{}", kept.join("&"));
    Ok(ParsedUrl { driver_url, ssl_mode, root_cert, redacted, password: password_of(url) })
}

fn userinfo_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

fn password_of(url: &str) -> Option<String> {
    let (start, at) = userinfo_span(url)?;
    let (_, password) = url[start..at].split_once(':')?;
    Some(percent_decode(password))
}

/// The URL with any password (in the user part or as a `password=` parameter) replaced.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((start, at)) = userinfo_span(url) {
        if let Some(colon) = url[start..at].find(':') {
            out = format!("{}:***{}", &url[..start + colon], &url[at..]);
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let params: Vec<String> = query
            .split('&')
            .map(|p| if p.starts_with("password=") { "password=***".to_owned() } else { p.to_owned() })
            .collect();
        out = format!("{base}?{}", params.join("&"));
    }
    out
}

/// The URL with its database (path) replaced by `database`, parameters kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Removes a secret from a message that may quote it.
pub fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(secret) if !secret.is_empty() => message.replace(secret, "***"),
        _ => message.to_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_ours_and_passwords_never_shown() {
        let parsed = parse("postgresql://u:s3cret@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x").unwrap();
        assert_eq!(parsed.ssl_mode, SslMode::VerifyFull);
        assert_eq!(parsed.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(parsed.driver_url, "postgresql://u:s3cret@h:5432/db?application_name=x&sslmode=require");
        assert_eq!(parsed.redacted, "postgresql://u:***@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x");
        assert_eq!(parsed.password.as_deref(), Some("s3cret"));
        assert_eq!(redact("postgres://h/db?password=pw&x=1"), "postgres://h/db?password=***&x=1");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(parse("postgres://h/db").unwrap().ssl_mode, SslMode::Prefer);
        assert!(parse("mysql://h").is_err());
        assert_eq!(scrub("bad s3cret here", Some("s3cret")), "bad *** here");
        assert_eq!(with_database("postgres://u:p@h:1/postgres?sslmode=require", "x"), "postgres://u:p@h:1/x?sslmode=require");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
