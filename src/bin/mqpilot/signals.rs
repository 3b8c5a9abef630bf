//! Signal handling shared by the subcommands: the first signal cancels, the second exits.
//!
//! SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session, or a service manager's stop)
//! are alike, except that a SIGHUP ignored when mqpilot started (`nohup`) stays ignored. The watcher runs on a thread and a runtime of its own, so it hears a signal
//! even when every worker thread is busy or stuck; it writes nothing to stderr itself but
//! through the stderr thread (`stderr.rs`), which never blocks it.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long the last message waits for stderr before mqpilot exits anyway.
const LAST_WORD: Duration = Duration::from_millis(200);

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

/// Kills running exec sink commands (and starts no more), says why, and exits with
/// [`EXIT_AT_ONCE`]. `exit` runs no destructors: the commands would otherwise outlive us.
fn exit_at_once(why: &str) -> ! {
    // Counted first: a killed command fails its delivery, which ends the count of its batch.
    let lost = mqpilot::worker::undelivered_without_syncpoint();
    mqpilot::worker::sink::kill_running_commands();
    if lost.is_empty() {
        say!("mqpilot: {why}: exiting now; MQ backs out uncommitted work");
    } else {
        let total: u64 = lost.iter().map(|(_, n)| n).sum();
        let per_queue: Vec<String> = lost.iter().map(|(q, n)| format!("{q} {n}")).collect();
        say!(
            "mqpilot: {why}: exiting now; MQ backs out uncommitted work, but up to {total} messages \
             received without syncpoint and not yet delivered are LOST ({})",
            per_queue.join(", ")
        );
    }
    crate::stderr::flush(LAST_WORD);
    std::process::exit(EXIT_AT_ONCE);
}
