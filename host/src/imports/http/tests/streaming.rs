//! `OutboundClient::send_streaming`: the body arrives frame by frame in each framing, and
//! idle, total and head timeouts, broken bodies and oversized frames end it with an error.

use super::*;

/// Streams from a fresh upstream that plays `script`.
async fn stream_from(
    script: Vec<Step>,
    framing: Framing,
    options: ClientOptions,
) -> StreamingResponse {
    let upstream = Upstream::start(script).await;
    client_with(&["127.0.0.1"], options)
        .send_streaming(request(upstream.url("/")), framing)
        .await
        .unwrap()
}

async fn collect(body: &mut BodyStream) -> Result<Vec<Frame>, HttpError> {
    let mut frames = Vec::new();
    while let Some(frame) = body.next().await? {
        frames.push(frame);
    }
    Ok(frames)
}

fn frame(event: Option<&str>, data: &[u8]) -> Frame {
    Frame {
        event: event.map(str::to_owned),
        data: data.to_vec(),
    }
}

#[tokio::test]
async fn sse_stream_arrives_frame_by_frame() {
    let mut streaming = stream_from(
        vec![
            chunked_head("text/event-stream"),
            chunk(b": keep-alive\n\ndata: {\"n\":1}\n"),
            pause(20),
            chunk(b"\nevent: delta\r\ndata: a\r\ndata: b\r\n"),
            pause(20),
            chunk(b"\r\ndata: [DONE]\n\n"),
            last_chunk(),
        ],
        Framing::Sse,
        ClientOptions::default(),
    )
    .await;
    assert_eq!(streaming.status, 200);
    assert!(
        streaming
            .headers
            .contains(&("content-type".into(), "text/event-stream".into()))
    );
    assert_eq!(
        collect(&mut streaming.body).await,
        Ok(vec![
            frame(None, b"{\"n\":1}"),
            frame(Some("delta"), b"a\nb"),
            frame(None, b"[DONE]")
        ])
    );
    assert_eq!(streaming.body.next().await, Ok(None));
}

#[tokio::test]
async fn an_error_answer_to_a_streamed_request_arrives_raw() {
    let body = br#"{"error":{"message":"slow down"}}"#;
    let mut streaming = stream_from(
        vec![Step::Write(
            format!(
                "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
        ), Step::Write(body.to_vec())],
        Framing::Sse,
        ClientOptions::default(),
    )
    .await;
    assert_eq!(streaming.status, 429);
    let frames = collect(&mut streaming.body).await.unwrap();
    let received: Vec<u8> = frames.into_iter().flat_map(|f| f.data).collect();
    assert_eq!(received, body.to_vec());
}

#[tokio::test]
async fn raw_and_event_stream_framings() {
    let mut raw = stream_from(
        vec![
            chunked_head("text/plain"),
            chunk(b"one"),
            pause(20),
            chunk(b"two"),
            last_chunk(),
        ],
        Framing::Raw,
        ClientOptions::default(),
    )
    .await;
    let data: Vec<u8> = collect(&mut raw.body)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|f| f.data)
        .collect();
    assert_eq!(data, b"onetwo");

    let message = hex::decode("0000009700000057f30be03e0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a2248656c6c6f227d7d67623831").unwrap();
    let (a, b) = message.split_at(50);
    let mut events = stream_from(
        vec![
            chunked_head("application/vnd.amazon.eventstream"),
            chunk(a),
            pause(20),
            chunk(b),
            chunk(&message),
            last_chunk(),
        ],
        Framing::AwsEventStream,
        ClientOptions::default(),
    )
    .await;
    let expected = frame(
        Some("contentBlockDelta"),
        br#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#,
    );
    assert_eq!(
        collect(&mut events.body).await,
        Ok(vec![expected.clone(), expected])
    );

    // A body that ends inside a message is a protocol error.
    let mut events = stream_from(
        vec![
            chunked_head("application/vnd.amazon.eventstream"),
            chunk(a),
            last_chunk(),
        ],
        Framing::AwsEventStream,
        ClientOptions::default(),
    )
    .await;
    let result = collect(&mut events.body).await;
    assert!(matches!(result, Err(HttpError::Protocol(_))), "{result:?}");
}

