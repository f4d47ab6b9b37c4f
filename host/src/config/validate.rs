//! From the substituted document to a [`RunConfig`], enforcing what OGX enforces at start-up,
//! and collecting one warning per key ogx ignores.
//!
//! Unknown keys never fail: OGX's pydantic models ignore them, so ogx accepts them and warns
//! `unknown key 'a.b' (ignored)`. Keys OGX knows but ogx does not act on yet are warned about
//! separately, once, when they hold something. Everything else that is wrong fails with an
//! [`Invalid`] naming the key path and the fix; OGX's own sentence is kept where it has one.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::env::{DISABLED, Lookup};
use super::fields::{Invalid, Section, type_name};
use super::schema::{
    INTERNAL_APIS, KNOWN_APIS, ModelEntry, ProviderEntry, REMOVED_APIS, ROUTING_TABLE_APIS,
    RunConfig, SERVED_APIS,
};
use super::server::{parse_plugins, parse_server};
use super::storage::parse_storage;

/// What ogx does with a top-level key OGX knows.
#[derive(Clone, Copy, PartialEq)]
enum Support {
    /// Read into [`RunConfig`].
    Acted,
    /// Informational in OGX too: no warning.
    Informational,
    /// OGX acts on it, ogx does not yet: a warning when it holds something.
    NotYet,
    /// OGX 1.5.0 removed it and ignores it: a warning when it holds something.
    Removed,
}

/// The single list of top-level keys. `plugins` and `gateway_keys` are ogx's own (OGX 1.5.0
/// ignores top-level keys it does not know).
const TOP_LEVEL_KEYS: &[(&str, Support)] = &[
    ("version", Support::Informational),
    ("distro_name", Support::Acted),
    ("image_name", Support::Acted),
    ("container_image", Support::Informational),
    ("apis", Support::Acted),
    ("providers", Support::Acted),
    ("storage", Support::Acted),
    ("registered_resources", Support::Acted),
    ("server", Support::Acted),
    ("plugins", Support::Acted),
    ("gateway_keys", Support::Acted),
    ("routing", Support::Acted),
    ("logging", Support::NotYet),
    ("logging_config", Support::NotYet),
    ("external_providers_dir", Support::NotYet),
    ("external_apis_dir", Support::NotYet),
    ("vector_stores", Support::NotYet),
    ("connectors", Support::NotYet),
    ("safety", Support::Removed),
];

const PROVIDER_KEYS: &[&str] = &["provider_id", "provider_type", "config", "module"];
const RESOURCE_KEYS: &[&str] = &["models", "shields", "vector_stores", "tool_groups"];
const MODEL_KEYS: &[&str] = &[
    "model_id",
    "provider_id",
    "provider_model_id",
    "model_type",
    "metadata",
];
const MODEL_TYPES: &[&str] = &["llm", "embedding", "rerank"];

