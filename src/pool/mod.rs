//! Bounded pool of MQ connections and their cached queue handles.
//!
//! A pool holds at most `connections` connections to one queue manager. Each connection lives
//! on its own thread, because MQI calls block (an MQGET with wait blocks its thread); async
//! code reaches it through a [`Lease`], which runs closures on that thread one at a time.
//! Checking a connection out is the back-pressure point for pollers. A connection that
//! reports a connection-level reason code (2009, 2018, 2161, 2162, 2202, 2203, 2548) is
//! dropped with its handles and replaced on the next checkout; a caller whose new connections
//! keep dying waits [`Pool::backoff`] between them (the worker's pollers do). Failed connects
//! with 2537, 2538, 2059 and 2025 are retried here after an exponential backoff with jitter,
//! logged with their reason-code advice. Each connection keeps its handles within its budget
//! (see `conn.rs`).

mod backoff;
mod conn;
mod stats;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

pub use backoff::{Backoff, BackoffConfig};
pub use conn::{PooledConn, budget};
pub use stats::{ConnectionStats, PoolSnapshot, PoolStats, SlotStats, register_metrics};

use crate::Error;
use crate::mq::MqLibrary;
use crate::mq::options::ConnectOptions;
use crate::mq::reason::{Reason, ReasonClass};
use crate::mq::session::{Session, is_connection_lost};

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Connections per process. Default 2.
    pub connections: usize,
    /// Configured maximum handles per connection. Default 256.
    pub max_handles: usize,
    /// Handles left free below MAXHANDS for others (and MQ's own use). Default 8.
    pub handle_reserve: usize,
    /// Reconnect backoff. Default 100 ms doubling to 30 s.
    pub backoff: BackoffConfig,
    /// Starting MQGET buffer per connection. Default 64 KiB.
    pub buffer_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connections: 2,
            max_handles: 256,
            handle_reserve: 8,
            backoff: BackoffConfig::default(),
            buffer_bytes: 64 * 1024,
        }
    }
}

/// How long a checkout may take before it gives up, for callers that answer someone (the
/// MCP server's tools) rather than wait their turn (the worker's pollers, which use
/// [`Pool::checkout`] and wait as long as it takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Waiting for a connection that other callers hold. Default 20 s.
    pub busy: Duration,
    /// Retrying connects that fail with a reason code that may clear (2059, 2537, ...);
    /// no retry starts past it, and the last failure is the answer. An attempt under way is
    /// not cut short by it. Default 3 s.
    pub connect: Duration,
    /// One connect attempt: a queue manager that has not answered by then (a listener that
    /// accepts and never speaks) is given up on. Default 30 s.
    pub attempt: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Self {
            busy: Duration::from_secs(20),
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(30),
        }
    }
}

/// A job gets the connection, and a place for a pool slot to be given back only after the
/// connection is dropped (disconnected) when the thread ends.
type Job = Box<dyn FnOnce(&mut PooledConn, &mut Option<OwnedSemaphorePermit>) + Send>;
type Ready = Result<OwnedSemaphorePermit, (Error, OwnedSemaphorePermit)>;

/// The answer a connect attempt waits for: given up on after the thread answered, the slot
/// goes back to the thread, to be freed after it disconnects.
struct Answer {
    rx: oneshot::Receiver<Ready>,
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.rx.close();
        if let (Ok(Ok(slot)), Some(jobs)) = (self.rx.try_recv(), self.jobs.take()) {
            free_after_disconnect(&jobs, slot);
        }
    }
}

/// Has the connection's thread give `slot` back once it has dropped (disconnected) its
/// connection; if the thread is gone already, the slot is given back here.
fn free_after_disconnect(jobs: &std::sync::mpsc::Sender<Job>, slot: OwnedSemaphorePermit) {
    let _ = jobs.send(Box::new(move |_, retire| *retire = Some(slot)));
}

