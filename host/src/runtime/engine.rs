//! The wasmtime engine shared by all plugins: pooling allocator, epoch interruption with a
//! ticker, and the linker with the host imports of every interface version served.
//!
//! Engine: component model on, CM-async off (the WIT is P2-style; calls are cheaper), epoch
//! interruption, copy-on-write memory images, cranelift `Speed`, and the pooling allocator
//! sized from [`RuntimeLimits`]. If the pooling reservation fails (small address space,
//! `ulimit -v`), the engine falls back to on-demand allocation and logs why: slower
//! instantiation, same limits.
//!
//! Linker: the four `ogx:provider` imports of each served version (`@0.1.0` and `@0.2.0` side
//! by side: their names differ), and from WASI only `cli`, `clocks`, `random`, `io` and
//! `filesystem` (with no preopens). `wasi:sockets` and `wasi:http` are deliberately not
//! linked, so a plugin that imports them fails at load (see `discovery`), not at run time.
//!
//! The epoch ticker is one OS thread (`ogx-epoch-ticker`) holding a weak engine reference;
//! it stops by itself once the engine is gone.

use super::RuntimeLimits;
use super::bindings::{since_v0_1, since_v0_2};
use super::instance::{HostState, Sandbox};
use super::limits::EPOCH_TICK_MS;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// Core instances one plugin component may need (its module plus the WASI adapter's shims).
pub const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories one plugin component may need (its own plus the WASI adapter's).
pub const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one plugin component may need.
pub const TABLES_PER_COMPONENT: u32 = 8;
/// Table memory of a finished instance kept resident and reset in place (tables are small;
/// see `limits::DEFAULT_KEEP_RESIDENT_KB` for why resetting in place pays).
pub const TABLE_KEEP_RESIDENT_MAX_BYTES: usize = 64 * 1024;
/// Slot decommits the pooling allocator gathers into one batch of `madvise` calls, so the
/// pages that are still returned cost one TLB shoot-down per batch, not one per instance.
pub const DECOMMIT_BATCH_SIZE: usize = 16;

/// The engine (with its ticker running), the slots in front of it, and the linker.
pub(crate) fn start(limits: &RuntimeLimits) -> anyhow::Result<(Arc<Sandbox>, Linker<HostState>)> {
    let engine = build_engine(limits)?;
    start_epoch_ticker(&engine);
    let linker = build_linker(&engine)
        .map_err(|e| anyhow::anyhow!("could not link the host imports: {e}"))?;
    let sandbox = Arc::new(Sandbox {
        engine,
        limits: limits.clone(),
        slots: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
    });
    Ok((sandbox, linker))
}

/// The engine configuration shared by the pooling and on-demand variants.
fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .concurrency_support(false)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

/// The engine: pooling if the reservation succeeds, on-demand otherwise.
fn build_engine(limits: &RuntimeLimits) -> anyhow::Result<Engine> {
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(n)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        .table_keep_resident(
            limits
                .keep_resident_bytes
                .min(TABLE_KEEP_RESIDENT_MAX_BYTES),
        )
        .pagemap_scan(wasmtime::Enabled::Auto)
        .decommit_batch_size(DECOMMIT_BATCH_SIZE);
    let mut pooled = base_config();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(
                "the pooling allocator could not reserve memory for {n} instances ({e}); \
                 falling back to on-demand allocation (slower instantiation). \
                 Lower plugins.limits.max_instances or raise the address-space limit to fix it"
            );
            Engine::new(&base_config())
                .map_err(|e| anyhow::anyhow!("could not create the WebAssembly engine: {e}"))
        }
    }
}

/// Starts the thread that advances the engine's epoch every `EPOCH_TICK_MS`.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("ogx-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the epoch ticker; CPU budgets will not be enforced: {e}");
    }
}

/// `HasData` for the `wasi:io` bindings, which work on the resource table alone.
struct WasiIo;

impl HasData for WasiIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The linker: the `ogx:provider` imports of every served version and the allowed subset of
/// WASI p2.
pub(crate) fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
    use wasmtime_wasi::{
        WasiView, cli::WasiCli, clocks::WasiClocks, filesystem::WasiFilesystem, random::WasiRandom,
    };
    type T = HostState;
    let mut linker: Linker<T> = Linker::new(engine);
    let l = &mut linker;
    io::error::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, |t| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(t)
    })?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, |t| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(t)
    })?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, cli_view)?;
    fn cli_view(t: &mut T) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliView::cli(t)
    }
    since_v0_1::Plugin::add_to_linker::<T, HasSelf<T>>(l, |t| t)?;
    since_v0_2::Plugin::add_to_linker::<T, HasSelf<T>>(l, |t| t)?;
    Ok(linker)
}
