//! Binding the config's providers to the plugins that serve them, at start-up and at every
//! reload: each enabled `providers.inference` entry gets its plugin and runs `init` once
//! with its config; the `responses` and `messages` entries are served by the host itself.
//!
//! Fails, naming the config file, the provider id and the fix, when a type has no plugin,
//! needs what ogx cannot provide, or `init` rejects the config. At a reload the running
//! providers whose entry and plugin did not change are carried over untouched.

use crate::config::provider_types::{self, Unserved};
use crate::config::{self, LoadedConfig, ProviderEntry};
use crate::runtime::{PluginRuntime, Provider};
use crate::server::ProviderInfo;
use anyhow::{Context, bail};
use std::sync::Arc;

/// The one API whose providers are served by plugins today.
pub const PLUGIN_API: &str = "inference";

/// Binds every enabled inference provider to its plugin and runs its `init` once. A provider
/// of `running` with the same id, type and config whose plugin `runtime` still binds is
/// carried over as it is (no new `init`, its connections kept).
pub async fn bind_providers(
    runtime: &PluginRuntime,
    loaded: &LoadedConfig,
    running: &[Arc<Provider>],
) -> anyhow::Result<(Vec<Arc<Provider>>, Vec<ProviderInfo>)> {
    let file = loaded.path.display();
    let mut providers = Vec::new();
    let mut infos = Vec::new();
    println!("Providers:");
    for (api, entries) in &loaded.config.providers {
        for entry in entries {
            if api == "responses" || api == "messages" {
                // Served by the host on top of the inference providers.
                println!(
                    "  {api}/{} ({}): served by ogx on the inference providers",
                    entry.provider_id, entry.provider_type
                );
                infos.push(ProviderInfo {
                    api: api.clone(),
                    provider_id: entry.provider_id.clone(),
                    provider_type: entry.provider_type.clone(),
                    redacted_config: config::redact::redact_with::<&str>(&entry.config, &[]),
                });
                continue;
            }
            if api != PLUGIN_API {
                println!(
                    "  {api}/{} ({}): not served — ogx serves the {PLUGIN_API} API only so far",
                    entry.provider_id, entry.provider_type
                );
                tracing::warn!(
                    "{file}: providers.{api} ({}) is ignored: ogx does not serve the `{api}` API yet",
                    entry.provider_id
                );
                continue;
            }
            if runtime.catalog().plugin_for(&entry.provider_type).is_none() {
                match provider_types::unserved(&entry.provider_type) {
                    Unserved::InProcess => {
                        println!(
                            "  {api}/{} ({}): not served — it runs models inside OGX's Python process",
                            entry.provider_id, entry.provider_type
                        );
                        tracing::warn!(
                            "{file}: providers.{api} ({}, {}) is ignored: ogx does not run models in-process; point a remote provider (e.g. remote::vllm, remote::ollama) at a model server instead",
                            entry.provider_id,
                            entry.provider_type
                        );
                        continue;
                    }
                    Unserved::CloudIdentity { needs } => bail!(
                        "{file}: provider `{}` ({}) is not served by ogx yet: it needs {needs}, which ogx cannot obtain yet. Disable it (unset the environment variable that enables it, or set its provider_id to __disabled__) or use another provider",
                        entry.provider_id,
                        entry.provider_type
                    ),
                    Unserved::NoPlugin => {}
                }
            }
            if let Some(same) = running.iter().find(|p| {
                p.id() == entry.provider_id
                    && p.provider_type() == entry.provider_type
                    && p.config() == &entry.config
                    && runtime.runs(p)
            }) {
                println!(
                    "  {api}/{} ({}): unchanged",
                    entry.provider_id, entry.provider_type
                );
                infos.push(provider_info(api, entry, same));
                providers.push(Arc::clone(same));
                continue;
            }
            let provider = runtime
                .provider_with_network(
                    &entry.provider_id,
                    &entry.provider_type,
                    &entry.config,
                    &entry.network,
                )
                .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
            provider.check_config().await.with_context(|| {
                format!(
                    "{file}: provider `{}` ({}) rejected its config",
                    entry.provider_id, entry.provider_type
                )
            })?;
            println!(
                "  {api}/{} ({}) ← {}: ready",
                entry.provider_id,
                entry.provider_type,
                provider
                    .plugin_path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            infos.push(provider_info(api, entry, &provider));
            providers.push(provider);
        }
    }
    if providers.is_empty() {
        bail!(
            "{file}: no enabled `{PLUGIN_API}` provider: add one under `providers.{PLUGIN_API}` (or set the environment variable that enables it)"
        );
    }
    Ok((providers, infos))
}

/// `entry` as `/v1/providers` shows it, served by `provider`.
fn provider_info(api: &str, entry: &ProviderEntry, provider: &Provider) -> ProviderInfo {
    ProviderInfo {
        api: api.to_owned(),
        provider_id: entry.provider_id.clone(),
        provider_type: entry.provider_type.clone(),
        redacted_config: config::redact::redact_with(
            &entry.config,
            &provider.descriptor().secret_config_keys,
        ),
    }
}
