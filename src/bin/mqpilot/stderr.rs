//! mqpilot's stderr: every log line and message goes through one bounded queue to a thread
//! of its own that does the writing.
//!
//! Apart from a panic's report (see `main.rs`, which routes it here too), nothing else writes
//! to stderr, so a stderr that blocks (a pipe nobody reads, a terminal paused with Ctrl-S)
//! blocks that thread only: the pollers, the signal watcher and the exit never wait for it.
//! A log line that finds the queue nearly full is dropped, and how many were is said once
//! stderr takes lines again (or at exit); the last [`RESERVED_LINES`] places are kept for
//! mqpilot's own messages (the summary, the last error), so a flood of log lines (an exec
//! command's output) cannot push those out. A closed stderr drops every line. At exit,
//! [`flush`] waits a bounded time for what is queued, then gives up.
//!
//! Under `--log-format json` ([`set_json`]) mqpilot's own messages are JSON events shaped
//! like the log lines (`timestamp`, `level`, `fields` with `message` first, `target`), so
//! that every line on stderr is one JSON object; only the status line, written for a
//! terminal, stays text.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines the queue holds.
const QUEUE_LINES: u64 = 4096;

/// Places at the end of the queue that log lines never take.
const RESERVED_LINES: u64 = 256;

/// How long the exit waits for queued lines to be written before giving up on them.
pub(crate) const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// What a line is: a log event, or one of mqpilot's own messages (`say!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Log,
    Message,
}

/// Whether a line of `kind` is taken while `pending` lines wait to be written.
fn admits(kind: Kind, pending: u64) -> bool {
    match kind {
        Kind::Log => pending < QUEUE_LINES - RESERVED_LINES,
        Kind::Message => pending < QUEUE_LINES,
    }
}

/// The queue to the writing thread, and its counters.
struct Queue {
    sender: SyncSender<Vec<u8>>,
    /// Lines accepted into the queue so far (counted before they are sent).
    queued: AtomicU64,
    /// Lines the writer has handled (written, or failed to write).
    done: AtomicU64,
    /// Lines dropped since the writer last said so.
    dropped: AtomicU64,
    /// The writer's wake-up for [`flush`].
    lock: Mutex<()>,
    written: Condvar,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let capacity = usize::try_from(QUEUE_LINES).unwrap_or(usize::MAX);
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(capacity);
        // Without a thread to write with, lines fill the queue and are then dropped.
        let _ = std::thread::Builder::new()
            .name("mqpilot-stderr".into())
            .spawn(move || write_all(&receiver));
        Queue {
            sender,
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lock: Mutex::new(()),
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
            let _ = stderr.write_all(dropped_line(dropped).as_bytes());
        }
        let _ = stderr.write_all(&line);
        let _ = stderr.flush();
        q.done.fetch_add(1, Ordering::Release);
        let _held = q.lock.lock().unwrap_or_else(PoisonError::into_inner);
        q.written.notify_all();
    }
}

/// The line that says how many lines were dropped, with its newline.
fn dropped_line(dropped: u64) -> String {
    let message = format!("{dropped} log lines dropped: stderr was not keeping up");
    if json() {
        event(tracing::Level::WARN, &message, &[])
    } else {
        format!("mqpilot: {message}\n")
    }
}

/// Whether mqpilot's own messages are JSON events rather than text.
static JSON: AtomicBool = AtomicBool::new(false);

/// Has mqpilot's own messages written as JSON events (`--log-format json`) or as text (the
/// default). Set once, before the first message.
pub(crate) fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Whether mqpilot's own messages are written as JSON events.
pub(crate) fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// How every line [`event`] makes starts.
const EVENT_START: &str = "{\"timestamp\":";

/// One JSON event, as the JSON log lines are: the time, `level`, `message` and then `fields`
/// in their order, target `mqpilot`; with its newline.
pub(crate) fn event(level: tracing::Level, message: &str, fields: &[(&str, serde_json::Value)]) -> String {
    use tracing_subscriber::fmt::time::FormatTime as _;
    let mut timestamp = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime
        .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp));
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let mut line = format!(
        "{EVENT_START}{},\"level\":{},\"fields\":{{\"message\":{}",
        text(&timestamp),
        text(level.as_str()),
        text(message)
    );
    for (name, value) in fields {
        line.push_str(&format!(",{}:{value}", text(name)));
    }
    line.push_str("},\"target\":\"mqpilot\"}\n");
    line
}

