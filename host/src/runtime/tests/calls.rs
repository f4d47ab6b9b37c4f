//! Calls: round trips through the echo fixture, and the failure fixtures (trap, spin, hog,
//! init-fails) failing one call each while the runtime keeps serving.

use super::*;
use crate::runtime::{CallError, Provider, ProviderError};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

fn chat_content(answer: &str) -> Value {
    let answer: Value = serde_json::from_str(answer).expect("chat.completion JSON");
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned();
    serde_json::from_str(&content).unwrap_or(Value::String(content))
}

fn provider(
    runtime: &PluginRuntime,
    id: &str,
    provider_type: &str,
    config: Value,
) -> Arc<Provider> {
    runtime
        .provider(id, provider_type, &config)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until every instance slot is free again (each call's store has been dropped).
async fn all_slots_free(p: &Provider) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if p.free_instance_slots() == test_limits().max_instances as usize {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_round_trip_with_provider_data_env_and_kv() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let runtime = start(dir.path());
    let echo = provider(&runtime, "echo-1", "test::echo", json!({"greeting": "hi"}));
    echo.check_config().await.unwrap();
    assert_eq!(echo.descriptor().env_vars, ["OGX_TEST_VISIBLE"]);

    let call = CallContext {
        request_id: "req-1".into(),
        provider_data: Some(r#"{"openai_api_key":"sk-caller"}"#.into()),
        ..ctx("req-1")
    };
    let body = json!({"model": "echo-model", "messages": [{"role": "user", "content": "hello"}]});
    let summary = chat_content(&echo.chat_completion(call, body.to_string()).await.unwrap());
    assert_eq!(summary["request"], body);
    assert_eq!(
        summary["provider_data"],
        json!({"openai_api_key": "sk-caller"})
    );
    assert_eq!(summary["provider_id"], "echo-1");
    assert_eq!(summary["provider_type"], "test::echo");
    assert_eq!(summary["config"], json!({"greeting": "hi"}));
    assert_eq!(summary["env"]["OGX_TEST_VISIBLE"], "visible-value");
    assert_eq!(
        summary["env"]["OGX_TEST_HIDDEN"],
        Value::Null,
        "undeclared variables stay hidden"
    );
    assert_eq!(summary["kv"]["after"], "req-1");

    // Per-request data stays in its store; kv persists per provider id.
    let second = chat_content(
        &echo
            .chat_completion(ctx("req-2"), body.to_string())
            .await
            .unwrap(),
    );
    assert_eq!(second["provider_data"], Value::Null);
    assert_eq!(second["kv"]["before"], "req-1");
    let other = provider(&runtime, "echo-2", "test::echo", json!({}));
    let third = chat_content(
        &other
            .chat_completion(ctx("req-3"), body.to_string())
            .await
            .unwrap(),
    );
    assert_eq!(
        third["kv"]["before"],
        Value::Null,
        "kv namespaces are per provider id"
    );

    assert_eq!(
        echo.list_models(ctx("m")).await.unwrap()[0].id,
        "echo-model"
    );
    assert_eq!(echo.health(ctx("h")).await.unwrap().status, "OK");
    let err = echo.embeddings(ctx("e"), "{}".into()).await.unwrap_err();
    assert!(
        matches!(err, CallError::Provider(ProviderError::Unsupported(_))),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_stream_yields_n_chunks_then_ends() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let runtime = start(dir.path());
    let echo = provider(&runtime, "echo", "test::echo", json!({}));
    let stream = echo
        .chat_completion_stream(ctx("s"), json!({"model": "m", "chunks": 5}).to_string())
        .await
        .unwrap();
    let chunks: Vec<Value> = stream
        .map(|c| serde_json::from_str(&c.unwrap()).unwrap())
        .collect()
        .await;
    assert_eq!(chunks.len(), 6);
    for (i, chunk) in chunks[..5].iter().enumerate() {
        assert_eq!(
            chunk["choices"][0]["delta"]["content"],
            format!("chunk-{i}")
        );
    }
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert!(all_slots_free(&echo).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_stream_ends_its_task() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let runtime = start(dir.path());
    let echo = provider(&runtime, "echo", "test::echo", json!({}));
    let mut stream = echo
        .chat_completion_stream(ctx("s"), json!({"chunks": 100_000}).to_string())
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    assert!(stream.next().await.unwrap().is_ok());
    assert!(
        echo.free_instance_slots() < test_limits().max_instances as usize,
        "the stream holds a slot"
    );
    drop(stream);
    assert!(
        all_slots_free(&echo).await,
        "the stream task dropped its store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_fails_one_call_and_the_next_succeeds() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["trap"]);
    let runtime = start(dir.path());
    let trap = provider(&runtime, "trap", "test::trap", json!({}));
    for _ in 0..2 {
        let err = trap
            .chat_completion(ctx("t"), "{}".into())
            .await
            .unwrap_err();
        let CallError::Trap { plugin, detail } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(plugin, "ogx_fixture_trap.wasm");
        assert!(detail.contains("chat-completion"), "{detail}");
    }
    assert_eq!(trap.list_models(ctx("l")).await.unwrap(), vec![]);
    let items: Vec<_> = trap
        .chat_completion_stream(ctx("s"), "{}".into())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].as_ref().unwrap().contains("chunk-0"));
    assert!(
        matches!(items[1], Err(CallError::Trap { .. })),
        "{:?}",
        items[1]
    );
    assert!(all_slots_free(&trap).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_is_stopped_by_its_cpu_budget_and_others_keep_running() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["spin", "echo"]);
    let runtime = start(dir.path());
    let spin = provider(&runtime, "spin", "test::spin", json!({}));
    let echo = provider(&runtime, "echo", "test::echo", json!({}));
    let started = Instant::now();
    let spinning = tokio::spawn({
        let spin = spin.clone();
        async move { spin.chat_completion(ctx("spin"), "{}".into()).await }
    });
    // While it spins, other calls are served.
    echo.chat_completion(ctx("e"), "{}".into()).await.unwrap();
    let err = spinning.await.unwrap().unwrap_err();
    let CallError::Trap { detail, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(detail.contains("CPU budget"), "{detail}");
    assert!(
        started.elapsed() < test_limits().call_timeout,
        "stopped by the budget, not the timeout"
    );

    // A wall-clock limit shorter than the budget gives a Timeout instead.
    let short = CallContext {
        timeout: Some(Duration::from_millis(200)),
        ..ctx("short")
    };
    let err = spin.chat_completion(short, "{}".into()).await.unwrap_err();
    assert!(
        matches!(err, CallError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    echo.chat_completion(ctx("after"), "{}".into())
        .await
        .unwrap();
    assert!(all_slots_free(&spin).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn hog_hits_the_memory_limit_and_the_runtime_keeps_serving() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["hog", "echo"]);
    let runtime = start(dir.path());
    let hog = provider(&runtime, "hog", "test::hog", json!({}));
    let err = hog
        .chat_completion(ctx("hog"), "{}".into())
        .await
        .unwrap_err();
    let CallError::Trap { detail, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.contains("memory") || detail.contains("grow"),
        "{detail}"
    );
    let echo = provider(&runtime, "echo", "test::echo", json!({}));
    echo.chat_completion(ctx("e"), "{}".into()).await.unwrap();
    assert!(matches!(
        hog.chat_completion(ctx("hog2"), "{}".into()).await,
        Err(CallError::Trap { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_rejection_is_an_invalid_request() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["init_fails"]);
    let runtime = start(dir.path());
    let rejected = provider(&runtime, "picky", "test::init-fails", json!({}));
    let err = rejected.check_config().await.unwrap_err();
    let CallError::Provider(ProviderError::InvalidRequest(message)) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("this config is rejected: set `accept: true`"),
        "{message}"
    );
    let err = rejected
        .chat_completion(ctx("c"), "{}".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Provider(ProviderError::InvalidRequest(_))),
        "{err:?}"
    );

    let accepted = provider(&runtime, "ok", "test::init-fails", json!({"accept": true}));
    accepted.check_config().await.unwrap();
    assert_eq!(
        chat_content(
            &accepted
                .chat_completion(ctx("c"), "{}".into())
                .await
                .unwrap()
        ),
        "accepted"
    );
}
