//! `ogx plugins validate` and `ogx plugins call`: one plugin file, loaded through the
//! runtime's own stages (no search path, no server), then `init` with a provider's config
//! block and, for `call`, one operation against its upstream.
//!
//! `validate` prints each stage passed, the descriptor, the declared hosts and environment
//! variables and the sandbox the plugin runs in; the first failing stage ends it with an
//! error naming the stage and the fix (exit status 1). `call` prints the operation's answer
//! (a stream as `data:` lines) or the provider's error.

use super::plugins::runtime_options;
use super::{PluginsCallArgs, PluginsValidateArgs};
use crate::config::network::NetworkSettings;
use crate::config::{self, LoadedConfig};
use crate::environment::Environment;
use crate::runtime::discovery::{
    ALLOWED_OGX_IMPORTS, ALLOWED_WASI_PACKAGES, LOAD_STAGES, PluginLoadError,
};
use crate::runtime::{CallContext, CallError, Descriptor, PluginRuntime, Provider};
use crate::server::errors::ApiError;
use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The provider a config file configures for the plugin.
struct Target {
    provider_id: String,
    provider_type: String,
    config: Value,
    network: NetworkSettings,
}

/// A `--config` file: a whole run config (it has `providers:`) or one `config:` block.
enum ConfigFile {
    Run(Box<LoadedConfig>),
    Block(Value),
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config {}", path.display()))?;
    let document: Value = serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "{} is neither YAML nor JSON: give the provider's `config:` block or a run config",
            path.display()
        )
    })?;
    let env = Environment::process();
    if document.get("providers").is_some_and(Value::is_object) {
        let loaded = config::load(path, &env.lookup()).map_err(anyhow::Error::new)?;
        return Ok(ConfigFile::Run(Box::new(loaded)));
    }
    let block = match document {
        Value::Null => json!({}),
        block @ Value::Object(_) => block,
        _ => bail!(
            "{} must hold the provider's `config:` block (a mapping such as `base_url: ...`) or a run config",
            path.display()
        ),
    };
    let block = config::env::substitute(&block, &env.lookup())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(ConfigFile::Block(block))
}

/// Chooses the provider entry (or builds one from a bare block) the plugin is initialised with.
fn target(
    file: Option<&ConfigFile>,
    descriptor: &Descriptor,
    wanted: Option<&str>,
) -> anyhow::Result<Target> {
    let served = |t: &str| descriptor.provider_types.iter().any(|s| s == t);
    if let Some(wanted) = wanted.filter(|w| !served(w)) {
        bail!(
            "the plugin does not serve `{wanted}`; it serves {}: pass one of them to --type",
            descriptor.provider_types.join(", ")
        );
    }
    let wanted_or_served = |t: &str| wanted.map_or_else(|| served(t), |w| w == t);
    match file {
        Some(ConfigFile::Run(loaded)) => {
            let entry = loaded
                .config
                .providers
                .values()
                .flatten()
                .find(|e| wanted_or_served(&e.provider_type))
                .ok_or_else(|| {
                    anyhow!(
                        "{} has no provider entry of type {}: add one under `providers:`, or pass the provider's `config:` block alone",
                        loaded.path.display(),
                        wanted.map_or_else(|| descriptor.provider_types.join(" or "), str::to_owned)
                    )
                })?;
            Ok(Target {
                provider_id: entry.provider_id.clone(),
                provider_type: entry.provider_type.clone(),
                config: entry.config.clone(),
                network: entry.network.clone(),
            })
        }
        block => {
            let provider_type = wanted
                .map(str::to_owned)
                .or_else(|| descriptor.provider_types.first().cloned())
                .unwrap_or_default();
            let provider_id = provider_type
                .split_once("::")
                .map_or(provider_type.as_str(), |(_, name)| name)
                .to_owned();
            let config = match block {
                Some(ConfigFile::Block(block)) => block.clone(),
                _ => json!({}),
            };
            Ok(Target {
                provider_id,
                provider_type,
                config,
                network: NetworkSettings::default(),
            })
        }
    }
}

