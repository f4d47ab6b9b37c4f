//! Limits applied to every plugin call. Each is a named constant with an override in the run
//! config (`plugins.limits`) and in the environment.

use std::time::Duration;

/// The limits in force.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    pub memory_bytes: usize,
    pub call_timeout: Duration,
}
