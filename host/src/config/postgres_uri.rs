//! OGX 1.5.0's `connection_string` on `kv_postgres` / `sql_postgres` backends: a
//! `postgres://` or `postgresql://` URI read into the same fields as `host`, `port`, `db`,
//! `user`, `password`, and its `sslmode` / `sslrootcert` query parameters into `ssl_mode` /
//! `ca_cert_path`.
//!
//! OGX's rules, each refused with the key and the fix: the scheme must be `postgres://` or
//! `postgresql://`; the URI excludes `host`, `port`, `db`, `user` and `password` on the same
//! backend; TLS may not be set both in the URI and in `ssl_mode` / `ca_cert_path`. The URI's
//! password never appears in a message.

use super::fields::{Invalid, Section};

/// The parts of a connection string.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostgresUri {
    pub host: Option<String>,
    pub port: Option<String>,
    pub db: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ssl_mode: Option<String>,
    pub ca_cert_path: Option<String>,
}

/// The fields a connection string replaces.
const EXCLUSIVE: &[&str] = &["host", "port", "db", "user", "password"];

/// Reads `connection_string` of the backend section `s`, if present, checking OGX's rules.
pub fn read(s: &Section<'_>) -> Result<Option<PostgresUri>, Invalid> {
    let Some(text) = s.string("connection_string")? else {
        return Ok(None);
    };
    let key = s.key("connection_string");
    if let Some(both) = EXCLUSIVE
        .iter()
        .find(|k| s.get(k).is_some_and(|v| !v.is_null()))
    {
        return Err(Invalid::new(
            &key,
            format!("connection_string cannot be combined with '{both}'"),
            format!(
                "Remove `{both}` (the connection string already says it), or remove connection_string."
            ),
        ));
    }
    let uri = parse(&text).map_err(|problem| {
        Invalid::new(
            &key,
            problem,
            "Write it as postgresql://user:password@host:port/database (e.g. `${env.POSTGRES_CONNECTION_STRING}`).",
        )
    })?;
    for (uri_part, field) in [
        (&uri.ssl_mode, "ssl_mode"),
        (&uri.ca_cert_path, "ca_cert_path"),
    ] {
        if uri_part.is_some() && s.get(field).is_some_and(|v| !v.is_null()) {
            return Err(Invalid::new(
                &key,
                format!("TLS is set both in connection_string and in '{field}'"),
                format!("Keep one: remove `{field}`, or its parameter from the connection string."),
            ));
        }
    }
    Ok(Some(uri))
}

/// Splits a URI; the error never repeats the password.
fn parse(text: &str) -> Result<PostgresUri, String> {
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .ok_or("connection_string must start with postgres:// or postgresql://")?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut uri = PostgresUri::default();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        uri.user = Some(decode(user)?).filter(|u| !u.is_empty());
        uri.password = password.map(decode).transpose()?;
    }
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or("an IPv6 host lacks its closing ']'")?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    uri.host = Some(decode(host)?).filter(|h| !h.is_empty());
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("its port {port:?} is not a port number (1-65535)"));
        }
        uri.port = Some(port.to_string());
    }
    uri.db = Some(decode(db)?).filter(|d| !d.is_empty());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "sslmode" => uri.ssl_mode = Some(value.into_owned()),
            "sslrootcert" => uri.ca_cert_path = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(uri)
}

/// Percent-decoding of one URI component (`+` stays `+`).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("it has a '%' not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a percent-encoded part is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_split_like_libpq() {
        let full =
            |h: &str, p: Option<&str>, d: Option<&str>, u: Option<&str>, pw: Option<&str>| {
                PostgresUri {
                    host: Some(h.into()),
                    port: p.map(Into::into),
                    db: d.map(Into::into),
                    user: u.map(Into::into),
                    password: pw.map(Into::into),
                    ..Default::default()
                }
            };
        let cases = [
            (
                "postgresql://ogx:ogx@localhost:5432/ogx",
                full(
                    "localhost",
                    Some("5432"),
                    Some("ogx"),
                    Some("ogx"),
                    Some("ogx"),
                ),
            ),
            (
                "postgres://u%40x:p%3Aw+d@db.internal/app",
                full("db.internal", None, Some("app"), Some("u@x"), Some("p:w+d")),
            ),
            (
                "postgresql://[::1]:6543/x",
                full("::1", Some("6543"), Some("x"), None, None),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), expected, "{text}");
        }
        let tls = parse("postgresql://h/d?sslmode=verify-full&sslrootcert=%2Fca.pem").unwrap();
        assert_eq!(
            (tls.ssl_mode.as_deref(), tls.ca_cert_path.as_deref()),
            (Some("verify-full"), Some("/ca.pem"))
        );
        for bad in [
            "mysql://u:secret@h/d",
            "postgresql://u:secret@h:99999/d",
            "postgresql://u:sec%zzret@h/d",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