/// Loads `file` alone through the runtime's stages; the runtime keeps the outcome.
async fn load(file: &Path, loaded: Option<&LoadedConfig>) -> anyhow::Result<PluginRuntime> {
    let options = runtime_options(&[], loaded)?;
    let path = file.to_path_buf();
    tokio::task::spawn_blocking(move || PluginRuntime::load_file(options, path)).await?
}

fn descriptor_of(runtime: &PluginRuntime) -> Result<Descriptor, PluginLoadError> {
    match runtime.catalog().entries.first() {
        Some(entry) => entry.outcome.clone(),
        None => Err(PluginLoadError::Message("no plugin file was loaded".into())),
    }
}

fn print_stages_until(failed: Option<&str>) {
    for stage in LOAD_STAGES.iter().take_while(|s| Some(**s) != failed) {
        if *stage != "init" {
            println!("  ✓ {stage}");
        }
    }
}

fn stage_failure(stage: &str, error: impl std::fmt::Display) -> anyhow::Error {
    println!("  ✗ {stage}");
    anyhow!("the plugin fails the `{stage}` stage: {error}")
}

/// The words for a failed `init`: the plugin's own message, and what to change.
fn init_failure(target: &Target, error: CallError) -> anyhow::Error {
    let what = match &error {
        CallError::Provider(_) => "the plugin refused the config",
        _ => "`init` did not complete",
    };
    stage_failure(
        "init",
        format!(
            "{what} of provider `{}` ({}): {error}; fix the provider's config block (or the plugin's `init`)",
            target.provider_id, target.provider_type
        ),
    )
}

fn print_description(descriptor: &Descriptor, runtime: &PluginRuntime) {
    let env = Environment::process();
    println!(
        "plugin: {} {} (ogx:provider@{}; this ogx serves {})",
        descriptor.name,
        descriptor.version,
        descriptor.interface,
        crate::runtime::InterfaceVersion::served_list()
    );
    println!("provider types: {}", descriptor.provider_types.join(", "));
    println!(
        "native Messages API: {}; native token counting: {}",
        yes_no(descriptor.native_messages),
        yes_no(descriptor.native_count_tokens)
    );
    let hosts = if descriptor.outbound_hosts.is_empty() {
        "none (no outbound HTTP)".to_owned()
    } else {
        descriptor.outbound_hosts.join(", ")
    };
    println!("outbound hosts: {hosts}");
    let vars: Vec<String> = descriptor
        .env_vars
        .iter()
        .map(|name| {
            let state = if env.get(name).is_some_and(|v| !v.is_empty()) {
                "set"
            } else {
                "unset"
            };
            format!("{name} ({state})")
        })
        .collect();
    println!(
        "environment variables: {}",
        if vars.is_empty() {
            "none".to_owned()
        } else {
            vars.join(", ")
        }
    );
    println!(
        "secret config keys: {} (and any key containing api_key, token, secret or password)",
        if descriptor.secret_config_keys.is_empty() {
            "none declared".to_owned()
        } else {
            descriptor.secret_config_keys.join(", ")
        }
    );
    let limits = runtime.limits();
    println!("sandbox:");
    println!(
        "  network: outbound HTTP(S) only through ogx, to the hosts above (plus endpoints named in declared AWS_ENDPOINT_URL* variables); link-local and cloud-metadata addresses refused even under `*`; no sockets"
    );
    println!(
        "  imports: ogx:provider/{{{}}}@{}, wasi:{{{}}}; filesystem with no preopened directory; only the declared environment variables",
        ALLOWED_OGX_IMPORTS.join(","),
        descriptor.interface,
        ALLOWED_WASI_PACKAGES.join(",")
    );
    println!(
        "  limits: memory {} MiB per instance, call {:?}, stream idle {:?}, CPU budget {} epoch ticks, {} instances at once; a fresh instance per request",
        limits.memory_bytes / (1024 * 1024),
        limits.call_timeout,
        limits.stream_idle_timeout,
        limits.cpu_budget_ticks,
        limits.max_instances
    );
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no (ogx translates)" }
}

/// Binds the target to the plugin and runs `init` once.
async fn ready_provider(runtime: &PluginRuntime, target: &Target) -> anyhow::Result<Arc<Provider>> {
    let provider = runtime
        .provider_with_network(
            &target.provider_id,
            &target.provider_type,
            &target.config,
            &target.network,
        )
        .map_err(|e| stage_failure("init", e))?;
    provider
        .check_config()
        .await
        .map_err(|e| init_failure(target, e))?;
    Ok(provider)
}

