//! Limits applied to every plugin call. Each is a named constant with an override in the run
//! config (`plugins.limits`) and in the environment (`OGX_PLUGIN_*`, which wins over the
//! config file).
//!
//! A plugin that exceeds a limit fails only the call it is serving: a blown memory limit or
//! CPU budget traps (`CallError::Trap`), a call that runs out of wall-clock time is abandoned
//! (`CallError::Timeout`). An override that is not a positive integer is an error at start-up
//! naming the variable, never silently ignored.

use std::time::Duration;

/// Linear memory one plugin instance may grow to. Provider adapters parse and build JSON of
/// at most a few MiB; 64 MiB leaves room without letting one request eat the host.
pub const DEFAULT_MEMORY_MB: usize = 64;

/// Wall-clock time for one call (instantiation, `init` and the operation, including the
/// upstream HTTP exchange). Long generations without streaming can take minutes.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 300_000;

/// Longest wait for one chunk of a streamed answer before the stream is abandoned.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 120_000;

/// Interval of the epoch ticker. Every tick a running guest yields to tokio, so a busy
/// plugin cannot starve other requests on its worker thread.
pub const EPOCH_TICK_MS: u64 = 10;

/// Guest CPU time one call (or one `next()` of a stream) may use, in epoch ticks
/// (`EPOCH_TICK_MS` each; 1000 ticks ≈ 10 s). Time spent waiting in host calls (HTTP) does
/// not count. Adapters only shuffle JSON, so this is generous.
pub const DEFAULT_CPU_BUDGET_TICKS: u64 = 1_000;

/// Instances alive at once, across all plugins: the size of the pooling allocator and of the
/// semaphore in front of it. A call waits for a free slot (within its timeout). A stream
/// holds its slot until it ends.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;

/// Linear memory (per instance slot) that the pooling allocator resets with `memset` rather
/// than returning to the kernel when an instance ends, in KiB. Returning it (`madvise`) costs a
/// TLB shoot-down on every core and a page fault per page on the next request, which made up
/// about half of the CPU per request; resetting only the pages a plugin dirtied (found with
/// Linux's `PAGEMAP_SCAN` where the kernel has it) is much cheaper. The price is memory: each
/// slot used so far keeps up to this much resident, and the slots in use grow with the
/// concurrency of requests. `0` returns everything. Override: `$OGX_PLUGIN_KEEP_RESIDENT_KB`.
pub const DEFAULT_KEEP_RESIDENT_KB: u64 = 2 * 1024;

/// The limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock limit of one call.
    pub call_timeout: Duration,
    /// Wall-clock limit of one `next()` of a stream.
    pub stream_idle_timeout: Duration,
    /// Guest CPU per call, in epoch ticks.
    pub cpu_budget_ticks: u64,
    /// Instances alive at once.
    pub max_instances: u32,
    /// Memory of a finished instance's slot kept resident and reset in place, in bytes.
    pub keep_resident_bytes: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            memory_bytes: DEFAULT_MEMORY_MB * 1024 * 1024,
            call_timeout: Duration::from_millis(DEFAULT_CALL_TIMEOUT_MS),
            stream_idle_timeout: Duration::from_millis(DEFAULT_STREAM_IDLE_TIMEOUT_MS),
            cpu_budget_ticks: DEFAULT_CPU_BUDGET_TICKS,
            max_instances: DEFAULT_MAX_INSTANCES,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_KB as usize * 1024,
        }
    }
}

/// The `plugins.limits` block of the run config; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub memory_mb: Option<u64>,
    pub call_timeout_ms: Option<u64>,
    pub stream_idle_timeout_ms: Option<u64>,
    pub cpu_budget_ticks: Option<u64>,
    pub max_instances: Option<u64>,
    pub keep_resident_kb: Option<u64>,
}

/// Environment variables that override `plugins.limits`, with the field each one sets.
pub const ENV_OVERRIDES: [(&str, &str); 6] = [
    ("OGX_PLUGIN_MEMORY_MB", "memory_mb"),
    ("OGX_PLUGIN_CALL_TIMEOUT_MS", "call_timeout_ms"),
    (
        "OGX_PLUGIN_STREAM_IDLE_TIMEOUT_MS",
        "stream_idle_timeout_ms",
    ),
    ("OGX_PLUGIN_CPU_BUDGET_TICKS", "cpu_budget_ticks"),
    ("OGX_PLUGIN_MAX_INSTANCES", "max_instances"),
    ("OGX_PLUGIN_KEEP_RESIDENT_KB", "keep_resident_kb"),
];

impl RuntimeLimits {
    /// The defaults, overridden by the config's `plugins.limits`, then by the environment
    /// (`env` looks a variable up; pass `Environment::process().lookup()` for the process's).
    pub fn from_overrides(
        config: &LimitOverrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut merged = config.clone();
        for (var, field) in ENV_OVERRIDES {
            let Some(value) =
                crate::config::env::whole_number(&env, var, "unset it or give a positive integer")?
            else {
                continue;
            };
            let slot = match field {
                "memory_mb" => &mut merged.memory_mb,
                "call_timeout_ms" => &mut merged.call_timeout_ms,
                "stream_idle_timeout_ms" => &mut merged.stream_idle_timeout_ms,
                "cpu_budget_ticks" => &mut merged.cpu_budget_ticks,
                "keep_resident_kb" => &mut merged.keep_resident_kb,
                _ => &mut merged.max_instances,
            };
            *slot = Some(value);
        }
        let positive = |name: &str, v: Option<u64>| -> anyhow::Result<Option<u64>> {
            match v {
                Some(0) => anyhow::bail!("plugins.limits.{name} must be greater than 0"),
                other => Ok(other),
            }
        };
        let mut limits = RuntimeLimits::default();
        if let Some(mb) = positive("memory_mb", merged.memory_mb)? {
            limits.memory_bytes = usize::try_from(mb)
                .ok()
                .and_then(|mb| mb.checked_mul(1024 * 1024))
                .ok_or_else(|| anyhow::anyhow!("plugins.limits.memory_mb={mb} is too large"))?;
        }
        if let Some(ms) = positive("call_timeout_ms", merged.call_timeout_ms)? {
            limits.call_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = positive("stream_idle_timeout_ms", merged.stream_idle_timeout_ms)? {
            limits.stream_idle_timeout = Duration::from_millis(ms);
        }
        if let Some(ticks) = positive("cpu_budget_ticks", merged.cpu_budget_ticks)? {
            limits.cpu_budget_ticks = ticks;
        }
        if let Some(n) = positive("max_instances", merged.max_instances)? {
            limits.max_instances = u32::try_from(n)
                .map_err(|_| anyhow::anyhow!("plugins.limits.max_instances={n} is too large"))?;
        }
        // 0 is allowed: it returns every page to the kernel.
        if let Some(kb) = merged.keep_resident_kb {
            limits.keep_resident_bytes = usize::try_from(kb)
                .ok()
                .and_then(|kb| kb.checked_mul(1024))
                .ok_or_else(|| anyhow::anyhow!("OGX_PLUGIN_KEEP_RESIDENT_KB={kb} is too large"))?;
        }
        Ok(limits)
    }
}
