//! `logging`: a plugin's log lines, and its stdout and stderr, in the host's log.
//!
//! **Provides.** [`PluginLogger::log`] writes one `tracing` event with target
//! [`LOG_TARGET`] and the fields `provider_id`, `request_id` and `plugin` (the `.wasm` file
//! name), so an operator can filter a provider's or a request's lines.
//! [`PluginOutput`] is a line buffer for the plugin's WASI stdout (logged at `info`) and
//! stderr (at `warn`): bytes are kept until a newline, then logged as one line.
//!
//! **Refuses.** Control characters, so that a plugin cannot forge extra log lines or
//! terminal escapes: newlines, carriage returns and tabs become spaces, other control
//! characters and bidirectional-override characters are dropped.
//!
//! **Limits.** A message keeps at most [`MAX_LOG_MESSAGE_BYTES`]; the rest is cut and the
//! line says how much. An output line that grows past the same limit without a newline is
//! logged in pieces of that size, so a plugin cannot make the host buffer without end.
//!
//! **Scrubbed.** Every secret the host knows ([`crate::secrets`]: config secrets, the
//! request's provider-data keys, the tokens sent upstream) is replaced with `********` before
//! the line is logged, whatever subscriber writes it.
//!
//! **Failures.** None: logging never fails a call.

use std::borrow::Cow;
use std::sync::Mutex;

/// Longest message kept, in bytes of UTF-8, before the `[... N bytes cut]` marker.
pub const MAX_LOG_MESSAGE_BYTES: usize = 8 * 1024;

/// `tracing` target of every plugin line.
pub const LOG_TARGET: &str = "ogx::plugin";

/// Severity of a plugin's log line (the WIT `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Who is logging: attached to every line of one plugin instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLogger {
    pub provider_id: String,
    pub request_id: String,
    /// The plugin's `.wasm` file name.
    pub plugin: String,
}

impl PluginLogger {
    pub fn new(
        provider_id: impl Into<String>,
        request_id: impl Into<String>,
        plugin: impl Into<String>,
    ) -> Self {
        PluginLogger {
            provider_id: provider_id.into(),
            request_id: request_id.into(),
            plugin: plugin.into(),
        }
    }

    /// Writes one line, cleaned and capped (see the module documentation).
    pub fn log(&self, level: LogLevel, message: &str) {
        let message = clean_message(message);
        let message = crate::secrets::scrub_log(message.as_bytes());
        let message = String::from_utf8_lossy(&message);
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: LOG_TARGET,
                    $level,
                    provider_id = %self.provider_id,
                    request_id = %self.request_id,
                    plugin = %self.plugin,
                    "{message}"
                )
            };
        }
        match level {
            LogLevel::Trace => emit!(tracing::Level::TRACE),
            LogLevel::Debug => emit!(tracing::Level::DEBUG),
            LogLevel::Info => emit!(tracing::Level::INFO),
            LogLevel::Warn => emit!(tracing::Level::WARN),
            LogLevel::Error => emit!(tracing::Level::ERROR),
        }
    }

    /// A line buffer for the plugin's stdout or stderr.
    pub fn output(&self, stream: OutputStream) -> PluginOutput {
        PluginOutput {
            logger: self.clone(),
            stream,
            pending: Mutex::new(Vec::new()),
        }
    }
}

/// `message` capped at [`MAX_LOG_MESSAGE_BYTES`], with control characters replaced or
/// dropped.
pub fn clean_message(message: &str) -> Cow<'_, str> {
    let mut end = message.len().min(MAX_LOG_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &message[..end];
    let cut = message.len() - end;
    if cut == 0 && !kept.chars().any(needs_cleaning) {
        return Cow::Borrowed(message);
    }
    let mut clean: String = kept
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if needs_cleaning(c) => None,
            c => Some(c),
        })
        .collect();
    if cut > 0 {
        clean.push_str(&format!(" [... {cut} bytes cut]"));
    }
    Cow::Owned(clean)
}

fn needs_cleaning(c: char) -> bool {
    // Bidirectional embeddings, overrides and isolates can make a line read differently
    // from what it holds.
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Which output stream a [`PluginOutput`] collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Logged at `info`.
    Stdout,
    /// Logged at `warn`.
    Stderr,
}

/// Collects a plugin's stdout or stderr and logs it line by line. Safe to share between
/// threads; what is left without a newline is logged by [`PluginOutput::flush`] or on drop.
#[derive(Debug)]
pub struct PluginOutput {
    logger: PluginLogger,
    stream: OutputStream,
    pending: Mutex<Vec<u8>>,
}

