//! `ogx plugins list` (on this machine's search path, or `--server URL`: what a running server
//! serves now), and the plugin set-up shared with `ogx run`: the search path from the
//! command line and the config, the runtime's limits and sandbox policy from the config, and
//! the printed catalog. With `--config`, the listing ends with the effective sandbox policy of
//! every configured provider (`plugins.policy` merged with the plugin's declaration and the
//! runtime's limits), each value with the key that set it.

use super::PluginsListArgs;
use crate::config::{self, LoadedConfig};
use crate::environment::Environment;
use crate::runtime::discovery::search_path;
use crate::runtime::limits::LimitOverrides;
use crate::runtime::{PluginRuntime, RuntimeLimits, RuntimeOptions};
use crate::storage::kv::KvStore;
use std::path::PathBuf;
use std::sync::Arc;

pub async fn list(args: PluginsListArgs) -> anyhow::Result<()> {
    if let Some(server) = &args.server {
        return list_live(server, args.api_key.as_deref()).await;
    }
    let loaded = match &args.config {
        Some(path) => {
            Some(config::load(path, &Environment::process().lookup()).map_err(anyhow::Error::new)?)
        }
        None => None,
    };
    let runtime = start_runtime(&args.plugins_dirs, loaded.as_ref(), None).await?;
    print_catalog(&runtime);
    if let Some(loaded) = &loaded {
        print_policies(&runtime, loaded);
    }
    Ok(())
}

/// Starts the plugin runtime with the directories given on the command line, the config's
/// `plugins:` section, and the standard search path. `plugin_kv` backs the plugins' `kv`
/// import (`None`: memory).
pub async fn start_runtime(
    plugins_dirs: &[PathBuf],
    loaded: Option<&LoadedConfig>,
    plugin_kv: Option<Arc<KvStore>>,
) -> anyhow::Result<PluginRuntime> {
    let mut options = runtime_options(plugins_dirs, loaded)?;
    options.kv = plugin_kv;
    tokio::task::spawn_blocking(move || PluginRuntime::start(options)).await?
}

/// The runtime's options from the command line's directories and the config's `plugins:`
/// section (search path, cache, limits, sandbox policy), with the plugins' kv in memory.
pub fn runtime_options(
    plugins_dirs: &[PathBuf],
    loaded: Option<&LoadedConfig>,
) -> anyhow::Result<RuntimeOptions> {
    let mut first_dirs: Vec<PathBuf> = plugins_dirs.to_vec();
    let mut overrides = LimitOverrides::default();
    let mut cache_dir = None;
    let mut policy = Default::default();
    if let Some(loaded) = loaded {
        policy = loaded.config.plugins.policy.clone();
        let plugins = &loaded.config.plugins;
        first_dirs.extend(plugins.dirs.iter().cloned());
        cache_dir = plugins.cache_dir.clone();
        overrides = LimitOverrides {
            memory_mb: plugins.limits.memory_mb,
            call_timeout_ms: plugins.limits.call_timeout_ms,
            stream_idle_timeout_ms: plugins.limits.stream_idle_timeout_ms,
            cpu_budget_ticks: None,
            max_instances: plugins.limits.max_instances.map(u64::from),
            keep_resident_kb: None,
        };
    }
    // A distribution built into the binary has no directory of its own to search.
    let config_dir = loaded
        .filter(|l| l.path.is_file())
        .and_then(|l| l.path.parent())
        .map(|dir| dir.to_path_buf());
    let env = Environment::process();
    let search_path = search_path(&first_dirs, config_dir.as_deref(), env.lookup());
    let mut options = RuntimeOptions::new(search_path);
    if cache_dir.is_some() {
        options.cache_dir = cache_dir;
    }
    options.limits = RuntimeLimits::from_overrides(&overrides, env.lookup())?;
    options.policy = policy;
    Ok(options)
}

/// Prints every plugin found: its interface version and provider types, or why it could not
/// be loaded.
pub fn print_catalog(runtime: &PluginRuntime) {
    let catalog = runtime.catalog();
    let loaded = catalog
        .entries
        .iter()
        .filter(|entry| entry.outcome.is_ok())
        .count();
    println!(
        "Plugins: {loaded} loaded, {} failed",
        catalog.entries.len() - loaded
    );
    for entry in &catalog.entries {
        match &entry.outcome {
            Ok(descriptor) => println!(
                "  ✓ {} ({} {}, ogx:provider@{}): {}",
                entry.path.display(),
                descriptor.name,
                descriptor.version,
                descriptor.interface,
                descriptor.provider_types.join(", ")
            ),
            // The error names the file itself.
            Err(error) => println!("  ✗ {error}"),
        }
    }
    if catalog.entries.is_empty() {
        println!("  (no .wasm files in the search path)");
    }
}

