//! The `server:` section (OGX's `ServerConfig`) and ogx's own `plugins:` section.
//!
//! Fails when a value has the wrong type or range (port 1024–65535, workers ≥ 1, refresh > 0),
//! when only one of `tls_certfile`/`tls_keyfile` is set, when `cors` allows credentials for the
//! wildcard origin, and when `server.quota.kvstore` does not name a kv_* backend. OGX 1.5.0
//! removed `cors` and `quota`; ogx keeps serving them with 0.7's meaning.
//!
//! OGX 1.5.0's `insecure` is read (ogx serves plain HTTP without TLS files either way);
//! `auth` and `tenancy` are kept as written and typed by `auth::config` at start-up;
//! `tls_config`, `hsts_max_age` and `workers` above 1 are warned about by name: ogx has no such
//! behaviour yet.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::{Lookup, expand_user};
use super::fields::{Invalid, Section, type_name};
use super::schema::{
    CorsConfig, DEFAULT_PORT, KvStoreRef, PluginLimits, PluginsConfig, QuotaConfig, ServerConfig,
};
use super::storage::StorageConfig;

const SERVER_KEYS: &[&str] = &[
    "port",
    "host",
    "tls_certfile",
    "tls_keyfile",
    "tls_cafile",
    "auth",
    "quota",
    "cors",
    "workers",
    "registry_refresh_interval_seconds",
    "insecure",
    "tenancy",
    "tls_config",
    "hsts_max_age",
    "metrics",
    "tracing",
];
const QUOTA_KEYS: &[&str] = &[
    "kvstore",
    "anonymous_max_requests",
    "authenticated_max_requests",
    "period",
];
const CORS_KEYS: &[&str] = &[
    "allow_origins",
    "allow_origin_regex",
    "allow_methods",
    "allow_headers",
    "allow_credentials",
    "expose_headers",
    "max_age",
];
const PLUGINS_KEYS: &[&str] = &["dirs", "cache_dir", "limits", "policy"];
const LIMITS_KEYS: &[&str] = &[
    "memory_mb",
    "call_timeout_ms",
    "stream_idle_timeout_ms",
    "max_instances",
];

/// Reads `server:`; `storage` is needed to check the quota's store reference.
pub fn parse_server(
    value: Option<&Value>,
    storage: &StorageConfig,
    warnings: &mut Vec<String>,
) -> Result<ServerConfig, Invalid> {
    let Some(s) = Section::of(value, "server")? else {
        return Ok(ServerConfig::default());
    };
    s.warn_unknown(SERVER_KEYS, warnings);
    let path = |key: &str| s.string(key).map(|p| p.map(PathBuf::from));
    let (tls_certfile, tls_keyfile, tls_cafile) = (
        path("tls_certfile")?,
        path("tls_keyfile")?,
        path("tls_cafile")?,
    );
    if tls_certfile.is_some() != tls_keyfile.is_some() {
        let (set, missing) = if tls_certfile.is_some() {
            ("tls_certfile", "tls_keyfile")
        } else {
            ("tls_keyfile", "tls_certfile")
        };
        return Err(Invalid::new(
            s.key(missing),
            format!(
                "server.{set} is set but server.{missing} is not; HTTPS needs both server.tls_certfile and server.tls_keyfile"
            ),
            format!("Set server.{missing} as well, or remove server.{set} to serve plain HTTP."),
        ));
    }
    if tls_cafile.is_some() && tls_certfile.is_none() {
        warnings.push(
            "'server.tls_cafile' is set but HTTPS is off (server.tls_certfile and server.tls_keyfile are not set); it is ignored"
                .into(),
        );
    }
    warn_unapplied_server_keys(&s, warnings)?;
    Ok(ServerConfig {
        port: s
            .int_in("port", 1024, 65535)?
            .map_or(DEFAULT_PORT, |p| p as u16),
        host: s.string("host")?,
        tls_certfile,
        tls_keyfile,
        tls_cafile,
        workers: s.u32_at_least("workers", 1)?.unwrap_or(1),
        registry_refresh_interval_seconds: s
            .u64_at_least("registry_refresh_interval_seconds", 1)?
            .unwrap_or(300),
        auth: s.get("auth").cloned(),
        quota: parse_quota(&s, storage, warnings)?,
        tenancy: s.get("tenancy").cloned(),
        cors: parse_cors(&s, warnings)?,
        insecure: s.bool("insecure")?.unwrap_or(false),
        metrics: super::metrics::parse_metrics(s.get("metrics"), warnings)?,
        tracing: super::traces::parse_tracing(s.get("tracing"), warnings)?,
    })
}

