//! The `stdout` sink: one JSON line per message on standard output (or an injected writer).
//!
//! A batch is serialised first and written under one lock, then flushed, so batches from
//! concurrent pollers never interleave and a batch is either wholly handed to the writer or
//! fails. A write or flush error fails the batch; if part of it was written, the next batch
//! starts on a new line, so the fragment never swallows a line that is committed. A full disk
//! may pass, and the batch is retried; a closed pipe (EPIPE: `mqpilot poll | head`) will not,
//! and the error says so (permanent), so the run stops instead of moving healthy messages to
//! the backout queue one failed attempt at a time. The blocking write runs on tokio's blocking pool, so a
//! slow reader never stalls the runtime.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Delivery, Sink, SinkError, message_json};
use crate::Error;
use crate::mq::message::Message;

/// Writes each message as a JSON line ([`message_json`]).
#[derive(Clone)]
pub struct StdoutSink {
    writer: Arc<Mutex<Output>>,
}

/// The writer, and whether its last write failed part-way (a line may be cut short).
struct Output {
    writer: Box<dyn Write + Send>,
    torn: bool,
}

impl fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutSink").finish_non_exhaustive()
    }
}

impl StdoutSink {
    /// A sink writing to the process's standard output.
    ///
    /// # Errors
    /// [`Error::Options`] when standard output was closed when mqpilot started: every write
    /// would then succeed into /dev/null and every message be committed and kept nowhere.
    pub fn new() -> Result<Self, Error> {
        if stdout_was_closed() {
            return Err(Error::Options {
                source_name: "sink stdout".into(),
                message: "standard output is /dev/null opened read-write, as it is when stdout was closed when \
                          mqpilot started (or a daemonizer set it up): every message would be committed and \
                          written nowhere; give it a file or a pipe (> messages.jsonl), or, to discard on \
                          purpose, > /dev/null"
                    .into(),
            });
        }
        Ok(Self::with_writer(Box::new(io::stdout())))
    }

    /// A sink writing to `writer` instead, e.g. a buffer in tests or a file.
    #[must_use]
    pub fn with_writer(writer: Box<dyn Write + Send>) -> Self {
        Self {
            writer: Arc::new(Mutex::new(Output { writer, torn: false })),
        }
    }
}

/// Whether standard output was closed when the process started. Rust's runtime then opens
/// /dev/null read-write in its place (and `io::stdout` hides a closed descriptor too), where a
/// shell's `> /dev/null` opens it write-only: on Linux that flag is the trace left.
fn stdout_was_closed() -> bool {
    let null = std::fs::read_link("/proc/self/fd/1").is_ok_and(|p| p == Path::new("/dev/null"));
    null && std::fs::read_to_string("/proc/self/fdinfo/1").is_ok_and(|info| {
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
            .is_some_and(|flags| flags & 0o3 == 0o2)
    })
}

/// The batch as JSON lines, each ending in `\n`.
pub(super) fn json_lines(batch: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in batch {
        // Writing a `Value` into a `Vec` cannot fail.
        serde_json::to_writer(&mut out, &message_json(m)).expect("serialising JSON into memory");
        out.push(b'\n');
    }
    out
}

impl Sink for StdoutSink {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        let lines = json_lines(batch);
        let writer = Arc::clone(&self.writer);
        Box::pin(async move {
            let written = tokio::task::spawn_blocking(move || {
                // A panic in another delivery leaves the writer usable; at worst it holds
                // part of that batch, which was failed (and so backed out) anyway.
                let mut out = writer.lock().unwrap_or_else(PoisonError::into_inner);
                let Output { writer, torn } = &mut *out;
                // After a write that failed part-way, end the cut line first.
                if *torn {
                    writer.write_all(b"\n")?;
                    *torn = false;
                }
                let mut written = 0;
                while written < lines.len() {
                    let failed = match writer.write(&lines[written..]) {
                        Ok(0) => io::ErrorKind::WriteZero.into(),
                        Ok(n) => {
                            written += n;
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => e,
                    };
                    // Cut inside a line, not between two.
                    *torn = written > 0 && lines[written - 1] != b'\n';
                    return Err(failed);
                }
                // Every line was taken whole; a failed flush leaves whole lines in the buffer.
                writer.flush()
            })
            .await;
            match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(SinkError {
                    permanent: true,
                    ..fail(format!(
                        "writing {} messages to stdout: {e}: standard output was closed (whatever read it has gone)",
                        batch.len()
                    ))
                }),
                Ok(Err(e)) => Err(fail(format!("writing {} messages to stdout: {e}", batch.len()))),
                Err(e) => Err(fail(format!("the stdout writer task failed: {e}"))),
            }
        })
    }

    fn name(&self) -> &'static str {
        "stdout"
    }
}

