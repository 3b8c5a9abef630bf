//! Signal handling shared by the subcommands: the first signal cancels, the second exits.
//!
//! SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session, or a service manager's stop)
//! are alike, except that a SIGHUP ignored when mqpilot started (`nohup`) stays ignored. The watcher runs on a thread and a runtime of its own, so it hears a signal
//! even when every worker thread is busy or stuck; it writes nothing to stderr itself but
//! through the stderr thread (`stderr.rs`), which never blocks it.

use std::sync::OnceLock;
use std::time::Duration;

use mqpilot::worker::Unsynced;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long the last message waits for stderr before mqpilot exits anyway.
const LAST_WORD: Duration = Duration::from_secs(1);

/// Exit status after a second signal or the shutdown timeout.
const EXIT_AT_ONCE: i32 = 130;

/// First SIGINT/SIGTERM/SIGHUP: cancel (pollers stop new gets and finish in-flight batches;
/// the MCP server stops and backs out held locks). Second: kill running exec sink commands,
/// start no more, and exit now; MQ backs out whatever is uncommitted when the process ends.
/// Returns once the signals are being watched.
pub(crate) async fn watch_signals(cancel: CancellationToken) {
    start_watching(cancel, None).await;
}

/// As [`watch_signals`], and if the work in flight is not done `shutdown_timeout` after the
/// first signal, does what a second signal does.
pub(crate) async fn watch_signals_within(cancel: CancellationToken, shutdown_timeout: Duration) {
    start_watching(cancel, Some(shutdown_timeout)).await;
}

async fn start_watching(cancel: CancellationToken, shutdown_timeout: Option<Duration>) {
    let (ready, watching) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("mqpilot-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch signals");
                    return;
                }
            };
            runtime.block_on(watch(cancel, shutdown_timeout, ready));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch signals");
        return;
    }
    let _ = watching.await;
}

async fn watch(cancel: CancellationToken, shutdown_timeout: Option<Duration>, ready: tokio::sync::oneshot::Sender<()>) {
    // A SIGHUP ignored when mqpilot started (`nohup`, a parent that ignores it) stays ignored.
    let hangup = (!ignored(libc::SIGHUP)).then(SignalKind::hangup);
    let mut signals: Vec<Signal> = [Some(SignalKind::interrupt()), Some(SignalKind::terminate()), hangup]
        .into_iter()
        .flatten()
        .filter_map(|kind| {
            signal(kind)
                .inspect_err(|e| tracing::warn!(error = %e, signal = ?kind, "cannot watch signal"))
                .ok()
        })
        .collect();
    let _ = ready.send(());
    if signals.is_empty() {
        return;
    }
    next(&mut signals).await;
    cancel.cancel();
    let why = match shutdown_timeout {
        Some(limit) => {
            tracing::info!(
                "stopping: finishing in-flight work for up to {} s (signal again to stop at once)",
                limit.as_secs()
            );
            tokio::select! {
                () = next(&mut signals) => "second signal".to_owned(),
                () = tokio::time::sleep(limit) => format!("in-flight work not done after --shutdown-timeout {} s", limit.as_secs()),
            }
        }
        None => {
            tracing::info!("stopping: finishing in-flight work (signal again to stop at once)");
            next(&mut signals).await;
            "second signal".to_owned()
        }
    };
    exit_at_once(&why);
}

/// Whether `signal` was set to be ignored (`SIG_IGN`) when this process started.
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: with a null new action, sigaction(2) only reads the current disposition into
    // `old`, a zeroed sigaction that it fills in.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &raw mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Waits for the next of `signals` (not empty).
