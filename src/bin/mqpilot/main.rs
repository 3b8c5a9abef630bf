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

/// `eprintln!` for mqpilot's own messages, on a stderr that may be gone or stalled: the line
/// is queued for the stderr thread (see `stderr.rs`) and never blocks the caller; what cannot
/// be written is dropped. Under `--log-format json` each line is an event at the level given
/// (`say!(level: tracing::Level::INFO; "...")`), WARN if none is: a message mqpilot writes
/// itself is one an operator must see, such as an exit at once.
macro_rules! say {
    (level: $level:expr; $($arg:tt)*) => {{
        $crate::stderr::say_at($level, &format!($($arg)*));
    }};
    ($($arg:tt)*) => {
        say!(level: tracing::Level::WARN; $($arg)*)
    };
}

mod connection;
mod fake_qm;
mod mcp;
mod metrics;
mod poll;
mod signals;
mod stderr;
mod summary;

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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => refuse_command_line(&e),
    };
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
            say_last_error(1, &format!("cannot start the async runtime: {e}"));
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
            say_last_error(code, &format!("{e:#}"));
            code
        }
    };
    // The summary and the last words are queued: wait for them, but not for ever (a stderr
    // nobody reads would keep mqpilot from exiting).
    stderr::flush(stderr::EXIT_FLUSH);
    ExitCode::from(code)
}

/// Says the error that ends mqpilot with exit `code`: `mqpilot: {message}`, or under JSON an
/// ERROR event with the message and `exit_code`.
fn say_last_error(code: u8, message: &str) {
    if stderr::json() {
        let event = stderr::event(tracing::Level::ERROR, message, &[("exit_code", code.into())]);
        stderr::say(event.into_bytes());
    } else {
        say!(level: tracing::Level::ERROR; "mqpilot: {message}");
    }
}

/// A command line clap refuses: said and exited as clap does, or, when it asks for
/// `--log-format json`, as an ERROR event with clap's exit code. `--help` and `--version`
/// print as usual.
fn refuse_command_line(e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if shown || !asks_for_json(std::env::args_os().skip(1)) {
        e.exit();
    }
    stderr::set_json(true);
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    let said = e.render().to_string();
    let said = said.trim();
    say_last_error(code, said.strip_prefix("error: ").unwrap_or(said));
    stderr::flush(stderr::EXIT_FLUSH);
    std::process::exit(i32::from(code));
}

/// Whether `args` (a command line clap refused) ask for `--log-format json`.
fn asks_for_json(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<std::ffi::OsString> = args.collect();
    args.iter().enumerate().any(|(i, arg)| {
        arg == "--log-format=json" || (arg == "--log-format" && args.get(i + 1).is_some_and(|next| next == "json"))
    })
}

/// Logs to stderr at the level RUST_LOG gives (default `info`), through the stderr thread:
/// logging never blocks, and drops lines rather than wait for a stalled stderr. A RUST_LOG
/// that does not parse is warned about once, naming it and why, and logging goes on at
/// `info`: a typo there should not stop a consumer.
///
/// Message payloads never reach the logs: rmcp logs every request and result it handles at
/// debug (and whole messages at trace), and tool arguments and results carry payloads, so
/// rmcp's events above info are dropped unless RUST_LOG names `rmcp` itself.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    stderr::set_json(matches!(format, LogFormat::Json));
    let (spec, refused) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        // Set but empty, as unset: the default.
        Ok(spec) if spec.trim().is_empty() => (None, None),
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (Some((spec, filter)), None),
            Err(e) => (None, Some((spec, e.to_string()))),
        },
        Err(std::env::VarError::NotPresent) => (None, None),
        Err(std::env::VarError::NotUnicode(raw)) => (
            None,
            Some((raw.to_string_lossy().into_owned(), "not valid UTF-8".to_owned())),
        ),
    };
    let rmcp_named = spec.as_ref().is_some_and(|(s, _)| names_rmcp(s));
    let filter = spec.map_or_else(|| EnvFilter::new("info"), |(_, filter)| filter);
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
    if let Some((rust_log, error)) = refused {
        tracing::warn!(rust_log = %rust_log, error = %error, "RUST_LOG is not valid, so it is ignored: logging at info");
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
        if stderr::json() {
            report = stderr::event(tracing::Level::ERROR, report.trim_end(), &[]);
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
    fn a_refused_command_line_asks_for_json_only_with_log_format_json() {
        let asks = |args: &[&str]| asks_for_json(args.iter().map(std::ffi::OsString::from));
        assert!(asks(&["poll", "--batch", "0", "--log-format", "json"]));
        assert!(asks(&["poll", "--log-format=json", "--batch", "0"]));
        assert!(!asks(&["poll", "--batch", "0"]));
        assert!(!asks(&["poll", "--log-format", "text", "--queue", "json"]));
        assert!(!asks(&["poll", "--log-format"]));
    }

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
