//! The Prompts API's prompts, persisted in the `prompts` store (OGX's `PromptServiceImpl`).
//!
//! A prompt is a template text with declared variables, kept in numbered versions from 1; one
//! version is the default, which `get` without a version and `list` return. Updating adds
//! version latest + 1 and only applies to the latest version (optimistic concurrency, as in
//! OGX). Ids are `pmpt_` + 48 lowercase hex digits; any other id is simply not found.
//!
//! **Layouts.** OGX 1.5.0's, a SQL table (`storage.stores.prompts: {backend, table_name}`;
//! see [`super::prompts_table`]), which OGX and ogx can share; or the earlier key-value layout
//! (`{backend, namespace}`), in the store's namespace: `version:{id}:{version:020}` holds
//! `{"prompt", "variables", "created_at"}` and `default:{id}` holds the default version's
//! number. The rules (versions, defaults, variables) are written once, here, over either
//! layout's few operations ([`Layout`]). Writes are serialized by one lock, so concurrent
//! updates of one prompt in one process cannot both become the same version (in the SQL
//! layout the primary key `<id>:<version>` also refuses the second across processes).
//!
//! **Limits**: those of [`super::kv`]: one version's text and variables up to
//! [`super::kv::MAX_VALUE_BYTES`], [`super::kv::MAX_LISTED_KEYS`] prompts in a listing and
//! versions per prompt, [`super::kv::MAX_NAMESPACE_BYTES`] in all; beyond them a write fails
//! with [`PromptError::Store`] naming the limit.

use super::kv::{KvError, KvNamespace};
use super::prompts_table::PromptTable;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a prompt operation failed. The texts are OGX's.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("Prompt '{0}' not found. Use 'client.prompts.list()' to list available Prompts.")]
    NotFound(String),
    #[error(
        "Prompt version '{version}' not found in prompt '{prompt_id}'. Use 'client.prompts.list_versions(\"{prompt_id}\")' to list available prompt versions."
    )]
    VersionNotFound { version: u64, prompt_id: String },
    /// A request value breaks a rule; the text names the field.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] KvError),
}

/// One version of a prompt, as the API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub prompt_id: String,
    pub prompt: String,
    pub version: u64,
    pub variables: Vec<String>,
    pub is_default: bool,
}

impl Prompt {
    /// A stored version: `data` is `{"prompt", "variables"}` (OGX's `prompt_data`).
    pub fn from_data(prompt_id: String, version: u64, data: &Value, is_default: bool) -> Self {
        Prompt {
            prompt_id,
            prompt: data["prompt"].as_str().unwrap_or_default().to_string(),
            version,
            variables: data["variables"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            is_default,
        }
    }

    /// OGX's `Prompt` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "prompt": self.prompt,
            "version": self.version,
            "prompt_id": self.prompt_id,
            "variables": self.variables,
            "is_default": self.is_default,
        })
    }
}

/// Where the prompts are kept.
#[derive(Debug)]
enum Layout {
    /// A namespace of the host kv store (the earlier layout).
    Kv(KvNamespace),
    /// OGX 1.5.0's table.
    Sql(PromptTable),
}

/// The prompts, in one of the two layouts.
#[derive(Debug)]
pub struct PromptStore {
    layout: Layout,
    writes: tokio::sync::Mutex<()>,
}

impl PromptStore {
    /// Prompts in a namespace of the host kv store.
    pub fn new(kv: KvNamespace) -> Self {
        Self::with(Layout::Kv(kv))
    }

    /// Prompts in OGX 1.5.0's SQL table.
    pub fn in_table(table: PromptTable) -> Self {
        Self::with(Layout::Sql(table))
    }

