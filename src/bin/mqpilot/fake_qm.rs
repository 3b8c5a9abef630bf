//! `mqpilot fake-qm`: serve the fake queue manager over TCP, or administer a running one.
//!
//! Exit codes: 0 done (the server: stopped by a signal); 1 an admin request failed (the
//! server could not be reached or refused it, e.g. an unknown queue); 2 bad flags or
//! configuration; 3 the server could not listen on its address.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mqpilot::fake::net::{AdminMessage, DEFAULT_MAX_SOCKETS, DEFAULT_READ_AHEAD, RemoteAdmin, Server, Status};
use mqpilot::fake::{FakeConfig, FakeQm, MAX_BACKOUT_COUNT};

use crate::connection::host_port;
use crate::{Failure, usage};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct FakeQmArgs {
    #[command(subcommand)]
    admin: Option<AdminCommand>,
    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:1414", value_parser = host_port)]
    listen: String,
    /// Queue manager, channels and queues (TOML, as examples/fake-qm.toml). Default: QM1 with
    /// channel DEV.APP.SVRCONN and queues DEV.QUEUE.1..3, like IBM's developer image.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Most messages one MQGET under syncpoint may fetch ahead for the client to hand out
    /// without a round trip each (0..=64; 0 turns read-ahead off). Messages fetched ahead
    /// are hidden from other consumers until the client hands them out or releases them,
    /// at its next call of another kind (MQCMIT, MQBACK or MQDISC at the latest).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READ_AHEAD,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(DEFAULT_READ_AHEAD)))]
    read_ahead: u32,
    /// Most client sockets served at once, each on a thread of its own; a socket past them is
    /// closed at once (its MQCONNX fails with 2009 or 2538) and the refusal is logged.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SOCKETS,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_sockets: u32,
}

