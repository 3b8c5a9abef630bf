//! `mqpilot poll`: flags and configuration file -> worker configuration -> pool -> run.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, ValueEnum};
use mqpilot::pool::{BackoffConfig, Pool, PoolConfig};
use mqpilot::worker::config::{
    MAX_BATCH, MAX_CONNECTIONS, MAX_WAIT_MS, MAX_WORKERS, QueueConfig, Receive, WorkerConfig,
};
use mqpilot::worker::demo::DEMO_QUEUE;
use mqpilot::worker::limits::RunLimits;
use mqpilot::worker::run::start;
use mqpilot::worker::sink::SinkConfig;
use tokio_util::sync::CancellationToken;

use crate::connection::Backend;
use crate::{Failure, LogFormat, usage};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SinkKind {
    Stdout,
    Queue,
}

#[derive(Args, Debug)]
pub(crate) struct PollArgs {
    /// Worker configuration file (TOML). Flags below override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    backend: crate::connection::BackendArgs,

    /// Queue to poll (repeat for several); added to the --config file's queues, not instead of
    /// them. With --fake and no queue: DEMO.IN.
    #[arg(long = "queue", short = 'q', value_name = "NAME")]
    queues: Vec<String>,
    /// Sink for queues given with --queue: stdout (JSON lines; the default) or queue (see
    /// --to). A --config queue's sink is its [queue.sink].
    #[arg(long, value_enum)]
    sink: Option<SinkKind>,
    /// Target queue for queues given with --queue; implies --sink queue.
    #[arg(long, value_name = "QUEUE", required_if_eq("sink", "queue"))]
    to: Option<String>,
    // Ranges are checked by clap, so that an error names the flag (the configuration's checks
    // name the file's keys).
    /// Messages per batch (1..=10000), for every queue (the --config file's too).
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH as u64))]
    batch: Option<usize>,
    /// Wait for the first message of a batch, in milliseconds (0..=60000), for every queue.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WAIT_MS)))]
    wait_ms: Option<u32>,
    /// Pollers per queue (1..=64), for every queue.
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_WORKERS as u64))]
    workers: Option<usize>,
    /// batch, single or no-syncpoint (at-most-once: a failed delivery loses messages), for every
    /// queue.
    #[arg(long, value_parser = ["batch", "single", "no-syncpoint"])]
    receive: Option<String>,

    /// Connections in the pool (P, 1..=1000).
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_CONNECTIONS as u64))]
    connections: Option<usize>,
    /// Most handles per connection; the budget is min(this, MAXHANDS - reserve).
    #[arg(long, value_parser = at_least_one::<usize>)]
    max_handles: Option<usize>,

    #[command(flatten)]
    connection: crate::connection::ConnectionArgs,

    /// Stop when every queue is empty.
    #[arg(long)]
    until_empty: bool,
    /// Stop once this many messages (at least 1) have left their queues or have an unknown
    /// commit outcome: the sink is never handed more.
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    max_messages: Option<u64>,

    /// After the first signal, seconds (at least 1) that in-flight batches get to finish;
    /// then mqpilot does what a second signal does: kills exec commands, abandons requests
    /// and exits 130, and MQ backs the batches out (with receive = "no-syncpoint", messages
    /// not yet delivered are lost).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = at_least_one::<u64>)]
    shutdown_timeout: u64,

    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Serve Prometheus metrics at http://ADDR/metrics (host:port; a host name is resolved).
    #[arg(long, value_name = "ADDR", value_parser = crate::connection::host_port)]
    metrics_listen: Option<String>,
}

