//! The command line: `ogx run CONFIG|DISTRIBUTION` starts the server (OGX 1.5.0's main
//! command; `ogx stack run` is its deprecated spelling, which warns as OGX does); `ogx plugins
//! list` shows the plugins found and why any could not be loaded; `ogx plugins new`,
//! `validate` and `call` are for plugin authors (see `plugins_authoring`).
//!
//! Errors are printed as one `error: ...` paragraph that says what to fix, and the process
//! exits with status 1 (2 for a command-line mistake, from clap).

mod plugins;
mod plugins_authoring;
mod plugins_check;
mod run;

pub use plugins_authoring::{PluginsCallArgs, PluginsNewArgs, PluginsValidateArgs};

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ogx",
    version,
    about = "An OpenAI-compatible model gateway with WebAssembly provider plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an OGX run config (version 2) or a distribution shipped with ogx (e.g. `starter`).
    Run(RunArgs),
    /// OGX's command group; `ogx stack run` is the deprecated spelling of `ogx run`.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Inspect provider plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum StackCommand {
    /// Deprecated: use `ogx run` (same arguments).
    Run(RunArgs),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List the plugins found on the search path, their provider types and any load error.
    List(PluginsListArgs),
    /// Write a new provider plugin crate for an OpenAI-compatible upstream.
    New(PluginsNewArgs),
    /// Load one plugin file through every stage (and `init` with a config), and describe it.
    Validate(PluginsValidateArgs),
    /// Run one operation of one plugin file against its upstream, without a server.
    Call(PluginsCallArgs),
}

/// Options of `ogx run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The run config (YAML, OGX version 2): a file, the name of a distribution shipped with
    /// ogx (nvidia, oci, open-benchmark, postgres-demo, starter, watsonx), `DISTRO::FILE.yaml`,
    /// or a built distribution under $OGX_CONFIG_DIR/distributions.
    #[arg(value_name = "CONFIG | DISTRO")]
    pub config: Option<String>,
    /// Port to listen on [default: $OGX_PORT, else server.port, else 8321].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on [default: server.host, else all interfaces].
    #[arg(long)]
    pub host: Option<String>,
    /// A directory of plugin `.wasm` files, searched before the others (repeatable).
    #[arg(long = "plugins-dir", value_name = "DIR")]
    pub plugins_dirs: Vec<PathBuf>,
    /// OGX's "allow running without TLS certificates": accepted; ogx serves plain HTTP
    /// whenever server.tls_certfile/tls_keyfile are not set.
    #[arg(long)]
    pub insecure: bool,
    /// Validate the config and its providers, print the config with secrets hidden, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// OGX's web UI: ogx has none; accepted with a warning.
    #[arg(long)]
    pub enable_ui: bool,
    /// OGX's `api=provider_type,...` stack without a config: not supported by ogx (refused with
    /// the alternative).
    #[arg(long, value_name = "SPEC")]
    pub providers: Option<String>,
}

/// Options of `ogx plugins list`.
#[derive(Args, Debug, Clone)]
pub struct PluginsListArgs {
    /// A directory of plugin `.wasm` files, searched before the others (repeatable).
    #[arg(long = "plugins-dir", value_name = "DIR")]
    pub plugins_dirs: Vec<PathBuf>,
    /// A run config whose directory (`<dir>/plugins`) and `plugins:` section add to the search path.
    #[arg(long, conflicts_with = "server")]
    pub config: Option<PathBuf>,
    /// Show what a running server serves now (its `/v1/inspect/plugins`) instead of searching
    /// this machine, e.g. `--server http://127.0.0.1:8321`.
    #[arg(long, value_name = "URL", conflicts_with = "plugins_dirs")]
    pub server: Option<String>,
    /// The API key sent to `--server` as a bearer token, for a server that requires one.
    #[arg(long, env = "OGX_API_KEY", hide_env_values = true, requires = "server")]
    pub api_key: Option<String>,
}

/// Runs the command line and gives the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logging() {
        return fail(anyhow::anyhow!(error));
    }
    crate::secrets::log::install_panic_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(anyhow::anyhow!("cannot start the async runtime: {error}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Stack {
                command: StackCommand::Run(args),
            } => {
                // OGX's FutureWarning, word for word.
                eprintln!(
                    "FutureWarning: 'ogx stack run' is deprecated and will be removed in a future release. Use 'ogx run' instead."
                );
                run::run(args).await
            }
            Command::Plugins {
                command: PluginsCommand::List(args),
            } => plugins::list(args).await,
            Command::Plugins {
                command: PluginsCommand::New(args),
            } => plugins_authoring::new(args),
            Command::Plugins {
                command: PluginsCommand::Validate(args),
            } => plugins_check::validate(args).await,
            Command::Plugins {
                command: PluginsCommand::Call(args),
            } => plugins_check::call(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    let text = format!("error: {error:#}");
    eprintln!("{}", crate::secrets::global().scrub_str(&text));
    ExitCode::FAILURE
}

/// Logs go to stderr, scrubbed of every secret the host knows, as `OGX_LOG_FORMAT` says (text
/// or JSON). `RUST_LOG` sets the filter; otherwise OGX's `OGX_LOGGING` (`all=debug`,
/// `server=warning,...`); otherwise `info`. Fails on an `OGX_LOG_FORMAT` that is not a format.
fn init_logging() -> Result<(), String> {
    use crate::telemetry::logs;
    let env = crate::environment::Environment::process();
    let format = logs::LogFormat::parse(env.get("OGX_LOG_FORMAT").as_deref())?;
    let (filter, problems) = match (env.get("RUST_LOG"), env.get("OGX_LOGGING")) {
        (Some(filter), _) => (filter, Vec::new()),
        (None, Some(spec)) => logs::ogx_logging_directives(&spec),
        (None, None) => ("info".to_string(), Vec::new()),
    };
    logs::install(format, &filter);
    for problem in problems {
        tracing::warn!("{problem}; it is ignored");
    }
    Ok(())
}