pub async fn validate(args: PluginsValidateArgs) -> anyhow::Result<()> {
    let config_file = args.config.as_deref().map(read_config).transpose()?;
    let loaded = match &config_file {
        Some(ConfigFile::Run(loaded)) => Some(loaded.as_ref()),
        _ => None,
    };
    println!("{}", args.file.display());
    let runtime = load(&args.file, loaded).await?;
    let descriptor = match descriptor_of(&runtime) {
        Ok(descriptor) => descriptor,
        Err(error) => {
            print_stages_until(Some(error.stage()));
            return Err(stage_failure(error.stage(), error));
        }
    };
    print_stages_until(None);
    if config_file.is_none() {
        println!("  - init: not run (give the provider's config with --config)");
        print_description(&descriptor, &runtime);
        return Ok(());
    }
    let target = target(
        config_file.as_ref(),
        &descriptor,
        args.provider_type.as_deref(),
    )?;
    ready_provider(&runtime, &target).await?;
    println!(
        "  ✓ init (provider `{}`, type {})",
        target.provider_id, target.provider_type
    );
    print_description(&descriptor, &runtime);
    println!("valid: {} loads and initialises", args.file.display());
    Ok(())
}

/// The operation `call` runs, from `--operation` or the body's fields.
fn operation(args: &PluginsCallArgs, body: Option<&Value>) -> anyhow::Result<String> {
    if let Some(op) = &args.operation {
        return Ok(op.clone());
    }
    let Some(body) = body else {
        return Ok("models".into());
    };
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let op = if body.get("messages").is_some() {
        "chat"
    } else if body.get("prompt").is_some() {
        "completion"
    } else if body.get("input").is_some() {
        "embeddings"
    } else {
        bail!(
            "cannot tell the operation from the request body: pass --operation (chat, completion, embeddings, messages, count-tokens, models, health)"
        )
    };
    Ok(if stream {
        format!("{op}-stream")
    } else {
        op.into()
    })
}

/// The error as an API client would get it (status and message, from the server's one
/// mapping), with the details only the author should see for traps and timeouts.
fn provider_error(error: CallError) -> anyhow::Error {
    let detail = match &error {
        CallError::Provider(_) => None,
        other => Some(other.to_string()),
    };
    let (status, message) = ApiError::Call(error).status_and_message();
    match detail {
        None => anyhow!("the provider answered {status}: {message}"),
        Some(detail) => anyhow!("the call failed ({detail}); a client gets {status}: {message}"),
    }
}