fn holds_something(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn not_supported_yet(key: &str) -> String {
    format!("'{key}' is not supported by ogx yet and is ignored")
}

/// Validates a substituted document. `config_dir` resolves `plugins:` paths.
pub fn validate(
    document: &Value,
    config_dir: &Path,
    lookup: Lookup<'_>,
) -> Result<(RunConfig, Vec<String>), Invalid> {
    let root = Section::of(Some(document), "")?.ok_or_else(|| {
        Invalid::new(
            "(document)",
            "the config is empty",
            "Write a run config with at least `distro_name:` and `providers:`.",
        )
    })?;
    let mut warnings = Vec::new();
    for (key, value) in root.map {
        match TOP_LEVEL_KEYS.iter().find(|(k, _)| k == key) {
            None => warnings.push(format!("unknown key '{key}' (ignored)")),
            Some((_, Support::NotYet)) if holds_something(value) => {
                warnings.push(not_supported_yet(key))
            }
            Some((_, Support::Removed)) if holds_something(value) => warnings.push(format!(
                "'{key}' was removed in OGX 1.0 and is ignored (OGX 1.5.0 ignores it too)"
            )),
            Some(_) => {}
        }
    }
    let distro_name = distro_name(&root, &mut warnings)?;
    let apis = apis(&root, &mut warnings)?;
    let mut providers = providers(&root, &mut warnings)?;
    let storage = parse_storage(root.get("storage"), lookup, &mut warnings)?;
    let has_inference = providers.get("inference").is_some_and(|p| !p.is_empty());
    if has_inference && storage.stores.inference.is_none() {
        return Err(Invalid::new(
            "storage.stores.inference",
            "storage.stores.inference must be configured in run config",
            "Add `inference: {backend: sql_default, table_name: inference_store}` under storage.stores.",
        ));
    }
    let models = models(&root, &providers, &mut warnings)?;
    let server = parse_server(root.get("server"), &storage, &mut warnings)?;
    let mut plugins = parse_plugins(root.get("plugins"), config_dir, lookup, &mut warnings)?;
    let provider_ids: Vec<&str> = providers
        .values()
        .flatten()
        .map(|entry| entry.provider_id.as_str())
        .collect();
    plugins.policy = super::plugin_policy::parse(
        root.get("plugins").and_then(|p| p.get("policy")),
        &provider_ids,
    )?;
    let gateway_keys =
        super::gateway_keys::parse(root.get("gateway_keys"), &storage, &mut warnings)?;
    let container_image = root.string("container_image")?;
    let responses = super::responses::parse(
        providers.get("responses").map_or(&[], Vec::as_slice),
        &storage,
    )?;
    let messages = super::messages::parse(
        providers.get("messages").map_or(&[], Vec::as_slice),
        apis.as_deref(),
        &storage,
    )?;
    let routing = routing_block(&root, &mut providers, &mut warnings)?;
    let config = RunConfig {
        distro_name,
        container_image,
        apis,
        providers,
        models,
        server,
        storage,
        plugins,
        responses,
        messages,
        gateway_keys,
        routing,
    };
    Ok((config, warnings))
}

/// `routing:` (ogx's own), checked against the enabled inference providers; a provider's
/// `timeouts.connect` there wins over its `network.timeout`.
fn routing_block(
    root: &Section<'_>,
    providers: &mut BTreeMap<String, Vec<ProviderEntry>>,
    warnings: &mut Vec<String>,
) -> Result<crate::routing::config::RoutingConfig, Invalid> {
    let inference = providers.get_mut("inference");
    let ids: Vec<String> = inference
        .as_ref()
        .map(|list| list.iter().map(|p| p.provider_id.clone()).collect())
        .unwrap_or_default();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let routing = crate::routing::config::parse(root.get("routing"), &id_refs, warnings)?;
    for entry in inference.into_iter().flatten() {
        if let Some(connect) = routing.policy(&entry.provider_id).connect_timeout {
            entry.network.connect_timeout = Some(connect);
        }
    }
    Ok(routing)
}

/// `distro_name`, else the deprecated `image_name`; numbers and bools are cast to text as
/// Python's `str()` would.
fn distro_name(root: &Section<'_>, warnings: &mut Vec<String>) -> Result<String, Invalid> {
    let text = |key: &str| -> Result<Option<String>, Invalid> {
        match root.get(key) {
            Some(Value::Bool(b)) => Ok(Some(if *b { "True" } else { "False" }.into())),
            _ => root.string(key),
        }
    };
    match (text("distro_name")?, text("image_name")?) {
        (Some(d), None) => Ok(d),
        (Some(d), Some(_)) => {
            warnings.push(
                "Both 'image_name' and 'distro_name' were provided. The 'image_name' field is deprecated and will be \
                 ignored. Please use only 'distro_name' in your configuration."
                    .into(),
            );
            Ok(d)
        }
        (None, Some(i)) => {
            warnings.push(
                "The 'image_name' field is deprecated. Please use 'distro_name' instead.".into(),
            );
            Ok(i)
        }
        (None, None) => Err(Invalid::new(
            "distro_name",
            "Either 'distro_name' or 'image_name' must be provided",
            "Add `distro_name: <a name for this stack>` at the top level.",
        )),
    }
}

/// `apis`: absent or null means every API ogx serves (OGX warns about a bare `apis:`); a list
/// is checked name by name, and the APIs ogx does not serve yet are warned about.
fn apis(root: &Section<'_>, warnings: &mut Vec<String>) -> Result<Option<Vec<String>>, Invalid> {
    match root.map.get("apis") {
        None => return Ok(None),
        Some(Value::Null) => {
            warnings.push(
                "'apis' is present but empty (null): every API with a provider is served. Remove the bare `apis:` \
                 key, or list the APIs to serve."
                    .into(),
            );
            return Ok(None);
        }
        Some(_) => {}
    }
    let apis = root.string_list("apis")?;
    for (i, api) in apis.iter().enumerate() {
        check_api_name(api, &format!("apis[{i}]"))?;
        if !SERVED_APIS.contains(&api.as_str()) {
            warnings.push(format!(
                "'apis[{i}]': ogx does not serve the '{api}' API yet; it is ignored"
            ));
        }
    }
    Ok(Some(apis))
}

fn check_api_name(api: &str, key: &str) -> Result<(), Invalid> {
    if KNOWN_APIS.contains(&api) {
        return Ok(());
    }
    let fix = if REMOVED_APIS.contains(&api) {
        format!(
            "OGX 1.0 removed the '{api}' API (OGX 1.5.0 refuses it too): remove '{api}' from this config."
        )
    } else {
        format!("Use one of: {}.", KNOWN_APIS.join(", "))
    };
    Err(Invalid::new(
        key,
        format!("API '{api}' does not exist."),
        fix,
    ))
}

/// Whether a provider_id (after substitution) disables its entry.
fn is_disabled(provider_id: Option<&Value>) -> bool {
    match provider_id {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() || s == DISABLED,
        Some(_) => false,
    }
}

fn providers(
    root: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Vec<ProviderEntry>>, Invalid> {
    let section = Section::of(root.get("providers"), "providers")?.ok_or_else(|| {
        Invalid::new(
            "providers",
            "is required but missing",
            "Add a `providers:` mapping from API to a list of providers, e.g. `inference: [{provider_id: openai, \
             provider_type: remote::openai, config: {...}}]`.",
        )
    })?;
    let mut out = BTreeMap::new();
    for (api, list) in section.map {
        let api_key = section.key(api);
        check_api_name(api, &api_key)?;
        if ROUTING_TABLE_APIS.contains(&api.as_str()) {
            return Err(Invalid::new(
                &api_key,
                format!("Provider for `{api}` is automatically provided and cannot be overridden"),
                format!(
                    "Remove `providers.{api}`; list {api} under `registered_resources` instead."
                ),
            ));
        }
        if INTERNAL_APIS.contains(&api.as_str()) {
            return Err(Invalid::new(
                &api_key,
                format!("the `{api}` API is built into the server and takes no providers"),
                format!("Remove `providers.{api}`; `{api}` is served without a provider."),
            ));
        }
        let items: &[Value] = match list {
            Value::Null => &[],
            Value::Array(items) => items,
            other => {
                return Err(Invalid::new(
                    &api_key,
                    format!("expected a list of providers, found {}", type_name(other)),
                    "Write each provider as a `- provider_id: ...` list entry.",
                ));
            }
        };
        let mut entries: Vec<(usize, ProviderEntry)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{api_key}[{i}]");
            if let Some(entry) = provider(item, &key, warnings)? {
                if let Some((first, _)) = entries
                    .iter()
                    .find(|(_, e)| e.provider_id == entry.provider_id)
                {
                    return Err(Invalid::new(
                        format!("{key}.provider_id"),
                        format!(
                            "provider_id '{}' is already used by {api_key}[{first}]",
                            entry.provider_id
                        ),
                        "Give each provider of an API its own provider_id.",
                    ));
                }
                entries.push((i, entry));
            }
        }
        if !entries.is_empty() && !SERVED_APIS.contains(&api.as_str()) {
            warnings.push(format!(
                "'{api_key}': ogx does not serve the '{api}' API yet; its {} provider(s) are ignored",
                entries.len()
            ));
        }
        out.insert(api.clone(), entries.into_iter().map(|(_, e)| e).collect());
    }
    Ok(out)
}

/// One provider entry; `None` when it is disabled.
fn provider(
    item: &Value,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<ProviderEntry>, Invalid> {
    let p = Section::of(Some(item), key)?.ok_or_else(|| {
        Invalid::new(
            key,
            "is null",
            "Remove the empty list entry, or give it provider_id and provider_type.",
        )
    })?;
    p.warn_unknown(PROVIDER_KEYS, warnings);
    if !p.map.contains_key("provider_id") {
        return Err(Invalid::new(
            p.key("provider_id"),
            "is required but missing",
            "Add `provider_id:` (a name of your choice; null or __disabled__ turns the provider off).",
        ));
    }
    let provider_type = p.required_string(
        "provider_type",
        "Add `provider_type:`, e.g. remote::openai or remote::bedrock.",
    )?;
    let config = match p.get("config") {
        None => Value::Object(Map::new()),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(other) => {
            return Err(Invalid::new(
                p.key("config"),
                format!("expected a mapping, found {}", type_name(other)),
                "Write the provider's settings as indented `key: value` lines under `config:`.",
            ));
        }
    };
    if is_disabled(p.map.get("provider_id")) {
        return Ok(None);
    }
    if let Some(module) = p.string("module")? {
        return Err(Invalid::new(
            p.key("module"),
            format!("external Python providers (module: {module}) are not supported by ogx"),
            "ogx runs provider adapters as WebAssembly plugins: remove `module:` and use a provider_type that an \
             installed plugin serves (`ogx plugins list` shows them), or build a plugin for this provider with the \
             ogx plugin SDK.",
        ));
    }
    let provider_id = p.required_string("provider_id", "Give the provider a name.")?;
    let network = super::network::parse(&config, &p.key("config"), warnings)?;
    Ok(Some(ProviderEntry {
        provider_id,
        provider_type,
        config,
        network,
    }))
}

fn models(
    root: &Section<'_>,
    providers: &BTreeMap<String, Vec<ProviderEntry>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<ModelEntry>, Invalid> {
    let Some(resources) = Section::of(root.get("registered_resources"), "registered_resources")?
    else {
        return Ok(Vec::new());
    };
    resources.warn_unknown(RESOURCE_KEYS, warnings);
    for kind in ["shields", "vector_stores"] {
        if resources.get(kind).is_some_and(holds_something) {
            warnings.push(not_supported_yet(&resources.key(kind)));
        }
    }
    if resources.get("tool_groups").is_some_and(holds_something) {
        warnings.push(
            "'registered_resources.tool_groups' is deprecated and will be removed in a future release. Built-in tool \
             groups are now auto-registered based on configured tool_runtime providers. Please remove 'tool_groups' \
             from your configuration."
                .into(),
        );
    }
    let items: &[Value] = match resources.get("models") {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Invalid::new(
                resources.key("models"),
                format!("expected a list of models, found {}", type_name(other)),
                "Write each model as a `- model_id: ...` list entry.",
            ));
        }
    };
    let inference: Vec<&str> = providers.get("inference").map_or(Vec::new(), |p| {
        p.iter().map(|e| e.provider_id.as_str()).collect()
    });
    if inference.is_empty() {
        if !items.is_empty() {
            warnings.push(
                "'registered_resources.models' is ignored: no inference provider is enabled, so models are not served"
                    .into(),
            );
        }
        return Ok(Vec::new());
    }
    let mut out: Vec<ModelEntry> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("{}[{i}]", resources.key("models"));
        let Some(entry) = model(item, &key, &inference, warnings)? else {
            continue;
        };
        match out.iter().find(|m| m.identifier() == entry.identifier()) {
            Some(same) if *same == entry => {}
            Some(_) => {
                return Err(Invalid::new(
                    &key,
                    format!(
                        "model '{}' is registered twice with different settings",
                        entry.identifier()
                    ),
                    "Keep one entry per model id, or give the second a different model_id.",
                ));
            }
            None => out.push(entry),
        }
    }
    Ok(out)
}

