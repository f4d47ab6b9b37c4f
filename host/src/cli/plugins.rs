//! `ogx plugins list`, and the plugin set-up shared with `ogx run`: the search path from the
//! command line and the config, the runtime's limits from the config, and the printed catalog.

use super::PluginsListArgs;
use crate::config::{self, LoadedConfig};
use crate::runtime::engine::RuntimeOptions;
use crate::runtime::{PluginRuntime, RuntimeLimits};
use std::path::PathBuf;

pub async fn list(args: PluginsListArgs) -> anyhow::Result<()> {
    let loaded = match &args.config {
        Some(path) => {
            Some(config::load(path, &|name| std::env::var(name).ok()).map_err(anyhow::Error::new)?)
        }
        None => None,
    };
    let runtime = start_runtime(&args.plugins_dirs, loaded.as_ref()).await?;
    print_catalog(&runtime);
    Ok(())
}

/// Starts the plugin runtime with the directories given on the command line, the config's
/// `plugins:` section, and the standard search path.
pub async fn start_runtime(
    plugins_dirs: &[PathBuf],
    loaded: Option<&LoadedConfig>,
) -> anyhow::Result<PluginRuntime> {
    let mut search_path: Vec<PathBuf> = plugins_dirs.to_vec();
    let mut options = RuntimeOptions::standard(loaded.map(|l| l.path.as_path()));
    if let Some(loaded) = loaded {
        let plugins = &loaded.config.plugins;
        search_path.extend(plugins.dirs.iter().cloned());
        if let Some(cache_dir) = &plugins.cache_dir {
            options.cache_dir = Some(cache_dir.clone());
        }
        options.limits =
            RuntimeLimits::from_overrides(&plugins.limits, &|name| std::env::var(name).ok());
        options.kv_path = loaded.config.metadata_kv_path();
    } else {
        options.limits =
            RuntimeLimits::from_overrides(&Default::default(), &|name| std::env::var(name).ok());
    }
    search_path.append(&mut options.search_path);
    options.search_path = search_path;
    tokio::task::spawn_blocking(move || PluginRuntime::start(options)).await?
}

/// Prints every plugin found: its provider types, or why it could not be loaded.
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
                "  ✓ {} ({} {}): {}",
                entry.path.display(),
                descriptor.name,
                descriptor.version,
                descriptor.provider_types.join(", ")
            ),
            Err(error) => println!("  ✗ {}: {error}", entry.path.display()),
        }
    }
    if catalog.entries.is_empty() {
        println!("  (no .wasm files in the search path)");
    }
}
