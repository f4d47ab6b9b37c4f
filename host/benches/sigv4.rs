//! Cost of AWS signing on the request path: SigV4 over a typical Bedrock chat request with
//! credentials at hand, a credential lookup that hits the cache, and both together as the HTTP
//! client calls them (`AwsSigner::sign_request`).
//!
//! `cargo bench -p ogx --bench sigv4`

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use ogx::environment::Environment;
use ogx::imports::aws::{
    AwsIdentity, AwsSigner, CredentialCache, ProviderAwsConfig, RefreshWindows,
    sign_with_credentials,
};
use ogx::imports::http::{AwsCredentialSource, AwsSigning};

const URL: &str = "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn chat_request() -> http::Request<Bytes> {
    let body = format!(
        r#"{{"model":"openai.gpt-oss-20b-1:0","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2000)
    );
    http::Request::builder()
        .method("POST")
        .uri(URL)
        .header("content-type", "application/json")
        .header("authorization", "Bearer <NOTUSED>")
        .body(Bytes::from(body))
        .unwrap()
}

fn identity() -> AwsIdentity {
    let env = Environment::from_pairs([("AWS_EC2_METADATA_DISABLED", "true")]);
    let config = ProviderAwsConfig::from_json(
        &serde_json::json!({
            "aws_access_key_id": "ASIAEXAMPLEKEY",
            "aws_secret_access_key": SECRET,
            "aws_session_token": "FwoGZXIvYXdzEXAMPLE".repeat(20),
        }),
        &env,
    )
    .unwrap();
    AwsIdentity::new(
        config,
        env,
        Arc::new(CredentialCache::new(RefreshWindows::default())),
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let template = chat_request();
    let creds = Credentials::new(
        "ASIAEXAMPLEKEY",
        SECRET,
        Some("FwoGZXIvYXdzEXAMPLE".repeat(20)),
        None,
        "bench",
    );
    c.bench_function("sigv4: sign a 2 KB chat request", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |request| {
                sign_with_credentials(request, "bedrock", "us-west-2", &creds, SystemTime::now())
                    .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let identity = identity();
    let source = AwsCredentialSource::default();
    runtime
        .block_on(identity.credentials("us-west-2", &source))
        .unwrap();
    c.bench_function("credentials: cache hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { identity.credentials("us-west-2", &source).await.unwrap() })
    });

    let signer = AwsSigner::new(identity.clone());
    let signing = AwsSigning {
        service: "bedrock".into(),
        region: "us-west-2".into(),
        credentials: AwsCredentialSource::default(),
    };
    c.bench_function("signer: cache hit + sign", |b| {
        b.to_async(&runtime).iter_batched(
            || template.clone(),
            |mut request| {
                let (signer, signing) = (&signer, &signing);
                async move {
                    signer.sign_request(&mut request, signing).await.unwrap();
                    request
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