impl PluginOutput {
    /// Appends bytes; every complete line is logged.
    pub fn write(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            self.emit(&line[..newline]);
        }
        while pending.len() >= MAX_LOG_MESSAGE_BYTES {
            let piece: Vec<u8> = pending.drain(..MAX_LOG_MESSAGE_BYTES).collect();
            self.emit(&piece);
        }
    }

    /// Logs one whole line (a newline is implied).
    pub fn write_line(&self, line: &str) {
        self.write(line.as_bytes());
        self.write(b"\n");
    }

    /// Logs what is left without a newline.
    pub fn flush(&self) {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.emit(&rest);
    }

    fn emit(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let level = match self.stream {
            OutputStream::Stdout => LogLevel::Info,
            OutputStream::Stderr => LogLevel::Warn,
        };
        self.logger.log(level, &text);
    }
}

impl Drop for PluginOutput {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The log lines `body` writes, as the host's formatter prints them.
    fn capture(body: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// The message part of a formatted line: `LEVEL target: message field=value ...`.
    fn message_of(line: &str) -> &str {
        let after_target = line.split_once(&format!("{LOG_TARGET}: ")).unwrap().1;
        after_target.split(" provider_id=").next().unwrap()
    }

    fn logger() -> PluginLogger {
        PluginLogger::new("vllm-local", "req-42", "openai.wasm")
    }

    #[test]
    fn lines_carry_level_target_and_fields() {
        let levels = [
            (LogLevel::Trace, "TRACE"),
            (LogLevel::Debug, "DEBUG"),
            (LogLevel::Info, "INFO"),
            (LogLevel::Warn, "WARN"),
            (LogLevel::Error, "ERROR"),
        ];
        for (level, shown) in levels {
            let lines = capture(|| logger().log(level, "upstream answered 200"));
            assert_eq!(lines.len(), 1, "{lines:?}");
            let line = &lines[0];
            for part in [
                shown,
                LOG_TARGET,
                "provider_id=vllm-local",
                "request_id=req-42",
                "plugin=openai.wasm",
                "upstream answered 200",
            ] {
                assert!(line.contains(part), "{line:?} lacks {part:?}");
            }
        }
    }

    #[test]
    fn messages_are_cleaned() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("two\nlines", "two lines"),
            ("crlf\r\nend", "crlf  end"),
            ("tab\there", "tab here"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred[0m"),
            ("nul\0bell\u{7}del\u{7f}c1\u{85}", "nulbelldelc1"),
            ("bidi \u{202E}evil\u{2066}", "bidi evil"),
            ("ünïcödé ✓", "ünïcödé ✓"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(clean_message(input), *expected, "{input:?}");
        }
        assert!(matches!(clean_message("fine"), Cow::Borrowed(_)));
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let exact = "a".repeat(MAX_LOG_MESSAGE_BYTES);
        assert_eq!(clean_message(&exact), exact);
        let long = "a".repeat(MAX_LOG_MESSAGE_BYTES + 10);
        assert_eq!(clean_message(&long), format!("{exact} [... 10 bytes cut]"));
        // A two-byte character straddling the limit is cut whole.
        let straddling = format!("{}é", "a".repeat(MAX_LOG_MESSAGE_BYTES - 1));
        let cleaned = clean_message(&straddling);
        assert!(
            cleaned.ends_with("a [... 2 bytes cut]"),
            "{}",
            &cleaned[cleaned.len() - 30..]
        );
    }

    #[test]
    fn output_is_logged_line_by_line() {
        let lines = capture(|| {
            let out = logger().output(OutputStream::Stdout);
            out.write(b"first li");
            out.write(b"ne\nsecond\r\n\nthi");
            out.write(b"rd");
            out.write_line(" line");
            out.write(b"unterminated");
        });
        let messages: Vec<&str> = lines.iter().map(|l| message_of(l)).collect();
        assert_eq!(
            messages,
            ["first line", "second", "third line", "unterminated"]
        );
        assert!(lines.iter().all(|l| l.contains("INFO")), "{lines:?}");

        let lines = capture(|| {
            let err = logger().output(OutputStream::Stderr);
            err.write(b"panicked at src/lib.rs\n");
            err.flush();
            err.flush();
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("panicked"),
            "{lines:?}"
        );
    }

    #[test]
    fn output_without_newlines_is_logged_in_bounded_pieces() {
        let lines = capture(|| {
            let out = logger().output(OutputStream::Stdout);
            out.write(&vec![b'x'; MAX_LOG_MESSAGE_BYTES * 2 + 5]);
            assert!(out.pending.lock().unwrap().len() < MAX_LOG_MESSAGE_BYTES);
        });
        assert_eq!(lines.len(), 3, "{} lines", lines.len());
        assert_eq!(message_of(&lines[2]), "xxxxx");
    }

    #[test]
    fn invalid_utf8_output_is_replaced_not_dropped() {
        let lines = capture(|| {
            logger()
                .output(OutputStream::Stdout)
                .write(b"bad \xff byte\n")
        });
        assert!(lines[0].contains("bad \u{FFFD} byte"), "{lines:?}");
    }
}