fn fail(message: String) -> SinkError {
    SinkError::retry("stdout", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer like a pipe whose reader has gone.
    struct BrokenPipe;

    impl Write for BrokenPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn message(queue: &str, data: &[u8], backout_count: i32) -> Message {
        let mut md = libmqm_default::MQMD_DEFAULT;
        md.BackoutCount = backout_count;
        Message::new(queue, md, data.to_vec())
    }

    #[tokio::test]
    async fn writes_one_json_line_per_message_in_order() {
        let out = Captured::default();
        let sink = StdoutSink::with_writer(Box::new(out.clone()));
        let batch = [message("IN", b"first", 0), message("IN", &[0xff, 0xfe], 3)];
        sink.deliver(&batch).await.unwrap();

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["queue"], "IN");
        assert_eq!(lines[0]["payload"], "first");
        assert_eq!(lines[0]["encoding"], "utf8");
        assert_eq!(lines[1]["payload"], "//4=");
        assert_eq!(lines[1]["encoding"], "base64");
        assert_eq!(lines[1]["backout_count"], 3);
        assert_eq!(lines[1], message_json(&batch[1]));
    }

    /// A writer that takes `budget` bytes, then fails once (a full disk), then takes everything.
    struct FullOnce {
        out: Captured,
        budget: usize,
        failed: bool,
    }

    impl Write for FullOnce {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 && !self.failed {
                self.failed = true;
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = if self.failed {
                buf.len()
            } else {
                buf.len().min(self.budget)
            };
            self.budget -= n.min(self.budget);
            self.out.write(&buf[..n])
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batch_cut_short_does_not_swallow_the_next_line() {
        let out = Captured::default();
        let sink = StdoutSink::with_writer(Box::new(FullOnce {
            out: out.clone(),
            budget: 30,
            failed: false,
        }));
        let first = [message("IN", b"first batch, backed out", 0)];
        assert!(sink.deliver(&first).await.is_err());
        let second = [message("IN", b"committed", 0)];
        sink.deliver(&second).await.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["payload"], "committed", "{text}");
        assert_eq!(text.lines().count(), 2, "the fragment, then the committed line: {text}");
    }

    #[tokio::test]
    async fn a_batch_cut_between_two_lines_needs_no_new_line() {
        // The first line fits exactly, then the disk is full: no fragment, no blank line.
        let first = [message("IN", b"one", 0), message("IN", b"two", 0)];
        let budget = json_lines(&first[..1]).len();
        let out = Captured::default();
        let sink = StdoutSink::with_writer(Box::new(FullOnce {
            out: out.clone(),
            budget,
            failed: false,
        }));
        assert!(sink.deliver(&first).await.is_err());
        sink.deliver(&[message("IN", b"committed", 0)]).await.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[tokio::test]
    async fn a_broken_pipe_fails_the_batch_for_good() {
        let sink = StdoutSink::with_writer(Box::new(BrokenPipe));
        let err = sink.deliver(&[message("IN", b"x", 0)]).await.unwrap_err();
        assert_eq!(err.sink, "stdout");
        assert!(err.permanent, "a closed stdout will not come back: {err}");
        assert!(err.message.contains("standard output was closed"), "{err}");
        assert!(err.to_string().to_lowercase().contains("pipe"), "{err}");
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_batch_until_it_has_room() {
        let sink = StdoutSink::with_writer(Box::new(FullOnce {
            out: Captured::default(),
            budget: 0,
            failed: false,
        }));
        let err = sink.deliver(&[message("IN", b"x", 0)]).await.unwrap_err();
        assert!(!err.permanent, "{err}");
    }
}