/// A count without an upper bound, for a flag where 0 makes no sense (`--max-messages 0`
/// would end the run having done nothing).
fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = std::num::ParseIntError> + From<u8> + PartialEq,
{
    let n: T = text.parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
    if n == T::from(0) {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// The worker configuration from the file and the flags, validated before anything connects.
/// The file's queues come first, then those of --queue: `queue[i]` with `i` below the file's
/// count is the file's.
fn worker_config(args: &PollArgs) -> Result<WorkerConfig, Failure> {
    let mut config = match &args.config {
        Some(path) => WorkerConfig::from_file(path).map_err(usage)?,
        None => WorkerConfig::from_queues(Vec::new()),
    };
    let from_file = config.queues.len();
    let mut queues = args.queues.clone();
    if queues.is_empty() && config.queues.is_empty() && args.backend.is_demo() {
        queues.push(DEMO_QUEUE.to_owned());
    }
    let sink = flag_sink(args.sink, args.to.as_deref(), !queues.is_empty())?;
    for name in queues {
        config.queues.push(QueueConfig {
            sink: sink.clone(),
            ..QueueConfig::new(name)
        });
    }
    if config.queues.is_empty() {
        return Err(usage(match &args.config {
            Some(path) => anyhow::anyhow!(
                "no queue to poll: {} has no [[queue]] and no --queue NAME was given: add a [[queue]] \
                 to the file, or give --queue",
                path.display()
            ),
            None => anyhow::anyhow!(
                "no queue to poll: give --queue NAME, a --config file with [[queue]], or --fake for the demo"
            ),
        }));
    }
    apply_queue_flags(args, &mut config, from_file)?;
    config.pool.connections = args.connections.unwrap_or(config.pool.connections);
    config.pool.max_handles = args.max_handles.unwrap_or(config.pool.max_handles);
    // A loop through a --queue queue; one within the file was refused when it was read.
    if let Some(cycle) = config.sink_cycle() {
        let set_at = |i: usize| match (i < from_file, &config.queues[i].sink) {
            (true, _) => format!("at {}", located(&config, &format!("queue[{i}].sink.queue"))),
            (false, SinkConfig::Queue { queue }) => format!("by --queue {} --to {queue}", config.queues[i].name),
            (false, _) => String::new(),
        };
        return Err(usage(anyhow::anyhow!("--to: {}", config.cycle_message(&cycle, set_at))));
    }
    let origin = args.config.as_ref().map_or_else(
        || "command line".to_owned(),
        |p| format!("{} and the command line", p.display()),
    );
    config
        .validate(&origin)
        .map_err(|e| usage(naming_the_flag(e, &config, from_file)))?;
    Ok(config)
}

/// `--receive`, `--batch`, `--wait-ms` and `--workers` over every queue. A `--receive` that
/// changes a queue from single to another mode gives it the default batch unless `--batch`
/// is given; `--batch` over a file's `receive = "single"` queue is refused naming that queue.
fn apply_queue_flags(args: &PollArgs, config: &mut WorkerConfig, from_file: usize) -> Result<(), Failure> {
    let receive = match args.receive.as_deref() {
        Some("single") => Some(Receive::Single),
        Some("no-syncpoint") => Some(Receive::NoSyncpoint),
        Some(_) => Some(Receive::Batch),
        None => None,
    };
    for i in 0..config.queues.len() {
        if let (Some(batch), None) = (args.batch, receive)
            && batch != 1
            && config.queues[i].receive == Receive::Single
        {
            let at = if i < from_file {
                format!(
                    " ({}: queue[{i}].receive)",
                    located(config, &format!("queue[{i}].receive"))
                )
            } else {
                String::new()
            };
            return Err(usage(anyhow::anyhow!(
                "--batch: is {batch}, but queue {} has receive = \"single\"{at}, which takes one message \
                 at a time: leave --batch out, or add --receive batch",
                config.queues[i].name
            )));
        }
        let q = &mut config.queues[i];
        if let Some(r) = receive
            && r != q.receive
        {
            q.batch = match (q.receive, r) {
                (_, Receive::Single) => 1,
                (Receive::Single, _) => r.default_batch(),
                _ => q.batch,
            };
            q.receive = r;
        }
        q.batch = args.batch.unwrap_or(q.batch);
        q.wait_ms = args.wait_ms.unwrap_or(q.wait_ms);
        q.workers = args.workers.unwrap_or(q.workers);
    }
    Ok(())
}

/// Where dotted `field` is in the --config file (`worker.toml:5:1`), or the field itself.
fn located(config: &WorkerConfig, field: &str) -> String {
    config.file_location(field).unwrap_or_else(|| field.to_owned())
}

/// The sink of the queues given with --queue: --to alone means the queue sink, and a sink
/// flag that would do nothing (another sink beside --to, or no --queue queue to apply to)
/// is refused rather than ignored.
fn flag_sink(kind: Option<SinkKind>, to: Option<&str>, flag_queues: bool) -> Result<SinkConfig, Failure> {
    if (kind.is_some() || to.is_some()) && !flag_queues {
        let flag = if to.is_some() { "--to" } else { "--sink" };
        return Err(usage(anyhow::anyhow!(
            "{flag}: sets the sink of queues given with --queue, and there is none \
             (a --config queue's sink is its [queue.sink])"
        )));
    }
    match (kind, to) {
        (Some(SinkKind::Stdout), Some(_)) => Err(usage(anyhow::anyhow!(
            "--to: is the target of --sink queue, but --sink is stdout: drop --to, or --sink"
        ))),
        (None | Some(SinkKind::Queue), Some(queue)) => Ok(SinkConfig::Queue {
            queue: queue.to_owned(),
        }),
        // clap refuses --sink queue without --to.
        (Some(SinkKind::Stdout | SinkKind::Queue) | None, None) => Ok(SinkConfig::Stdout {}),
    }
}

/// A check of the whole configuration that failed on a value a flag gave (the file's own
/// values were checked when it was read) names that flag rather than the key behind it:
/// `--to: is the queue itself`, not `command line: queue[0].sink.queue: ...`. A flag that
/// applies to every queue also names the queue it failed on, and where the file defines it.
fn naming_the_flag(e: mqpilot::Error, config: &WorkerConfig, from_file: usize) -> anyhow::Error {
    match e {
        mqpilot::Error::Config { field, message, .. } if let Some(flag) = flag_for(&field) => {
            let queue = field
                .strip_prefix("queue[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok())
                .filter(|_| config.queues.len() > 1);
            match queue {
                Some(i) if i < from_file => anyhow::anyhow!(
                    "{flag}: {message} (queue {} at {})",
                    config.queues[i].name,
                    located(config, &format!("queue[{i}].name"))
                ),
                Some(i) => anyhow::anyhow!("{flag}: {message} (queue {}, from --queue)", config.queues[i].name),
                None => anyhow::anyhow!("{flag}: {message}"),
            }
        }
        other => other.into(),
    }
}

/// The flag that sets a configuration key (`queue[1].batch` is `--batch`), if one does.
fn flag_for(field: &str) -> Option<&'static str> {
    let key = field
        .strip_prefix("queue[")
        .and_then(|rest| rest.split_once("]."))
        .map_or(field, |(_, key)| key);
    Some(match key {
        "name" => "--queue",
        "batch" => "--batch",
        "wait_ms" => "--wait-ms",
        "workers" => "--workers",
        "receive" => "--receive",
        "sink.queue" => "--to",
        "pool.connections" => "--connections",
        "pool.max_handles" => "--max-handles",
        _ => return None,
    })
}

pub(crate) async fn run(args: PollArgs) -> Result<u8, Failure> {
    let fake_config = args.backend.fake_config()?;
    let config = worker_config(&args)?;
    // The demo connects over its channel; a fake from --fake-config without --conn gets a
    // bindings connection, which needs no channel definition.
    let demo_channel = args.backend.default_server();
    let overrides = args.connection.overrides(demo_channel, None);
    let env = |k: &str| std::env::var(k).ok();
    let options = config.connection.connect_options(env, &overrides).map_err(usage)?;
    let options = args.backend.route(options);
    let (library, backend) = args.backend.open_with(fake_config)?;
    if let Some(listen) = &args.metrics_listen {
        let addr = tokio::net::lookup_host(listen.as_str())
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| usage(anyhow::anyhow!("--metrics-listen: cannot resolve {listen}")))?;
        crate::metrics::serve(addr).await.map_err(|e| Failure(3, e))?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    let pool_config = PoolConfig {
        connections: config.pool.connections,
        max_handles: config.pool.max_handles,
        handle_reserve: config.pool.handle_reserve,
        backoff: BackoffConfig {
            initial: config.pool.reconnect_initial,
            max: config.pool.reconnect_max,
        },
        buffer_bytes: config.queues.iter().map(|q| q.buffer_bytes).max().unwrap_or(64 * 1024),
    };
    let pool = Pool::new(library, options, pool_config);
    let cancel = CancellationToken::new();
    let shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
    crate::signals::watch_signals_within(cancel.clone(), shutdown_timeout).await;
    let queues = match mqpilot::worker::prepare::prepare(&pool, &config.queues, &cancel).await {
        Ok(queues) => queues,
        // Stopped while still connecting or checking (a queue manager that is not up yet):
        // the stop that was asked for, not a failure to start.
        Err(_) if cancel.is_cancelled() => {
            say!(level: tracing::Level::INFO; "mqpilot: stopped by a signal before the queues were checked; nothing was received");
            return Ok(0);
        }
        Err(e) => return Err(Failure(3, anyhow::Error::new(e).context("cannot start"))),
    };
    warn_of_a_budget_of_one(&pool, config.pool.handle_reserve);
    let limits = RunLimits::new(args.until_empty, args.max_messages);
    let (handle, run) = start(&pool, &queues, limits, &cancel);
    // What an exit at once says of the run: only while the run is under way.
    let live = Arc::new(handle.clone());
    crate::signals::summary_at_exit({
        let live = Arc::downgrade(&live);
        move || live.upgrade().map(|h| crate::summary::so_far(&h))
    });
    let status = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(crate::summary::status_line(handle.clone())));
    let summary = run.finish().await;
    crate::signals::hold_if_exiting_at_once();
    drop(live);
    if let Some(task) = status {
        task.abort();
    }
    let code = if summary.stopped().is_empty() { 0 } else { 1 };
    crate::summary::print(&summary, code);
    match backend {
        Backend::Fake(qm) => {
            let depths: Vec<(String, i32)> = qm.queues().into_iter().map(|q| (q.name, q.depth)).collect();
            crate::summary::print_fake_depths(&depths);
        }
        Backend::Server(addr) => print_server_depths(addr).await,
        Backend::Ibm => {}
    }
    Ok(code)
}

/// Warns when `pool.handle_reserve` leaves a connection (connected by the checks at start)
/// a handle budget of 1: pollers then close and reopen their queues on almost every batch.
fn warn_of_a_budget_of_one(pool: &Pool, handle_reserve: usize) {
    let snapshot = pool.stats().snapshot();
    if let Some(c) = snapshot
        .connections
        .values()
        .find(|c| c.budget == 1 && c.max_handles.saturating_sub(handle_reserve) <= 1)
    {
        tracing::warn!(
            handle_reserve,
            max_handles = c.max_handles,
            "pool.handle_reserve leaves a handle budget of 1 per connection (MAXHANDS minus \
             handle_reserve): pollers will close and reopen their queues on almost every batch; \
             lower handle_reserve below MAXHANDS"
        );
    }
}

/// The depths on a `fake-qm` server, as the summary shows them for the embedded fake.
async fn print_server_depths(addr: String) {
    let status = tokio::task::spawn_blocking(move || mqpilot::fake::net::RemoteAdmin::new(addr).status()).await;
    if let Ok(Ok(status)) = status {
        let depths: Vec<(String, i32)> = status.queues.into_iter().map(|q| (q.name, q.depth)).collect();
        crate::summary::print_fake_depths(&depths);
    }
}
