//! `OutboundClient::send`: what reaches the upstream (headers, authentication, the signer
//! seam), what is refused before anything is sent, and the buffered body's limits and timeouts.

use super::*;
use http::header::{AUTHORIZATION, HeaderValue};

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

// Multi-threaded: the fake upstream keeps answering while a worker waits for the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_thread_builds_its_own_pool_on_its_first_request() {
    let upstream = Upstream::start(vec![Step::Write(response("200 OK", &[], b"ok"))]).await;
    let client = client(&["127.0.0.1"]);
    // Off the serving threads (here), the shared pool answers.
    assert_eq!(
        client.send(request(upstream.url("/a"))).await.unwrap().body,
        b"ok"
    );
    assert_eq!(client.thread_pools_built(), 0);
    let (on_thread, url) = (client.clone(), upstream.url("/b"));
    let answer = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            crate::serving_threads::enter(1);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(on_thread.send(request(url))).unwrap()
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(answer.body, b"ok");
    assert_eq!(client.thread_pools_built(), 1);
    assert_eq!(upstream.requests().len(), 2);
}
