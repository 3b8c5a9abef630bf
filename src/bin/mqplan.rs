//! `mqplan`: the capacity planner's command line. clap -> model -> plan -> report; nothing else.
//!
//! Exit codes: `check` 0 every check ok, 1 something at risk, 2 something fails (with
//! `--validate`, 3 when the embedded fake did not do what the report predicts); `validate` 0
//! observed matches predicted, 1 a mismatch (74 when `--fake-qm` cannot run its processes);
//! `sweep` and `emit` 0, `emit keda` 2 when no ScaledObject is safe; every command 65 when the
//! model is invalid, 64 for bad flags, 74 when a file cannot be read or written. Each
//! command's `--help` lists its own.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use mqpilot::Error;
use mqpilot::plan::validate::net::{self, NetOptions};
use mqpilot::plan::{self, Model, Plan, Status};

const EXIT_USAGE: u8 = 64;
const EXIT_INVALID_MODEL: u8 = 65;
const EXIT_IO: u8 = 74;
/// `emit keda`: no replica count is safe (the same code as `check` for a failing plan).
const EXIT_NO_SAFE_SCALING: u8 = 2;
/// `check --validate`: the embedded fake did not do what the report predicts.
const EXIT_VALIDATION_MISMATCH: u8 = 3;

/// The exit codes every command shares, the end of each `--help`.
macro_rules! exit_codes {
    ($($line:literal),* $(,)?) => {
        concat!(
            "Exit codes:\n",
            $($line, "\n",)*
            "  64  bad flags (--help exits 0)\n",
            "  65  the model is invalid (named by file, line, column and field)\n",
            "  74  a file cannot be read or written",
        )
    };
}

const CHECK_EXIT_CODES: &str = exit_codes!(
    "  0   every check ok",
    "  1   something at risk (headroom below --headroom)",
    "  2   something fails",
    "  3   with --validate: the embedded fake did not do what the report predicts",
);
const SWEEP_EXIT_CODES: &str = exit_codes!("  0   the table (and the chart) written");
const VALIDATE_EXIT_CODES: &str = "Exit codes:
  0   observed matches predicted
  1   a mismatch
  64  bad flags (--help exits 0), a --fake-qm address that is not an IPv4 loopback HOST:PORT, or a fleet too \
large to run (connections, handles and messages, processes, or open files past the hard limit)
  65  the model is invalid (named by file, line, column and field)
  74  the model cannot be read; with --fake-qm: the server cannot be served or reached, or an instance process \
cannot start, ends early or is not ready in time";
const EMIT_EXIT_CODES: &str = exit_codes!("  0   written to stdout");
const EMIT_ALL_EXIT_CODES: &str = exit_codes!("  0   written to stdout", "  2   emit keda: no ScaledObject is safe",);
const KEDA_EXIT_CODES: &str = exit_codes!(
    "  0   the ScaledObject written to stdout",
    "  2   no ScaledObject is safe: a limit fails at the planned minimum, the app takes messages off no queue, \
     or its name has no ASCII letter or digit",
);
const ALL_EXIT_CODES: &str = exit_codes!(
    "  0   ok (check: every check ok; validate: observed matches predicted)",
    "  1   check: something at risk; validate: a mismatch",
    "  2   check: something fails; emit keda: no ScaledObject is safe",
    "  3   check --validate: the embedded fake did not do what the report predicts",
);

