//! The watch on a client socket while its MQGET waits.
//!
//! A client that goes away (or sends a frame before its answer) while the server waits on
//! its behalf has its connection broken at once, so the wait ends with 2009 and its unit of
//! work is backed out, instead of when the wait interval runs out.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::super::FakeQm;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches the socket while an MQGET waits: if the client goes away (or sends a frame
/// before its answer), the connection is broken so the wait ends at once with 2009.
///
/// The connection arms it with a new sequence number and the waiting MQGET's hconn after
/// reading the request, and disarms it before answering; data seen under an older number
/// belongs to a later request. (A socket may disconnect and connect again, so the hconn is
/// the armed get's, not the one the watcher started with.)
pub(super) struct Watcher {
    state: Arc<(Mutex<WatchState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    /// For breaking a get armed after the client was already seen to go.
    qm: Option<FakeQm>,
}

#[derive(Default)]
struct WatchState {
    /// The armed get's sequence number and hconn.
    armed: Option<(u64, i32)>,
    seq: u64,
    closed: bool,
    /// The client closed its socket (or it failed) while no get was armed.
    peer_gone: bool,
}

impl Watcher {
    pub(super) fn start(stream: TcpStream, qm: FakeQm) -> Self {
        let state = Arc::new((Mutex::new(WatchState::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        let watched = qm.clone();
        let thread = std::thread::Builder::new()
            .name("fake-qm-watch".into())
            .spawn(move || watch(&stream, &shared, &watched))
            .ok();
        Self {
            state,
            thread,
            qm: Some(qm),
        }
    }

    /// A watcher that watches nothing (when no thread could be started).
    pub(super) fn inert() -> Self {
        Self {
            state: Arc::new((Mutex::new(WatchState::default()), Condvar::new())),
            thread: None,
            qm: None,
        }
    }

    /// Watches for the waiting MQGET on `hconn` about to run.
    pub(super) fn arm(&self, hconn: i32) {
        let mut s = lock(&self.state.0);
        if s.peer_gone {
            drop(s);
            // The client went between two requests: this get must not wait for nobody.
            if let Some(qm) = &self.qm {
                qm.break_connection(hconn);
            }
            return;
        }
        s.seq += 1;
        s.armed = Some((s.seq, hconn));
        self.state.1.notify_one();
    }

    pub(super) fn disarm(&self) {
        lock(&self.state.0).armed = None;
    }

    pub(super) fn stop(mut self, stream: &TcpStream) {
        lock(&self.state.0).closed = true;
        self.state.1.notify_one();
        let _ = stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(stream: &TcpStream, state: &(Mutex<WatchState>, Condvar), qm: &FakeQm) {
    let mut byte = [0u8; 1];
    loop {
        let (seq, hconn) = {
            let mut s = lock(&state.0);
            loop {
                if s.closed {
                    return;
                }
                if let Some(armed) = s.armed {
                    break armed;
                }
                s = state.1.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
        };
        match stream.peek(&mut byte) {
            Ok(_) if lock(&state.0).armed != Some((seq, hconn)) => {
                // Data of a later request, read by the connection since, or the end of the
                // stream seen under an arming that is over: look at the current one.
            }
            Ok(0) => {
                // The client closed: end the wait now.
                client_gone(state, qm);
                return;
            }
            Ok(_) => {
                tracing::warn!(hconn, "a frame arrived while an MQGET was in flight: closing");
                qm.break_connection(hconn);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Err(e) if super::protocol::is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                client_gone(state, qm);
                return;
            }
        }
    }
}

/// The client is gone: the get armed now (whichever connection it is on) ends with 2009, or,
/// with none armed, the next one to arm does.
fn client_gone(state: &(Mutex<WatchState>, Condvar), qm: &FakeQm) {
    let mut s = lock(&state.0);
    match s.armed {
        Some((_, hconn)) => {
            drop(s);
            qm.break_connection(hconn);
        }
        None => s.peer_gone = true,
    }
}