/// One model entry; `None` when its provider_id disables it.
fn model(
    item: &Value,
    key: &str,
    inference: &[&str],
    warnings: &mut Vec<String>,
) -> Result<Option<ModelEntry>, Invalid> {
    let m = Section::of(Some(item), key)?.ok_or_else(|| {
        Invalid::new(
            key,
            "is null",
            "Remove the empty list entry, or give it a model_id.",
        )
    })?;
    m.warn_unknown(MODEL_KEYS, warnings);
    let model_id = m.required_string(
        "model_id",
        "Add `model_id:` with the name clients will use.",
    )?;
    if m.map.contains_key("provider_id") && is_disabled(m.map.get("provider_id")) {
        return Ok(None);
    }
    let enabled = || {
        inference
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (provider_id, unprefixed_alias) = match m.string("provider_id")?.as_deref() {
        None if inference.len() == 1 => (inference[0].to_owned(), false),
        None => {
            return Err(Invalid::new(
                m.key("provider_id"),
                format!(
                    "Please specify a provider_id for model {model_id} since multiple providers are available: [{}].",
                    enabled()
                ),
                "Add `provider_id:` naming one of them, or use the provider_id as a prefix to disambiguate, e.g. \
                 'provider_id/model_id'.",
            ));
        }
        Some("all") => (inference[0].to_owned(), true),
        Some(p) if inference.contains(&p) => (p.to_owned(), false),
        Some(p) => {
            return Err(Invalid::new(
                m.key("provider_id"),
                format!("Provider `{p}` not found"),
                format!(
                    "Use the provider_id of an enabled inference provider: {}.",
                    enabled()
                ),
            ));
        }
    };
    let provider_model_id = m
        .string("provider_model_id")?
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| model_id.clone());
    let model_type = m.string("model_type")?.unwrap_or_else(|| "llm".into());
    if !MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(Invalid::new(
            m.key("model_type"),
            format!("unknown model_type '{model_type}'"),
            format!("Use one of: {}.", MODEL_TYPES.join(", ")),
        ));
    }
    let metadata = match m.get("metadata") {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(Invalid::new(
                m.key("metadata"),
                format!("expected a mapping, found {}", type_name(other)),
                "Write metadata as `key: value` lines, or `metadata: {}`.",
            ));
        }
    };
    if model_type == "embedding" && !metadata.contains_key("embedding_dimension") {
        return Err(Invalid::new(
            m.key("metadata"),
            "Embedding model must have an embedding dimension in its metadata",
            "Add `metadata: {embedding_dimension: <vector size>}`, e.g. 768.",
        ));
    }
    Ok(Some(ModelEntry {
        model_id,
        provider_id,
        provider_model_id,
        model_type,
        metadata,
        unprefixed_alias,
    }))
}
