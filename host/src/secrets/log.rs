//! The process's log output, scrubbed: a `tracing` writer that scrubs each formatted line
//! ([`ScrubbingStderr`]) and a panic hook that scrubs the panic message
//! ([`install_panic_hook`]). Both go to stderr, where `ogx` logs.
//!
//! Each `tracing` event is formatted into one buffer and written with one `write_all`, so a
//! line is scrubbed whole. Writing never fails because of scrubbing; an stderr write error is
//! passed on to `tracing`, which ignores it.

use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;

/// `tracing_subscriber`'s writer for stderr with secrets scrubbed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubbingStderr;

/// One line's writer.
#[derive(Debug)]
pub struct ScrubbingWriter;

impl Write for ScrubbingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write_all(&super::scrub_log(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ScrubbingStderr {
    type Writer = ScrubbingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter
    }
}

/// Replaces the default panic message (thread, location, payload, backtrace when
/// `RUST_BACKTRACE` asks for one) with the same text, scrubbed.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let text = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!(
                "thread '{name}' panicked at {location}:\n{payload}\nstack backtrace:\n{backtrace}\n"
            ),
            _ => format!(
                "thread '{name}' panicked at {location}:\n{payload}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
            ),
        };
        let _ = io::stderr().write_all(&super::scrub_log(text.as_bytes()));
    }));
}
