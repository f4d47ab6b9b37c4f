//! The OCI signer against its own rules: the signing string OCI specifies, a signature that
//! verifies with the public key, the headers it owns, and the profile loading errors. The
//! cross-check with an implementation that is not ours (the `oci` SDK's signer) is in
//! `tests/test_identity_oci.py`.

use std::io::Write;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::*;

/// A fresh RSA key as PKCS#8 PEM, and the key pair.
fn test_key() -> (String, KeyPair) {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, pair)
}

fn header(request: &http::Request<Bytes>, name: &str) -> String {
    request.headers()[name].to_str().unwrap().to_owned()
}

/// The `name="value"` parameters of an `Authorization: Signature ...` value.
fn params(authorization: &str) -> HashMap<String, String> {
    authorization
        .strip_prefix("Signature ")
        .unwrap()
        .split(',')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

#[test]
fn a_post_signs_the_body_headers_and_verifies_with_the_public_key() {
    let (pem, pair) = test_key();
    let key = OciKey {
        key_id: "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb".into(),
        key: parse_key(&pem).unwrap(),
    };
    let body = Bytes::from_static(b"{\"model\":\"m\"}");
    let mut request = http::Request::post(
        "https://inference.generativeai.us-chicago-1.oci.oraclecloud.com/20231130/actions/v1/chat/completions?x=1",
    )
    .header("content-type", "application/json")
    .header("x-content-sha256", "forged")
    .header("authorization", "Bearer plugin")
    .body(body.clone())
    .unwrap();
    let date = "Sun, 05 Jan 2014 21:31:40 GMT";
    sign_request(&mut request, &key, date).unwrap();

    let digest = STANDARD.encode(Sha256::digest(&body));
    assert_eq!(header(&request, "x-content-sha256"), digest);
    assert_eq!(header(&request, "content-length"), body.len().to_string());
    assert_eq!(header(&request, "date"), date);
    let auth = header(&request, "authorization");
    assert!(request.headers()["authorization"].is_sensitive());
    let p = params(&auth);
    assert_eq!(p["version"], "1");
    assert_eq!(p["algorithm"], "rsa-sha256");
    assert_eq!(p["keyId"], "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb");
    assert_eq!(
        p["headers"],
        "date (request-target) host content-length content-type x-content-sha256"
    );
    let expected = format!(
        "date: {date}\n(request-target): post /20231130/actions/v1/chat/completions?x=1\nhost: inference.generativeai.us-chicago-1.oci.oraclecloud.com\ncontent-length: {}\ncontent-type: application/json\nx-content-sha256: {digest}",
        body.len()
    );
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
    public
        .verify(
            expected.as_bytes(),
            &STANDARD.decode(&p["signature"]).unwrap(),
        )
        .expect("the signature verifies over OCI's signing string");
}

#[test]
fn a_get_signs_date_target_and_host_with_the_port() {
    let (pem, _) = test_key();
    let key = OciKey {
        key_id: "t/u/f".into(),
        key: parse_key(&pem).unwrap(),
    };
    let mut request = http::Request::get("http://127.0.0.1:8443/20231130/models?compartmentId=c")
        .body(Bytes::new())
        .unwrap();
    sign_request(&mut request, &key, "Sun, 05 Jan 2014 21:31:40 GMT").unwrap();
    let p = params(&header(&request, "authorization"));
    assert_eq!(p["headers"], "date (request-target) host");
    assert!(request.headers().get("x-content-sha256").is_none());
    assert_eq!(
        signing_string(&[
            ("date", "D".into()),
            ("(request-target)", "get /p".into()),
            ("host", "h:1".into())
        ]),
        "date: D\n(request-target): get /p\nhost: h:1"
    );
}

#[test]
fn profiles_load_api_key_and_session_identities_and_keys_are_reloaded_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, _) = test_key();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, &pem).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok\n").unwrap();
    let config = dir.path().join("config");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "[DEFAULT]\nuser=ocid1.user.oc1..u\nfingerprint=aa:bb\ntenancy=ocid1.tenancy.oc1..t\nkey_file={}\n\n[SESSION]\nsecurity_token_file={}\n",
        key_file.display(),
        token_file.display()
    )
    .unwrap();
    let signer = OciSigner::new(Environment::from_pairs([("HOME", "/nowhere")]));
    let (path, profile) = signer.locate(Some(config.to_str().unwrap()), None);
    assert_eq!(profile, "DEFAULT");
    let key = signer.key(&path, &profile).unwrap();
    assert_eq!(key.key_id, "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb");
    assert!(Arc::ptr_eq(&key, &signer.key(&path, &profile).unwrap()));
    let session = signer.key(&path, "SESSION").unwrap();
    assert_eq!(session.key_id, "ST$tok");
    assert!(!format!("{session:?}").contains("tok"));

    let missing = signer.key(&path, "NOPE").unwrap_err().to_string();
    assert!(
        missing.contains("[NOPE]") && missing.contains("oci_config_profile"),
        "{missing}"
    );
    std::fs::write(&key_file, "not a key").unwrap();
    let bad = signer.key(&path, "DEFAULT");
    // The modification time may not have moved within the same tick; either the old key is
    // served or the new file is refused, never a half-read key.
    if let Err(error) = bad {
        let text = error.to_string();
        assert!(
            text.contains("key.pem") && !text.contains("not a key"),
            "{text}"
        );
    }
}

#[test]
fn the_default_file_comes_from_oci_config_file_then_home() {
    let signer = OciSigner::new(Environment::from_pairs([("HOME", "/home/u")]));
    assert_eq!(
        signer.locate(None, Some("P")),
        (PathBuf::from("/home/u/.oci/config"), "P".to_owned())
    );
    let signer = OciSigner::new(Environment::from_pairs([
        ("HOME", "/home/u"),
        (CONFIG_FILE_ENV, "/etc/oci/config"),
    ]));
    assert_eq!(
        signer.locate(None, None).0,
        PathBuf::from("/etc/oci/config")
    );
    assert_eq!(
        signer.locate(Some("~/x"), None).0,
        PathBuf::from("/home/u/x")
    );
}

#[test]
fn the_instance_principal_is_refused_naming_the_alternative() {
    let signer = OciSigner::new(Environment::from_pairs([("HOME", "/h")]));
    let mut request = http::Request::get("https://h/").body(Bytes::new()).unwrap();
    let error = signer
        .sign_now(&mut request, &OciCredentialSource::InstancePrincipal)
        .unwrap_err();
    assert!(error.to_string().contains("config_file"), "{error}");
    assert!(request.headers().get("authorization").is_none());
}
