//! An OCI config-file profile, read as the OCI SDKs read it, into the signing identity it
//! names: the `keyId` (`<tenancy>/<user>/<fingerprint>`, or `ST$<token>` for a session
//! profile) and the RSA private key of `key_file`.
//!
//! The file is OCI's INI format: `[PROFILE]` sections of `name=value` lines, `#` and `;`
//! comments, and the `[DEFAULT]` section's values inherited by every other profile (Python's
//! `configparser`, which the OCI SDK uses). `~` in paths is the host's `HOME`.
//!
//! **Refuses**, each with [`HttpError::Credentials`] naming the file, the profile and what to
//! check: a file that cannot be read, a missing profile, a profile without `tenancy`, `user`
//! (API-key profiles) or `fingerprint`, a `key_file` that cannot be read or is not an
//! unencrypted RSA private key in PEM (PKCS#1 or PKCS#8), an unreadable `security_token_file`.
//! A key protected by `pass_phrase` is refused too (no PEM decryption here), naming
//! `openssl` as the way to store it decrypted.
//!
//! **Never leaks** the key, the pass phrase or the session token: errors name files and keys
//! of the profile, never values other than OCIDs and the fingerprint (which are not secrets);
//! [`OciKey`]'s `Debug` shows the key id's tenancy part only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::RsaKeyPair;

use crate::imports::http::HttpError;

/// The profile read when none is named.
pub const DEFAULT_PROFILE: &str = "DEFAULT";

/// A profile's signing identity, ready to sign.
pub struct OciKey {
    /// `<tenancy>/<user>/<fingerprint>`, or `ST$<session token>`.
    pub key_id: String,
    pub key: RsaKeyPair,
}

impl fmt::Debug for OciKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.key_id.starts_with("ST$") {
            "ST$********"
        } else {
            self.key_id.split('/').next().unwrap_or_default()
        };
        f.debug_struct("OciKey")
            .field("key_id", &shown)
            .finish_non_exhaustive()
    }
}

/// The files a loaded [`OciKey`] came from, so a change to either is noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub config_file: PathBuf,
    pub key_file: PathBuf,
    pub token_file: Option<PathBuf>,
}

/// `path` with a leading `~` replaced by `home`.
pub fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(path),
    }
}

fn failure(file: &Path, profile: &str, what: String) -> HttpError {
    HttpError::Credentials(format!(
        "OCI config file {}, profile [{profile}]: {what}",
        file.display()
    ))
}

/// The `name = value` pairs of `profile` in the INI `text`, `[DEFAULT]`'s included; `None`
/// when there is no such section (`DEFAULT` exists as soon as it has a value).
pub fn parse_profile(text: &str, profile: &str) -> Option<BTreeMap<String, String>> {
    let mut defaults = BTreeMap::new();
    let mut wanted = BTreeMap::new();
    let mut found = false;
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            found |= name == profile;
            section = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
        match section.as_deref() {
            Some(DEFAULT_PROFILE) => {
                defaults.insert(key.clone(), value.clone());
                if profile == DEFAULT_PROFILE {
                    wanted.insert(key, value);
                }
            }
            Some(name) if name == profile => {
                wanted.insert(key, value);
            }
            _ => {}
        }
    }
    if !found {
        return None;
    }
    for (key, value) in defaults {
        wanted.entry(key).or_insert(value);
    }
    Some(wanted)
}

