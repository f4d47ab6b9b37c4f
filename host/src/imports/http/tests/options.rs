//! Building a client from [`ClientOptions`]: extra CA bundles from the environment and from
//! files, and the errors that name a file that cannot be used.

use super::*;

#[test]
fn ca_bundles() {
    let lookup = |name: &str| match name {
        "SSL_CERT_FILE" => Some("/etc/custom.pem".to_owned()),
        "AWS_CA_BUNDLE" => Some("  ".to_owned()),
        _ => None,
    };
    assert_eq!(
        ClientOptions::ca_files_from_env(&lookup),
        vec![PathBuf::from("/etc/custom.pem")]
    );
    assert!(ClientOptions::ca_files_from_env(&|_| None).is_empty());

    let policy = || EgressPolicy::new(&["*"], false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let options = ClientOptions {
        extra_ca_files: vec![missing.clone()],
        ..ClientOptions::default()
    };
    let error = OutboundClient::new(policy(), options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing.pem"), "{error}");

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let options = ClientOptions {
        extra_ca_files: vec![not_pem],
        ..ClientOptions::default()
    };
    let error = OutboundClient::new(policy(), options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not.pem"), "{error}");
}
