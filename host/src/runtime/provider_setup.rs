//! The host imports of one configured provider, set up in one place when a config entry is
//! bound to its plugin: the egress policy (the hosts the plugin declared, plus the endpoints
//! the operator named in the declared `AWS_ENDPOINT_URL*` variables), the pooled HTTP client
//! with its extra CA bundles and the AWS identity that signs `aws-sigv4` requests, the view
//! of the declared environment variables, and the provider's `kv` namespace.
//!
//! Every environment variable involved is read through the runtime's one [`Environment`], so
//! a runtime started with an injected environment (tests) sees nothing of the process's.
//!
//! Fails with a reason (a bad host pattern, an invalid AWS setting in the config block, a CA
//! file that cannot be read), which the caller wraps with the provider id and the plugin file.

use super::Descriptor;
use super::instance::ProviderHandles;
use crate::environment::Environment;
use crate::imports::aws::{AwsIdentity, AwsSigner, endpoint_override_hosts};
use crate::imports::config::EnvView;
use crate::imports::http::{ClientOptions, EgressPolicy, OutboundClient};
use crate::imports::kv::KvStore;
use std::sync::Arc;

/// The imports of provider `provider_id`, whose plugin is described by `descriptor` and whose
/// `config:` block is `config`.
pub(crate) fn handles(
    descriptor: &Descriptor,
    config: &serde_json::Value,
    env: &Environment,
    kv: &Arc<KvStore>,
    provider_id: &str,
) -> Result<Arc<ProviderHandles>, String> {
    let mut outbound_hosts = descriptor.outbound_hosts.clone();
    outbound_hosts.extend(endpoint_override_hosts(&descriptor.env_vars, env));
    let policy = EgressPolicy::new(&outbound_hosts, false).map_err(|e| e.to_string())?;
    // The provider's AWS settings (static keys, role, profile) stay in the host; the plugin
    // only asks for `aws-sigv4` signing.
    let identity =
        AwsIdentity::from_provider_config(config, env.clone()).map_err(|e| e.to_string())?;
    let options = ClientOptions {
        extra_ca_files: ClientOptions::ca_files_from_env(&env.lookup()),
        signer: Some(Arc::new(AwsSigner::new(identity))),
        ..ClientOptions::default()
    };
    let http = OutboundClient::new(policy, options).map_err(|e| e.to_string())?;
    Ok(Arc::new(ProviderHandles {
        http,
        env: EnvView::new(descriptor.env_vars.iter(), env.clone()),
        kv: kv.namespace(provider_id),
    }))
}
