//! Signal handling shared by the subcommands: the first signal cancels, the second exits.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long the second signal waits for its message to reach stderr before exiting anyway.
const LAST_WORD: Duration = Duration::from_millis(200);

/// First SIGINT/SIGTERM: cancel (pollers stop new gets and finish in-flight batches; the MCP
/// server stops and backs out held locks). Second: kill running exec sink commands and exit
/// now; MQ backs out whatever is uncommitted when the process ends.
///
/// Each signal acts before it says so, and says so on a thread of its own: a stderr whose
/// reader has stalled (a stuck log shipper, a paused terminal) blocks that write, and must
/// not keep a signal from stopping mqpilot.
pub(crate) async fn watch_signals(cancel: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            return;
        }
    };
    for n in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if n == 0 {
            cancel.cancel();
            std::thread::spawn(|| {
                tracing::info!("stopping: finishing in-flight work (signal again to stop at once)");
            });
        } else {
            // `exit` runs no destructors: exec sink commands would outlive us.
            mqpilot::worker::sink::kill_running_commands();
            let (said, heard) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                say!("mqpilot: second signal: exiting now; MQ backs out uncommitted work");
                let _ = said.send(());
            });
            let _ = heard.recv_timeout(LAST_WORD);
            std::process::exit(130);
        }
    }
}
