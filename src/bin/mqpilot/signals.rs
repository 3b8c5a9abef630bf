//! Signal handling shared by the subcommands: the first signal cancels, the second exits.

use tokio_util::sync::CancellationToken;

/// First SIGINT/SIGTERM: cancel (pollers stop new gets and finish in-flight batches; the MCP
/// server stops and backs out held locks). Second: kill running exec sink commands and exit
/// now; MQ backs out whatever is uncommitted when the process ends.
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
            tracing::info!("stopping: finishing in-flight work (signal again to stop at once)");
            cancel.cancel();
        } else {
            say!("mqpilot: second signal: exiting now; MQ backs out uncommitted work");
            // `exit` runs no destructors: exec sink commands would outlive us.
            mqpilot::worker::sink::kill_running_commands();
            std::process::exit(130);
        }
    }
}