#[tokio::test]
async fn quiet_streams_hit_the_idle_timeout_and_stay_failed() {
    let options = ClientOptions {
        frame_idle_timeout: Duration::from_millis(150),
        ..ClientOptions::default()
    };
    let mut streaming = stream_from(
        vec![
            chunked_head("text/event-stream"),
            chunk(b"data: 1\n\n"),
            pause(3_000),
        ],
        Framing::Sse,
        options,
    )
    .await;
    assert_eq!(streaming.body.next().await, Ok(Some(frame(None, b"1"))));
    let error = streaming.body.next().await.unwrap_err();
    assert!(
        matches!(error, HttpError::Timeout(ref t) if t.contains("sent nothing")),
        "{error:?}"
    );
    assert_eq!(streaming.body.next().await, Err(error));
}

#[tokio::test]
async fn the_total_timeout_covers_a_streamed_body() {
    let mut script = vec![chunked_head("text/event-stream")];
    for _ in 0..50 {
        script.push(chunk(b"data: tick\n\n"));
        script.push(pause(50));
    }
    let upstream = Upstream::start(script).await;
    let mut req = request(upstream.url("/"));
    req.timeout = Some(Duration::from_millis(300));
    let mut streaming = client(&["127.0.0.1"])
        .send_streaming(req, Framing::Sse)
        .await
        .unwrap();
    let result = collect(&mut streaming.body).await;
    assert!(
        matches!(result, Err(HttpError::Timeout(ref t)) if t.contains("longer than")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_stream_that_breaks_off_is_a_protocol_error() {
    // The chunk announces 0x20 bytes but the connection closes after 4.
    let mut streaming = stream_from(
        vec![
            chunked_head("text/event-stream"),
            Step::Write(b"20\r\ndata".to_vec()),
        ],
        Framing::Raw,
        ClientOptions::default(),
    )
    .await;
    let result = collect(&mut streaming.body).await;
    assert!(matches!(result, Err(HttpError::Protocol(_))), "{result:?}");
}

#[tokio::test]
async fn oversized_stream_frames_are_refused() {
    let options = ClientOptions {
        max_frame_bytes: 32,
        ..ClientOptions::default()
    };
    let mut streaming = stream_from(
        vec![
            chunked_head("text/event-stream"),
            chunk(&[b'x'; 64]),
            chunk(b"\n\n"),
            last_chunk(),
        ],
        Framing::Sse,
        options,
    )
    .await;
    let result = streaming.body.next().await;
    assert!(matches!(result, Err(HttpError::TooLarge(_))), "{result:?}");
}

#[tokio::test]
async fn streaming_checks_policy_and_head_timeout() {
    let upstream = Upstream::start(vec![
        pause(2_000),
        Step::Write(response("200 OK", &[], b"")),
    ])
    .await;
    let result = client(&["example.com"])
        .send_streaming(request(upstream.url("/")), Framing::Sse)
        .await;
    assert!(matches!(result, Err(HttpError::Denied(_))), "{result:?}");
    let mut req = request(upstream.url("/"));
    req.timeout = Some(Duration::from_millis(150));
    let result = client(&["127.0.0.1"])
        .send_streaming(req, Framing::Sse)
        .await;
    assert!(matches!(result, Err(HttpError::Timeout(_))), "{result:?}");
}

#[tokio::test]
async fn the_upstream_clock_counts_each_exchange_and_every_wait_on_the_upstream() {
    let clock = Arc::new(UpstreamClock::default());
    let upstream = Upstream::start(vec![
        pause(60),
        chunked_head("text/event-stream"),
        pause(60),
        chunk(b"data: 1\n\n"),
        pause(60),
        chunk(b"data: 2\n\n"),
        last_chunk(),
    ])
    .await;
    let client = client(&["127.0.0.1"]);
    let timed = |url: String| OutboundRequest {
        clock: Some(clock.clone()),
        trace: None,
        ..request(url)
    };
    let mut streaming = client
        .send_streaming(timed(upstream.url("/")), Framing::Sse)
        .await
        .unwrap();
    assert_eq!(clock.exchanges(), 1);
    assert_eq!(collect(&mut streaming.body).await.unwrap().len(), 2);
    // The head and both chunks were waited for: at least the three pauses.
    let streamed = clock.waited();
    assert!(streamed >= Duration::from_millis(180), "{streamed:?}");

    let buffered =
        Upstream::start(vec![pause(60), Step::Write(response("200 OK", &[], b"ok"))]).await;
    let answer = client.send(timed(buffered.url("/"))).await.unwrap();
    assert_eq!(answer.body, b"ok");
    assert_eq!(clock.exchanges(), 2);
    assert!(clock.waited() >= streamed + Duration::from_millis(60));
}