    fn with(layout: Layout) -> Self {
        PromptStore {
            layout,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// Creates a prompt at version 1, its default.
    pub async fn create(
        &self,
        prompt: &str,
        variables: Vec<String>,
    ) -> Result<Prompt, PromptError> {
        check_variables(prompt, &variables)?;
        let prompt_id = new_prompt_id();
        let _guard = self.writes.lock().await;
        self.put_version(&prompt_id, 1, prompt, &variables, true)
            .await?;
        Ok(Prompt {
            prompt_id,
            prompt: prompt.to_string(),
            version: 1,
            variables,
            is_default: true,
        })
    }

    /// The default version of every prompt, by id in descending order (as OGX lists them).
    pub async fn list(&self) -> Result<Vec<Prompt>, PromptError> {
        let defaults = match &self.layout {
            Layout::Sql(table) => return Ok(table.list_defaults().await?),
            Layout::Kv(kv) => kv.list_keys("default:").await?,
        };
        let mut prompts = Vec::new();
        for key in defaults.iter().rev() {
            let prompt_id = &key["default:".len()..];
            if let Some(version) = self.default_version(prompt_id).await?
                && let Some(prompt) = self.version(prompt_id, version, Some(version)).await?
            {
                prompts.push(prompt);
            }
        }
        Ok(prompts)
    }

    /// One version, or the default one when `version` is `None`.
    pub async fn get(&self, prompt_id: &str, version: Option<u64>) -> Result<Prompt, PromptError> {
        let default = self.existing_default(prompt_id).await;
        match version {
            None => {
                let default = default?;
                self.version(prompt_id, default, Some(default))
                    .await?
                    .ok_or_else(|| PromptError::NotFound(prompt_id.to_string()))
            }
            Some(version) => {
                let default = default.ok();
                self.version(prompt_id, version, default)
                    .await?
                    .ok_or_else(|| PromptError::VersionNotFound {
                        version,
                        prompt_id: prompt_id.to_string(),
                    })
            }
        }
    }

    /// Every version, oldest first.
    pub async fn versions(&self, prompt_id: &str) -> Result<Vec<Prompt>, PromptError> {
        let default = self.existing_default(prompt_id).await?;
        let mut prompts = Vec::new();
        for version in self.version_numbers(prompt_id).await? {
            if let Some(prompt) = self.version(prompt_id, version, Some(default)).await? {
                prompts.push(prompt);
            }
        }
        Ok(prompts)
    }

    /// Adds version latest + 1. `version` must be the latest version; with `set_as_default`
    /// the new version becomes the default.
    pub async fn update(
        &self,
        prompt_id: &str,
        prompt: &str,
        version: i64,
        variables: Vec<String>,
        set_as_default: bool,
    ) -> Result<Prompt, PromptError> {
        if version < 1 {
            return Err(invalid_parameter("version", version, "Must be >= 1."));
        }
        let _guard = self.writes.lock().await;
        let default = self.existing_default(prompt_id).await?;
        let latest = self
            .version_numbers(prompt_id)
            .await?
            .last()
            .copied()
            .unwrap_or(default);
        if version as u64 != latest {
            return Err(invalid_parameter(
                "version",
                version,
                &format!("Must be the latest prompt version '{latest}'."),
            ));
        }
        check_variables(prompt, &variables)?;
        let new_version = latest + 1;
        self.put_version(prompt_id, new_version, prompt, &variables, false)
            .await?;
        if set_as_default {
            self.store_default(prompt_id, new_version).await?;
        }
        Ok(Prompt {
            prompt_id: prompt_id.to_string(),
            prompt: prompt.to_string(),
            version: new_version,
            variables,
            is_default: set_as_default,
        })
    }

    /// Makes `version` the default.
    pub async fn set_default(&self, prompt_id: &str, version: u64) -> Result<Prompt, PromptError> {
        let _guard = self.writes.lock().await;
        let prompt = self
            .version(prompt_id, version, Some(version))
            .await?
            .ok_or_else(|| PromptError::VersionNotFound {
                version,
                prompt_id: prompt_id.to_string(),
            })?;
        self.store_default(prompt_id, version).await?;
        Ok(prompt)
    }

    /// Removes a prompt and all its versions.
    pub async fn delete(&self, prompt_id: &str) -> Result<(), PromptError> {
        let _guard = self.writes.lock().await;
        self.existing_default(prompt_id).await?;
        let kv = match &self.layout {
            Layout::Sql(table) => return Ok(table.delete(prompt_id).await?),
            Layout::Kv(kv) => kv,
        };
        // The default goes first: a prompt without it is gone even if removing a version
        // fails half-way.
        kv.delete(&default_key(prompt_id)).await?;
        for key in kv.list_keys(&versions_prefix(prompt_id)).await? {
            kv.delete(&key).await?;
        }
        Ok(())
    }

    /// The default version of an existing prompt; `NotFound` otherwise.
    async fn existing_default(&self, prompt_id: &str) -> Result<u64, PromptError> {
        self.default_version(prompt_id)
            .await?
            .ok_or_else(|| PromptError::NotFound(prompt_id.to_string()))
    }

    async fn default_version(&self, prompt_id: &str) -> Result<Option<u64>, PromptError> {
        if !is_prompt_id(prompt_id) {
            return Ok(None);
        }
        let kv = match &self.layout {
            Layout::Sql(table) => return Ok(table.default_version(prompt_id).await?),
            Layout::Kv(kv) => kv,
        };
        Ok(kv
            .get(&default_key(prompt_id))
            .await?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse().ok()))
    }

    /// Makes `version` the default.
    async fn store_default(&self, prompt_id: &str, version: u64) -> Result<(), PromptError> {
        match &self.layout {
            Layout::Sql(table) => Ok(table.set_default(prompt_id, version).await?),
            Layout::Kv(kv) => Ok(kv
                .set(&default_key(prompt_id), version.to_string().into_bytes())
                .await?),
        }
    }

    async fn version_numbers(&self, prompt_id: &str) -> Result<Vec<u64>, PromptError> {
        let prefix = versions_prefix(prompt_id);
        let kv = match &self.layout {
            Layout::Sql(table) => return Ok(table.version_numbers(prompt_id).await?),
            Layout::Kv(kv) => kv,
        };
        Ok(kv
            .list_keys(&prefix)
            .await?
            .iter()
            .filter_map(|key| key[prefix.len()..].parse().ok())
            .collect())
    }

    /// One stored version; `default` says which version is the default.
    async fn version(
        &self,
        prompt_id: &str,
        version: u64,
        default: Option<u64>,
    ) -> Result<Option<Prompt>, PromptError> {
        if !is_prompt_id(prompt_id) {
            return Ok(None);
        }
        let stored = match &self.layout {
            Layout::Sql(table) => table.prompt_data(prompt_id, version).await?,
            Layout::Kv(kv) => kv
                .get(&version_key(prompt_id, version))
                .await?
                .map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
        };
        Ok(stored.map(|data| {
            Prompt::from_data(
                prompt_id.to_string(),
                version,
                &data,
                default == Some(version),
            )
        }))
    }

    /// Stores a version; `is_default` makes it the default at once (a new prompt's version 1).
    async fn put_version(
        &self,
        prompt_id: &str,
        version: u64,
        prompt: &str,
        variables: &[String],
        is_default: bool,
    ) -> Result<(), PromptError> {
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let data = json!({ "prompt": prompt, "variables": variables });
        match &self.layout {
            Layout::Sql(table) => {
                table
                    .insert(prompt_id, version, is_default, created_at, data)
                    .await?
            }
            Layout::Kv(kv) => {
                let mut value = data;
                value["created_at"] = created_at.into();
                kv.set(
                    &version_key(prompt_id, version),
                    value.to_string().into_bytes(),
                )
                .await?;
                if is_default {
                    self.store_default(prompt_id, version).await?;
                }
            }
        }
        Ok(())
    }
}

fn default_key(prompt_id: &str) -> String {
    format!("default:{prompt_id}")
}

fn versions_prefix(prompt_id: &str) -> String {
    format!("version:{prompt_id}:")
}

/// Zero-padded so that the keys sort by version.
fn version_key(prompt_id: &str, version: u64) -> String {
    format!("{}{version:020}", versions_prefix(prompt_id))
}

/// OGX's `InvalidParameterError` text.
fn invalid_parameter(field: &str, value: impl std::fmt::Display, constraint: &str) -> PromptError {
    PromptError::Invalid(format!(
        "Invalid value for '{field}': {value}. {constraint}"
    ))
}

/// `pmpt_` and 48 lowercase hex digits (24 random bytes).
fn new_prompt_id() -> String {
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    // A v4 UUID's 13th hex digit is always `4`; skipping it keeps the id's digits random.
    let digits: String = random
        .char_indices()
        .filter(|(i, _)| i % 32 != 12)
        .map(|(_, c)| c)
        .take(48)
        .collect();
    format!("pmpt_{digits}")
}

fn is_prompt_id(id: &str) -> bool {
    id.strip_prefix("pmpt_").is_some_and(|hex| {
        hex.len() == 48 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// OGX's rule: every `{{ name }}` in the text must be among `variables`.
fn check_variables(prompt: &str, variables: &[String]) -> Result<(), PromptError> {
    static PATTERN: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\{\{\s*(\w+)\s*\}\}").expect("a valid pattern"));
    let undeclared: BTreeSet<&str> = PATTERN
        .captures_iter(prompt)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str())
        .filter(|name| !variables.iter().any(|v| v == name))
        .collect();
    if undeclared.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = undeclared.iter().map(|n| format!("'{n}'")).collect();
    Err(PromptError::Invalid(format!(
        "Prompt contains undeclared variables: [{}]",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::kv::KvStore;
    use std::sync::Arc;

    fn store_at(path: &std::path::Path) -> PromptStore {
        PromptStore::new(Arc::new(KvStore::open_host(Some(path)).unwrap()).namespace("prompts"))
    }

    #[test]
    fn undeclared_variables_are_named_sorted() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("Hello {{ name }}", &["name"], None),
            ("Hello {{name}} {{  place }}", &["name", "place"], None),
            ("No variables, {single} braces", &[], None),
            (
                "{{ b }} {{a}} {{ b }}",
                &[],
                Some("Prompt contains undeclared variables: ['a', 'b']"),
            ),
            ("{{ a-b }} is not a variable", &[], None),
        ];
        for (text, declared, expected) in cases {
            let declared: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
            let result = check_variables(text, &declared)
                .err()
                .map(|e| e.to_string());
            assert_eq!(result.as_deref(), *expected, "{text}");
        }
    }

    #[test]
    fn ids_have_ogx_format() {
        let id = new_prompt_id();
        assert!(is_prompt_id(&id), "{id}");
        assert_ne!(id, new_prompt_id());
        for bad in [
            "pmpt_",
            "pmpt_XYZ",
            "other",
            &format!("{id}0"),
            &id.to_uppercase(),
        ] {
            assert!(!is_prompt_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn versions_defaults_and_persistence_in_the_kv_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.db");
        versions_defaults_and_persistence(&|| store_at(&path)).await;
    }

    #[tokio::test]
    async fn versions_defaults_and_persistence_in_ogx_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql_store.db");
        let open = || {
            let db = Arc::new(crate::storage::sql::SqlDatabase::open_sqlite(&path).unwrap());
            PromptStore::in_table(
                super::super::prompts_table::PromptTable::on(db, "prompts").unwrap(),
            )
        };
        versions_defaults_and_persistence(&open).await;
    }

    async fn versions_defaults_and_persistence(open: &dyn Fn() -> PromptStore) {
        let store = open();
        let created = store
            .create("Hi {{ name }}", vec!["name".into()])
            .await
            .unwrap();
        let id = created.prompt_id.clone();
        assert_eq!((created.version, created.is_default), (1, true));
        let error = store.update(&id, "x", 2, vec![], true).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid value for 'version': 2. Must be the latest prompt version '1'."
        );
        let v2 = store.update(&id, "Second", 1, vec![], false).await.unwrap();
        assert_eq!((v2.version, v2.is_default), (2, false));
        assert_eq!(store.get(&id, None).await.unwrap().version, 1);
        let v3 = store.update(&id, "Third", 2, vec![], true).await.unwrap();
        assert_eq!((v3.version, v3.is_default), (3, true));
        store.set_default(&id, 2).await.unwrap();
        drop(store);

        let store = open();
        let listed = store.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].version, listed[0].prompt.as_str()),
            (2, "Second")
        );
        let versions = store.versions(&id).await.unwrap();
        let summary: Vec<(u64, bool)> =
            versions.iter().map(|p| (p.version, p.is_default)).collect();
        assert_eq!(summary, [(1, false), (2, true), (3, false)]);
        assert!(matches!(
            store.get(&id, Some(9)).await,
            Err(PromptError::VersionNotFound { version: 9, .. })
        ));
        store.delete(&id).await.unwrap();
        assert!(matches!(
            store.get(&id, None).await,
            Err(PromptError::NotFound(_))
        ));
        assert!(matches!(
            store.delete(&id).await,
            Err(PromptError::NotFound(_))
        ));
        assert!(store.list().await.unwrap().is_empty());
    }
}
