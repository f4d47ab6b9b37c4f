//! `OutboundClient` against real loopback servers: a few lines of HTTP/1.1 written by hand, so
//! that each test controls exactly what the upstream sends and when.

use super::*;
use http::header::{AUTHORIZATION, HeaderValue};
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One thing the fake upstream does after reading a request.
#[derive(Clone)]
enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
}

/// A loopback upstream that answers every connection with the same script and records
/// each request it read (head and body, as text).
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start(script: Vec<Step>) -> Upstream {
        Self::start_with(move |_| script.clone()).await
    }

    /// Chooses the script from the request text.
    async fn start_with(script: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let script = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let mut socket = socket;
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    recorded.lock().unwrap().push(request.clone());
                    for step in script(&request) {
                        match step {
                            Step::Write(bytes) => {
                                if socket.write_all(&bytes).await.is_err() {
                                    return;
                                }
                                let _ = socket.flush().await;
                            }
                            Step::Sleep(duration) => tokio::time::sleep(duration).await,
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        Upstream { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buffer).to_string())
}

fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn chunked_head(content_type: &str) -> Step {
    Step::Write(
        format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            .into_bytes(),
    )
}

fn chunk(data: &[u8]) -> Step {
    let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(b"\r\n");
    Step::Write(bytes)
}

fn last_chunk() -> Step {
    Step::Write(b"0\r\n\r\n".to_vec())
}

fn pause(ms: u64) -> Step {
    Step::Sleep(Duration::from_millis(ms))
}

fn client(patterns: &[&str]) -> OutboundClient {
    client_with(patterns, ClientOptions::default())
}

fn client_with(patterns: &[&str], options: ClientOptions) -> OutboundClient {
    OutboundClient::new(EgressPolicy::new(patterns, false).unwrap(), options).unwrap()
}

fn request(url: String) -> OutboundRequest {
    OutboundRequest {
        method: Method::Get,
        url,
        headers: Vec::new(),
        body: Vec::new(),
        auth: Auth::None,
        timeout: None,
    }
}

fn header_lines(raw: &str) -> Vec<String> {
    raw.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect()
}

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
async fn send_round_trip() {
    let upstream = Upstream::start(vec![Step::Write(response(
        "201 Created",
        &["X-Request-ID: abc", "Content-Type: application/json"],
        b"{\"ok\":true}",
    ))])
    .await;
    let mut req = request(upstream.url("/v1/chat/completions?x=1"));
    req.method = Method::Post;
    req.headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Extra".into(), "1".into()),
    ];
    req.body = b"{\"model\":\"m\"}".to_vec();
    let answer = client(&["127.0.0.1"]).send(req).await.unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, b"{\"ok\":true}");
    assert!(
        answer
            .headers
            .contains(&("x-request-id".into(), "abc".into())),
        "{:?}",
        answer.headers
    );
    assert!(
        answer
            .headers
            .iter()
            .all(|(name, _)| *name == name.to_ascii_lowercase())
    );

    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].starts_with("POST /v1/chat/completions?x=1 HTTP/1.1\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].ends_with("\r\n\r\n{\"model\":\"m\"}"));
    let lines = header_lines(&seen[0]);
    assert!(lines.contains(&"x-extra: 1".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"content-length: 13".to_owned()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn bearer_replaces_authorization_and_hop_by_hop_headers_are_dropped() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let mut req = request(upstream.url("/"));
    req.method = Method::Post;
    req.body = b"abc".to_vec();
    req.auth = Auth::Bearer("sk-test".into());
    req.headers = [
        ("Authorization", "Bearer plugin-chosen"),
        ("Connection", "x-secret-hop"),
        ("Host", "evil.example"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic abc"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Trailer", "x-t"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Content-Length", "999"),
        ("X-Kept", "yes"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let answer = client(&["127.0.0.1"]).send(req).await.unwrap();
    assert_eq!(answer.status, 200);

    let lines = header_lines(&upstream.requests()[0]);
    let authorization: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("authorization:"))
        .collect();
    assert_eq!(authorization, vec!["authorization: bearer sk-test"]);
    assert!(
        lines.contains(&format!("host: {}", upstream.addr)),
        "{lines:?}"
    );
    assert!(lines.contains(&"content-length: 3".to_owned()), "{lines:?}");
    assert!(lines.contains(&"x-kept: yes".to_owned()));
    for gone in [
        "proxy-",
        "keep-alive",
        "te:",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-secret-hop",
        "evil",
    ] {
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with(gone) || l.contains("evil")),
            "{gone} in {lines:?}"
        );
    }
}

#[tokio::test]
async fn without_auth_the_plugins_authorization_header_is_sent() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let mut req = request(upstream.url("/"));
    req.headers = vec![("authorization".into(), "Token abc".into())];
    client(&["127.0.0.1"]).send(req).await.unwrap();
    assert!(header_lines(&upstream.requests()[0]).contains(&"authorization: token abc".to_owned()));
}

