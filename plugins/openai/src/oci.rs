//! `remote::oci`'s settings, as OGX 1.5.0's `OCIConfig` and `OCIInferenceAdapter` define
//! them: `oci_auth_type` (`instance_principal` or `config_file`), `oci_region`,
//! `oci_compartment_id` (required at init), `oci_config_file_path` and `oci_config_profile`,
//! each defaulting to its environment variable (see [`crate::family::OCI_ENV_VARS`]) and then
//! to OGX's default.
//!
//! The plugin only names the identity: the host reads the config file and the key, and signs
//! each request (`Request::oci_signature`). The host does not offer the instance principal
//! yet; such a request fails with the host's message naming `config_file` as the way.
//!
//! Fails at init with OGX's messages: an unknown auth type, a missing compartment; and with
//! a message naming `oci_region` for a region that is not a plain OCI region name.

use ogx_provider_sdk::http::OciCredentialSource;

/// OGX's `VALID_OCI_AUTH_TYPES`.
pub const AUTH_TYPES: [&str; 2] = ["instance_principal", "config_file"];

/// OGX's defaults when neither the key nor its variable is set.
pub const DEFAULT_AUTH_TYPE: &str = "config_file";
pub const DEFAULT_REGION: &str = "us-ashburn-1";
pub const DEFAULT_CONFIG_FILE: &str = "~/.oci/config";
pub const DEFAULT_PROFILE: &str = "DEFAULT";

/// The `oci_*` keys of a config, after the environment defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciKeys {
    pub auth_type: Option<String>,
    pub region: Option<String>,
    pub compartment_id: Option<String>,
    pub config_file_path: Option<String>,
    pub config_profile: Option<String>,
}

/// A validated `remote::oci` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSettings {
    /// The identity the host signs with.
    pub source: OciCredentialSource,
    pub region: String,
    /// Sent as the `CompartmentId` header and in the listing's query.
    pub compartment_id: String,
}

/// OGX's inference base URL for `region`.
pub fn base_url(region: &str) -> String {
    format!("https://inference.generativeai.{region}.oci.oraclecloud.com/20231130/actions/v1")
}

/// Validates the keys; the error is the message after "Invalid config for provider ...".
pub fn settings(keys: OciKeys) -> Result<OciSettings, String> {
    let auth_type = keys
        .auth_type
        .unwrap_or_else(|| DEFAULT_AUTH_TYPE.to_string());
    let source = match auth_type.as_str() {
        "instance_principal" => OciCredentialSource::InstancePrincipal,
        "config_file" => OciCredentialSource::ConfigFile {
            file: Some(
                keys.config_file_path
                    .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_string()),
            ),
            profile: Some(
                keys.config_profile
                    .unwrap_or_else(|| DEFAULT_PROFILE.to_string()),
            ),
        },
        other => {
            return Err(format!(
                "Invalid OCI authentication type: {other}. Valid types are one of: ['instance_principal', 'config_file']"
            ));
        }
    };
    let compartment_id = keys.compartment_id.ok_or_else(|| {
        "OCI_COMPARTMENT_OCID is a required parameter. Either set in env variable or config."
            .to_string()
    })?;
    let region = keys.region.unwrap_or_else(|| DEFAULT_REGION.to_string());
    let plain = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plain {
        return Err(format!(
            "oci_region {region:?} is not an OCI region name (e.g. us-chicago-1)"
        ));
    }
    Ok(OciSettings {
        source,
        region,
        compartment_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_ogx_and_the_compartment_is_required() {
        let keys = OciKeys {
            compartment_id: Some("ocid1.compartment.oc1..c".into()),
            ..OciKeys::default()
        };
        let s = settings(keys.clone()).unwrap();
        assert_eq!(s.region, "us-ashburn-1");
        assert_eq!(
            s.source,
            OciCredentialSource::ConfigFile {
                file: Some("~/.oci/config".into()),
                profile: Some("DEFAULT".into())
            }
        );
        assert_eq!(
            base_url(&s.region),
            "https://inference.generativeai.us-ashburn-1.oci.oraclecloud.com/20231130/actions/v1"
        );
        let err = settings(OciKeys::default()).unwrap_err();
        assert!(err.starts_with("OCI_COMPARTMENT_OCID is a required parameter"));
        let err = settings(OciKeys {
            auth_type: Some("api_key".into()),
            ..keys.clone()
        })
        .unwrap_err();
        assert!(err.starts_with("Invalid OCI authentication type: api_key"));
        let s = settings(OciKeys {
            auth_type: Some("instance_principal".into()),
            ..keys.clone()
        })
        .unwrap();
        assert_eq!(s.source, OciCredentialSource::InstancePrincipal);
        assert!(
            settings(OciKeys {
                region: Some("x/../y".into()),
                ..keys
            })
            .is_err()
        );
    }
}