async fn next(signals: &mut [Signal]) {
    let polled = std::future::poll_fn(|cx| {
        for s in signals.iter_mut() {
            if let std::task::Poll::Ready(Some(())) = s.poll_recv(cx) {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    });
    polled.await;
}

/// The lines an exit at once prints after its message: the run's summary so far, or `None`
/// when no run is under way.
type SummaryAtExit = Box<dyn Fn() -> Option<Vec<String>> + Send + Sync>;

static SUMMARY_AT_EXIT: OnceLock<SummaryAtExit> = OnceLock::new();

/// Has an exit at once print what `summary` returns after its message. It must not block:
/// it runs on the signal watcher's thread on the way out. Set once; later calls are ignored.
pub(crate) fn summary_at_exit(summary: impl Fn() -> Option<Vec<String>> + Send + Sync + 'static) {
    let _ = SUMMARY_AT_EXIT.set(Box::new(summary));
}

/// Set once an exit at once has begun: see [`hold_if_exiting_at_once`].
static EXITING_AT_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Never returns once an exit at once has begun: the commands it kills end the run, and the
/// run's normal end must not exit first, with its own status and summary.
pub(crate) fn hold_if_exiting_at_once() {
    while EXITING_AT_ONCE.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::park();
    }
}

/// Kills running exec sink commands (and starts no more), says why and what the run did so
/// far, and exits with [`EXIT_AT_ONCE`]. `exit` runs no destructors: the commands would
/// otherwise outlive us.
fn exit_at_once(why: &str) -> ! {
    EXITING_AT_ONCE.store(true, std::sync::atomic::Ordering::SeqCst);
    // Counted first: a killed command fails its delivery, which ends the count of its batch
    // (and may end the run, and with it what the summary reads).
    let at_stake = mqpilot::worker::undelivered_without_syncpoint();
    // The exit's event before the summary's, so that their timestamps keep their order.
    let head = format!("{why}: exiting now; MQ backs out uncommitted work{}", lost(&at_stake));
    let mut said = if crate::stderr::json() {
        let fields = [("exit_code", EXIT_AT_ONCE.into())];
        crate::stderr::event(tracing::Level::WARN, &head, &fields)
            .trim_end()
            .to_owned()
    } else {
        format!("mqpilot: {head}")
    };
    let summary = SUMMARY_AT_EXIT.get().and_then(|summary| summary()).unwrap_or_default();
    mqpilot::worker::sink::kill_running_commands();
    // One write: a log line from a killed command's failed delivery cannot land in between.
    for line in summary {
        said.push('\n');
        said.push_str(&line);
    }
    say!("{said}");
    crate::stderr::flush(LAST_WORD);
    std::process::exit(EXIT_AT_ONCE);
}

/// What an exit now loses of the queues received without syncpoint, as the end of the exit
/// message: nothing, or the messages got and not yet delivered, and the MQGETs under way
/// that may be taking one more each.
fn lost(at_stake: &[Unsynced]) -> String {
    let mut said = String::new();
    if let Some((n, queues)) = per_queue(at_stake, |u| u.messages) {
        let (noun, verb) = if n == 1 { ("message", "is") } else { ("messages", "are") };
        said +=
            &format!(", but up to {n} {noun} received without syncpoint and not yet delivered {verb} LOST ({queues})");
    }
    if let Some((n, queues)) = per_queue(at_stake, |u| u.gets) {
        let (noun, verb) = if n == 1 { ("MQGET", "was") } else { ("MQGETs", "were") };
        said +=
            &format!("; {n} {noun} without syncpoint {verb} under way ({queues}): a message one takes now is LOST too");
    }
    said
}

/// The total of `n` over `at_stake` and the queues that have any (`IN 3, OUT 1`); `None`
/// when none has.
fn per_queue(at_stake: &[Unsynced], n: fn(&Unsynced) -> u64) -> Option<(u64, String)> {
    let listed: Vec<String> = at_stake
        .iter()
        .filter(|u| n(u) > 0)
        .map(|u| format!("{} {}", u.queue, n(u)))
        .collect();
    (!listed.is_empty()).then(|| (at_stake.iter().map(n).sum(), listed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_stake(queue: &str, messages: u64, gets: u64) -> Unsynced {
        Unsynced {
            queue: queue.to_owned(),
            messages,
            gets,
        }
    }

    #[test]
    fn the_exit_message_counts_what_no_syncpoint_queues_lose() {
        assert_eq!(lost(&[]), "");
        assert_eq!(
            lost(&[at_stake("A", 3, 0), at_stake("B", 1, 1)]),
            ", but up to 4 messages received without syncpoint and not yet delivered are LOST (A 3, B 1); \
             1 MQGET without syncpoint was under way (B 1): a message one takes now is LOST too"
        );
        assert_eq!(
            lost(&[at_stake("A", 1, 0)]),
            ", but up to 1 message received without syncpoint and not yet delivered is LOST (A 1)"
        );
        assert_eq!(
            lost(&[at_stake("A", 0, 2)]),
            "; 2 MQGETs without syncpoint were under way (A 2): a message one takes now is LOST too"
        );
    }
}