/// The handle async code holds on one connection thread.
#[derive(Debug)]
struct ConnThread {
    id: usize,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// The idle connections, and how many times [`Pool::close_idle`] has run: a connection
/// leased before a close and given back after it (or whose thread only finished backing out
/// after it) is closed too rather than kept.
#[derive(Default)]
struct Idle {
    conns: Vec<ConnThread>,
    closes: u64,
}

struct Inner {
    library: MqLibrary,
    options: ConnectOptions,
    config: PoolConfig,
    stats: Arc<PoolStats>,
    permits: Arc<Semaphore>,
    /// Checkouts waiting for a connection right now.
    waiting: Waiters,
    idle: Mutex<Idle>,
    /// Told each time a connection goes back to `idle`: a checkout whose connect keeps
    /// failing (2537 while every channel instance is taken) takes it instead of waiting out
    /// its backoff.
    returned: tokio::sync::Notify,
    /// The id the next connection gets (ids are never reused, so a connection that is still
    /// disconnecting never shares one with its replacement).
    next_id: std::sync::atomic::AtomicUsize,
    backoff: Mutex<Backoff>,
    /// Connection threads started and not yet ended (each ends after its MQDISC).
    threads: std::sync::atomic::AtomicUsize,
    /// Told each time a connection thread ends.
    thread_ended: tokio::sync::Notify,
}

/// A bounded pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("library", &self.inner.library)
            .field("target", &self.inner.options.target())
            .field("connections", &self.inner.config.connections)
            .finish_non_exhaustive()
    }
}

/// Exclusive use of one pooled connection until dropped.
///
/// Dropping a lease whose connection is inside a unit of work backs that unit of work out
/// before the connection is used again.
pub struct Lease {
    conn: Option<ConnThread>,
    pool: Arc<Inner>,
    healthy: bool,
    /// No job of this lease is running and the last one left no unit of work open: the
    /// connection can go back to the pool as it is, without a job on its thread first.
    settled: bool,
    /// The pool slot; given back once the connection is idle again (or gone).
    permit: Option<OwnedSemaphorePermit>,
    /// [`Pool::close_idle`]'s count when the lease was made: a lease given back after a
    /// close (a shutdown) is closed too rather than left idle and connected.
    closes: u64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("connection", &self.connection_id())
            .field("healthy", &self.healthy)
            .finish()
    }
}

/// Reason codes a connect can fail with that are worth retrying.
fn connect_retryable(error: &Error) -> bool {
    match error.reason() {
        Some(r) => matches!(r.class(), ReasonClass::Retry | ReasonClass::Reconnect) || r == Reason::Q_MGR_NOT_AVAILABLE,
        None => false,
    }
}

impl Pool {
    /// A pool of connections made with `options` through `library`. Nothing connects until
    /// the first checkout.
    #[must_use]
    pub fn new(library: MqLibrary, options: ConnectOptions, config: PoolConfig) -> Self {
        let connections = config.connections.max(1);
        Self {
            inner: Arc::new(Inner {
                library,
                options,
                stats: Arc::new(PoolStats::default()),
                permits: Arc::new(Semaphore::new(connections)),
                waiting: Waiters::default(),
                idle: Mutex::new(Idle::default()),
                returned: tokio::sync::Notify::new(),
                next_id: std::sync::atomic::AtomicUsize::new(0),
                backoff: Mutex::new(Backoff::new(config.backoff)),
                threads: std::sync::atomic::AtomicUsize::new(0),
                thread_ended: tokio::sync::Notify::new(),
                config,
            }),
        }
    }

    /// The reconnect backoff: how long to wait before connecting again after a connection
    /// was lost (and between failed connects).
    #[must_use]
    pub fn backoff(&self) -> BackoffConfig {
        self.inner.config.backoff
    }

    /// The pool's counters.
    #[must_use]
    pub fn stats(&self) -> Arc<PoolStats> {
        Arc::clone(&self.inner.stats)
    }

    /// Waits for a free connection, connecting (with backoff on retryable failures) when
    /// none is idle.
    ///
    /// # Errors
    /// A connect failure that will not fix itself (bad credentials, unknown queue manager,
    /// library missing), or `cancel` fired while waiting.
    pub async fn checkout(&self, cancel: &CancellationToken) -> Result<Lease, Error> {
        self.checkout_with(None, cancel).await
    }

    /// [`Pool::checkout`] that gives up: after `patience.busy` waiting for a connection other
    /// callers hold (an error saying so), or once retrying a failed connect would go past
    /// `patience.connect` (that connect's error, with its reason code). During a long outage
    /// the shared backoff is past `patience.connect`, so each call makes one attempt.
    ///
    /// # Errors
    /// As [`Pool::checkout`], plus the two above.
    pub async fn checkout_within(&self, patience: Patience, cancel: &CancellationToken) -> Result<Lease, Error> {
        self.checkout_with(Some(patience), cancel).await
    }

