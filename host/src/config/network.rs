//! A remote provider's `network:` block (OGX 1.5.0's `NetworkConfig`,
//! `src/ogx/providers/utils/inference/network_config.py`), read for the host's outbound HTTP
//! client of that provider ([`crate::imports::http::ClientOptions`]):
//!
//! - `timeout: <seconds>` bounds each exchange (ogx's total time per upstream call, the
//!   meaning ogx gives the OpenAI SDK's timeout) and the connection; `timeout: {connect,
//!   read}` sets them apart;
//! - `headers: {name: value}` are sent on every request unless the plugin sets the same header;
//! - `tls.verify: false` turns certificate checks off; `tls.verify: <path>` trusts that PEM
//!   file's certificates as well (the file must exist, as in OGX).
//!
//! `tls.min_version`, `tls.ciphers`, `tls.client_cert`/`client_key`, `proxy` and `limits` are
//! read but not applied: each is named in a warning. A value of the wrong type fails with the
//! key path and the fix, as OGX's validation fails.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::fields::{Invalid, Section, type_name};

/// How to check an upstream's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsVerify {
    /// The system's roots (plus `SSL_CERT_FILE`): the default.
    #[default]
    System,
    /// No check (`tls.verify: false`).
    Off,
    /// The system's roots and this PEM file's certificates.
    CaFile(PathBuf),
}

/// What of `network:` the host applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkSettings {
    pub connect_timeout: Option<Duration>,
    pub total_timeout: Option<Duration>,
    pub headers: Vec<(String, String)>,
    pub verify: TlsVerify,
}

const NETWORK_KEYS: &[&str] = &["tls", "proxy", "timeout", "headers", "limits"];
const TLS_KEYS: &[&str] = &[
    "verify",
    "min_version",
    "ciphers",
    "client_cert",
    "client_key",
];

