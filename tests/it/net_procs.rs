//! Real processes for the network tests: a `mqpilot fake-qm` server and `mqpilot poll`
//! workers, each started from the built binary and killed by PID when its guard drops (so a
//! failing test leaves nothing running).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mqpilot::fake::net::{RemoteAdmin, Status};

use super::cli::MACHINE_VARS;

/// A file under the temp directory, unique to this test run, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str, contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mqpilot-net-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write scratch file");
        Self(path)
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }

    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped unless it has exited.
pub struct Proc {
    pub name: String,
    child: Child,
    /// Where its stderr goes.
    pub stderr: Scratch,
}

impl Proc {
    fn command() -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
        for var in MACHINE_VARS {
            c.env_remove(var);
        }
        c.stdin(Stdio::null());
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {name} {} ({}) failed", self.pid(), self.name);
    }

    /// Waits for the process to end; panics (the guard then kills it) after `deadline`.
    pub fn wait(&mut self, deadline: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < deadline,
                "{} still running after {deadline:?}; stderr:\n{}",
                self.name,
                self.stderr.read()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `mqpilot fake-qm` server process on a free loopback port.
pub struct FakeQmProcess {
    pub proc: Proc,
    pub addr: String,
    _config: Scratch,
}

impl FakeQmProcess {
    /// Starts a server defined by `config` (TOML) and reads where it listens.
    pub fn start(config: &str) -> Self {
        let config = Scratch::new("fake-qm.toml", config);
        let stderr = Scratch::new("fake-qm.err", "");
        let mut child = Proc::command()
            .args(["fake-qm", "--listen", "127.0.0.1:0", "--config", config.arg()])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr.0).expect("stderr file"))
            .spawn()
            .expect("start mqpilot fake-qm");
        let stdout = child.stdout.take().expect("stdout");
        let mut proc = Proc {
            name: "fake-qm".into(),
            child,
            stderr,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(20)).ok().flatten();
        let Some(line) = first else {
            let _ = proc.running();
            panic!("fake-qm printed no address; stderr:\n{}", proc.stderr.read());
        };
        let addr = line
            .rsplit(' ')
            .next()
            .filter(|a| a.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Self {
            proc,
            addr,
            _config: config,
        }
    }

    pub fn admin(&self) -> RemoteAdmin {
        RemoteAdmin::new(self.addr.clone())
    }

    pub fn status(&self) -> Status {
        self.admin().status().expect("status")
    }

    pub fn depth(&self, queue: &str) -> i32 {
        self.admin().depth(queue).expect("depth")
    }

    /// Polls `check` every 10 ms until it holds; panics after `deadline` with `what`.
    pub fn until(&self, deadline: Duration, what: &str, mut check: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !check(self) {
            assert!(started.elapsed() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `mqpilot poll` against this server with `args` after the connection flags.
    pub fn worker(&self, name: &str, args: &[&str]) -> Proc {
        let stderr = Scratch::new(&format!("{name}.err"), "");
        let child = Proc::command()
            .args([
                "poll",
                "--fake-qm",
                &self.addr,
                "--conn",
                "APP.SVRCONN/TCP/localhost(1414)",
            ])
            .args(["--application-name", name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr.0).expect("stderr file"))
            .spawn()
            .expect("start mqpilot poll");
        Proc {
            name: name.to_owned(),
            child,
            stderr,
        }
    }
}

/// Live connections whose application name is `appl`.
pub fn connections_of(status: &Status, appl: &str) -> usize {
    status
        .connections
        .iter()
        .filter(|c| c.appl_name == appl && c.broken.is_none())
        .count()
}
