//! The fleet runner over the network: every instance a real OS process talking to a
//! `fake-qm` server over TCP, then the server's status set against the prediction.
//!
//! The server is either one this run serves itself on a free loopback port (the same
//! [`Server`] that `mqpilot fake-qm` runs, defined from the model) or a running one that
//! defines the model's queue manager, channels and queues and has no live connection. The
//! runner seeds the messages over the admin protocol, then starts the apps in file order,
//! each app's instances at once (`mqplan validate-instance`, see `child.rs`), and waits until
//! every one of them is ready before the next app. Each per-instance client address and each
//! address group is its own loopback IP (127.1.0.1, 127.1.0.2, ...), which is what the server
//! counts for MAXINSTC. With everything held, it reads the status, then releases and reaps
//! every process; any failure kills them by PID first.
//!
//! Every connection is a socket of its own: a server of the run's own serves as many as the
//! fleet opens, and the process's open-file limit is made to fit before anything starts
//! (`sockets.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fleet::Fleet;
use super::observe::{Snapshot, observe, watched};
use super::sockets::{self, Needs};
use super::{Outcome, clamp_u32, fake_config, seed_counts};
use crate::Error;
use crate::fake::FakeQm;
use crate::fake::net::{AdminMessage, DEFAULT_MAX_SOCKETS, RemoteAdmin, Server, ServerHandle, Status};
use crate::plan::model::Address;
use crate::plan::profile::Profile;
use crate::plan::report::Plan;

/// Default time every instance of one app has to become ready.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long released instances have to end before they are killed.
const REAP_WAIT: Duration = Duration::from_secs(15);

/// How long a running server may take to notice the released instances' sockets closed.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Messages per admin put request while seeding.
const SEED_CHUNK: u64 = 500;

/// How a network validation runs.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// The model file the instance processes read.
    pub model: PathBuf,
    /// A running `fake-qm` server (`host:port`, loopback); `None` serves one in this process.
    pub server: Option<String>,
    /// The program to run as `PROGRAM validate-instance ...`: the `mqplan` binary.
    pub instance_program: PathBuf,
    /// Time every instance of one app has to become ready. Default [`DEFAULT_READY_TIMEOUT`].
    pub ready_timeout: Duration,
}

