//! A small Redis client for the `kv_redis` backend (OGX's `host`/`port`, no password, no TLS,
//! database 0): RESP2 over plain TCP, a pool of connections, and pipelines.
//!
//! **Provides.** [`RedisClient::connect`] (connects and sends `PING`, so that an unreachable
//! server stops start-up), [`RedisClient::pipeline`] (several commands written at once, their
//! replies read in order; `MULTI`/`EXEC` inside a pipeline makes them one transaction) and
//! [`Reply`]. The reply parser ([`parse_reply`]) works on a byte buffer and is unit-tested.
//!
//! **Limits.** Each pipeline must answer within [`COMMAND_TIMEOUT`]; at most [`MAX_IDLE`]
//! connections are kept; a reply is at most [`MAX_REPLY_BYTES`].
//!
//! **Failures.** A refused or lost connection, a timeout, or a reply that is not RESP is a
//! [`RedisError`] saying so (never a value: values may be key records); the connection is then
//! dropped, not returned to the pool. A command is never retried, since a retried `INCRBY`
//! could count twice. A Redis error reply (`-ERR ...`) is a [`Reply::Error`], for the caller.

use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a pipeline (connecting included) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse.
pub const MAX_IDLE: usize = 16;
/// Largest reply accepted (a listing of many key records fits well within it).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// Why a Redis call failed; the text never holds a stored value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis at {address}: {reason}")]
pub struct RedisError {
    pub address: String,
    pub reason: String,
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// `None`: the null bulk string (a missing key).
    Bulk(Option<Vec<u8>>),
    /// `None`: the null array (an aborted `EXEC`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The integer of an `:n` reply (or of a bulk string holding digits, as `GET` of a counter).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The text of a bulk string; `None` for a missing key.
    pub fn into_text(self) -> Option<String> {
        match self {
            Reply::Bulk(Some(bytes)) => String::from_utf8(bytes).ok(),
            Reply::Simple(text) => Some(text),
            _ => None,
        }
    }
}

/// A connection pool to one Redis server.
pub struct RedisClient {
    address: String,
    idle: Mutex<Vec<TcpStream>>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("address", &self.address)
            .finish()
    }
}

/// A command: its words, e.g. `["INCRBY", "k", "1"]`.
pub type Command = Vec<Vec<u8>>;

/// Builds a [`Command`] from words.
pub fn command<const N: usize>(words: [&[u8]; N]) -> Command {
    words.iter().map(|word| word.to_vec()).collect()
}

impl RedisClient {
    /// Connects to `host:port` and checks the server answers `PING`.
    pub async fn connect(host: &str, port: u16) -> Result<Self, RedisError> {
        let client = RedisClient {
            address: format!("{host}:{port}"),
            idle: Mutex::new(Vec::new()),
        };
        match client.pipeline(&[command([b"PING"])]).await?.as_slice() {
            [Reply::Simple(pong)] if pong == "PONG" => Ok(client),
            _ => Err(client.error("the server did not answer PING with PONG")),
        }
    }