/// The OGX 1.5.0 `server:` keys ogx has no behaviour for yet, each warned about by name when
/// it asks for something.
fn warn_unapplied_server_keys(s: &Section<'_>, warnings: &mut Vec<String>) -> Result<(), Invalid> {
    if s.get("tls_config").is_some_and(|v| !v.is_null()) {
        warnings.push(format!(
            "'{}' is not supported by ogx yet and is ignored: HTTPS uses rustls's default cipher suites",
            s.key("tls_config")
        ));
    }
    if s.get("hsts_max_age").is_some_and(|v| !v.is_null()) {
        warnings.push(format!(
            "'{}' is not supported by ogx yet and is ignored: no Strict-Transport-Security header is sent",
            s.key("hsts_max_age")
        ));
    }
    if s.u32_at_least("workers", 1)?.is_some_and(|w| w > 1) {
        warnings.push(format!(
            "'{}' is ignored: ogx is one process whose serving threads are set by $OGX_SERVER_THREADS",
            s.key("workers")
        ));
    }
    Ok(())
}

fn parse_quota(
    server: &Section<'_>,
    storage: &StorageConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<QuotaConfig>, Invalid> {
    let path = server.key("quota");
    let Some(q) = Section::of(server.get("quota"), &path)? else {
        return Ok(None);
    };
    q.warn_unknown(QUOTA_KEYS, warnings);
    let kv_path = q.key("kvstore");
    let kv = Section::of(q.get("kvstore"), &kv_path)?.ok_or_else(|| {
        Invalid::new(
            &kv_path,
            "is required but missing",
            "Add `kvstore: {backend: kv_default, namespace: quota}`.",
        )
    })?;
    let kvstore = KvStoreRef {
        backend: kv.required_string(
            "backend",
            "Name one of the kv_* backends under storage.backends.",
        )?,
        namespace: kv.required_string("namespace", "Add a key prefix, e.g. `namespace: quota`.")?,
    };
    storage.check_reference(&kv_path, &kvstore.backend, true)?;
    let period = q.string("period")?.unwrap_or_else(|| "day".into());
    if period != "day" {
        return Err(Invalid::new(
            q.key("period"),
            format!("unknown quota period '{period}'"),
            "Use `period: day`.",
        ));
    }
    Ok(Some(QuotaConfig {
        kvstore,
        anonymous_max_requests: q.u64_at_least("anonymous_max_requests", 0)?.unwrap_or(100),
        authenticated_max_requests: q
            .u64_at_least("authenticated_max_requests", 0)?
            .unwrap_or(1000),
        period,
    }))
}

fn parse_cors(
    server: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<CorsConfig>, Invalid> {
    let path = server.key("cors");
    match server.get("cors") {
        None | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => return Ok(Some(CorsConfig::localhost_development())),
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(Invalid::new(
                &path,
                format!(
                    "expected true, false or a mapping, found {}",
                    type_name(other)
                ),
                "Write `cors: true` for localhost development, or a mapping with allow_origins, allow_methods, ...",
            ));
        }
    }
    let c = Section::of(server.get("cors"), &path)?.expect("checked to be a mapping above");
    c.warn_unknown(CORS_KEYS, warnings);
    let methods = c.string_list("allow_methods")?;
    let cors = CorsConfig {
        allow_origins: c.string_list("allow_origins")?,
        allow_origin_regex: c.string("allow_origin_regex")?,
        allow_methods: if c.get("allow_methods").is_some() {
            methods
        } else {
            vec!["OPTIONS".into()]
        },
        allow_headers: c.string_list("allow_headers")?,
        allow_credentials: c.bool("allow_credentials")?.unwrap_or(false),
        expose_headers: c.string_list("expose_headers")?,
        max_age: c.u64_at_least("max_age", 0)?.unwrap_or(600),
    };
    if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
        return Err(Invalid::new(
            &path,
            "Cannot use wildcard origins with credentials enabled",
            "List the allowed origins explicitly, or set allow_credentials: false.",
        ));
    }
    Ok(Some(cors))
}

/// Reads ogx's `plugins:` section; relative paths are resolved against `config_dir`.
pub fn parse_plugins(
    value: Option<&Value>,
    config_dir: &Path,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<PluginsConfig, Invalid> {
    let Some(p) = Section::of(value, "plugins")? else {
        return Ok(PluginsConfig::default());
    };
    p.warn_unknown(PLUGINS_KEYS, warnings);
    let resolve = |raw: &str| config_dir.join(expand_user(raw, lookup));
    let dirs = p.string_list("dirs")?.iter().map(|d| resolve(d)).collect();
    let cache_dir = p.string("cache_dir")?.map(|d| resolve(&d));
    let limits = match Section::of(p.get("limits"), "plugins.limits")? {
        None => PluginLimits::default(),
        Some(l) => {
            l.warn_unknown(LIMITS_KEYS, warnings);
            PluginLimits {
                memory_mb: l.u64_at_least("memory_mb", 1)?,
                call_timeout_ms: l.u64_at_least("call_timeout_ms", 1)?,
                stream_idle_timeout_ms: l.u64_at_least("stream_idle_timeout_ms", 1)?,
                max_instances: l.u32_at_least("max_instances", 1)?,
            }
        }
    };
    Ok(PluginsConfig {
        dirs,
        cache_dir,
        limits,
        // Read by `validate` once the providers are known (`plugin_policy::parse`).
        policy: Default::default(),
    })
}
