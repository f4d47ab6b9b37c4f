//! The command line: `ogx run CONFIG|DISTRIBUTION` starts the server (OGX 1.5.0's main
//! command; `ogx stack run` is its deprecated spelling, which warns as OGX does); `ogx plugins
//! list` shows the plugins found and why any could not be loaded.
//!
//! Errors are printed as one `error: ...` paragraph that says what to fix, and the process
//! exits with status 1 (2 for a command-line mistake, from clap).

mod plugins;
mod run;

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
    init_logging();
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
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// Logs go to stderr. `RUST_LOG` sets the filter; otherwise OGX's `OGX_LOGGING`
/// (`all=debug`) sets the level; otherwise `info`.
fn init_logging() {
    let env = crate::environment::Environment::process();
    let filter = env.get("RUST_LOG").or_else(|| {
        let spec = env.get("OGX_LOGGING")?;
        spec.split([',', ';']).find_map(|part| {
            let (category, level) = part.split_once('=')?;
            (category.trim() == "all").then(|| level.trim().to_lowercase())
        })
    });
    let filter = tracing_subscriber::EnvFilter::try_new(filter.as_deref().unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