#[tokio::test]
async fn invalid_requests_are_refused_without_echoing_values() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let client = client(&["127.0.0.1"]);
    let cases: Vec<(OutboundRequest, &str)> = vec![
        (
            OutboundRequest {
                auth: Auth::Bearer("sk-secret\nInjected: 1".into()),
                ..request(upstream.url("/"))
            },
            "bearer token",
        ),
        (
            OutboundRequest {
                headers: vec![("x-api-key".into(), "sk-secret\r\nX: y".into())],
                ..request(upstream.url("/"))
            },
            "invalid value for header x-api-key",
        ),
        (
            OutboundRequest {
                headers: vec![("bad header".into(), "sk-secret".into())],
                ..request(upstream.url("/"))
            },
            "invalid header name",
        ),
        (request("not a url sk-secret".into()), "URL is not valid"),
        (
            request("ftp://127.0.0.1/sk-secret".into()),
            "must be http or https",
        ),
        (
            request(format!("http://user:sk-secret@{}/", upstream.addr)),
            "user:password",
        ),
    ];
    for (req, expected) in cases {
        match client.send(req).await {
            Err(HttpError::InvalidRequest(text)) => {
                assert!(text.contains(expected), "{text:?} lacks {expected:?}");
                assert!(!text.contains("sk-secret"), "secret echoed: {text:?}");
            }
            other => panic!("expected InvalidRequest({expected}), got {other:?}"),
        }
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn sigv4_without_a_signer_is_a_credentials_error() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let mut req = request(upstream.url("/"));
    req.auth = Auth::AwsSigV4(AwsSigning {
        service: "bedrock".into(),
        region: "us-west-2".into(),
        credentials: AwsCredentialSource::default(),
    });
    assert_eq!(
        client(&["127.0.0.1"]).send(req).await,
        Err(HttpError::Credentials(
            "AWS SigV4 signing is not available yet in this build".into()
        ))
    );
    assert!(upstream.requests().is_empty());
}

struct FakeSigner;

impl RequestSigner for FakeSigner {
    fn sign<'a>(
        &'a self,
        request: &'a mut http::Request<Bytes>,
        signing: &'a AwsSigning,
    ) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move {
            assert!(
                request.headers().get(AUTHORIZATION).is_none(),
                "signer saw the plugin's authorization"
            );
            let value = format!(
                "fake {} {} {}",
                signing.service,
                signing.region,
                request.body().len()
            );
            request
                .headers_mut()
                .insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            Ok(())
        })
    }
}

#[tokio::test]
async fn sigv4_goes_through_the_signer_seam() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let options = ClientOptions {
        signer: Some(Arc::new(FakeSigner)),
        ..ClientOptions::default()
    };
    let mut req = request(upstream.url("/"));
    req.method = Method::Post;
    req.body = b"12345".to_vec();
    req.headers = vec![("authorization".into(), "plugin".into())];
    req.auth = Auth::AwsSigV4(AwsSigning {
        service: "bedrock".into(),
        region: "eu-central-1".into(),
        credentials: AwsCredentialSource::default(),
    });
    client_with(&["127.0.0.1"], options)
        .send(req)
        .await
        .unwrap();
    let lines = header_lines(&upstream.requests()[0]);
    assert!(
        lines.contains(&"authorization: fake bedrock eu-central-1 5".to_owned()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn undeclared_hosts_are_denied_before_connecting() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b""))]).await;
    let result = client(&["api.openai.com"])
        .send(request(upstream.url("/")))
        .await;
    match result {
        Err(HttpError::Denied(text)) => assert!(
            text.contains("127.0.0.1") && text.contains("api.openai.com"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    let result = client(&["*"])
        .send(request("http://169.254.169.254/latest/meta-data/".into()))
        .await;
    assert!(matches!(result, Err(HttpError::Denied(_))), "{result:?}");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn names_are_resolved_through_the_policy_resolver() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b"hi"))]).await;
    let url = format!("http://localhost:{}/", upstream.addr.port());
    let answer = client(&["localhost"]).send(request(url)).await;
    // `localhost` may resolve to ::1 first where IPv6 is up; the client falls back to
    // 127.0.0.1, where the upstream listens.
    assert_eq!(answer.map(|a| a.body), Ok(b"hi".to_vec()));
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_policy() {
    let upstream = Upstream::start_with(|request| {
        if request.starts_with("GET /away") {
            vec![Step::Write(response(
                "302 Found",
                &["location: http://169.254.169.254/latest/"],
                b"",
            ))]
        } else if request.starts_with("GET /elsewhere") {
            vec![Step::Write(response(
                "302 Found",
                &["location: http://example.com/"],
                b"",
            ))]
        } else if request.starts_with("GET /loop") {
            vec![Step::Write(response(
                "302 Found",
                &["location: /loop"],
                b"",
            ))]
        } else if request.starts_with("GET /here") {
            vec![Step::Write(response(
                "302 Found",
                &["location: /there"],
                b"",
            ))]
        } else {
            vec![Step::Write(response("200 OK", &[], b"arrived"))]
        }
    })
    .await;
    let client = client(&["127.0.0.1"]);
    assert_eq!(
        client
            .send(request(upstream.url("/here")))
            .await
            .map(|r| r.body),
        Ok(b"arrived".to_vec())
    );
    for path in ["/away", "/elsewhere"] {
        let result = client.send(request(upstream.url(path))).await;
        assert!(
            matches!(result, Err(HttpError::Denied(_))),
            "{path}: {result:?}"
        );
    }
    let result = client.send(request(upstream.url("/loop"))).await;
    assert!(
        matches!(result, Err(HttpError::Protocol(ref t)) if t.contains("redirects")),
        "{result:?}"
    );
    // /here and /there, /away, /elsewhere, then /loop and the MAX_REDIRECTS redirects
    // followed before the next one is refused.
    assert_eq!(upstream.requests().len(), 2 + 1 + 1 + 1 + MAX_REDIRECTS);
    let permissive = client_with(&["*"], ClientOptions::default());
    let result = permissive.send(request(upstream.url("/away"))).await;
    assert!(
        matches!(result, Err(HttpError::Denied(ref text)) if text.contains("link-local")),
        "{result:?}"
    );
}