/// Reads `config.network` of the provider at `key` (e.g. `providers.inference[0].config`);
/// appends a warning per setting it does not apply.
pub fn parse(
    provider_config: &Value,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<NetworkSettings, Invalid> {
    let path = format!("{key}.network");
    let Some(n) = Section::of(provider_config.get("network"), &path)? else {
        return Ok(NetworkSettings::default());
    };
    n.warn_unknown(NETWORK_KEYS, warnings);
    let mut settings = NetworkSettings::default();
    for unapplied in ["proxy", "limits"] {
        if n.get(unapplied).is_some_and(|v| !v.is_null()) {
            warnings.push(format!(
                "'{}' is not applied by ogx yet: the provider connects directly with ogx's own pool",
                n.key(unapplied)
            ));
        }
    }
    match n.get("timeout") {
        None | Some(Value::Null) => {}
        Some(Value::Object(_)) => {
            let timeout_key = n.key("timeout");
            let t = Section::of(n.get("timeout"), &timeout_key)?.expect("an object");
            t.warn_unknown(&["connect", "read"], warnings);
            settings.connect_timeout = seconds(&t, "connect")?;
            settings.total_timeout = seconds(&t, "read")?;
        }
        Some(_) => {
            let all = seconds(&n, "timeout")?;
            settings.connect_timeout = all;
            settings.total_timeout = all;
        }
    }
    let headers_key = n.key("headers");
    if let Some(h) = Section::of(n.get("headers"), &headers_key)? {
        for (name, value) in h.map {
            let Value::String(value) = value else {
                return Err(Invalid::new(
                    h.key(name),
                    format!("expected text, found {}", type_name(value)),
                    "Write each header as `Name: value` text.",
                ));
            };
            settings.headers.push((name.clone(), value.clone()));
        }
    }
    let tls_key = n.key("tls");
    if let Some(tls) = Section::of(n.get("tls"), &tls_key)? {
        tls.warn_unknown(TLS_KEYS, warnings);
        for unapplied in ["min_version", "ciphers", "client_cert", "client_key"] {
            if tls.get(unapplied).is_some_and(|v| !v.is_null()) {
                warnings.push(format!(
                    "'{}' is not applied by ogx yet: rustls's defaults are used",
                    tls.key(unapplied)
                ));
            }
        }
        settings.verify = match tls.get("verify") {
            None | Some(Value::Null) => TlsVerify::System,
            Some(Value::String(text)) if !is_boolean_text(text) => {
                let file = PathBuf::from(text);
                if !file.is_file() {
                    return Err(Invalid::new(
                        tls.key("verify"),
                        format!("TLS certificate file does not exist: {text}"),
                        "Give the path of a PEM file of CA certificates, or true / false.",
                    ));
                }
                TlsVerify::CaFile(file)
            }
            Some(_) => match tls.bool("verify")? {
                Some(false) => TlsVerify::Off,
                _ => TlsVerify::System,
            },
        };
    }
    Ok(settings)
}

fn is_boolean_text(text: &str) -> bool {
    matches!(
        text.to_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | "t" | "f" | "y" | "n"
    )
}

/// A positive number of seconds at `key`.
pub(crate) fn seconds(s: &Section<'_>, key: &str) -> Result<Option<Duration>, Invalid> {
    let value = match s.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if v.is_finite() && v > 0.0 => Ok(Some(Duration::from_secs_f64(v))),
        _ => Err(Invalid::new(
            s.key(key),
            format!(
                "expected a positive number of seconds, found {}",
                s.get(key).map_or_else(String::new, |v| v.to_string())
            ),
            "Write seconds, e.g. `timeout: 30` or `timeout: {connect: 5, read: 60}`.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(network: Value) -> (Result<NetworkSettings, String>, Vec<String>) {
        let mut warnings = Vec::new();
        let result = parse(
            &json!({ "network": network }),
            "providers.inference[0].config",
            &mut warnings,
        )
        .map_err(|i| format!("{}: {} {}", i.key, i.problem, i.fix));
        (result, warnings)
    }

    #[test]
    fn applied_settings() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let ca_path = ca.path().to_str().unwrap().to_string();
        let cases = [
            (json!(null), NetworkSettings::default()),
            (
                json!({"timeout": 30}),
                NetworkSettings {
                    connect_timeout: Some(Duration::from_secs(30)),
                    total_timeout: Some(Duration::from_secs(30)),
                    ..Default::default()
                },
            ),
            (
                json!({"timeout": {"connect": 2.5, "read": "60"}}),
                NetworkSettings {
                    connect_timeout: Some(Duration::from_millis(2500)),
                    total_timeout: Some(Duration::from_secs(60)),
                    ..Default::default()
                },
            ),
            (
                json!({"headers": {"X-Team": "a"}, "tls": {"verify": false}}),
                NetworkSettings {
                    headers: vec![("X-Team".into(), "a".into())],
                    verify: TlsVerify::Off,
                    ..Default::default()
                },
            ),
            // `${env.VLLM_TLS_VERIFY:=true}` after substitution, and the text form.
            (json!({"tls": {"verify": true}}), NetworkSettings::default()),
            (
                json!({"tls": {"verify": "false"}}),
                NetworkSettings {
                    verify: TlsVerify::Off,
                    ..Default::default()
                },
            ),
            (
                json!({"tls": {"verify": ca_path.clone()}}),
                NetworkSettings {
                    verify: TlsVerify::CaFile(ca_path.clone().into()),
                    ..Default::default()
                },
            ),
        ];
        for (network, expected) in cases {
            let (result, warnings) = read(network.clone());
            assert_eq!(result.unwrap(), expected, "{network}");
            assert!(warnings.is_empty(), "{network}: {warnings:?}");
        }
    }

    #[test]
    fn unapplied_settings_are_named_and_bad_values_refused() {
        let (result, warnings) = read(
            json!({"proxy": {"url": "http://p:8080"}, "limits": {"max_connections": 5},
            "tls": {"min_version": "TLSv1.3"}}),
        );
        assert!(result.is_ok());
        let named: Vec<&str> = warnings
            .iter()
            .map(|w| w.split('\'').nth(1).unwrap())
            .collect();
        assert_eq!(
            named,
            [
                "providers.inference[0].config.network.proxy",
                "providers.inference[0].config.network.limits",
                "providers.inference[0].config.network.tls.min_version"
            ]
        );
        let errors = [
            (
                json!({"timeout": -1}),
                "providers.inference[0].config.network.timeout: expected a positive number",
            ),
            (
                json!({"timeout": {"read": "soon"}}),
                "network.timeout.read: expected a positive number",
            ),
            (
                json!({"headers": {"X": 1}}),
                "network.headers.X: expected text",
            ),
            (
                json!({"tls": {"verify": "/no/such/ca.pem"}}),
                "TLS certificate file does not exist: /no/such/ca.pem",
            ),
            (json!({"tls": "yes"}), "network.tls"),
        ];
        for (network, part) in errors {
            let (result, _) = read(network.clone());
            let error = result.unwrap_err();
            assert!(error.contains(part), "{network}: {error}");
        }
    }
}
