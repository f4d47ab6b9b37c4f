//! The host imports of one configured provider, set up in one place when a config entry is
//! bound to its plugin: the egress policy (the hosts the plugin declared, plus the endpoints
//! the operator named in the declared `AWS_ENDPOINT_URL*` variables, narrowed by the
//! operator's `plugins.policy`), the provider's memory and time limits from that policy, the
//! pooled HTTP client
//! with its extra CA bundles, the entry's `network:` settings (timeouts, default headers, TLS
//! verification), the AWS identity that signs `aws-sigv4` requests and the OCI one that
//! signs `oci-signature` requests, the view
//! of the declared environment variables, and the provider's `kv` namespace.
//!
//! The entry's secrets are registered with [`crate::secrets`] here, so that nothing the
//! host sends on the provider's behalf can come back out: the `config:` values under secret
//! keys, the credential values of `network.headers`, and the values of the secret
//! environment variables the plugin declares (`OPENAI_API_KEY`, `AWS_SESSION_TOKEN`, ...).
//!
//! Every environment variable involved is read through the runtime's one [`Environment`], so
//! a runtime started with an injected environment (tests) sees nothing of the process's.
//!
//! Fails with a reason (a bad host pattern, a policy memory limit above the runtime's, an
//! invalid AWS setting in the config block, a CA
//! file that cannot be read), which the caller wraps with the provider id and the plugin file.

use super::instance::{ProviderHandles, ProviderLimits};
use super::{Descriptor, RuntimeLimits};
use crate::config::network::{NetworkSettings, TlsVerify};
use crate::config::plugin_policy::{EffectivePolicy, Setting};
use crate::environment::Environment;
use crate::imports::aws::{AwsIdentity, AwsSigner, endpoint_override_hosts};
use crate::imports::config::EnvView;
use crate::imports::http::{ClientOptions, EgressPolicy, OutboundClient};
use crate::imports::kv::KvStore;
use crate::imports::oci::OciSigner;
use crate::secrets;
use std::sync::Arc;
use std::time::Duration;

/// What the run config says about one provider entry.
pub(crate) struct EntrySettings<'a> {
    pub provider_id: &'a str,
    /// The `config:` block.
    pub config: &'a serde_json::Value,
    /// The `network:` block.
    pub network: &'a NetworkSettings,
    /// `plugins.policy`, merged for this provider.
    pub policy: &'a EffectivePolicy,
}

/// The imports of the provider `entry` describes, whose plugin is described by `descriptor`,
/// in a runtime with `limits`.
pub(crate) fn handles(
    descriptor: &Descriptor,
    entry: EntrySettings<'_>,
    env: &Environment,
    kv: &Arc<KvStore>,
    limits: &RuntimeLimits,
) -> Result<Arc<ProviderHandles>, String> {
    let EntrySettings {
        provider_id,
        config,
        network,
        policy: operator,
    } = entry;
    register_secrets(descriptor, config, network, env);
    let mut outbound_hosts = descriptor.outbound_hosts.clone();
    outbound_hosts.extend(endpoint_override_hosts(&descriptor.env_vars, env));
    let policy = EgressPolicy::new(&outbound_hosts, false)
        .map_err(|e| e.to_string())?
        .with_operator(operator)?;
    let provider_limits = provider_limits(operator, limits)?;
    // The provider's AWS settings (static keys, role, profile) stay in the host; the plugin
    // only asks for `aws-sigv4` signing.
    let identity =
        AwsIdentity::from_provider_config(config, env.clone()).map_err(|e| e.to_string())?;
    let mut options = ClientOptions {
        extra_ca_files: ClientOptions::ca_files_from_env(&env.lookup()),
        signer: Some(Arc::new(AwsSigner::new(identity))),
        // Reads the profile the plugin names (`oci_config_file_path`, `oci_config_profile`).
        oci_signer: Some(Arc::new(OciSigner::new(env.clone()))),
        default_headers: network.headers.clone(),
        ..ClientOptions::default()
    };
    if let Some(connect) = network.connect_timeout {
        options.connect_timeout = connect;
    }
    if let Some(total) = network.total_timeout {
        options.default_timeout = total;
    }
    match &network.verify {
        TlsVerify::System => {}
        TlsVerify::Off => options.accept_invalid_certs = true,
        TlsVerify::CaFile(file) => options.extra_ca_files.push(file.clone()),
    }
    let http = OutboundClient::new(policy, options).map_err(|e| e.to_string())?;
    Ok(Arc::new(ProviderHandles {
        http,
        env: EnvView::new(descriptor.env_vars.iter(), env.clone()),
        kv: kv.namespace(provider_id),
        limits: provider_limits,
    }))
}

/// The memory and time limits `plugins.policy` sets for the provider. Memory may not exceed
/// the runtime's slot size (the pooling allocator cannot give more).
fn provider_limits(
    policy: &EffectivePolicy,
    limits: &RuntimeLimits,
) -> Result<ProviderLimits, String> {
    let memory_bytes = match &policy.memory_mb {
        None => None,
        Some(Setting { value: mb, key }) => {
            let bytes = usize::try_from(*mb)
                .ok()
                .and_then(|mb| mb.checked_mul(1024 * 1024))
                .filter(|bytes| *bytes <= limits.memory_bytes);
            Some(bytes.ok_or_else(|| {
                format!(
                    "{key} is {mb} MiB, above the {} MiB every plugin instance is given; lower it, or raise plugins.limits.memory_mb",
                    limits.memory_bytes / (1024 * 1024)
                )
            })?)
        }
    };
    Ok(ProviderLimits {
        memory_bytes,
        call_timeout: policy
            .call_timeout_ms
            .as_ref()
            .map(|s| Duration::from_millis(s.value)),
    })
}

/// Registers the entry's secrets process-wide (see the module documentation).
fn register_secrets(
    descriptor: &Descriptor,
    config: &serde_json::Value,
    network: &NetworkSettings,
    env: &Environment,
) {
    secrets::register(secrets::secret_values(config));
    secrets::register(
        network
            .headers
            .iter()
            .filter(|(name, _)| secrets::is_credential_header(name))
            .map(|(_, value)| value),
    );
    secrets::register(
        descriptor
            .env_vars
            .iter()
            .filter(|name| secrets::is_secret_key(name))
            .filter_map(|name| env.get(name)),
    );
}