#[tokio::test]
async fn buffered_bodies_are_capped() {
    let options = || ClientOptions {
        max_buffered_body_bytes: 10,
        ..ClientOptions::default()
    };
    let declared = Upstream::start(vec![Step::Write(response("200 OK", &[], &[b'x'; 11]))]).await;
    let result = client_with(&["127.0.0.1"], options())
        .send(request(declared.url("/")))
        .await;
    assert!(
        matches!(result, Err(HttpError::TooLarge(ref t)) if t.contains("10 bytes")),
        "{result:?}"
    );

    let chunked = Upstream::start(vec![
        chunked_head("text/plain"),
        chunk(b"123456"),
        chunk(b"789012"),
        last_chunk(),
    ])
    .await;
    let result = client_with(&["127.0.0.1"], options())
        .send(request(chunked.url("/")))
        .await;
    assert!(matches!(result, Err(HttpError::TooLarge(_))), "{result:?}");

    let exact = Upstream::start(vec![Step::Write(response("200 OK", &[], &[b'x'; 10]))]).await;
    let result = client_with(&["127.0.0.1"], options())
        .send(request(exact.url("/")))
        .await;
    assert_eq!(result.map(|r| r.body.len()), Ok(10));
}

#[tokio::test]
async fn slow_upstreams_time_out() {
    let upstream = Upstream::start(vec![
        pause(2_000),
        Step::Write(response("200 OK", &[], b"")),
    ])
    .await;
    let mut req = request(upstream.url("/"));
    req.timeout = Some(Duration::from_millis(150));
    let result = client(&["127.0.0.1"]).send(req.clone()).await;
    assert!(matches!(result, Err(HttpError::Timeout(_))), "{result:?}");

    // The client's default applies when the request names no timeout.
    req.timeout = None;
    let options = ClientOptions {
        default_timeout: Duration::from_millis(150),
        ..ClientOptions::default()
    };
    let result = client_with(&["127.0.0.1"], options).send(req).await;
    assert!(matches!(result, Err(HttpError::Timeout(_))), "{result:?}");

    // A body that trickles past the deadline times out too.
    let trickle = Upstream::start(vec![
        chunked_head("text/plain"),
        chunk(b"a"),
        pause(2_000),
        last_chunk(),
    ])
    .await;
    let mut req = request(trickle.url("/"));
    req.timeout = Some(Duration::from_millis(150));
    let result = client(&["127.0.0.1"]).send(req).await;
    assert!(matches!(result, Err(HttpError::Timeout(_))), "{result:?}");
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let result = client(&["127.0.0.1"])
        .send(request(format!("http://{addr}/?key=sk-secret")))
        .await;
    match result {
        Err(HttpError::Connect(text)) => {
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(!text.contains("sk-secret"), "{text}");
        }
        other => panic!("{other:?}"),
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

#[test]
fn debug_output_hides_secrets() {
    let req = OutboundRequest {
        headers: vec![("x-api-key".into(), "sk-secret".into())],
        auth: Auth::Bearer("sk-secret".into()),
        ..request("http://h/".into())
    };
    let text = format!("{req:?}");
    assert!(!text.contains("sk-secret"), "{text}");
    assert!(text.contains("x-api-key"));
}

#[test]
fn hop_by_hop_names() {
    for name in [
        "connection",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-anything",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ] {
        assert!(is_hop_by_hop(name), "{name}");
    }
    for name in ["authorization", "content-type", "x-api-key", "tel"] {
        assert!(!is_hop_by_hop(name), "{name}");
    }
}
