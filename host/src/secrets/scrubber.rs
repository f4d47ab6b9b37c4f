//! Finding and replacing known secret strings in bytes: [`Scrubber`] over a whole buffer,
//! [`StreamScrubber`] over a body that arrives in chunks (a secret may straddle two chunks).
//!
//! One Aho-Corasick pass (leftmost-longest) finds every occurrence of every pattern; a buffer
//! with no match is returned borrowed, untouched. A scrubber without patterns does no work at
//! all. Patterns shorter than [`super::MIN_SECRET_BYTES`] are never added (see there). Cannot
//! fail: a pattern set the automaton refuses (far beyond any real count) leaves the scrubber
//! without patterns and logs why.

use super::{MARKER, MIN_SECRET_BYTES};
use aho_corasick::{AhoCorasick, MatchKind};
use std::borrow::Cow;

/// Replaces every occurrence of its patterns with [`MARKER`].
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    automaton: Option<AhoCorasick>,
    patterns: Vec<Vec<u8>>,
    longest: usize,
}

impl Scrubber {
    /// A scrubber for `patterns`; those shorter than [`MIN_SECRET_BYTES`] are left out and
    /// duplicates are merged.
    pub fn new<P: AsRef<[u8]>>(patterns: impl IntoIterator<Item = P>) -> Self {
        let mut patterns: Vec<Vec<u8>> = patterns
            .into_iter()
            .map(|p| p.as_ref().to_vec())
            .filter(|p| p.len() >= MIN_SECRET_BYTES)
            .collect();
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Scrubber::default();
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns);
        match automaton {
            Ok(automaton) => Scrubber {
                automaton: Some(automaton),
                longest: patterns.iter().map(Vec::len).max().unwrap_or(0),
                patterns,
            },
            Err(error) => {
                tracing::error!("cannot build the secret scrubber: {error}");
                Scrubber::default()
            }
        }
    }

    /// Whether it has nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// The patterns, each at least [`MIN_SECRET_BYTES`] long.
    pub fn patterns(&self) -> &[Vec<u8>] {
        &self.patterns
    }

    /// `bytes` with every pattern replaced by [`MARKER`]; borrowed when nothing matched.
    pub fn scrub<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(automaton) = &self.automaton else {
            return Cow::Borrowed(bytes);
        };
        let mut matches = automaton.find_iter(bytes).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut last = 0;
        for found in matches {
            out.extend_from_slice(&bytes[last..found.start()]);
            out.extend_from_slice(MARKER.as_bytes());
            last = found.end();
        }
        out.extend_from_slice(&bytes[last..]);
        Cow::Owned(out)
    }

    /// [`Scrubber::scrub`] on text. Patterns are whole strings, so the result stays UTF-8.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// The length of the longest suffix of `bytes` that is a proper prefix of a pattern: the
    /// bytes a stream must hold back, since the next chunk may complete a secret.
    fn partial_suffix(&self, bytes: &[u8]) -> usize {
        let window = self.longest.saturating_sub(1).min(bytes.len());
        let start = bytes.len() - window;
        for i in start..bytes.len() {
            let tail = &bytes[i..];
            if self
                .patterns
                .iter()
                .any(|p| p.len() > tail.len() && p.starts_with(tail))
            {
                return tail.len();
            }
        }
        0
    }
}

/// Scrubs a body chunk by chunk. It holds back only a tail that could be the start of a
/// secret (patterns are trimmed, so the blank line ending an SSE event is never held).
#[derive(Debug)]
pub struct StreamScrubber {
    scrubber: Scrubber,
    held: Vec<u8>,
}

impl StreamScrubber {
    pub fn new(scrubber: Scrubber) -> Self {
        StreamScrubber {
            scrubber,
            held: Vec::new(),
        }
    }

    /// The bytes of `chunk` (after what was held) that can be passed on now, scrubbed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut joined = std::mem::take(&mut self.held);
        joined.extend_from_slice(chunk);
        let mut scrubbed = self.scrubber.scrub(&joined).into_owned();
        // A held-back tail is never part of a replaced marker: the marker is shorter than any
        // pattern and is not one.
        let keep = self.scrubber.partial_suffix(&scrubbed);
        self.held = scrubbed.split_off(scrubbed.len() - keep);
        scrubbed
    }

    /// What is still held at the end of the body (a partial secret is not a secret).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_and_borrows_when_clean() {
        let s = Scrubber::new(["sk-secret-123", "tok-abcdefgh"]);
        assert_eq!(
            s.scrub_str("Bearer sk-secret-123 and sk-secret-123, tok-abcdefgh."),
            "Bearer ******** and ********, ********."
        );
        assert!(matches!(s.scrub(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_patterns_are_not_scrubbed() {
        let s = Scrubber::new(["abc", "1234567"]);
        assert!(s.is_empty());
        assert_eq!(s.scrub_str("abc 1234567"), "abc 1234567");
        assert!(!Scrubber::new(["12345678"]).is_empty());
    }

    #[test]
    fn the_longest_overlapping_pattern_wins() {
        let s = Scrubber::new(["user:password1", "password1"]);
        assert_eq!(s.scrub_str("x user:password1 y"), "x ******** y");
    }

    #[test]
    fn a_secret_split_across_chunks_is_scrubbed() {
        let secret = "sk-live-0123456789abcdef";
        let body = format!("data: {{\"error\":\"bad key {secret}\"}}\n\ndata: [DONE]\n\n");
        // Every split point, into two and three chunks.
        for cut in 0..body.len() {
            for cut2 in cut..body.len() {
                let mut stream = StreamScrubber::new(Scrubber::new([secret]));
                let mut out = stream.push(&body.as_bytes()[..cut]);
                out.extend(stream.push(&body.as_bytes()[cut..cut2]));
                out.extend(stream.push(&body.as_bytes()[cut2..]));
                out.extend(stream.finish());
                let text = String::from_utf8(out).unwrap();
                assert_eq!(text, body.replace(secret, MARKER), "cuts {cut}, {cut2}");
            }
        }
    }

    #[test]
    fn only_a_possible_secret_start_is_held_back() {
        let mut stream = StreamScrubber::new(Scrubber::new(["sk-live-0123456789"]));
        assert_eq!(stream.push(b"data: {}\n\n"), b"data: {}\n\n");
        assert_eq!(stream.push(b"data: sk-li"), b"data: ");
        assert_eq!(stream.push(b"ke\n\n"), b"sk-like\n\n");
        assert_eq!(stream.push(b"tail sk-"), b"tail ");
        assert_eq!(stream.finish(), b"sk-");
    }
}