pub async fn call(args: PluginsCallArgs) -> anyhow::Result<()> {
    let config_file = read_config(&args.config)?;
    let loaded = match &config_file {
        ConfigFile::Run(loaded) => Some(loaded.as_ref()),
        ConfigFile::Block(_) => None,
    };
    let body: Option<Value> = match &args.request {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the request {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
        None => None,
    };
    let op = operation(&args, body.as_ref())?;
    let runtime = load(&args.file, loaded).await?;
    let descriptor = descriptor_of(&runtime).map_err(|e| stage_failure(e.stage(), e))?;
    let target = target(
        Some(&config_file),
        &descriptor,
        args.provider_type.as_deref(),
    )?;
    let provider = ready_provider(&runtime, &target).await?;
    if let Some(data) = &args.provider_data {
        let parsed: Value = serde_json::from_str(data)
            .context("--provider-data must be a JSON object, e.g. '{\"key\": \"...\"}'")?;
        if !parsed.is_object() {
            bail!("--provider-data must be a JSON object, e.g. '{{\"key\": \"...\"}}'");
        }
    }
    let ctx = CallContext {
        request_id: "ogx-plugins-call".into(),
        provider_data: args.provider_data.clone(),
        timeout: None,
        model: None,
        upstream_clock: None,
        trace: None,
    };
    let body_text = body.as_ref().map(Value::to_string).unwrap_or_default();
    let printed = match op.as_str() {
        "models" => {
            let models = provider.list_models(ctx).await.map_err(provider_error)?;
            let listed: Vec<Value> = models
                .into_iter()
                .map(|m| json!({"id": m.id, "model_type": m.model_type, "metadata": m.metadata}))
                .collect();
            serde_json::to_string_pretty(&listed)?
        }
        "health" => {
            let health = provider.health(ctx).await.map_err(provider_error)?;
            serde_json::to_string_pretty(
                &json!({"status": health.status, "message": health.message}),
            )?
        }
        "chat-stream" | "completion-stream" => {
            let mut stream = if op == "chat-stream" {
                provider.chat_completion_stream(ctx, body_text).await
            } else {
                provider.completion_stream(ctx, body_text).await
            }
            .map_err(provider_error)?;
            while let Some(chunk) = stream.next().await {
                println!("data: {}", chunk.map_err(provider_error)?);
            }
            "data: [DONE]".to_owned()
        }
        "chat" | "completion" | "embeddings" | "messages" | "count-tokens" => {
            let answer = match op.as_str() {
                "chat" => provider.chat_completion(ctx, body_text).await,
                "completion" => provider.completion(ctx, body_text).await,
                "embeddings" => provider.embeddings(ctx, body_text).await,
                "messages" => provider.messages(ctx, body_text).await,
                _ => provider.count_tokens(ctx, body_text).await,
            }
            .map_err(provider_error)?;
            let value: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
            serde_json::to_string_pretty(&value)?
        }
        other => bail!(
            "unknown --operation `{other}`: use chat, chat-stream, completion, completion-stream, embeddings, messages, count-tokens, models or health"
        ),
    };
    println!("{printed}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::InterfaceVersion;

    fn call_args(operation: Option<&str>) -> PluginsCallArgs {
        PluginsCallArgs {
            file: "p.wasm".into(),
            config: "c.yaml".into(),
            request: None,
            operation: operation.map(str::to_owned),
            provider_type: None,
            provider_data: None,
        }
    }

    fn descriptor(types: &[&str]) -> Descriptor {
        Descriptor {
            name: "p".into(),
            version: "1".into(),
            provider_types: types.iter().map(|t| (*t).to_owned()).collect(),
            outbound_hosts: vec![],
            env_vars: vec![],
            secret_config_keys: vec![],
            interface: InterfaceVersion::LATEST,
            native_messages: false,
            native_count_tokens: false,
        }
    }

    #[test]
    fn the_operation_comes_from_the_body_unless_given() {
        let op = |args: &PluginsCallArgs, body: Option<Value>| operation(args, body.as_ref());
        let plain = call_args(None);
        assert_eq!(op(&plain, None).unwrap(), "models");
        assert_eq!(op(&plain, Some(json!({"messages": []}))).unwrap(), "chat");
        assert_eq!(
            op(&plain, Some(json!({"messages": [], "stream": true}))).unwrap(),
            "chat-stream"
        );
        assert_eq!(
            op(&plain, Some(json!({"prompt": "x"}))).unwrap(),
            "completion"
        );
        assert_eq!(
            op(&plain, Some(json!({"input": "x"}))).unwrap(),
            "embeddings"
        );
        assert!(op(&plain, Some(json!({"x": 1}))).is_err());
        assert_eq!(op(&call_args(Some("health")), None).unwrap(), "health");
    }

    #[test]
    fn a_bare_block_initialises_the_plugins_first_type_or_the_one_asked() {
        let d = descriptor(&["remote::a", "remote::b"]);
        let block = ConfigFile::Block(json!({"base_url": "http://x"}));
        let first = target(Some(&block), &d, None).unwrap();
        assert_eq!(
            (first.provider_id.as_str(), first.provider_type.as_str()),
            ("a", "remote::a")
        );
        assert_eq!(first.config["base_url"], "http://x");
        let second = target(Some(&block), &d, Some("remote::b")).unwrap();
        assert_eq!(second.provider_type, "remote::b");
        let unserved = target(Some(&block), &d, Some("remote::c")).err().unwrap();
        assert!(unserved.to_string().contains("serves remote::a, remote::b"));
        assert_eq!(target(None, &d, None).unwrap().config, json!({}));
    }
}