    async fn checkout_with(&self, patience: Option<Patience>, cancel: &CancellationToken) -> Result<Lease, Error> {
        let permits = Arc::clone(&self.inner.permits);
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.inner.stats.waited_for_connection();
                let _waiting = self.inner.waiting.enter();
                let busy = patience.map(|p| p.busy);
                tokio::select! {
                    p = permits.acquire_owned() => p.expect("the pool never closes its semaphore"),
                    () = cancel.cancelled() => return Err(cancelled()),
                    () = sleep_or_never(busy) => return Err(self.all_busy(busy.unwrap_or_default())),
                }
            }
        };
        let (conn, permit) = match self.inner.take_idle() {
            Some(conn) => (conn, permit),
            None => self.connect(permit, patience, cancel).await?,
        };
        let closes = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .closes;
        Ok(Lease {
            conn: Some(conn),
            pool: Arc::clone(&self.inner),
            healthy: true,
            settled: true,
            permit: Some(permit),
            closes,
        })
    }

    /// The error for a checkout that waited `waited` for a connection held by others.
    fn all_busy(&self, waited: Duration) -> Error {
        let n = self.inner.config.connections;
        Error::Options {
            source_name: "pool".into(),
            message: format!(
                "no MQ connection came free within {waited:?}: all {n} are in use by other calls or locks; retry later, or give mqpilot more --connections"
            ),
        }
    }

    /// Connects, retrying failures that may clear with a backoff: for ever, or, with
    /// `patience`, until the next attempt would start past `patience.connect` (then the last
    /// failure is the error). An attempt under way is not cut short by that, so a queue
    /// manager that is slow to answer (TLS over a long link, a slow authentication check)
    /// still gets its connection; only one that has not answered after `patience.attempt`
    /// is given up on.
    ///
    /// The pool slot (`permit`) goes with each attempt to its thread: one given up on keeps
    /// the slot until its thread has disconnected, so slow connects never pile up past the
    /// pool's size (each would be a channel instance, counted against MAXINST and MaxChannels).
    async fn connect(
        &self,
        mut permit: OwnedSemaphorePermit,
        patience: Option<Patience>,
        cancel: &CancellationToken,
    ) -> Result<(ConnThread, OwnedSemaphorePermit), Error> {
        let give_up = patience.map(|p| Instant::now() + p.connect);
        let attempt_limit = patience.map(|p| p.attempt);
        loop {
            // A connect that hangs (a listener that accepts and never answers) must not hold a
            // shutdown, or a caller with patience, up until the client's own timeout: the
            // thread is left to finish it, and disconnects as soon as it finds nobody waiting.
            let attempt = tokio::select! {
                attempt = self.try_connect(permit) => attempt,
                () = cancel.cancelled() => return Err(cancelled()),
                () = sleep_or_never(attempt_limit) => {
                    self.inner.stats.connect_failed();
                    return Err(Error::Options {
                        source_name: "pool".into(),
                        message: format!(
                            "the queue manager did not answer the connect within {:?}",
                            attempt_limit.unwrap_or_default()
                        ),
                    });
                }
            };
            match attempt {
                Ok(connected) => {
                    self.inner
                        .backoff
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .reset();
                    return Ok(connected);
                }
                Err((e, Some(back))) if connect_retryable(&e) => {
                    // Registered before the idle list is looked at, so that a connection
                    // given back in between still wakes this wait.
                    let returned = self.inner.returned.notified();
                    tokio::pin!(returned);
                    returned.as_mut().enable();
                    self.inner.stats.connect_failed();
                    if let Some(idle) = self.inner.take_idle() {
                        tracing::debug!(error = %e, "connect failed: took a connection another caller gave back");
                        return Ok((idle, back));
                    }
                    permit = back;
                    let delay = self
                        .inner
                        .backoff
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .next_delay();
                    let advice = e.reason().and_then(|r| r.info()).map_or("", |i| i.advice);
                    if give_up.is_some_and(|t| Instant::now() + delay > t) {
                        tracing::warn!(error = %e, advice, "connect failed");
                        return Err(e);
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, advice, "connect failed");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = &mut returned => if let Some(idle) = self.inner.take_idle() {
                            return Ok((idle, permit));
                        },
                        () = cancel.cancelled() => return Err(cancelled()),
                    }
                }
                Err((e, _)) => {
                    self.inner.stats.connect_failed();
                    return Err(e);
                }
            }
        }
    }

    /// Starts a connection thread and waits for its MQCONNX and MAXHANDS inquiry.
    /// The slot comes back with the connection, or with a failure to retry; a thread whose
    /// answer nobody waits for any more keeps it until it has disconnected.
    async fn try_connect(&self, slot: OwnedSemaphorePermit) -> Result<(ConnThread, OwnedSemaphorePermit), Failed> {
        let id = self.inner.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let inner = Arc::clone(&self.inner);
        self.inner.threads.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        std::thread::Builder::new()
            .name(format!("mq-conn-{id}"))
            .spawn(move || {
                let _ending = ThreadEnding(&inner);
                connection_thread(&inner, id, slot, ready_tx, &rx);
            })
            .map_err(|source| {
                self.inner.threads.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                let e = Error::Io {
                    path: "thread".into(),
                    source,
                };
                (e, None)
            })?;
        let mut answer = Answer {
            rx: ready_rx,
            jobs: Some(jobs),
        };
        match (&mut answer.rx).await {
            Ok(Ok(slot)) => Ok((
                ConnThread {
                    id,
                    jobs: answer.jobs.take().expect("sender"),
                },
                slot,
            )),
            Ok(Err((e, slot))) => Err((e, Some(slot))),
            Err(_) => Err((
                Error::Options {
                    source_name: "pool".into(),
                    message: "the connection thread stopped before connecting".into(),
                },
                None,
            )),
        }
    }

    /// Waits until every connection thread of the pool has ended, each after closing its
    /// handles and disconnecting (MQDISC), or until `limit` has passed. True if all have.
    /// A process that exits before then cuts its connections off instead: the queue manager
    /// sees sockets drop (and logs channel errors) rather than MQDISC.
    pub async fn disconnected_within(&self, limit: Duration) -> bool {
        let all_ended = || self.inner.threads.load(std::sync::atomic::Ordering::Acquire) == 0;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ended = self.inner.thread_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if all_ended() {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return all_ended();
            }
        }
    }

    /// Connection threads that have not ended yet.
    #[must_use]
    pub fn connection_threads(&self) -> usize {
        self.inner.threads.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Disconnects every idle connection (leased ones disconnect when their lease drops).
    pub fn close_idle(&self) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        idle.closes += 1;
        self.inner.retire_idle(&mut idle);
    }
}