/// Queues one of mqpilot's own messages (see `say!`): `text` as it is, or under JSON an
/// event at `level` per line of it, with `mqpilot: ` left out of its message (the target
/// says it); a line that is an event already ([`event`]) is kept as it is. One write
/// whatever the lines, so nothing lands in between them.
pub(crate) fn say_at(level: tracing::Level, text: &str) {
    if !json() {
        say(format!("{text}\n").into_bytes());
        return;
    }
    let mut events = String::new();
    for line in text.lines() {
        if line.starts_with(EVENT_START) {
            events.push_str(line);
            events.push('\n');
        } else {
            events.push_str(&event(level, line.strip_prefix("mqpilot: ").unwrap_or(line), &[]));
        }
    }
    say(events.into_bytes());
}

/// Queues a log `line` (which should end in a newline) for stderr; drops it if the queue is
/// nearly full.
pub(crate) fn write(line: Vec<u8>) {
    send(Kind::Log, line);
}

/// Queues one of mqpilot's own messages: it may take the places log lines leave free.
pub(crate) fn say(line: Vec<u8>) {
    send(Kind::Message, line);
}

fn send(kind: Kind, line: Vec<u8>) {
    let q = queue();
    let pending = q
        .queued
        .load(Ordering::Acquire)
        .saturating_sub(q.done.load(Ordering::Acquire));
    // Counted before it is sent, so that a flush never sees it written before it was queued.
    if admits(kind, pending) {
        q.queued.fetch_add(1, Ordering::AcqRel);
        if q.sender.try_send(line).is_ok() {
            return;
        }
        q.queued.fetch_sub(1, Ordering::AcqRel);
    }
    q.dropped.fetch_add(1, Ordering::Relaxed);
}

/// Says how many lines were dropped, if the writer has not yet, then waits until every line
/// queued so far is written, or `timeout` has passed; returns whether they were.
pub(crate) fn flush(timeout: Duration) -> bool {
    let q = queue();
    let dropped = q.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        say(dropped_line(dropped).into_bytes());
    }
    let target = q.queued.load(Ordering::Acquire);
    let deadline = Instant::now() + timeout;
    let mut held = q.lock.lock().unwrap_or_else(PoisonError::into_inner);
    while q.done.load(Ordering::Acquire) < target {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        held = q
            .written
            .wait_timeout(held, left)
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
    fn log_lines_leave_the_last_places_to_mqpilots_own_messages() {
        let log_room = QUEUE_LINES - RESERVED_LINES;
        assert!(admits(Kind::Log, log_room - 1));
        assert!(!admits(Kind::Log, log_room));
        assert!(admits(Kind::Message, log_room));
        assert!(admits(Kind::Message, QUEUE_LINES - 1));
        assert!(!admits(Kind::Message, QUEUE_LINES));
    }

    #[test]
    fn an_event_is_one_json_line_shaped_like_the_log_lines() {
        let line = event(
            tracing::Level::ERROR,
            "cannot start:\n\"quoted\"",
            &[("exit_code", 3.into()), ("queues", serde_json::json!(["A"]))],
        );
        assert!(line.starts_with(EVENT_START) && line.ends_with("}\n"), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(parsed["level"], "ERROR");
        assert_eq!(parsed["target"], "mqpilot");
        assert_eq!(
            parsed["fields"],
            serde_json::json!({"message": "cannot start:\n\"quoted\"", "exit_code": 3, "queues": ["A"]})
        );
        assert!(parsed["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
        let message_first = line.find("\"message\"").expect("message");
        assert!(message_first < line.find("\"exit_code\"").expect("exit_code"), "{line}");
    }

    #[test]
    fn queued_lines_are_written_and_flush_says_so() {
        write(b"mqpilot: stderr test line\n".to_vec());
        EventWriter::default().write_all(b"an event\n").unwrap();
        assert!(flush(Duration::from_secs(10)));
    }
}
