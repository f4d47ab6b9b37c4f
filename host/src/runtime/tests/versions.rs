//! Interface versions: plugins built against 0.1.0 (the openai and bedrock plugins as they
//! were released, kept byte for byte in `plugins/fixtures/v0.1.0/`) load and answer beside a
//! 0.2.0 plugin (the echo fixture); each is called through its own version's bindings, and the
//! rest of the runtime sees one set of types. A plugin built for a newer interface is refused
//! (see `loading`).

use super::*;
use crate::imports::http::tests::{Step, Upstream, response};
use crate::runtime::{CallError, InterfaceVersion, ModelTarget, ProviderError};
use futures::StreamExt;
use serde_json::{Value, json};

/// The released 0.1.0 builds of the openai and bedrock plugins.
fn released_v0_1_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/fixtures/v0.1.0")
}

/// A plugins directory with the 0.1.0 builds and, when the fixtures are built, the echo fixture.
fn mixed_plugins_dir() -> (tempfile::TempDir, bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["ogx_plugin_openai.wasm", "ogx_plugin_bedrock.wasm"] {
        std::fs::copy(released_v0_1_dir().join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file} in plugins/fixtures/v0.1.0: {e}"));
    }
    let with_echo = match fixtures_dir() {
        Some(fixtures) => {
            let echo = "ogx_fixture_echo.wasm";
            std::fs::copy(fixtures.join(echo), dir.path().join(echo)).expect("copy echo");
            true
        }
        None => false,
    };
    (dir, with_echo)
}

/// A loopback upstream answering every request with one chat completion.
async fn chat_upstream() -> Upstream {
    let answer = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from upstream"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    });
    Upstream::start(vec![Step::Write(response(
        "200 OK",
        &["content-type: application/json"],
        answer.to_string().as_bytes(),
    ))])
    .await
}