#[derive(Parser, Debug)]
#[command(
    name = "mqplan",
    version,
    about = "Capacity planner for IBM MQ fleets: which limit breaks first, at what scale, with which reason code",
    after_help = ALL_EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a model against every limit; exit 0 ok, 1 at risk, 2 fails.
    #[command(after_help = CHECK_EXIT_CODES)]
    Check {
        /// The model (TOML).
        model: PathBuf,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Headroom in percent below which a check is at risk.
        #[arg(long, default_value_t = plan::DEFAULT_HEADROOM_PCT, allow_negative_numbers = true)]
        headroom: f64,
        /// Colour in text reports.
        #[arg(long, value_enum, default_value_t = Colour::Auto)]
        color: Colour,
        /// Also run the model on the embedded fake queue manager and show observed against
        /// predicted after the report (as `mqplan validate`); exit 3 if they differ.
        #[arg(long)]
        validate: bool,
    },
    /// Scale one app over a range of instance counts: a table, and optionally a chart.
    #[command(after_help = SWEEP_EXIT_CODES)]
    Sweep {
        /// The model (TOML).
        model: PathBuf,
        /// The app to scale.
        #[arg(long)]
        app: String,
        /// Instance counts, `FROM..TO`.
        #[arg(long, default_value = "1..50", value_parser = parse_range)]
        instances: (u64, u64),
        /// Also draw a chart: FILE.png or FILE.svg.
        #[arg(long, value_parser = parse_chart)]
        chart: Option<PathBuf>,
        /// Headroom in percent below which a check is at risk.
        #[arg(long, default_value_t = plan::DEFAULT_HEADROOM_PCT, allow_negative_numbers = true)]
        headroom: f64,
    },
    /// Write MQSC, a KEDA ScaledObject or the fake queue manager's definition for a model.
    #[command(after_help = EMIT_ALL_EXIT_CODES)]
    Emit {
        #[command(subcommand)]
        what: Emit,
    },
    /// Run the model on the embedded fake queue manager and compare observed with predicted.
    #[command(after_help = VALIDATE_EXIT_CODES)]
    Validate {
        /// The model (TOML).
        model: PathBuf,
        /// Run every instance as its own process against a fake-qm server: this one's own on
        /// a free loopback port, or the running one at ADDR (host:port, loopback).
        #[arg(long, value_name = "ADDR", num_args = 0..=1)]
        fake_qm: Option<Option<String>>,
        /// With --fake-qm: seconds every instance of one app has to be ready (1 to 86400).
        #[arg(long, default_value_t = 60, requires = "fake_qm", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        ready_timeout: u64,
    },
    /// One instance of a network validation (started by `validate --fake-qm`).
    #[command(hide = true)]
    ValidateInstance {
        model: PathBuf,
        #[arg(long)]
        app: String,
        #[arg(long)]
        instance: u64,
        #[arg(long)]
        server: String,
        #[arg(long)]
        source: std::net::IpAddr,
        /// Seconds the instance's pollers have to reach the gate.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        gate_timeout: u64,
    },
}

