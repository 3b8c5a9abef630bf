//! A command's stdout or stderr, read to the end and logged a line at a time within bounds.
//!
//! The reader never waits for the log (a line the log cannot take is dropped there), so the
//! command never blocks on its output, and never sees it refused: whatever becomes of
//! mqpilot's own stderr stays mqpilot's business. Each line is cut at [`LINE_LIMIT_BYTES`],
//! a run logs at most [`OUTPUT_LIMIT_BYTES`] per stream, and the rest is read and dropped.

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio_util::sync::CancellationToken;

/// Longest line of a command's output that is logged; the rest of the line is dropped.
pub const LINE_LIMIT_BYTES: usize = 1024;
/// Most of one run's output that is logged, per stream; the rest is read and dropped.
pub const OUTPUT_LIMIT_BYTES: usize = 64 * 1024;

/// Reads a command's stdout or stderr to the end on a task of its own, logging it line by
/// line ([`OutputLog`]). Reading never waits for the log: a line the log cannot take is
/// dropped there, so the command never blocks on its output.
/// Once `stop` is cancelled it reads no more, logs what it holds and ends.
pub(super) fn log_output(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    queue: &str,
    program: &str,
    stream: &'static str,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (queue, program, stop) = (queue.to_owned(), program.to_owned(), stop.clone());
    tokio::spawn(async move {
        // Its stderr at warn: a failing command's own words still show with RUST_LOG=warn.
        let emit = |line: &str| {
            if stream == "stderr" {
                tracing::warn!(queue = %queue, command = %program, stream, "{line}");
            } else {
                tracing::info!(queue = %queue, command = %program, stream, "{line}");
            }
        };
        let mut log = OutputLog::default();
        let mut buf = vec![0; 8192];
        loop {
            let read = tokio::select! {
                read = pipe.read(&mut buf) => read,
                () = stop.cancelled() => {
                    log.finish(&emit);
                    emit("(not read further: a process the command started keeps this output open)");
                    return;
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => log.feed(&buf[..n], &emit),
            }
        }
        log.finish(&emit);
    })
}

/// A command's output cut into lines within the limits: each line at most
/// [`LINE_LIMIT_BYTES`] (then `...`), at most [`OUTPUT_LIMIT_BYTES`] in all, then one line
/// saying how much more was dropped. Not UTF-8 is shown lossily.
#[derive(Default)]
struct OutputLog {
    line: Vec<u8>,
    /// The current line was longer than the limit.
    cut: bool,
    /// Bytes logged so far.
    logged: usize,
    /// Bytes read past the total limit.
    dropped: u64,
}

impl OutputLog {
    fn feed(&mut self, bytes: &[u8], emit: &impl Fn(&str)) {
        for &b in bytes {
            if self.logged >= OUTPUT_LIMIT_BYTES {
                self.dropped += 1;
            } else if b == b'\n' {
                self.end_line(emit);
            } else if self.line.len() < LINE_LIMIT_BYTES {
                self.line.push(b);
            } else {
                self.cut = true;
            }
        }
    }

    fn end_line(&mut self, emit: &impl Fn(&str)) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches('\r');
        if self.cut {
            emit(&format!("{text}..."));
        } else {
            emit(text);
        }
        self.logged += self.line.len() + 1;
        self.line.clear();
        self.cut = false;
    }

    fn finish(mut self, emit: &impl Fn(&str)) {
        if !self.line.is_empty() || self.cut {
            self.end_line(emit);
        }
        if self.dropped > 0 {
            emit(&format!("({} more bytes of output not logged)", self.dropped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines an [`OutputLog`] emits for `chunks`.
    fn logged(chunks: &[&[u8]]) -> Vec<String> {
        let lines = std::cell::RefCell::new(Vec::new());
        let emit = |line: &str| lines.borrow_mut().push(line.to_owned());
        let mut log = OutputLog::default();
        for chunk in chunks {
            log.feed(chunk, &emit);
        }
        log.finish(&emit);
        lines.into_inner()
    }

    #[test]
    fn output_is_logged_by_line_with_long_lines_cut_and_the_total_bounded() {
        assert_eq!(logged(&[b"one\ntw", b"o\r\nthree"]), ["one", "two", "three"]);
        let long = vec![b'x'; LINE_LIMIT_BYTES + 10];
        let lines = logged(&[&long, b"\n"]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LINE_LIMIT_BYTES + 3);
        assert!(lines[0].ends_with("..."));
        let many = b"0123456789abcde\n".repeat(OUTPUT_LIMIT_BYTES / 16 + 100);
        let lines = logged(&[&many]);
        assert_eq!(lines.len(), OUTPUT_LIMIT_BYTES / 16 + 1);
        assert_eq!(lines.last().unwrap(), "(1600 more bytes of output not logged)");
    }
}