fn chat_body(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_plugin_is_bound_to_the_version_it_exports() {
    let (dir, with_echo) = mixed_plugins_dir();
    let runtime = start(dir.path());
    let version_of = |provider_type: &str| {
        let entry = runtime.catalog().plugin_for(provider_type);
        entry.map(|e| e.outcome.as_ref().unwrap().interface)
    };
    assert_eq!(version_of("remote::vllm"), Some(InterfaceVersion::V0_1_0));
    assert_eq!(
        version_of("remote::bedrock"),
        Some(InterfaceVersion::V0_1_0)
    );
    if with_echo {
        assert_eq!(version_of("test::echo"), Some(InterfaceVersion::V0_2_0));
        let echo = runtime.catalog().plugin_for("test::echo").unwrap();
        let descriptor = echo.outcome.as_ref().unwrap();
        assert!(descriptor.native_messages && descriptor.native_count_tokens);
    }
    let openai = runtime.catalog().plugin_for("remote::vllm").unwrap();
    let descriptor = openai.outcome.as_ref().unwrap();
    assert!(
        !descriptor.native_messages && !descriptor.native_count_tokens,
        "0.1.0 has no native operations"
    );
    assert_eq!(InterfaceVersion::served_list(), "0.1.0 and 0.2.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_released_openai_plugin_answers_beside_a_newer_plugin() {
    let (dir, with_echo) = mixed_plugins_dir();
    let runtime = start(dir.path());
    let upstream = chat_upstream().await;
    let vllm = runtime
        .provider(
            "vllm",
            "remote::vllm",
            &json!({"base_url": upstream.url("/v1")}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    vllm.check_config().await.unwrap();
    // The model target is not part of 0.1.0: the body's model is what the plugin sends.
    let call = CallContext {
        model: Some(ModelTarget {
            id: "vllm/served".into(),
            provider_model_id: "served".into(),
            metadata: Default::default(),
        }),
        ..ctx("v01-chat")
    };
    let answer: Value = serde_json::from_str(
        &vllm
            .chat_completion(call, chat_body("served"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "hello from upstream"
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /v1/chat/completions "),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains(r#""model":"served""#),
        "{}",
        requests[0]
    );

    // Operations 0.1.0 does not have answer `unsupported`, naming the version.
    let err = vllm
        .messages(ctx("v01-messages"), "{}".into())
        .await
        .unwrap_err();
    let CallError::Provider(ProviderError::Unsupported(message)) = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("ogx:provider@0.1.0"), "{message}");
    assert!(matches!(
        vllm.messages_stream(ctx("v01-messages-stream"), "{}".into())
            .await
            .err(),
        Some(CallError::Provider(ProviderError::Unsupported(_)))
    ));
    assert!(matches!(
        vllm.count_tokens(ctx("v01-count"), "{}".into()).await,
        Err(CallError::Provider(ProviderError::Unsupported(_)))
    ));

    if with_echo {
        let echo = runtime.provider("echo", "test::echo", &json!({})).unwrap();
        let answer = echo
            .chat_completion(ctx("v02-chat"), chat_body("echo-model"))
            .await
            .unwrap();
        assert!(answer.contains("echo-v02-chat"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_released_bedrock_plugin_answers_with_a_bearer_key() {
    let (dir, _) = mixed_plugins_dir();
    let upstream = chat_upstream().await;
    let mut opts = options(dir.path());
    // The endpoint override reaches the plugin (its declared variable) and the egress policy
    // through the runtime's one environment, not the process's.
    opts.env = Environment::from_pairs([
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", upstream.url("")),
        ("AWS_DEFAULT_REGION", "us-west-2".to_owned()),
    ]);
    let runtime = PluginRuntime::start(opts).unwrap();
    let bedrock = runtime
        .provider(
            "bedrock",
            "remote::bedrock",
            &json!({"api_key": "bedrock-test-key"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = bedrock
        .chat_completion(ctx("v01-bedrock"), chat_body("openai.gpt-oss-20b-1:0"))
        .await
        .unwrap();
    assert!(answer.contains("hello from upstream"), "{answer}");
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let head = requests[0].to_ascii_lowercase();
    assert!(head.contains("/chat/completions"), "{head}");
    assert!(
        head.contains("authorization: bearer bedrock-test-key"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_plugin_gets_the_model_target_native_operations_and_typed_errors() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let runtime = start(dir.path());
    let echo = runtime.provider("echo", "test::echo", &json!({})).unwrap();
    let target = ModelTarget {
        id: "echo/claude".into(),
        provider_model_id: "upstream-claude".into(),
        metadata: json!({"api": "converse"}).as_object().unwrap().clone(),
    };
    let call = |id: &str| CallContext {
        model: Some(target.clone()),
        ..ctx(id)
    };

    // The model target reaches the plugin, and the SDK sends its upstream id whatever the
    // body says.
    let answer: Value = serde_json::from_str(
        &echo
            .chat_completion(call("target"), chat_body("as-the-client-sent-it"))
            .await
            .unwrap(),
    )
    .unwrap();
    let summary: Value =
        serde_json::from_str(answer["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        summary["model"],
        json!({"id": "echo/claude", "provider_model_id": "upstream-claude",
               "metadata": {"api": "converse"}})
    );
    assert_eq!(summary["request"]["model"], "upstream-claude");
    assert_eq!(answer["model"], "upstream-claude");

    // Native Messages: JSON, a stream of events, token counting.
    let message: Value = serde_json::from_str(
        &echo
            .messages(call("messages"), chat_body("m"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "upstream-claude");
    let events: Vec<_> = echo
        .messages_stream(call("stream"), chat_body("m"))
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["message_start", "content_block_delta", "message_stop"]
    );
    let delta: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(delta["delta"]["text"], "hi");
    let count = echo
        .count_tokens(call("count"), chat_body("m"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&count).unwrap(),
        json!({"input_tokens": 1})
    );

    // 0.2.0's richer errors: a retry-after, and an upstream error's headers.
    let failing = |how: &str| json!({"model": "m", "fail": how}).to_string();
    let err = echo
        .chat_completion(call("limited"), failing("retry-after"))
        .await
        .unwrap_err();
    let CallError::Provider(ProviderError::RateLimited(limit)) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(limit.message, "slow down");
    assert_eq!(limit.retry_after, Some(Duration::from_secs(7)));
    let err = echo
        .chat_completion(call("upstream"), failing("upstream"))
        .await
        .unwrap_err();
    let CallError::Provider(ProviderError::Upstream {
        status, headers, ..
    }) = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 503);
    assert_eq!(headers, &[("retry-after".to_owned(), "2".to_owned())]);
}
