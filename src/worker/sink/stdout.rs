//! The `stdout` sink: one JSON line per message on standard output (or an injected writer).
//!
//! A batch is serialised first and written with one `write_all` under one lock, then flushed,
//! so batches from concurrent pollers never interleave and a batch is either wholly handed to
//! the writer or fails. A write or flush error (a closed pipe, a full disk) fails the batch.
//! The blocking write runs on tokio's blocking pool, so a slow reader never stalls the runtime.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Delivery, Sink, SinkError, message_json};
use crate::mq::message::Message;

/// Writes each message as a JSON line ([`message_json`]).
#[derive(Clone)]
pub struct StdoutSink {
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutSink").finish_non_exhaustive()
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl StdoutSink {
    /// A sink writing to the process's standard output.
    #[must_use]
    pub fn new() -> Self {
        Self::with_writer(Box::new(io::stdout()))
    }

    /// A sink writing to `writer` instead, e.g. a buffer in tests or a file.
    #[must_use]
    pub fn with_writer(writer: Box<dyn Write + Send>) -> Self {
        Self {
            writer: Arc::new(Mutex::new(writer)),
        }
    }
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
                let mut w = writer.lock().unwrap_or_else(PoisonError::into_inner);
                w.write_all(&lines)?;
                w.flush()
            })
            .await;
            match written {
                Ok(Ok(())) => Ok(()),
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
    SinkError {
        sink: "stdout",
        message,
    }
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

    #[tokio::test]
    async fn a_broken_pipe_fails_the_batch() {
        let sink = StdoutSink::with_writer(Box::new(BrokenPipe));
        let err = sink.deliver(&[message("IN", b"x", 0)]).await.unwrap_err();
        assert_eq!(err.sink, "stdout");
        assert!(err.message.contains("stdout"), "{err}");
        assert!(err.to_string().to_lowercase().contains("pipe"), "{err}");
    }
}
