//! A command's stdout or stderr, read to the end and logged a line at a time within bounds.
//!
//! The reader never waits for the log (a line the log cannot take is dropped there), so the
//! command never blocks on its output, and never sees it refused: whatever becomes of
//! mqpilot's own stderr stays mqpilot's business. Each line is cut at [`LINE_LIMIT_BYTES`],
//! a run logs at most [`OUTPUT_LIMIT_BYTES`] per stream, and the rest is read and dropped.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Child;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest line of a command's output that is logged; the rest of the line is dropped.
pub const LINE_LIMIT_BYTES: usize = 1024;
/// Most of one run's output that is logged, per stream; the rest is read and dropped.
pub const OUTPUT_LIMIT_BYTES: usize = 64 * 1024;

/// How long a command's output is still read after the command ended: its last lines, or
/// those of whatever it started in its group, which is killed after that.
pub(super) const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// A command's stdout and stderr, each read to the end on a task of its own and logged line
/// by line ([`OutputLog`]). Reading never waits for the log: a line the log cannot take is
/// dropped there, so the command never blocks on its output.
pub(super) struct Output {
    readers: Vec<JoinHandle<()>>,
    /// Cancelled past the grace: the readers log what they hold and end.
    stop: CancellationToken,
}

impl Output {
    /// Starts reading `child`'s piped stdout and stderr, logged with the queue and program.
    pub(super) fn read(child: &mut Child, queue: &str, program: &str) -> Self {
        let stop = CancellationToken::new();
        let out = child
            .stdout
            .take()
            .map(|pipe| log(pipe, queue, program, "stdout", &stop));
        let err = child
            .stderr
            .take()
            .map(|pipe| log(pipe, queue, program, "stderr", &stop));
        Self {
            readers: out.into_iter().chain(err).collect(),
            stop,
        }
    }

    /// Lets the readers reach the end of the output, for at most [`OUTPUT_GRACE`]: past it,
    /// something the command started still holds its pipes (killed with its group after
    /// this, or a daemon that left the group with `setsid`, which is not ours to wait for),
    /// and the readers log what they hold and stop.
    pub(super) async fn finish(self) {
        let all = async {
            for reader in self.readers {
                let _ = reader.await;
            }
        };
        tokio::pin!(all);
        if tokio::time::timeout(OUTPUT_GRACE, &mut all).await.is_err() {
            self.stop.cancel();
            all.await;
        }
    }
}

/// Reads `pipe` to the end, or until `stop`, logging it; its stderr at warn, so that a
/// failing command's own words still show with RUST_LOG=warn.
fn log(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    queue: &str,
    program: &str,
    stream: &'static str,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let (queue, program, stop) = (queue.to_owned(), program.to_owned(), stop.clone());
    tokio::spawn(async move {
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