/// Reads `profile` of `config_file` and its key file into an [`OciKey`].
pub fn load(
    config_file: &Path,
    profile: &str,
    home: Option<&str>,
) -> Result<(OciKey, Sources), HttpError> {
    let fail = |what: String| failure(config_file, profile, what);
    let text = std::fs::read_to_string(config_file).map_err(|error| {
        HttpError::Credentials(format!(
            "OCI config file {} cannot be read ({}): set the provider's `oci_config_file_path` (or OCI_CONFIG_FILE) to your OCI config file, or create one with `oci setup config`",
            config_file.display(),
            error.kind()
        ))
    })?;
    let values = parse_profile(&text, profile).ok_or_else(|| {
        fail("no such profile in the file: set the provider's `oci_config_profile` (OCI_CLI_PROFILE) to one of its [sections]".into())
    })?;
    let field = |name: &str| {
        values
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("`{name}` is missing; add it to the profile")))
    };
    let key_file = expand_home(field("key_file")?, home);
    let (key_id, token_file) = match values.get("security_token_file").filter(|v| !v.is_empty()) {
        Some(token_file) => {
            let token_file = expand_home(token_file, home);
            let token = std::fs::read_to_string(&token_file).map_err(|error| {
                fail(format!(
                    "security_token_file {} cannot be read ({}); refresh the session with `oci session refresh`",
                    token_file.display(),
                    error.kind()
                ))
            })?;
            (format!("ST${}", token.trim()), Some(token_file))
        }
        None => (
            format!(
                "{}/{}/{}",
                field("tenancy")?,
                field("user")?,
                field("fingerprint")?
            ),
            None,
        ),
    };
    let pem = std::fs::read_to_string(&key_file).map_err(|error| {
        fail(format!(
            "key_file {} cannot be read ({}); check the path and its permissions",
            key_file.display(),
            error.kind()
        ))
    })?;
    let key =
        parse_key(&pem).map_err(|why| fail(format!("key_file {}: {why}", key_file.display())))?;
    Ok((
        OciKey { key_id, key },
        Sources {
            config_file: config_file.to_path_buf(),
            key_file,
            token_file,
        },
    ))
}

/// An unencrypted RSA private key in PEM, PKCS#8 (`PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`). The error says what is wrong, never what the file holds.
pub fn parse_key(pem: &str) -> Result<RsaKeyPair, String> {
    if pem.contains("ENCRYPTED") {
        return Err("the key is encrypted (pass_phrase), which ogx does not decrypt; store it decrypted (`openssl rsa -in <key_file> -out <new_key_file>`, readable by ogx only) and point key_file at it".into());
    }
    let mut reader = pem.as_bytes();
    loop {
        let item = rustls_pemfile::read_one(&mut reader)
            .map_err(|_| "the file is not valid PEM".to_string())?;
        let parsed = match item {
            None => {
                return Err(
                    "no RSA private key in the file (expected a PEM `PRIVATE KEY` or `RSA PRIVATE KEY`)"
                        .into(),
                );
            }
            Some(rustls_pemfile::Item::Pkcs8Key(der)) => {
                RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            }
            Some(rustls_pemfile::Item::Pkcs1Key(der)) => {
                RsaKeyPair::from_der(der.secret_pkcs1_der())
            }
            Some(_) => continue,
        };
        return parsed.map_err(|_| "the key is not an RSA private key of 2048 to 8192 bits".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_inherit_default_and_comments_are_skipped() {
        let text = "# comment\n[DEFAULT]\ntenancy=ocid1.tenancy.oc1..t\nregion = us-ashburn-1\n\n[OTHER]\n; c\nuser = ocid1.user.oc1..u\nregion=eu-frankfurt-1\n";
        let other = parse_profile(text, "OTHER").unwrap();
        assert_eq!(other["tenancy"], "ocid1.tenancy.oc1..t");
        assert_eq!(other["region"], "eu-frankfurt-1");
        assert_eq!(other["user"], "ocid1.user.oc1..u");
        let default = parse_profile(text, "DEFAULT").unwrap();
        assert_eq!(default["region"], "us-ashburn-1");
        assert!(!default.contains_key("user"));
        assert!(parse_profile(text, "MISSING").is_none());
    }

    #[test]
    fn home_is_expanded_only_at_the_start() {
        assert_eq!(
            expand_home("~/.oci/key.pem", Some("/home/u")),
            PathBuf::from("/home/u/.oci/key.pem")
        );
        assert_eq!(expand_home("/k/~x", Some("/h")), PathBuf::from("/k/~x"));
        assert_eq!(
            expand_home("~other/k", Some("/h")),
            PathBuf::from("~other/k")
        );
    }

    #[test]
    fn encrypted_and_non_key_pem_are_refused_without_echoing_the_file() {
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIsecret\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let why = parse_key(encrypted).unwrap_err();
        assert!(
            why.contains("encrypted") && !why.contains("MIIsecret"),
            "{why}"
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_key(cert).unwrap_err().contains("no RSA private key"));
    }

    #[test]
    fn a_missing_file_names_the_file_and_the_fix() {
        let error = load(Path::new("/nonexistent/oci/config"), "DEFAULT", None).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("/nonexistent/oci/config") && text.contains("oci_config_file_path"),
            "{text}"
        );
    }
}
