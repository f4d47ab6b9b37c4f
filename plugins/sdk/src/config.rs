//! The host's environment, as far as the plugin may see it.
//!
//! Only the variables the plugin listed in [`crate::Descriptor::env_vars`] are visible; the
//! rest of the host's environment stays hidden. The provider's `config:` block itself arrives
//! typed, in [`crate::Settings::config`]. In native tests the variables are the
//! [`crate::testing`] fake host's.

#[cfg(target_arch = "wasm32")]
use crate::__bindings::ogx::provider::config as wit;

/// The value of environment variable `name`, when the plugin declared it and it is set and
/// not empty.
pub fn env(name: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return wit::get_env(name);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::env(name)
}
