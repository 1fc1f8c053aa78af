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
    // Anything but a URL whose user part is unambiguous is refused without quoting it: where
    // its password is cannot be known (SPEC §7: passwords never appear in messages).
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return Err(Error::InvalidInput(
            "invalid PostgreSQL URL: it must start with postgresql:// or postgres:// (a key=value connection string \
             is not supported; the text is not shown, as it may hold a password)"
                .to_owned(),
        ));
    };
    check_user_part(rest)?;
    let redacted = redact(url);
    let bad = |why: &str| Error::InvalidInput(format!("invalid PostgreSQL URL {redacted}: {why}"));
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
    let scheme = if url.starts_with("postgres://") {
        "postgres://"
    } else {
        "postgresql://"
    };
    let driver_url = format!("{scheme}{base}?{}", kept.join("&"));
    Ok(ParsedUrl {
        driver_url,
        ssl_mode,
        root_cert,
        redacted,
        password: password_of(url),
    })
}

/// The driver reads the user part up to the first `@` anywhere in the URL, while a URL's user
/// part ends at the first `/` or `?`. Unless the URL has at most one `@`, before the first `/`
/// or `?` (an unencoded `@`, `/` or `?` in a password, an `@` in a parameter), the password
/// cannot be told apart from the rest, so the URL is refused without being quoted.
fn check_user_part(rest: &str) -> Result<()> {
    let Some(first_at) = rest.find('@') else {
        return Ok(());
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    // A second `@` anywhere may be the end of a password that holds `/`, `?` or `@`.
    if first_at > authority_end || rest.matches('@').count() > 1 {
        return Err(Error::InvalidInput(
            "invalid PostgreSQL URL: write '@', '/' and '?' in a user name or password as %40, %2F and %3F, \
             and '@' in the database name or a parameter as %40 (the URL is not shown, as it may hold a password)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// The byte range of the user part (`user:password`), before its `@`.
fn userinfo_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].find('@')? + start;
    Some((start, at))
}

/// Whether a parameter name (as the driver decodes it) carries a secret.
fn is_secret_key(raw_key: &str) -> bool {
    percent_decode(raw_key)
        .to_ascii_lowercase()
        .contains("password")
}

/// The password the driver will use: a `password` parameter overrides the user part's.
fn password_of(url: &str) -> Option<String> {
    let from_params = url.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .rfind(|(k, _)| percent_decode(k) == "password")
    });
    if let Some((_, value)) = from_params {
        return Some(percent_decode(value));
    }
    let (start, at) = userinfo_span(url)?;
    let (_, password) = url[start..at].split_once(':')?;
    Some(percent_decode(password))
}

/// The URL with any password (in the user part or in a parameter whose name holds
/// "password", however it is percent-encoded) replaced.
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
            .map(|p| match p.split_once('=') {
                Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
                _ => p.to_owned(),
            })
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
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
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
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
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
        assert_eq!(
            parsed.driver_url,
            "postgresql://u:s3cret@h:5432/db?application_name=x&sslmode=require"
        );
        assert_eq!(parsed.redacted, "postgresql://u:***@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x");
        assert_eq!(parsed.password.as_deref(), Some("s3cret"));
        assert_eq!(
            redact("postgres://h/db?password=pw&x=1"),
            "postgres://h/db?password=***&x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(parse("postgres://h/db").unwrap().ssl_mode, SslMode::Prefer);
        assert!(parse("mysql://h").is_err());
        assert_eq!(scrub("bad s3cret here", Some("s3cret")), "bad *** here");
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?sslmode=require", "x"),
            "postgres://u:p@h:1/x?sslmode=require"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    fn message_of(url: &str) -> String {
        match parse(url) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_form_of_url_shows_its_password() {
        // Not a URL: a key=value string is never quoted.
        for text in [
            "host=h password=S3cret user=u",
            "host=h password='a S3cret b' user=u",
            "postgresql:/u:S3cret@h/db",
        ] {
            let message = message_of(text);
            assert!(!message.contains("S3cret"), "{message}");
        }
        // User parts the driver would read otherwise than a URL parser: refused, not quoted.
        for text in [
            "postgresql://u:pa/S3cret@h/db",
            "postgresql://u:p@S3cret@h/db",
            "postgres://u:S3cret?x@h/db",
            "postgresql://h/db?password=S3cret@x",
            "postgresql://u:a@b/S3cret@h/db",
        ] {
            let message = message_of(text);
            assert!(!message.contains("S3cret"), "{message}");
        }
        // Parameters holding a password, however the name is encoded.
        assert_eq!(
            redact("postgres://h/db?pass%77ord=S3cret&sslpassword=S3cret"),
            "postgres://h/db?pass%77ord=***&sslpassword=***"
        );
        let message = message_of("postgresql://u:S3cret@h/db?sslmode=bogus&password=S3cret");
        assert!(
            !message.contains("S3cret") && message.contains("bogus"),
            "{message}"
        );
        assert_eq!(
            parse("postgresql://u:a%40b@h/db?password=c%20d")
                .unwrap()
                .password
                .as_deref(),
            Some("c d")
        );
        assert_eq!(
            parse("postgresql://u:a%40b@h/db")
                .unwrap()
                .password
                .as_deref(),
            Some("a@b")
        );
    }
}
