//! The instance processes of a network validation: started, awaited at the barrier,
//! released and reaped.
//!
//! Every child is killed by its PID and reaped when the [`Fleet`] drops, whatever happened
//! before (an error, a panic, a timeout), so no instance outlives the run. Each child's
//! stdout is read on a thread of its own (its `ready` line, then until it ends); its stderr is
//! kept, up to [`STDERR_KEPT`] bytes, to explain a child that failed. A child also ends by
//! itself when its stdin closes, so a parent killed outright leaves no instance behind.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Error;

/// How much of a child's stderr is kept.
pub(super) const STDERR_KEPT: usize = 4096;

/// What a child's stdout said.
enum Event {
    /// Its first line.
    Line(usize, String),
    /// Its stdout ended (it exited or closed it).
    Closed(usize),
}

/// One instance process.
struct Member {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

/// The instance processes of one run.
pub(super) struct Fleet {
    members: Vec<Member>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    server: String,
}

impl Fleet {
    /// An empty fleet; `server` names the run in errors.
    pub(super) fn new(server: &str) -> Self {
        let (sender, events) = channel();
        Self {
            members: Vec::new(),
            events,
            sender,
            server: server.to_owned(),
        }
    }

    fn fail(&self, message: String) -> Error {
        Error::FakeServer {
            server: self.server.clone(),
            message,
        }
    }

    /// Starts `program args`, named `name` in errors; returns its index.
    pub(super) fn spawn(&mut self, name: String, program: &Path, args: &[String]) -> Result<usize, Error> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.fail(format!("cannot start instance {name} ({}): {e}", program.display())))?;
        let index = self.members.len();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stdout.take() {
            let sender = self.sender.clone();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(out).lines();
                if let Some(Ok(line)) = lines.next() {
                    let _ = sender.send(Event::Line(index, line));
                }
                for _ in lines.by_ref() {}
                let _ = sender.send(Event::Closed(index));
            });
        }
        if let Some(mut err) = child.stderr.take() {
            let kept = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                    if kept.len() < STDERR_KEPT {
                        kept.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        self.members.push(Member {
            name,
            child,
            stdin,
            stderr,
        });
        Ok(index)
    }

    /// Waits for the first line of every member in `members`, until `deadline`: the lines, in
    /// the order of `members`.
    ///
    /// # Errors
    /// [`Error::FakeServer`] naming the instance that ended first, or the ones still silent at
    /// the deadline, with what their stderr said.
    pub(super) fn await_ready(&self, members: &[usize], deadline: Instant) -> Result<Vec<String>, Error> {
        let mut lines: Vec<Option<String>> = vec![None; self.members.len()];
        while members.iter().any(|&m| lines[m].is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Line(m, line)) => lines[m] = Some(line),
                Ok(Event::Closed(m)) => {
                    // Every member holds until released: one that ends now either never got
                    // ready or was an earlier app's, ready and held. Give its stderr thread a
                    // moment to catch the last words.
                    std::thread::sleep(Duration::from_millis(50));
                    let when = if members.contains(&m) && lines[m].is_none() {
                        "before it was ready"
                    } else {
                        "while it was held for the snapshot"
                    };
                    return Err(self.fail(format!(
                        "instance {} ended {when}: {}",
                        self.members[m].name,
                        self.stderr_of(m)
                    )));
                }
                Err(_) => {
                    let silent: Vec<String> = members
                        .iter()
                        .filter(|&&m| lines[m].is_none())
                        .map(|&m| format!("{} ({})", self.members[m].name, self.stderr_of(m)))
                        .collect();
                    return Err(self.fail(format!("instances not ready in time: {}", silent.join(", "))));
                }
            }
        }
        Ok(members.iter().map(|&m| lines[m].take().unwrap_or_default()).collect())
    }

    fn stderr_of(&self, m: usize) -> String {
        let text = self.members[m]
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .trim()
            .to_owned();
        if text.is_empty() {
            "(no output)".to_owned()
        } else {
            text
        }
    }

    /// Releases every member (a line on its stdin, then the pipe closed) and waits for all to
    /// exit until `deadline`; the ones still running then are killed. The names of those
    /// killed or failed, with why.
    pub(super) fn release(&mut self, deadline: Instant) -> Vec<String> {
        for m in &mut self.members {
            if let Some(mut stdin) = m.stdin.take() {
                let _ = stdin.write_all(b"release\n");
            }
        }
        let mut problems = Vec::new();
        for i in 0..self.members.len() {
            loop {
                match self.members[i].child.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        problems.push(format!(
                            "instance {} exited with {status}: {}",
                            self.members[i].name,
                            self.stderr_of(i)
                        ));
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                    _ => {
                        let m = &mut self.members[i];
                        let _ = m.child.kill();
                        let _ = m.child.wait();
                        problems.push(format!("instance {} did not end when released: killed", m.name));
                        break;
                    }
                }
            }
        }
        problems
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for m in &mut self.members {
            if matches!(m.child.try_wait(), Ok(None)) {
                let _ = m.child.kill();
            }
            let _ = m.child.wait();
        }
    }
}