impl Inner {
    /// Disconnects every idle connection. Each takes a pool slot with it until its thread
    /// has closed its handles and disconnected (a round trip per handle on a real network),
    /// so that checkouts meanwhile do not connect past the pool's size. An idle connection
    /// holds no slot, so one is free for each, except when a checkout has just taken one
    /// to reuse an idle connection it will now not find: that connection disconnects
    /// without one.
    fn retire_idle(&self, idle: &mut Idle) {
        for conn in idle.conns.drain(..) {
            if let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned() {
                free_after_disconnect(&conn.jobs, slot);
            }
        }
    }

    /// An idle connection, if there is one.
    fn take_idle(&self) -> Option<ConnThread> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .conns
            .pop()
    }

    /// Makes `conn` idle, and wakes checkouts waiting out a failed connect.
    fn give_back(&self, idle: &mut Idle, conn: ConnThread) {
        idle.conns.push(conn);
        self.returned.notify_waiters();
    }
}

/// A failed connect attempt, with the pool slot when it can be tried again.
type Failed = (Error, Option<OwnedSemaphorePermit>);

/// Sleeps for `limit`; without one, never completes.
async fn sleep_or_never(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn cancelled() -> Error {
    Error::Options {
        source_name: "pool".into(),
        message: "shutting down".into(),
    }
}

/// Counts a connection thread out when it ends, after everything else on it was dropped.
struct ThreadEnding<'a>(&'a Inner);

impl Drop for ThreadEnding<'_> {
    fn drop(&mut self) {
        self.0.threads.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.thread_ended.notify_waiters();
    }
}

/// The body of a connection thread: connect, then run jobs until the last sender is gone.
/// Dropping the connection backs out an open unit of work, closes handles and disconnects.
fn connection_thread(
    inner: &Arc<Inner>,
    id: usize,
    slot: OwnedSemaphorePermit,
    ready: oneshot::Sender<Ready>,
    jobs: &std::sync::mpsc::Receiver<Job>,
) {
    let connected = Session::connect(inner.library.clone(), &inner.options, inner.config.buffer_bytes).and_then(|s| {
        PooledConn::new(
            s,
            id,
            &inner.options,
            inner.config.max_handles,
            inner.config.handle_reserve,
            Arc::clone(&inner.stats),
        )
    });
    let mut conn = match connected {
        Ok(conn) => {
            tracing::debug!(connection = id, budget = conn.budget(), "connected");
            if let Err(unsent) = ready.send(Ok(slot)) {
                // The checkout gave up (shutdown, or no answer in time): disconnect at once,
                // and only then give the slot back.
                drop(conn);
                drop(unsent);
                return;
            }
            conn
        }
        Err(e) => {
            let _ = ready.send(Err((e, slot)));
            return;
        }
    };
    let mut retire = None;
    while let Ok(job) = jobs.recv() {
        job(&mut conn, &mut retire);
    }
    // Disconnected first, then the slot back: a pool never has more connections than slots.
    drop(conn);
    drop(retire);
}

