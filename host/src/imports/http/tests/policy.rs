//! The egress policy as the client applies it: undeclared hosts and forbidden addresses are
//! refused before connecting, names resolve through the policy's resolver, and every redirect
//! is checked again.

use super::*;

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
