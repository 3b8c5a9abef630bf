//! The TCP server: accepts client sockets, each served on a thread of its own
//! (`connection.rs`), and closes them all at shutdown.
//!
//! What the connections share (the fake, the client processes, the open sockets, the
//! settings) is one [`Shared`]; a socket leaves the registry when its thread ends, however
//! it ends.

use std::collections::HashMap;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::FakeQm;
use super::ahead::DEFAULT_READ_AHEAD;
use super::connection::Connection;

/// Default time a socket without an MQ connection may idle between frames before the
/// server closes it (see [`Server::with_unconnected_idle`]).
pub const DEFAULT_UNCONNECTED_IDLE: Duration = Duration::from_secs(60);

/// Default most client sockets open at once (see [`Server::with_max_sockets`]).
pub const DEFAULT_MAX_SOCKETS: u32 = 1024;

/// Least time between two log lines about refused sockets.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Process ids the server hands out start here, clear of in-process libraries' ids.
const FIRST_PROCESS: u64 = 1 << 40;

/// What the server's connections share.
pub(super) struct Shared {
    pub(super) qm: FakeQm,
    stopping: AtomicBool,
    /// (client address, client token) -> the fake's process id and its live connections.
    pub(super) processes: Mutex<HashMap<(IpAddr, u64), (u64, usize)>>,
    pub(super) next_process: AtomicU64,
    /// Open sockets by connection number, to close them on shutdown.
    pub(super) sockets: Mutex<HashMap<u64, TcpStream>>,
    next_socket: AtomicU64,
    pub(super) protocol_errors: AtomicU64,
    /// Most messages one MQGET may fetch ahead (0: read-ahead off), announced at MQCONNX.
    pub(super) read_ahead: AtomicU32,
    /// How long a socket without an MQ connection may idle between frames, in milliseconds.
    unconnected_idle_ms: AtomicU64,
    /// Most sockets open at once; past it a new socket is closed at once.
    max_sockets: AtomicU32,
    /// Sockets closed at once because `max_sockets` were open.
    refused_sockets: AtomicU64,
}

impl Shared {
    pub(super) fn unconnected_idle(&self) -> Duration {
        Duration::from_millis(self.unconnected_idle_ms.load(Ordering::Relaxed))
    }
}

/// A bound `mqpilot fake-qm` server; [`Server::spawn`] starts serving.
pub struct Server {
    pub(super) listener: TcpListener,
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

/// A running server. Dropping it does not stop it; call [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shared: SharedRef,
    thread: Option<JoinHandle<()>>,
}

/// Debug-printable handle on the shared state.
struct SharedRef(Arc<Shared>);

