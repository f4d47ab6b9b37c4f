//! The plugin authors' commands' arguments, and `ogx plugins new`: write a provider crate
//! (see [`crate::authoring`]) and say how to build, check and serve it.
//!
//! Fails with the reason and the fix (a bad name or type, an occupied folder, a write error).

use crate::authoring::{self, NewPlugin};
use clap::Args;
use std::path::PathBuf;

/// Options of `ogx plugins new`.
#[derive(Args, Debug, Clone)]
pub struct PluginsNewArgs {
    /// The crate name (and its folder), e.g. `acme` or `ogx-plugin-acme`.
    pub name: String,
    /// The provider type it serves [default: remote::NAME].
    #[arg(long = "type", value_name = "PROVIDER_TYPE")]
    pub provider_type: Option<String>,
    /// The folder to create the crate folder in [default: the current directory].
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// Options of `ogx plugins validate`.
#[derive(Args, Debug, Clone)]
pub struct PluginsValidateArgs {
    /// The plugin's `.wasm` file.
    pub file: PathBuf,
    /// The provider's `config:` block (YAML or JSON), or a run config with an entry of one of
    /// the plugin's provider types; `init` runs with it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Which provider type to initialise [default: the config entry's, else the plugin's first].
    #[arg(long = "type", value_name = "PROVIDER_TYPE")]
    pub provider_type: Option<String>,
}

/// Options of `ogx plugins call`.
#[derive(Args, Debug, Clone)]
pub struct PluginsCallArgs {
    /// The plugin's `.wasm` file.
    pub file: PathBuf,
    /// The provider's `config:` block (YAML or JSON), or a run config with an entry of one of
    /// the plugin's provider types.
    #[arg(long)]
    pub config: PathBuf,
    /// The request body (JSON file). Without it, the models are listed.
    #[arg(long, value_name = "REQUEST.json")]
    pub request: Option<PathBuf>,
    /// chat, completion, embeddings, messages, count-tokens, models or health [default: from
    /// the body: `messages` → chat, `prompt` → completion, `input` → embeddings; streamed
    /// when it says `"stream": true`].
    #[arg(long)]
    pub operation: Option<String>,
    /// Which provider type to call [default: the config entry's, else the plugin's first].
    #[arg(long = "type", value_name = "PROVIDER_TYPE")]
    pub provider_type: Option<String>,
    /// The `x-ogx-provider-data` object to send (JSON), e.g. a per-request key.
    #[arg(long, value_name = "JSON")]
    pub provider_data: Option<String>,
}

pub fn new(args: PluginsNewArgs) -> anyhow::Result<()> {
    let written = authoring::write(&NewPlugin {
        name: args.name,
        provider_type: args.provider_type,
        parent_dir: args.dir,
    })?;
    let dir = written.dir.display();
    let wasm = &written.wasm_file;
    println!(
        "Created {dir}: a provider plugin serving {}, with ogx-provider-sdk {} in {dir}/{}.",
        written.provider_type,
        authoring::sdk_version(),
        authoring::VENDORED_SDK_DIR
    );
    println!();
    println!("  cd {dir}");
    println!("  cargo test                                   # native unit tests");
    println!("  cargo build --target wasm32-wasip2 --release");
    println!("  ogx plugins validate target/wasm32-wasip2/release/{wasm} --config provider.yaml");
    println!(
        "  cp target/wasm32-wasip2/release/{wasm} ~/.ogx/plugins/   # then name {} in a run config",
        written.provider_type
    );
    Ok(())
}