#[derive(Args, Debug)]
struct ServerArg {
    /// The `mqpilot fake-qm` server (host:port).
    #[arg(long, env = "MQPILOT_FAKE_QM", default_value = "127.0.0.1:1414", value_parser = host_port)]
    server: String,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Put messages outside any unit of work; prints their message ids.
    Put {
        #[command(flatten)]
        server: ServerArg,
        /// Target queue.
        #[arg(long, short = 'q')]
        queue: String,
        /// Payload text; the letter n in curly braces becomes the message's number (1, 2, ...).
        #[arg(long, default_value = "")]
        data: String,
        /// How many messages, 1..=999999999 (a queue's MAXDEPTH is at most that).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=999_999_999))]
        count: u64,
        /// Priority 0..=9 (default: the queue's DEFPRTY).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=9))]
        priority: Option<i32>,
        /// Initial backout count, 0..=999999999 (to seed poison messages; MQ counts no higher).
        #[arg(long, default_value_t = 0,
              value_parser = clap::value_parser!(i32).range(0..=i64::from(MAX_BACKOUT_COUNT)))]
        backout_count: i32,
    },
    /// Every message on a queue, whatever its state, as JSON lines.
    Browse {
        #[command(flatten)]
        server: ServerArg,
        /// The queue.
        #[arg(long, short = 'q')]
        queue: String,
    },
    /// CURDEPTH of a queue.
    Depth {
        #[command(flatten)]
        server: ServerArg,
        /// The queue.
        #[arg(long, short = 'q')]
        queue: String,
    },
    /// Connections (handles, peaks), channel instances, queues and reason-code counts.
    Status {
        #[command(flatten)]
        server: ServerArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Break one connection or every one (their next call gets 2009).
    Break {
        #[command(flatten)]
        server: ServerArg,
        /// The connection handle (see `status`); all connections when absent.
        #[arg(long)]
        hconn: Option<i32>,
    },
    /// Quiesce the queue manager, like `endmqm` (FAIL_IF_QUIESCING calls get 2161).
    Quiesce {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Run again after `quiesce`, like `strmqm`.
    Start {
        #[command(flatten)]
        server: ServerArg,
    },
}

pub(crate) async fn run(args: FakeQmArgs) -> Result<u8, Failure> {
    match args.admin {
        None => serve(&args).await,
        Some(command) => tokio::task::spawn_blocking(move || admin(command))
            .await
            .map_err(|e| Failure(1, e.into()))?,
    }
}

async fn serve(args: &FakeQmArgs) -> Result<u8, Failure> {
    let (listen, read_ahead) = (&args.listen, args.read_ahead);
    let qm = match &args.config {
        Some(path) => FakeQm::new(FakeConfig::from_file(path).map_err(usage)?),
        None => FakeQm::developer(),
    };
    let server = Server::bind(listen, qm.clone())
        .with_context(|| format!("cannot listen on {listen}"))
        .map_err(|e| Failure(3, e))?
        .with_read_ahead(read_ahead)
        .with_max_sockets(args.max_sockets);
    let addr = server.local_addr().map_err(|e| Failure(3, e.into()))?;
    let mut handle = server.spawn().map_err(|e| Failure(3, e.into()))?;
    let queues: Vec<String> = qm.queues().into_iter().map(|q| q.name).collect();
    let channels: Vec<String> = qm.channels().into_iter().map(|c| c.name).collect();
    let read_ahead = if read_ahead == 0 {
        "off".to_owned()
    } else {
        format!("up to {read_ahead} messages per MQGET under syncpoint")
    };
    let banner = format!(
        "mqpilot fake-qm: queue manager {} listening on {addr}\n  channels: {}\n  queues: {}\n  read-ahead: {read_ahead}\n  \
         sockets: at most {} at once\n",
        qm.name(),
        channels.join(", "),
        queues.join(", "),
        args.max_sockets,
    );
    // A reader that took the first line and went (`| head -1`) must not bring the server down.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| Failure(3, e.into()))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: closing every client connection");
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .map_err(|e| Failure(1, e.into()))?;
    Ok(0)
}

/// Most messages, and about the most bytes of payload, one `put` request carries: far below
/// the frame limit (about 100 MiB), whatever `--count` and `--data` are.
const PUT_REQUEST_MESSAGES: u64 = 10_000;
const PUT_REQUEST_BYTES: u64 = 16 << 20;

fn admin(command: AdminCommand) -> Result<u8, Failure> {
    let fail = |e: mqpilot::Error| Failure(1, e.into());
    let mut out = std::io::stdout().lock();
    let mut print = |text: String| {
        let _ = out.write_all(text.as_bytes());
    };
    match command {
        AdminCommand::Put {
            server,
            queue,
            data,
            count,
            priority,
            backout_count,
        } => {
            let admin = RemoteAdmin::new(server.server);
            // One request per chunk: a request's frame has a limit, --count has none.
            let chunk = (PUT_REQUEST_BYTES / (data.len() as u64 + 64)).clamp(1, PUT_REQUEST_MESSAGES);
            let mut first = 1;
            while first <= count {
                let last = count.min(first + chunk - 1);
                let messages = (first..=last)
                    .map(|n| AdminMessage {
                        data: data.replace("{n}", &n.to_string()),
                        priority,
                        persistent: None,
                        backout_count,
                    })
                    .collect();
                let ids = admin.put(&queue, messages).map_err(|e| match first {
                    1 => fail(e),
                    _ => Failure(
                        1,
                        anyhow::Error::new(e).context(format!(
                            "put of messages {first} to {last} (the {} before them were put, and \
                             the numbers below count from message {first})",
                            first - 1
                        )),
                    ),
                })?;
                print(ids.iter().fold(String::new(), |mut s, id| {
                    let _ = writeln!(s, "{id}");
                    s
                }));
                first = last + 1;
            }
        }
        AdminCommand::Browse { server, queue } => {
            let messages = RemoteAdmin::new(server.server).browse(&queue).map_err(fail)?;
            let mut text = String::new();
            for m in messages {
                let line = serde_json::to_string(&m).map_err(|e| Failure(1, e.into()))?;
                let _ = writeln!(text, "{line}");
            }
            print(text);
        }
        AdminCommand::Depth { server, queue } => {
            let depth = RemoteAdmin::new(server.server).depth(&queue).map_err(fail)?;
            print(format!("{depth}\n"));
        }
        AdminCommand::Status { server, json } => {
            let status = RemoteAdmin::new(server.server).status().map_err(fail)?;
            if json {
                let text = serde_json::to_string_pretty(&status).map_err(|e| Failure(1, e.into()))?;
                print(format!("{text}\n"));
            } else {
                print(render_status(&status));
            }
        }
        AdminCommand::Break { server, hconn } => {
            let n = RemoteAdmin::new(server.server).break_connections(hconn).map_err(fail)?;
            print(format!("broke {n} connection(s)\n"));
        }
        AdminCommand::Quiesce { server } => {
            RemoteAdmin::new(server.server).quiesce().map_err(fail)?;
            print("quiescing\n".into());
        }
        AdminCommand::Start { server } => {
            RemoteAdmin::new(server.server).start().map_err(fail)?;
            print("running\n".into());
        }
    }
    Ok(0)
}

/// `status` as text: one block per kind of object, like MQSC's DISPLAY output condensed.
fn render_status(s: &Status) -> String {
    let mut t = String::new();
    let live = s.connections.iter().filter(|c| c.broken.is_none()).count();
    let _ = writeln!(
        t,
        "queue manager {} ({}): {live} connections, peak {}",
        s.queue_manager, s.state, s.peak_connections
    );
    for c in &s.connections {
        let handles: Vec<&str> = c
            .handles
            .iter()
            .map(|h| {
                if h.object.is_empty() {
                    "(qmgr)"
                } else {
                    h.object.as_str()
                }
            })
            .collect();
        let _ = writeln!(
            t,
            "  conn {} {} {} process {} channel {} instance {}: handles {} (peak {}) [{}], uncommitted {}{}",
            c.hconn,
            c.client_address,
            if c.appl_name.is_empty() { "-" } else { &c.appl_name },
            c.process,
            c.channel.as_deref().unwrap_or("-"),
            c.instance.map_or_else(|| "-".to_owned(), |i| i.to_string()),
            c.handles.len(),
            c.peak_handles,
            handles.join(", "),
            c.uncommitted,
            c.broken.map(|r| format!(", BROKEN {r}")).unwrap_or_default()
        );
    }
    for c in &s.channels {
        let per: Vec<String> = c.per_address.iter().map(|(a, n)| format!("{a} {n}")).collect();
        let _ = writeln!(
            t,
            "  channel {}: {} instances (peak {}), {} conversations; per address: {}",
            c.name,
            c.instances,
            c.peak_instances,
            c.conversations,
            if per.is_empty() { "-".to_owned() } else { per.join(", ") }
        );
    }
    for q in &s.queues {
        let _ = writeln!(
            t,
            "  queue {}: depth {} (peak {}, max {}), uncommitted {}, ipprocs {}, opprocs {}",
            q.name, q.depth, q.peak_depth, q.max_depth, q.uncommitted, q.ipprocs, q.opprocs
        );
    }
    for r in &s.reasons {
        let _ = writeln!(t, "  {} {} {}: {}", r.verb, r.reason, r.name, r.count);
    }
    t
}