impl std::fmt::Debug for SharedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Server {
    /// Binds `addr` (`127.0.0.1:0` picks a free port) for `qm`.
    ///
    /// # Errors
    /// The bind error.
    pub fn bind(addr: impl ToSocketAddrs, qm: FakeQm) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr)?,
            shared: Arc::new(Shared {
                qm,
                stopping: AtomicBool::new(false),
                processes: Mutex::new(HashMap::new()),
                next_process: AtomicU64::new(FIRST_PROCESS),
                sockets: Mutex::new(HashMap::new()),
                next_socket: AtomicU64::new(1),
                protocol_errors: AtomicU64::new(0),
                read_ahead: AtomicU32::new(DEFAULT_READ_AHEAD),
                unconnected_idle_ms: AtomicU64::new(millis(DEFAULT_UNCONNECTED_IDLE)),
                max_sockets: AtomicU32::new(DEFAULT_MAX_SOCKETS),
                refused_sockets: AtomicU64::new(0),
            }),
        })
    }

    /// Lets one MQGET under syncpoint fetch up to `max` further messages for the client to
    /// hand out without a round trip each (capped at 64); 0 turns read-ahead off. Default
    /// 64. Applies to connections made from then on.
    #[must_use]
    pub fn with_read_ahead(self, max: u32) -> Self {
        self.shared
            .read_ahead
            .store(max.min(DEFAULT_READ_AHEAD), Ordering::Relaxed);
        self
    }

    /// Closes a socket that has no MQ connection (it has not sent MQCONNX, or its MQCONNX
    /// failed, or it disconnected) once it idles `idle` between frames, after an `ERROR`
    /// frame saying so: each socket holds a thread and buffers, and one that never connects
    /// does no MQ work. Default [`DEFAULT_UNCONNECTED_IDLE`] (60 s); the socket is closed up
    /// to 10 s after that. A connected socket may idle as long as it likes, as an MQ client
    /// connection may. Applies to sockets accepted from then on.
    #[must_use]
    pub fn with_unconnected_idle(self, idle: Duration) -> Self {
        self.shared
            .unconnected_idle_ms
            .store(millis(idle).max(1), Ordering::Relaxed);
        self
    }

    /// Serves at most `max` client sockets at once (at least 1), each on a thread of its own;
    /// a socket accepted past them is closed at once, without a thread, so a flood of sockets
    /// cannot exhaust the process's threads or memory. Its client's MQCONNX fails with 2009
    /// or 2538, which a client retries with backoff like a refused connection. Default
    /// [`DEFAULT_MAX_SOCKETS`] (1024).
    #[must_use]
    pub fn with_max_sockets(self, max: u32) -> Self {
        self.shared.max_sockets.store(max.max(1), Ordering::Relaxed);
        self
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections on a thread of its own until [`ServerHandle::shutdown`].
    ///
    /// # Errors
    /// The socket's or the thread's error.
    pub fn spawn(self) -> std::io::Result<ServerHandle> {
        let addr = self.listener.local_addr()?;
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name("fake-qm-accept".into())
            .spawn(move || accept_loop(&self.listener, &self.shared))?;
        Ok(ServerHandle {
            addr,
            shared: SharedRef(shared),
            thread: Some(thread),
        })
    }
}

impl ServerHandle {
    /// The address it listens on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Frames refused since the start (bad frames, unknown versions, oversized frames).
    #[must_use]
    pub fn protocol_errors(&self) -> u64 {
        self.shared.0.protocol_errors.load(Ordering::Relaxed)
    }

    /// Sockets closed at once since the start because the most allowed were open.
    #[must_use]
    pub fn refused_sockets(&self) -> u64 {
        self.shared.0.refused_sockets.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes every client socket (their calls get 2009) and waits for the
    /// accept thread.
    pub fn shutdown(&mut self) {
        let shared = &self.shared.0;
        shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept call; the loop sees `stopping` and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for s in lock(&shared.sockets).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut refused_logged: Option<Instant> = None;
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let id = shared.next_socket.fetch_add(1, Ordering::Relaxed);
        let Ok(clone) = stream.try_clone() else {
            tracing::warn!("cannot keep a client socket (no file descriptor left?): closed it");
            continue;
        };
        {
            let mut sockets = lock(&shared.sockets);
            let max = shared.max_sockets.load(Ordering::Relaxed);
            if sockets.len() >= max as usize {
                drop(sockets);
                let refused = shared.refused_sockets.fetch_add(1, Ordering::Relaxed) + 1;
                if refused_logged.is_none_or(|at| at.elapsed() >= REFUSED_LOG_EVERY) {
                    refused_logged = Some(Instant::now());
                    tracing::warn!(
                        max_sockets = max,
                        refused,
                        "{max} client sockets are open, the most --max-sockets allows: closing new ones at once"
                    );
                }
                continue;
            }
            sockets.insert(id, clone);
        }
        let registered = Registered {
            shared: Arc::clone(shared),
            id,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("fake-qm-conn-{id}"))
            .spawn(move || {
                if let Some(c) = Connection::new(stream, Arc::clone(&registered.shared)) {
                    c.serve();
                }
                drop(registered);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

/// A socket in [`Shared::sockets`], taken out when its thread ends, by a panic too (or when
/// its thread could not start).
pub(super) struct Registered {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.shared.sockets).remove(&self.id);
    }
}