/// Prints the sandbox policy each configured provider runs under.
pub fn print_policies(runtime: &PluginRuntime, loaded: &LoadedConfig) {
    let limits = runtime.limits();
    let policy = &loaded.config.plugins.policy;
    println!("Sandbox policy per provider (plugins.policy):");
    for entry in loaded.config.providers.values().flatten() {
        let effective = policy.for_provider(&entry.provider_id);
        println!("  {} ({})", entry.provider_id, entry.provider_type);
        let declared = match runtime.catalog().plugin_for(&entry.provider_type) {
            Some(plugin) => match &plugin.outcome {
                Ok(descriptor) => format!("[{}]", descriptor.outbound_hosts.join(", ")),
                Err(_) => "(plugin not loaded)".to_owned(),
            },
            None => "(no plugin serves this type)".to_owned(),
        };
        let mut hosts = format!("the plugin's {declared}");
        for list in &effective.allowed_hosts {
            hosts.push_str(&format!(" ∩ {} [{}]", list.key, list.value.join(", ")));
        }
        println!("    allowed hosts: {hosts}");
        let denied: Vec<String> = effective
            .denied_cidrs
            .iter()
            .map(|d| format!("{} ({})", d.value, d.key))
            .collect();
        println!(
            "    denied CIDRs: {}",
            if denied.is_empty() {
                "none".to_owned()
            } else {
                denied.join(", ")
            }
        );
        println!(
            "    link-local and metadata addresses: {}",
            match &effective.allow_link_local {
                Some(setting) if setting.value => format!("allowed ({})", setting.key),
                Some(setting) => format!("refused ({})", setting.key),
                None => "refused (default)".to_owned(),
            }
        );
        println!(
            "    memory: {}",
            match &effective.memory_mb {
                Some(setting) => format!("{} MiB ({})", setting.value, setting.key),
                None => format!("{} MiB (runtime)", limits.memory_bytes / (1024 * 1024)),
            }
        );
        println!(
            "    call timeout: {}",
            match &effective.call_timeout_ms {
                Some(setting) => format!("{} ms ({})", setting.value, setting.key),
                None => format!("{} ms (runtime)", limits.call_timeout.as_millis()),
            }
        );
    }
}

/// How long `ogx plugins list --server` waits for the server.
pub const LIVE_LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `ogx plugins list --server URL`: prints the server's `/v1/inspect/plugins`.
async fn list_live(server: &str, api_key: Option<&str>) -> anyhow::Result<()> {
    let url = format!("{}/v1/inspect/plugins", server.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(LIVE_LIST_TIMEOUT)
        .build()?;
    let mut request = client.get(&url);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!("cannot reach {url}: {e}; check --server (e.g. http://127.0.0.1:8321) and that ogx runs there")
    })?;
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no error message");
        anyhow::bail!("{url} answered {status}: {message}");
    }
    print!("{}", live_listing(&body));
    Ok(())
}

/// The lines `ogx plugins list --server` prints for a `/v1/inspect/plugins` answer.
fn live_listing(body: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|items| items.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let items = body["data"].as_array().cloned().unwrap_or_default();
    let mut out = format!("Live plugins: {} file(s)\n", items.len());
    for item in &items {
        let path = text(&item["path"]);
        match item["status"].as_str() {
            Some("loaded") => out.push_str(&format!(
                "  ✓ {path} ({} {}, ogx:provider@{}): {}\n      sha256 {}, loaded at {} (unix), serving: {}\n",
                text(&item["name"]),
                text(&item["version"]),
                text(&item["interface"]),
                list(&item["provider_types"]),
                text(&item["sha256"]),
                item["loaded_at"],
                match list(&item["providers"]) {
                    providers if providers.is_empty() => "no provider".to_owned(),
                    providers => providers,
                },
            )),
            _ => out.push_str(&format!(
                "  ✗ {path}: {}\n",
                item["error"].as_str().unwrap_or("not loaded")
            )),
        }
        if let Some(refusal) = item["last_refusal"].as_object() {
            out.push_str(&format!(
                "      last refusal at {} (unix): {}\n",
                refusal.get("at").cloned().unwrap_or_default(),
                refusal.get("error").map(text).unwrap_or_default()
            ));
        }
    }
    out
}
