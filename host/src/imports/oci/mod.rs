//! OCI identity for `outbound-http`'s `oci-signature` auth: the host, never the plugin, reads
//! the OCI API key and signs the final request as OCI specifies (see [`signing`]).
//!
//! **Threat model.** A plugin is untrusted code: it names where the identity is (a config
//! file and a profile, or the instance principal) and never sees the private key, the pass
//! phrase, a session token or the signature's inputs beyond its own request. The key is read
//! from disk by the host, kept in memory as an `aws-lc-rs` key pair, and used only to sign a
//! request the egress policy has already admitted ([`crate::imports::http`] checks the URL
//! before any signer runs), so a plugin cannot have the host sign a request to a host the
//! operator did not allow. The `Authorization` value is sensitive and never logged.
//!
//! **Provides.** [`OciSigner`], one per provider, the [`OciRequestSigner`] of its HTTP
//! client. It reads a config-file profile (the plugin's file, else `OCI_CONFIG_FILE`, else
//! `~/.oci/config`; the plugin's profile, else `DEFAULT`), API-key and security-token
//! (session) profiles alike, and keeps each loaded key until its config, key or token file
//! changes (checked by modification time on every request: a rotated key is picked up).
//!
//! **Refuses** the instance principal (it needs the instance metadata service and a
//! certificate exchange that this host does not implement yet), naming the alternative: a
//! config-file profile with an API key.
//!
//! **Fails** with [`HttpError::Credentials`] naming the file, the profile and what to check
//! (see [`profile`]); nothing in an error is secret.
//!
//! Environment lookups (`OCI_CONFIG_FILE`, `HOME`) go through the host's one reader,
//! [`Environment`].

mod profile;
mod signing;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::environment::Environment;
use crate::imports::http::{HttpError, OciCredentialSource, OciRequestSigner};

pub use profile::{DEFAULT_PROFILE, OciKey, expand_home, parse_key, parse_profile};
pub use signing::{BODY_HEADERS, GENERIC_HEADERS, sign_request, signing_string};

/// The variable naming the config file when the plugin names none (as in the OCI SDKs).
pub const CONFIG_FILE_ENV: &str = "OCI_CONFIG_FILE";

/// The config file when neither the plugin nor [`CONFIG_FILE_ENV`] names one.
pub const DEFAULT_CONFIG_FILE: &str = "~/.oci/config";

/// The refusal of `instance-principal`.
pub const INSTANCE_PRINCIPAL_UNAVAILABLE: &str = "OCI instance principal signing is not available in this ogx yet: use an API key profile instead (oci_auth_type: config_file, with oci_config_file_path and oci_config_profile naming a profile with user, tenancy, fingerprint and key_file)";

/// A loaded key and the modification times it was loaded at.
struct Loaded {
    key: Arc<OciKey>,
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Signs `oci-signature` requests for one provider; see the module documentation.
pub struct OciSigner {
    env: Environment,
    keys: Mutex<HashMap<(PathBuf, String), Loaded>>,
}

impl std::fmt::Debug for OciSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciSigner").finish_non_exhaustive()
    }
}

impl OciSigner {
    pub fn new(env: Environment) -> Self {
        OciSigner {
            env,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The config file and profile `source` names, defaults applied.
    pub fn locate(&self, file: Option<&str>, profile: Option<&str>) -> (PathBuf, String) {
        let home = self.env.get("HOME");
        let file = file
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .or_else(|| self.env.get(CONFIG_FILE_ENV))
            .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_owned());
        let profile = profile
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PROFILE);
        (expand_home(&file, home.as_deref()), profile.to_owned())
    }

    /// The key of `profile` in `file`, loaded again when one of its files changed. The files
    /// are small and local: they are read inline.
    pub fn key(&self, file: &Path, profile: &str) -> Result<Arc<OciKey>, HttpError> {
        let cache_key = (file.to_path_buf(), profile.to_owned());
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = keys.get(&cache_key)
            && loaded.stamps.iter().all(|(p, t)| modified(p) == *t)
        {
            return Ok(loaded.key.clone());
        }
        keys.remove(&cache_key);
        let home = self.env.get("HOME");
        let (key, sources) = profile::load(file, profile, home.as_deref())?;
        let key = Arc::new(key);
        let mut stamps = vec![
            (sources.config_file.clone(), modified(&sources.config_file)),
            (sources.key_file.clone(), modified(&sources.key_file)),
        ];
        if let Some(token) = &sources.token_file {
            stamps.push((token.clone(), modified(token)));
        }
        keys.insert(
            cache_key,
            Loaded {
                key: key.clone(),
                stamps,
            },
        );
        Ok(key)
    }

    /// Signs `request` in place with the identity `source` names.
    pub fn sign_now(
        &self,
        request: &mut http::Request<Bytes>,
        source: &OciCredentialSource,
    ) -> Result<(), HttpError> {
        let (file, profile) = match source {
            OciCredentialSource::InstancePrincipal => {
                return Err(HttpError::Credentials(
                    INSTANCE_PRINCIPAL_UNAVAILABLE.to_owned(),
                ));
            }
            OciCredentialSource::ConfigFile { file, profile } => {
                self.locate(file.as_deref(), profile.as_deref())
            }
        };
        let key = self.key(&file, &profile)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        sign_request(request, &key, &crate::calendar::http_date(now))
    }
}

impl OciRequestSigner for OciSigner {
    fn sign<'a>(
        &'a self,
        request: &'a mut http::Request<Bytes>,
        source: &'a OciCredentialSource,
    ) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move { self.sign_now(request, source) })
    }
}
