//! Plugin authoring without an ogx checkout: `ogx plugins new` writes a complete provider
//! crate for an OpenAI-compatible upstream, with the plugin SDK copied next to it.
//!
//! Everything it writes is inside this binary: the crate's templates (`template/`) and every
//! file of the SDK (`plugins/sdk/`: its sources and the WIT package it binds), so the binary
//! alone can start a plugin. The SDK is written to `<crate>/vendor/ogx-provider-sdk` and the
//! crate depends on it by that relative path; switching to a registry version is one line of
//! the crate's `Cargo.toml`.
//!
//! Fails, before writing anything, on a name that is not a valid crate name, a provider type
//! without a `remote::`/`inline::` namespace, or a destination that exists and is not empty.

use std::path::{Path, PathBuf};

/// The SDK, file by file (path inside the SDK crate, contents). A test checks that this is
/// every file `cargo package` ships and that its WIT is the repository's, byte for byte.
pub const SDK_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
    ),
    ("README.md", include_str!("../../../plugins/sdk/README.md")),
    (
        "src/config.rs",
        include_str!("../../../plugins/sdk/src/config.rs"),
    ),
    (
        "src/context.rs",
        include_str!("../../../plugins/sdk/src/context.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../plugins/sdk/src/error.rs"),
    ),
    (
        "src/export.rs",
        include_str!("../../../plugins/sdk/src/export.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    ("src/kv.rs", include_str!("../../../plugins/sdk/src/kv.rs")),
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../plugins/sdk/src/log.rs"),
    ),
    (
        "src/provider.rs",
        include_str!("../../../plugins/sdk/src/provider.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../plugins/sdk/src/testing.rs"),
    ),
    (
        "wit/ogx-provider@0.2.0/config.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/config.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/kv.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/kv.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/logging.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/logging.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/outbound-http.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/outbound-http.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/provider.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/provider.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/types.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/types.wit"),
    ),
    (
        "wit/ogx-provider@0.2.0/world.wit",
        include_str!("../../../plugins/sdk/wit/ogx-provider@0.2.0/world.wit"),
    ),
];

/// Where the SDK goes inside a new crate.
pub const VENDORED_SDK_DIR: &str = "vendor/ogx-provider-sdk";

const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

/// What `ogx plugins new` was asked for.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The crate name, e.g. `acme` or `ogx-plugin-acme`.
    pub name: String,
    /// The provider type it serves; `remote::<name>` when not given.
    pub provider_type: Option<String>,
    /// The folder the crate folder is created in.
    pub parent_dir: PathBuf,
}

/// Why a plugin crate could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NewPluginError {
    #[error(
        "`{0}` is not a usable crate name: use lower-case letters, digits, `-` and `_`, starting with a letter (e.g. `acme` or `ogx-plugin-acme`)"
    )]
    BadName(String),
    #[error(
        "`{0}` is not a provider type: use `remote::<name>` (or `inline::<name>`) with lower-case letters, digits, `-` and `_`, e.g. `remote::acme`"
    )]
    BadProviderType(String),
    #[error(
        "{} already exists and is not empty: choose another NAME or --dir, or remove it",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The files of a new plugin crate, paths relative to the crate folder.
pub struct PluginCrate {
    pub dir: PathBuf,
    pub provider_type: String,
    /// The name of the built component file, e.g. `acme.wasm`.
    pub wasm_file: String,
    pub files: Vec<(PathBuf, String)>,
}

fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The SDK line plugins of this ogx build against, e.g. `0.2`.
pub fn sdk_version() -> String {
    let interface = crate::runtime::InterfaceVersion::LATEST.as_str();
    interface
        .rsplit_once('.')
        .map_or(interface, |(major_minor, _)| major_minor)
        .to_owned()
}

/// Renders the crate for `request` without writing it.
pub fn render(request: &NewPlugin) -> Result<PluginCrate, NewPluginError> {
    let name = request.name.as_str();
    if !is_identifier(name) || name.len() > 64 {
        return Err(NewPluginError::BadName(name.to_owned()));
    }
    let provider_type = request
        .provider_type
        .clone()
        .unwrap_or_else(|| format!("remote::{name}"));
    let valid_type = provider_type
        .split_once("::")
        .is_some_and(|(ns, rest)| matches!(ns, "remote" | "inline") && is_identifier(rest));
    if !valid_type {
        return Err(NewPluginError::BadProviderType(provider_type));
    }
    let lib_name = name.replace('-', "_");
    let short = provider_type
        .split_once("::")
        .map_or(name, |(_, rest)| rest)
        .replace('-', "_");
    let vars: [(&str, String); 8] = [
        ("name", name.to_owned()),
        ("lib_name", lib_name.clone()),
        ("provider_type", provider_type.clone()),
        ("key_name", format!("{short}_api_key")),
        ("env_prefix", short.to_ascii_uppercase()),
        (
            "interface",
            crate::runtime::InterfaceVersion::LATEST.as_str().to_owned(),
        ),
        ("sdk_version", sdk_version()),
        ("ogx_version", env!("CARGO_PKG_VERSION").to_owned()),
    ];
    let mut files: Vec<(PathBuf, String)> = TEMPLATES
        .iter()
        .map(|(path, template)| {
            let text = vars
                .iter()
                .fold((*template).to_owned(), |text, (key, value)| {
                    text.replace(&format!("{{{{{key}}}}}"), value)
                });
            (PathBuf::from(path), text)
        })
        .collect();
    files.extend(
        SDK_FILES
            .iter()
            .map(|(path, text)| (Path::new(VENDORED_SDK_DIR).join(path), (*text).to_owned())),
    );
    Ok(PluginCrate {
        dir: request.parent_dir.join(name),
        provider_type,
        wasm_file: format!("{lib_name}.wasm"),
        files,
    })
}

/// Renders and writes the crate; refuses a destination that exists and is not empty.
pub fn write(request: &NewPlugin) -> Result<PluginCrate, NewPluginError> {
    let rendered = render(request)?;
    let occupied = std::fs::read_dir(&rendered.dir).is_ok_and(|mut d| d.next().is_some())
        || rendered.dir.is_file();
    if occupied {
        return Err(NewPluginError::Exists(rendered.dir));
    }
    for (path, text) in &rendered.files {
        let path = rendered.dir.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| NewPluginError::Write { path, source })?;
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests;
