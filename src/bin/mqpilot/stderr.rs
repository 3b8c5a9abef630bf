//! mqpilot's stderr: every log line and message goes through one bounded queue to a thread
//! of its own that does the writing.
//!
//! Nothing else ever writes to stderr, so a stderr that blocks (a pipe nobody reads, a
//! terminal paused with Ctrl-S) blocks that thread only: the pollers, the signal watcher and
//! the exit never wait for it. A line that finds the queue full is dropped, and how many were
//! is said once stderr takes lines again. A closed stderr drops every line. At exit,
//! [`flush`] waits a bounded time for what is queued, then gives up.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines the queue holds before new ones are dropped.
const QUEUE_LINES: usize = 4096;

/// How long the exit waits for queued lines to be written before giving up on them.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// The queue to the writing thread, and its counters.
struct Queue {
    sender: SyncSender<Vec<u8>>,
    /// Lines accepted into the queue so far.
    queued: AtomicU64,
    /// Lines dropped (queue full) since the writer last said so.
    dropped: AtomicU64,
    /// Lines the writer has handled (written, or failed to write), with its wake-up.
    done: Mutex<u64>,
    written: Condvar,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(QUEUE_LINES);
        // Without a thread to write with, lines fill the queue and are then dropped.
        let _ = std::thread::Builder::new()
            .name("mqpilot-stderr".into())
            .spawn(move || write_all(&receiver));
        Queue {
            sender,
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            done: Mutex::new(0),
            written: Condvar::new(),
        }
    })
}

/// The writing thread: writes each line, ignoring errors (a closed stderr has nobody to
/// tell), and reports lines dropped meanwhile.
fn write_all(receiver: &mpsc::Receiver<Vec<u8>>) {
    let mut stderr = std::io::stderr();
    for line in receiver {
        let q = queue();
        let dropped = q.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "mqpilot: {dropped} log lines dropped: stderr was not keeping up"
            );
        }
        let _ = stderr.write_all(&line);
        let _ = stderr.flush();
        *q.done.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        q.written.notify_all();
    }
}

/// Queues `line` (which should end in a newline) for stderr; drops it if the queue is full.
pub(crate) fn write(line: Vec<u8>) {
    let q = queue();
    match q.sender.try_send(line) {
        Ok(()) => {
            q.queued.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            q.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits until every line queued so far is written, or `timeout` has passed; returns whether
/// they were.
pub(crate) fn flush(timeout: Duration) -> bool {
    let q = queue();
    let target = q.queued.load(Ordering::Relaxed);
    let deadline = Instant::now() + timeout;
    let mut done = q.done.lock().unwrap_or_else(PoisonError::into_inner);
    while *done < target {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        done = q
            .written
            .wait_timeout(done, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    true
}

/// A `tracing` writer for one event: collects the formatted event and queues it whole when
/// dropped, so lines from different threads never interleave.
#[derive(Default)]
pub(crate) struct EventWriter(Vec<u8>);

impl std::io::Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write(std::mem::take(&mut self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_lines_are_written_and_flush_says_so() {
        write(b"mqpilot: stderr test line\n".to_vec());
        EventWriter::default().write_all(b"an event\n").unwrap();
        assert!(flush(Duration::from_secs(10)));
    }
}