    /// Sends `commands` at once and reads one reply per command, in order.
    pub async fn pipeline(&self, commands: &[Command]) -> Result<Vec<Reply>, RedisError> {
        let mut request = Vec::new();
        for words in commands {
            encode(words, &mut request);
        }
        let reuse = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let exchange = async {
            let mut stream = match reuse {
                Some(stream) => stream,
                None => TcpStream::connect(&self.address)
                    .await
                    .map_err(|e| self.error(format!("cannot connect: {e}")))?,
            };
            stream
                .write_all(&request)
                .await
                .map_err(|e| self.error(format!("write failed: {e}")))?;
            let replies = self.read_replies(&mut stream, commands.len()).await?;
            Ok::<_, RedisError>((stream, replies))
        };
        let (stream, replies) = tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| self.error(format!("no answer within {COMMAND_TIMEOUT:?}")))??;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(stream);
        }
        Ok(replies)
    }

    async fn read_replies(
        &self,
        stream: &mut TcpStream,
        count: usize,
    ) -> Result<Vec<Reply>, RedisError> {
        let mut buffer = Vec::with_capacity(256);
        let mut replies = Vec::with_capacity(count);
        let mut chunk = [0u8; 8192];
        while replies.len() < count {
            match parse_reply(&buffer) {
                Ok(Some((reply, used))) => {
                    replies.push(reply);
                    buffer.drain(..used);
                    continue;
                }
                Ok(None) => {}
                Err(problem) => return Err(self.error(problem)),
            }
            if buffer.len() > MAX_REPLY_BYTES {
                return Err(self.error(format!("a reply is over {MAX_REPLY_BYTES} bytes")));
            }
            let read = stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.error(format!("read failed: {e}")))?;
            if read == 0 {
                return Err(self.error("the server closed the connection"));
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        if !buffer.is_empty() {
            return Err(self.error("the server sent more replies than commands"));
        }
        Ok(replies)
    }

    fn error(&self, reason: impl Into<String>) -> RedisError {
        RedisError {
            address: self.address.clone(),
            reason: reason.into(),
        }
    }
}

/// Appends `words` as a RESP array of bulk strings.
fn encode(words: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for word in words {
        out.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        out.extend_from_slice(word);
        out.extend_from_slice(b"\r\n");
    }
}

/// The first complete reply in `buffer` and the bytes it used; `Ok(None)` when more bytes are
/// needed; `Err` when the bytes are not RESP2.
pub fn parse_reply(buffer: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(line_end) = buffer.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buffer[..line_end].split_first() else {
        return Err("an empty reply line".into());
    };
    let text = std::str::from_utf8(line).map_err(|_| "a reply line that is not UTF-8")?;
    let after = line_end + 2;
    let number = || {
        text.parse::<i64>()
            .map_err(|_| format!("{text:?} is not a number"))
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(text.to_string()), after))),
        b'-' => Ok(Some((Reply::Error(text.to_string()), after))),
        b':' => Ok(Some((Reply::Int(number()?), after))),
        b'$' => {
            let length = number()?;
            if length < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let end = after + length as usize;
            if buffer.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((
                Reply::Bulk(Some(buffer[after..end].to_vec())),
                end + 2,
            )))
        }
        b'*' => {
            let length = number()?;
            if length < 0 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let mut items = Vec::with_capacity(length.min(1024) as usize);
            let mut used = after;
            for _ in 0..length {
                match parse_reply(&buffer[used..])? {
                    Some((item, n)) => {
                        items.push(item);
                        used += n;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), used)))
        }
        other => Err(format!("unknown reply type byte {other:#04x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_every_kind_parse_and_partial_ones_wait_for_more() {
        let cases: Vec<(&[u8], Reply)> = vec![
            (b"+PONG\r\n", Reply::Simple("PONG".into())),
            (b"-ERR wrong\r\n", Reply::Error("ERR wrong".into())),
            (b":42\r\n", Reply::Int(42)),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"$5\r\nhe\r\no\r\n", Reply::Bulk(Some(b"he\r\no".to_vec()))),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*2\r\n:1\r\n$1\r\nx\r\n",
                Reply::Array(Some(vec![Reply::Int(1), Reply::Bulk(Some(b"x".to_vec()))])),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                parse_reply(bytes).unwrap(),
                Some((expected, bytes.len())),
                "{bytes:?}"
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    parse_reply(&bytes[..cut]).unwrap(),
                    None,
                    "{bytes:?} cut {cut}"
                );
            }
        }
        assert!(parse_reply(b"?what\r\n").is_err());
        assert!(parse_reply(b":x\r\n").is_err());
        assert_eq!(Reply::Bulk(Some(b"17".to_vec())).as_i64(), Some(17));
    }

    #[test]
    fn commands_are_encoded_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&command([b"INCRBY", b"k", b"10"]), &mut out);
        assert_eq!(out, b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n10\r\n");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = RedisClient::connect("127.0.0.1", port).await.unwrap_err();
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }
}