/// How many checkouts are waiting for a connection: a lease holder that loops on its
/// connection gives it back when this is not zero. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Waiters(Arc<std::sync::atomic::AtomicUsize>);

impl Waiters {
    /// Whether any checkout is waiting for a connection now.
    #[must_use]
    pub fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Counts one waiter until the guard drops (also when the waiting future is dropped).
    fn enter(&self) -> WaiterGuard<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WaiterGuard(self)
    }
}

struct WaiterGuard<'a>(&'a Waiters);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Lease {
    /// Checkouts of the same pool waiting for a connection.
    #[must_use]
    pub fn waiters(&self) -> Waiters {
        self.pool.waiting.clone()
    }

    /// The pool slot of this connection (0-based).
    #[must_use]
    pub fn connection_id(&self) -> usize {
        self.conn.as_ref().map_or(usize::MAX, |c| c.id)
    }

    /// Runs `f` on the connection's thread and returns what it returns. An error that means
    /// the connection is gone marks it for replacement when the lease drops.
    ///
    /// # Errors
    /// What `f` returns; a connection-lost error if the connection thread has stopped.
    pub async fn run<R, F>(&mut self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut PooledConn) -> Result<R, Error> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn, _| {
            let result = f(conn);
            let _ = tx.send((result, conn.in_unit_of_work()));
        });
        // Until the answer is in: a lease dropped with the job running (its future dropped)
        // leaves the check for an open unit of work to a job queued behind it.
        self.settled = false;
        let sent = self.conn.as_ref().is_some_and(|c| c.jobs.send(job).is_ok());
        let result = if sent {
            match rx.await {
                Ok((result, open)) => {
                    self.settled = !open;
                    result
                }
                Err(_) => Err(lost()),
            }
        } else {
            Err(lost())
        };
        if let Err(e) = &result
            && is_connection_lost(e)
        {
            self.healthy = false;
        }
        result
    }

    /// Marks the connection as lost: it is disconnected and replaced instead of reused.
    pub fn mark_broken(&mut self) {
        self.healthy = false;
    }

    /// Whether the connection is still usable.
    #[must_use]
    pub const fn is_healthy(&self) -> bool {
        self.healthy
    }
}

fn lost() -> Error {
    Error::Mq {
        verb: "MQI",
        object: "connection".into(),
        reason: Reason::CONNECTION_BROKEN,
        detail: Some("the connection thread stopped".into()),
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.healthy {
            // Dropping the sender ends the thread, which disconnects. Whatever lost this
            // connection (a queue manager restart, a network cut) most likely took the idle
            // ones too: drop them as well rather than find each dead one a checkout at a time.
            self.pool.stats.reconnect();
            if let Some(slot) = self.permit.take() {
                free_after_disconnect(&conn.jobs, slot);
            }
            drop(conn);
            let mut idle = self.pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.pool.retire_idle(&mut idle);
            return;
        }
        let pool = Arc::clone(&self.pool);
        let permit = self.permit.take();
        let closes = self.closes;
        if self.settled {
            // Nothing runs on the connection and nothing is left to back out: idle at once,
            // without a hand-over to its thread; or, after a close, disconnected with its slot.
            let mut idle = pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.closes == closes {
                pool.give_back(&mut idle, conn);
                drop(idle);
                drop(permit);
            } else if let Some(slot) = permit {
                free_after_disconnect(&conn.jobs, slot);
            }
            return;
        }
        // Whatever the lease left in a unit of work is backed out before reuse, on the
        // connection's thread; only then is the connection idle and its slot free. If MQBACK
        // fails, the connection is not reused (the next MQCMIT on it would commit what was
        // left): the job drops the last sender, the thread ends, and dropping the connection
        // backs out again or leaves it to MQ.
        let sender = conn.jobs.clone();
        let _ = sender.send(Box::new(
            move |c: &mut PooledConn, retire: &mut Option<OwnedSemaphorePermit>| {
                if c.in_unit_of_work()
                    && let Err(e) = c.backout()
                {
                    tracing::warn!(
                        connection = c.id(),
                        error = %e,
                        "MQBACK of an abandoned unit of work failed: the connection is not reused"
                    );
                    pool.stats.reconnect();
                    *retire = permit;
                    drop(conn);
                    return;
                }
                let mut idle = pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if idle.closes == closes {
                    pool.give_back(&mut idle, conn);
                    drop(idle);
                    drop(permit);
                } else {
                    *retire = permit;
                }
            },
        ));
    }
}
