//! The host imports of one configured provider, set up in one place when a config entry is
//! bound to its plugin: the egress policy (the hosts the plugin declared, plus the endpoints
//! the operator named in the declared `AWS_ENDPOINT_URL*` variables), the pooled HTTP client
//! with its extra CA bundles, the entry's `network:` settings (timeouts, default headers, TLS
//! verification) and the AWS identity that signs `aws-sigv4` requests, the view
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
//! Fails with a reason (a bad host pattern, an invalid AWS setting in the config block, a CA
//! file that cannot be read), which the caller wraps with the provider id and the plugin file.

use super::Descriptor;
use super::instance::ProviderHandles;
use crate::config::network::{NetworkSettings, TlsVerify};
use crate::environment::Environment;
use crate::imports::aws::{AwsIdentity, AwsSigner, endpoint_override_hosts};
use crate::imports::config::EnvView;
use crate::imports::http::{ClientOptions, EgressPolicy, OutboundClient};
use crate::imports::kv::KvStore;
use crate::secrets;
use std::sync::Arc;

/// The imports of provider `provider_id`, whose plugin is described by `descriptor` and whose
/// `config:` block is `config` and `network:` block `network`.
pub(crate) fn handles(
    descriptor: &Descriptor,
    config: &serde_json::Value,
    network: &NetworkSettings,
    env: &Environment,
    kv: &Arc<KvStore>,
    provider_id: &str,
) -> Result<Arc<ProviderHandles>, String> {
    register_secrets(descriptor, config, network, env);
    let mut outbound_hosts = descriptor.outbound_hosts.clone();
    outbound_hosts.extend(endpoint_override_hosts(&descriptor.env_vars, env));
    let policy = EgressPolicy::new(&outbound_hosts, false).map_err(|e| e.to_string())?;
    // The provider's AWS settings (static keys, role, profile) stay in the host; the plugin
    // only asks for `aws-sigv4` signing.
    let identity =
        AwsIdentity::from_provider_config(config, env.clone()).map_err(|e| e.to_string())?;
    let mut options = ClientOptions {
        extra_ca_files: ClientOptions::ca_files_from_env(&env.lookup()),
        signer: Some(Arc::new(AwsSigner::new(identity))),
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
    }))
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
