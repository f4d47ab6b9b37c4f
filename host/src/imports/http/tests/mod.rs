//! `OutboundClient` against real loopback servers: a few lines of HTTP/1.1 written by hand, so
//! that each test controls exactly what the upstream sends and when.
//!
//! This module is that fake upstream and the request builders every test uses; the tests are
//! split by what they exercise: `send` (buffered exchanges: headers, authentication, limits,
//! timeouts), `policy` (egress checks and redirects), `streaming` (`send_streaming` and the
//! body's frames) and `options` (building a client from its options). The runtime's tests use
//! the same upstream to answer real plugins.

mod options;
mod policy;
mod send;
mod streaming;

use super::*;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One thing the fake upstream does after reading a request.
#[derive(Clone)]
pub(crate) enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
}

/// A loopback upstream that answers every connection with the same script and records
/// each request it read (head and body, as text).
pub(crate) struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    pub(crate) async fn start(script: Vec<Step>) -> Upstream {
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<String> {
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

pub(crate) fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
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
        clock: None,
        trace: None,
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