impl NetOptions {
    /// Options for `model`, run by `instance_program`, on a server of this run's own.
    #[must_use]
    pub fn new(model: impl Into<PathBuf>, instance_program: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            server: None,
            instance_program: instance_program.into(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// The loopback IP standing for client address number `n` (from 1).
#[must_use]
pub fn client_ip(n: u32) -> IpAddr {
    let [_, a, b, c] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 1u8.wrapping_add(a), b, c))
}

/// The most instance processes a run starts.
const MOST_PROCESSES: u64 = 1_000;

/// Runs `plan` with one process per instance against a `fake-qm` server.
///
/// # Errors
/// [`Error::Options`] when the fleet is too large, the server's address is not an IPv4
/// loopback `host:port`, or the process cannot open as many files as the fleet needs;
/// [`Error::FakeServer`] when the server cannot be served, reached, lacks the model's
/// objects or is in use, when a client address cannot be bound, or when an instance process
/// cannot start, ends early or is not ready in time.
pub fn run(plan: &Plan, options: &NetOptions) -> Result<Outcome, Error> {
    super::fits_the_fake(plan)?;
    let processes = plan
        .model
        .apps
        .iter()
        .fold(0, |n: u64, a| n.saturating_add(a.max_instances));
    if processes > MOST_PROCESSES {
        return Err(Error::Options {
            source_name: "validate --fake-qm".into(),
            message: format!(
                "{processes} instances would be {processes} processes (at most {MOST_PROCESSES}); validate a \
                 smaller fleet, or without --fake-qm"
            ),
        });
    }
    if let Some(addr) = &options.server {
        check_loopback(addr).map_err(|message| Error::Options {
            source_name: "--fake-qm".into(),
            message: format!("{addr}: {message}"),
        })?;
    }
    let needs = Needs::of(plan);
    sockets::fit_descriptors(&needs, options.server.is_none())?;
    let mut served: Option<ServerHandle> = None;
    let server = match &options.server {
        Some(addr) => addr.clone(),
        None => {
            let fail = |e: std::io::Error| Error::FakeServer {
                server: "127.0.0.1:0".into(),
                message: format!("cannot serve: {e}"),
            };
            let handle = Server::bind("127.0.0.1:0", FakeQm::new(fake_config(plan)))
                .map(|s| s.with_max_sockets(clamp_u32(needs.server_sockets())))
                .and_then(Server::spawn)
                .map_err(fail)?;
            let addr = handle.local_addr().to_string();
            served = Some(handle);
            addr
        }
    };
    let result = run_on(plan, options, &server, &needs);
    if let Some(mut handle) = served {
        handle.shutdown();
    }
    result
}

fn run_on(plan: &Plan, options: &NetOptions, server: &str, needs: &Needs) -> Result<Outcome, Error> {
    let fail = |message: String| Error::FakeServer {
        server: server.to_owned(),
        message,
    };
    let admin = RemoteAdmin::new(server.to_owned());
    let before = admin.status()?;
    check_server(plan, &before).map_err(fail)?;
    for (queue, n) in seed_counts(plan) {
        seed(&admin, &queue, n)?;
    }
    let addresses = Addresses::new(plan);
    addresses.check_bindable().map_err(fail)?;
    let mut fleet = Fleet::new(server);
    let notes = Vec::new();
    let mut short = Vec::new();
    for (a, app) in plan.model.apps.iter().enumerate() {
        let mut members = Vec::new();
        for i in 0..app.max_instances {
            let name = format!("{}#{i}", app.name);
            let args = [
                "validate-instance".to_owned(),
                options.model.display().to_string(),
                "--app".to_owned(),
                app.name.clone(),
                "--instance".to_owned(),
                i.to_string(),
                "--server".to_owned(),
                server.to_owned(),
                "--source".to_owned(),
                addresses.of(a, i).to_string(),
                // Within the run's own wait for the ready line, so a short gate is reported.
                "--gate-timeout".to_owned(),
                (options.ready_timeout.as_secs() * 3 / 4).max(1).to_string(),
            ];
            members.push(fleet.spawn(name, &options.instance_program, &args)?);
        }
        let lines = fleet.await_ready(&members, Instant::now() + options.ready_timeout)?;
        if app.profile == Profile::Mqpilot {
            let (arrived, expected) = lines.iter().fold((0, 0), |(a, e), line| {
                let mut words = line.split_whitespace().skip(1).map(|w| w.parse::<u64>().unwrap_or(0));
                (a + words.next().unwrap_or(0), e + words.next().unwrap_or(0))
            });
            if arrived < expected {
                short.push(format!(
                    "{}: {arrived} of {expected} operations reached the gate before the snapshot",
                    app.name
                ));
            }
        }
    }
    let now = admin.status().map_err(|e| match e {
        Error::FakeServer { server, message } if options.server.is_some() => Error::FakeServer {
            message: format!("{message}; {}", short_of_sockets(needs)),
            server,
        },
        e => e,
    })?;
    let mut snap = snapshot(&now, &before);
    snap.group_addresses = addresses.groups();
    let mut outcome = observe(plan, &snap, notes);
    outcome.fell_short(short);
    outcome.server = Some(server.to_owned());
    let mut problems = fleet.release(Instant::now() + REAP_WAIT);
    if options.server.is_some() && !drained(&admin) {
        problems.push("the server still shows live connections after every instance ended".into());
    }
    if problems.is_empty() {
        Ok(outcome)
    } else {
        Err(fail(problems.join("; ")))
    }
}

/// What may explain a running server that stops answering once the fleet is up: it closes
/// every socket past its `--max-sockets` at once, its admin requests' too.
fn short_of_sockets(needs: &Needs) -> String {
    format!(
        "a `mqpilot fake-qm` closes each socket past its --max-sockets (default {DEFAULT_MAX_SOCKETS}) at once, \
         admin requests' too, and this fleet opens {} connections, each a socket: if that is the cause, start the \
         server with --max-sockets {} or more",
        needs.connections,
        needs.server_sockets()
    )
}

/// Waits (up to [`DRAIN_WAIT`]) until the server has noticed that every instance's sockets
/// closed, so the next run finds it free.
fn drained(admin: &RemoteAdmin) -> bool {
    let deadline = Instant::now() + DRAIN_WAIT;
    loop {
        let live = admin.status().map_or(usize::MAX, |s| {
            s.connections.iter().filter(|c| c.broken.is_none()).count()
        });
        if live == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The server must be on IPv4 loopback: the instances bind 127.1.x.y client addresses,
/// from which an IPv6 address cannot be reached.
fn check_loopback(server: &str) -> Result<(), String> {
    let addrs: Vec<_> = server
        .to_socket_addrs()
        .map_err(|e| format!("not a host:port address: {e}"))?
        .collect();
    let ipv4_loopback = |a: &std::net::SocketAddr| a.is_ipv4() && a.ip().is_loopback();
    if addrs.is_empty() || !addrs.iter().all(ipv4_loopback) {
        return Err(
            "the server must listen on IPv4 loopback (127.0.0.1:PORT): the instances connect from 127.1.x.y \
             client addresses"
                .into(),
        );
    }
    Ok(())
}

/// The server must define the model's queue manager, channels and queues, and have no live
/// connection.
fn check_server(plan: &Plan, status: &Status) -> Result<(), String> {
    let model = &plan.model.queue_manager;
    if status.queue_manager != model.name {
        return Err(format!(
            "the server is queue manager {}, the model's is {}",
            status.queue_manager, model.name
        ));
    }
    let config = fake_config(plan);
    let channels: BTreeSet<&str> = status.channels.iter().map(|c| c.name.as_str()).collect();
    let queues: BTreeSet<&str> = status.queues.iter().map(|q| q.name.as_str()).collect();
    let missing: Vec<String> = config
        .channels
        .iter()
        .filter(|c| !channels.contains(c.name.as_str()))
        .map(|c| format!("channel {}", c.name))
        .chain(
            config
                .queues
                .iter()
                .filter(|q| !queues.contains(q.name.as_str()))
                .map(|q| format!("queue {}", q.name)),
        )
        .collect();
    if !missing.is_empty() {
        return Err(format!("the server does not define {}", missing.join(", ")));
    }
    let live = status.connections.iter().filter(|c| c.broken.is_none()).count();
    if live > 0 {
        return Err(format!(
            "the server has {live} live connection(s); validation needs it to itself"
        ));
    }
    Ok(())
}

fn seed(admin: &RemoteAdmin, queue: &str, n: u64) -> Result<(), Error> {
    let mut left = n;
    while left > 0 {
        let chunk = left.min(SEED_CHUNK);
        let messages = (0..chunk).map(|_| AdminMessage {
            data: "mqplan".into(),
            ..AdminMessage::default()
        });
        admin.put(queue, messages.collect())?;
        left -= chunk;
    }
    Ok(())
}

/// The server's status at the barrier; reason codes counted since `before`.
fn snapshot(now: &Status, before: &Status) -> Snapshot {
    let earlier = watched(before.reasons.iter().map(|r| (r.reason, r.count)));
    let mut reasons = watched(now.reasons.iter().map(|r| (r.reason, r.count)));
    for (reason, n) in &mut reasons {
        *n = n.saturating_sub(earlier.get(reason).copied().unwrap_or(0));
    }
    reasons.retain(|_, n| *n > 0);
    Snapshot {
        conns: now.connections.iter().filter(|c| c.broken.is_none()).cloned().collect(),
        channels: now.channels.clone(),
        reasons,
        group_addresses: BTreeMap::new(),
    }
}

/// The client address of every instance: its own for `per-instance`, its group's otherwise.
struct Addresses {
    /// Per app, per instance, the address number.
    numbers: Vec<Vec<u32>>,
    /// Address group -> its number.
    groups: BTreeMap<String, u32>,
}

impl Addresses {
    fn new(plan: &Plan) -> Self {
        let mut next = 0u32;
        let mut groups: BTreeMap<String, u32> = BTreeMap::new();
        let numbers = plan
            .model
            .apps
            .iter()
            .map(|app| {
                (0..app.max_instances)
                    .map(|_| match &app.address {
                        Address::PerInstance => {
                            next += 1;
                            next
                        }
                        Address::Group(g) => *groups.entry(g.clone()).or_insert_with(|| {
                            next += 1;
                            next
                        }),
                    })
                    .collect()
            })
            .collect();
        Self { numbers, groups }
    }

    fn of(&self, app: usize, instance: u64) -> IpAddr {
        client_ip(self.numbers[app][usize::try_from(instance).unwrap_or(usize::MAX)])
    }

    /// Address group -> the IP the server counts for it.
    fn groups(&self) -> BTreeMap<String, String> {
        self.groups
            .iter()
            .map(|(g, &n)| (g.clone(), client_ip(n).to_string()))
            .collect()
    }

    /// Whether this machine lets a socket bind the first client address.
    fn check_bindable(&self) -> Result<(), String> {
        let ip = client_ip(1);
        TcpListener::bind((ip, 0))
            .map(drop)
            .map_err(|e| format!("cannot bind the client address {ip} on this machine: {e}"))
    }
}

/// The `mqplan` binary to run instances with: this process's own executable.
///
/// # Errors
/// [`Error::Io`] when the running executable cannot be found.
pub fn this_program() -> Result<PathBuf, Error> {
    std::env::current_exe().map_err(|source| Error::Io {
        path: Path::new("/proc/self/exe").to_path_buf(),
        source,
    })
}
