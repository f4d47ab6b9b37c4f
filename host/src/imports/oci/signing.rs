//! OCI's request signature (signature version 1, draft-cavage-http-signatures-08 as OCI
//! profiles it), built as the OCI SDKs build it (`oci/signer.py`).
//!
//! Every request signs `date`, `(request-target)` and `host`; a `POST`, `PUT` or `PATCH`
//! also signs `content-length`, `content-type` (`application/json` when the request has none)
//! and `x-content-sha256` (base64 of the body's SHA-256). The signing string is those headers
//! as `name: value` lines in that order joined by `\n`, `(request-target)` being the lower-case
//! method, a space and the path with its query. The signature is RSA PKCS#1 v1.5 over SHA-256,
//! base64, in `Authorization: Signature version="1",headers="...",keyId="...",
//! algorithm="rsa-sha256",signature="..."`.
//!
//! The signer owns `authorization`, `date`, `x-content-sha256` and `content-length`: values the
//! plugin set are replaced, so what is signed is what is sent. `host` is the one the HTTP
//! client sends ([`request_host`]). The `authorization` value is marked sensitive so that
//! `http`'s `Debug` hides it.

use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::profile::OciKey;
use crate::imports::http::{HttpError, request_host};

/// Signed on every request.
pub const GENERIC_HEADERS: [&str; 3] = ["date", "(request-target)", "host"];

/// Signed besides [`GENERIC_HEADERS`] on requests with a body.
pub const BODY_HEADERS: [&str; 3] = ["content-length", "content-type", "x-content-sha256"];

/// Headers the signer sets, replacing any the request has.
pub const SIGNER_OWNED_HEADERS: [&str; 4] = [
    "authorization",
    "date",
    "x-content-sha256",
    "content-length",
];

/// Whether OCI signs the body of a request with `method`.
pub fn signs_body(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PUT || *method == Method::PATCH
}

/// The signing string of `headers` (name, value) in order, as draft-cavage builds it.
pub fn signing_string(headers: &[(&str, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn invalid_header(_: http::header::InvalidHeaderValue) -> HttpError {
    HttpError::InvalidRequest("the OCI signature produced an invalid header value".into())
}

/// Signs `request` in place with `key`, dated `date` (an HTTP date).
pub fn sign_request(
    request: &mut http::Request<Bytes>,
    key: &OciKey,
    date: &str,
) -> Result<(), HttpError> {
    for name in SIGNER_OWNED_HEADERS {
        request.headers_mut().remove(name);
    }
    let host = request_host(request.uri())?;
    let target = format!(
        "{} {}",
        request.method().as_str().to_ascii_lowercase(),
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut signed: Vec<(&str, String)> = vec![
        ("date", date.to_owned()),
        ("(request-target)", target),
        ("host", host),
    ];
    let mut added: Vec<(HeaderName, String)> = vec![(http::header::DATE, date.to_owned())];
    if signs_body(request.method()) {
        let content_type = match request.headers().get(CONTENT_TYPE) {
            Some(value) => value
                .to_str()
                .map_err(|_| {
                    HttpError::InvalidRequest(
                        "content-type must be visible ASCII to be signed".into(),
                    )
                })?
                .to_owned(),
            None => {
                added.push((CONTENT_TYPE, "application/json".into()));
                "application/json".into()
            }
        };
        let length = request.body().len().to_string();
        let digest = STANDARD.encode(Sha256::digest(request.body()));
        added.push((CONTENT_LENGTH, length.clone()));
        added.push((HeaderName::from_static("x-content-sha256"), digest.clone()));
        signed.push(("content-length", length));
        signed.push(("content-type", content_type));
        signed.push(("x-content-sha256", digest));
    }
    let message = signing_string(&signed);
    let mut signature = vec![0u8; key.key.public_modulus_len()];
    key.key
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .map_err(|_| HttpError::Credentials("the OCI private key could not sign".into()))?;
    let names: Vec<&str> = signed.iter().map(|(name, _)| *name).collect();
    let authorization = format!(
        "Signature version=\"1\",headers=\"{}\",keyId=\"{}\",algorithm=\"rsa-sha256\",signature=\"{}\"",
        names.join(" "),
        key.key_id,
        STANDARD.encode(&signature)
    );
    for (name, value) in added {
        let value = HeaderValue::from_str(&value).map_err(invalid_header)?;
        request.headers_mut().insert(name, value);
    }
    let mut value = HeaderValue::from_str(&authorization).map_err(invalid_header)?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}
