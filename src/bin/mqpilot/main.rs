//! `mqpilot`: the command line. clap -> configuration -> library calls; nothing else.
//! One file per subcommand.
//!
//! `mcp` exit codes are in `mcp.rs`. `poll` exit codes: 0 the run ended as asked (signal, `--until-empty`, `--max-messages`);
//! 1 a queue's pollers stopped on a problem that will not fix itself (the summary says
//! which; a closed standard output stops the whole run); 2 bad flags or configuration; 3 the queue manager or a queue could not be used
//! at start (connect, unknown queue, sink set-up, a backout queue with no threshold), or the
//! `--metrics-listen` address cannot be listened on; 130 a second signal, or a drain past
//! `--shutdown-timeout`, after the summary so far (in-flight units of work are backed out by
//! MQ when the process ends).

/// `eprintln!` for a stderr that may be gone or stalled: the line is queued for the stderr
/// thread (see `stderr.rs`) and never blocks the caller; what cannot be written is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::stderr::say(line.into_bytes());
    }};
}

mod connection;
mod fake_qm;
mod mcp;
mod metrics;
mod poll;
mod signals;
mod stderr;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "mqpilot",
    version,
    about = "IBM MQ connector that cannot exhaust the queue manager"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Poll queues: receive in batches under syncpoint, deliver to a sink, commit.
    Poll(Box<poll::PollArgs>),
    /// Serve queues as MCP tools for AI agents (stdio or streamable HTTP), deny-by-default.
    Mcp(Box<mcp::McpArgs>),
    /// Serve the fake queue manager over TCP, or administer one (put, browse, depth, status,
    /// break, quiesce, start).
    FakeQm(fake_qm::FakeQmArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A failure with the exit code it maps to.
pub(crate) struct Failure(u8, anyhow::Error);

pub(crate) fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure(2, e.into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Poll(args) => args.log_format,
        Command::Mcp(args) => args.log_format,
        Command::FakeQm(_) => LogFormat::Text,
    };
    init_logging(log_format);
    report_panics_through_the_stderr_thread();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say!("mqpilot: cannot start the async runtime: {e}");
            stderr::flush(stderr::EXIT_FLUSH);
            return ExitCode::from(1);
        }
    };
    let outcome = match cli.command {
        Command::Poll(args) => runtime.block_on(poll::run(*args)),
        Command::Mcp(args) => runtime.block_on(mcp::run(*args)),
        Command::FakeQm(args) => runtime.block_on(fake_qm::run(args)),
    };
    signals::hold_if_exiting_at_once();
    let code = match outcome {
        Ok(code) => code,
        Err(Failure(code, e)) => {
            say!("mqpilot: {e:#}");
            code
        }
    };
    // The summary and the last words are queued: wait for them, but not for ever (a stderr
    // nobody reads would keep mqpilot from exiting).
    stderr::flush(stderr::EXIT_FLUSH);
    ExitCode::from(code)
}

/// Logs to stderr at the level RUST_LOG gives (default `info`), through the stderr thread:
/// logging never blocks, and drops lines rather than wait for a stalled stderr.
///
/// Message payloads never reach the logs: rmcp logs every request and result it handles at
/// debug (and whole messages at trace), and tool arguments and results carry payloads, so
/// rmcp's events above info are dropped unless RUST_LOG names `rmcp` itself.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let spec = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV).ok();
    let filter = spec
        .as_deref()
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let rmcp_named = spec.as_deref().is_some_and(names_rmcp);
    let no_payloads = tracing_subscriber::filter::filter_fn(move |meta| rmcp_named || !carries_payloads(meta));
    // A log line that cannot be written (stderr closed or stalled) is dropped: tracing's own
    // report of the failure would go to the same stderr.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(stderr::EventWriter::default)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(no_payloads)
            .init(),
        LogFormat::Json => builder.json().finish().with(no_payloads).init(),
    }
}

/// A panic's report goes through the stderr thread like any line. The default hook writes to
/// stderr itself, and on a stalled stderr would block the panicking thread (a connection
/// thread whose sink panicked, which the round would otherwise catch and back out).
fn report_panics_through_the_stderr_thread() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let mut report = format!("thread '{}' {info}\n", thread.name().unwrap_or("<unnamed>"));
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            report.push_str(&format!("{backtrace}\n"));
        }
        stderr::say(report.into_bytes());
    }));
}

/// Whether a RUST_LOG value has a directive for rmcp's targets.
fn names_rmcp(spec: &str) -> bool {
    spec.split(',').any(|d| d.trim().starts_with("rmcp"))
}

/// rmcp's debug and trace events: the ones that print requests and results.
fn carries_payloads(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    let rmcp = target == "rmcp" || target.starts_with("rmcp::");
    rmcp && *meta.level() > tracing::Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_directive_for_rmcp_lets_its_payload_logs_through() {
        assert!(!names_rmcp("debug"));
        assert!(!names_rmcp("mqpilot=trace,info"));
        assert!(names_rmcp("info,rmcp=debug"));
        assert!(names_rmcp("rmcp::service=trace"));
    }

    /// clap turns `{n}` in any help text into a line break, so a placeholder written that way
    /// reaches `--help` as a broken line.
    #[test]
    fn no_help_text_has_a_placeholder_clap_would_break() {
        fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            let texts = [cmd.get_about(), cmd.get_long_about()]
                .into_iter()
                .chain(cmd.get_arguments().flat_map(|a| [a.get_help(), a.get_long_help()]))
                .flatten();
            found.extend(
                texts
                    .map(ToString::to_string)
                    .filter(|t| t.contains("{n}"))
                    .map(|t| format!("{path}: {t}")),
            );
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), "mqpilot", &mut found);
        assert!(found.is_empty(), "{found:#?}");
    }
}