#[derive(Subcommand, Debug)]
enum Emit {
    /// ALTER QMGR / ALTER CHANNEL commands that cover the plan, and the qm.ini note.
    #[command(after_help = EMIT_EXIT_CODES)]
    Mqsc {
        /// The model (TOML).
        model: PathBuf,
        /// Headroom in percent.
        #[arg(long, default_value_t = plan::DEFAULT_HEADROOM_PCT, allow_negative_numbers = true)]
        headroom: f64,
    },
    /// The fake queue manager's definition file for the model (for `mqpilot fake-qm --config`).
    #[command(after_help = EMIT_EXIT_CODES)]
    FakeQm {
        /// The model (TOML).
        model: PathBuf,
    },
    /// A KEDA ScaledObject whose maxReplicaCount keeps the headroom on every limit the app grows
    /// (so it is below the app's max safe instances).
    #[command(after_help = KEDA_EXIT_CODES)]
    Keda {
        /// The model (TOML).
        model: PathBuf,
        /// The app.
        #[arg(long)]
        app: String,
        /// Headroom in percent.
        #[arg(long, default_value_t = plan::DEFAULT_HEADROOM_PCT, allow_negative_numbers = true)]
        headroom: f64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Colour {
    Auto,
    Always,
    Never,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (from, to) = s.split_once("..").ok_or("expected FROM..TO, e.g. 1..50")?;
    let from: u64 = from.trim().parse().map_err(|_| format!("{from:?} is not a count"))?;
    let to: u64 = to
        .trim()
        .trim_start_matches('=')
        .parse()
        .map_err(|_| format!("{to:?} is not a count"))?;
    if from == 0 || from > to {
        return Err(format!("expected 1 <= FROM <= TO, got {from}..{to}"));
    }
    if to > plan::model::UNLIMITED {
        return Err(format!(
            "TO is at most {} (MQ's largest limit), got {to}",
            plan::model::UNLIMITED
        ));
    }
    if to - from >= plan::sweep::MAX_ROWS {
        return Err(format!(
            "a sweep has at most {} rows, got {}; sweep a narrower range",
            plan::sweep::MAX_ROWS,
            to - from + 1
        ));
    }
    Ok((from, to))
}

/// A chart path: checked with the flags, so a bad one is refused before the sweep prints.
fn parse_chart(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if plan::chart::Format::of(&path).is_none() {
        return Err(format!("{s} must end in .png or .svg"));
    }
    Ok(path)
}

struct Failure(u8, anyhow::Error);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Config { .. } => EXIT_INVALID_MODEL,
            Error::Options { .. } => EXIT_USAGE,
            _ => EXIT_IO,
        };
        Self(code, e.into())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, e)) => {
            eprintln!("mqplan: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn load(path: &Path) -> Result<(String, Plan), Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| Failure(EXIT_IO, e))?;
    let model = Model::from_toml(&text, path)?;
    Ok((path.display().to_string(), Plan::new(model)))
}

fn app_index(plan: &Plan, name: &str) -> Result<usize, Failure> {
    plan.model.app(name).ok_or_else(|| {
        let names = plan.names().join(", ");
        Failure(
            EXIT_USAGE,
            anyhow::anyhow!("--app: no app {name:?} in the model (apps: {names})"),
        )
    })
}

fn status_code(status: Status) -> u8 {
    match status {
        Status::Ok => 0,
        Status::AtRisk => 1,
        Status::Fails => 2,
    }
}

fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Check {
            model,
            format,
            headroom,
            color,
            validate,
        } => {
            plan::headroom(headroom)?;
            let (origin, plan) = load(&model)?;
            let report = plan.report(&origin, headroom);
            let outcome = if validate {
                Some(plan::validate::run(&plan)?)
            } else {
                None
            };
            let colour = match color {
                Colour::Always => true,
                Colour::Never => false,
                Colour::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            let mut out = match format {
                Format::Text => plan::text::render_text(&report, colour),
                Format::Markdown => plan::markdown::render_markdown(&report),
                Format::Json => {
                    let mut json = serde_json::to_value(&report).map_err(|e| Failure(EXIT_IO, e.into()))?;
                    if let (Some(o), Some(fields)) = (&outcome, json.as_object_mut()) {
                        fields.insert("validation".into(), plan::validate::to_json(o));
                    }
                    let mut json = serde_json::to_string_pretty(&json).map_err(|e| Failure(EXIT_IO, e.into()))?;
                    json.push('\n');
                    json
                }
            };
            match (&outcome, format) {
                (Some(o), Format::Text) => {
                    out.push('\n');
                    out.push_str(&plan::validate::render(o));
                }
                (Some(o), Format::Markdown) => {
                    out.push_str("\n## Observed on the embedded fake queue manager\n\n```text\n");
                    out.push_str(&plan::validate::render(o));
                    out.push_str("```\n");
                }
                _ => {}
            }
            print!("{out}");
            if outcome.as_ref().is_some_and(|o| !o.matches()) {
                return Ok(EXIT_VALIDATION_MISMATCH);
            }
            Ok(status_code(report.status))
        }
        Command::Sweep {
            model,
            app,
            instances: (from, to),
            chart,
            headroom,
        } => {
            plan::headroom(headroom)?;
            let (_, plan) = load(&model)?;
            let app = app_index(&plan, &app)?;
            let sweep = plan::sweep::sweep(&plan, app, from, to, headroom);
            print!("{}", plan::sweep::render_sweep(&sweep));
            if let Some(path) = chart {
                plan::chart::write_chart(&sweep, &path)?;
                eprintln!("mqplan: chart written to {}", path.display());
            }
            Ok(0)
        }
        Command::Emit {
            what: Emit::Mqsc { model, headroom },
        } => {
            plan::headroom(headroom)?;
            let (_, plan) = load(&model)?;
            print!("{}", plan::emit::mqsc(&plan, headroom));
            Ok(0)
        }
        Command::Emit {
            what: Emit::FakeQm { model },
        } => {
            let (_, plan) = load(&model)?;
            print!("{}", plan::validate::fake_config_toml(&plan));
            Ok(0)
        }
        Command::Emit {
            what: Emit::Keda { model, app, headroom },
        } => {
            plan::headroom(headroom)?;
            let (_, plan) = load(&model)?;
            let app = app_index(&plan, &app)?;
            match plan::emit::keda(&plan, app, headroom) {
                Ok(yaml) => {
                    print!("{yaml}");
                    Ok(0)
                }
                Err(why) => {
                    eprintln!("mqplan: {why}");
                    Ok(EXIT_NO_SAFE_SCALING)
                }
            }
        }
        Command::Validate {
            model,
            fake_qm,
            ready_timeout,
        } => {
            let (_, plan) = load(&model)?;
            let outcome = match fake_qm {
                None => plan::validate::run(&plan)?,
                Some(server) => {
                    let mut options = NetOptions::new(&model, net::this_program()?);
                    options.server = server;
                    options.ready_timeout = Duration::from_secs(ready_timeout);
                    net::run(&plan, &options)?
                }
            };
            print!("{}", plan::validate::render(&outcome));
            Ok(u8::from(!outcome.matches()))
        }
        Command::ValidateInstance {
            model,
            app,
            instance,
            server,
            source,
            gate_timeout,
        } => {
            let (_, plan) = load(&model)?;
            let app = app_index(&plan, &app)?;
            if instance >= plan.model.apps[app].max_instances {
                return Err(Failure(EXIT_USAGE, anyhow::anyhow!("--instance: out of range")));
            }
            // The run that started this instance is gone when its pipe ends before a release
            // line: end at once, whatever the stage; the server backs out what the instance
            // held when its sockets close. (Its arguments are checked first, so that a bad one
            // is said even with no run behind it.)
            let parent = plan::validate::Parent::watch(std::io::stdin(), || std::process::exit(EXIT_IO.into()))?;
            let args = plan::validate::InstanceArgs {
                app,
                instance,
                server,
                source,
                gate_wait: std::time::Duration::from_secs(gate_timeout),
            };
            plan::validate::run_instance(&plan, &args, &parent, std::io::stdout())?;
            Ok(0)
        }
    }
}
