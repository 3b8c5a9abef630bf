//! `mqpilot poll` with exec sinks on a `mqpilot fake-qm` server, when its stderr is closed or
//! stalled and when it is stopped: a handler's output never fails a delivery, a stalled
//! stderr never keeps a signal from ending the run, handlers never outlive mqpilot, and the
//! drain after a signal is bounded by `--shutdown-timeout`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mqpilot::fake::net::AdminMessage;

use crate::cli::MACHINE_VARS;
use crate::net_procs::FakeQmProcess;

/// Generous bound for anything here to happen in a debug build on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

const QM: &str = r#"
[queue_manager]
name = "QM1"

[[channel]]
name = "APP.SVRCONN"

[[queue]]
name = "IN"
backout_threshold = 3
backout_queue = "IN.BACKOUT"

[[queue]]
name = "IN.BACKOUT"
"#;

/// A directory of its own for one test: the worker config, the handler's files.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mqpilot-shutdown-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// A worker config polling IN into an exec sink running `sh -c script` in this directory.
    fn exec_config(&self, script: &str, timeout_ms: u64) -> PathBuf {
        let command = serde_json::to_string(&["sh", "-c", script]).expect("json");
        let config = self.path("worker.toml");
        std::fs::write(
            &config,
            format!(
                "[[queue]]\nname = \"IN\"\n[queue.sink]\ntype = \"exec\"\ncommand = {command}\ntimeout_ms = {timeout_ms}\n"
            ),
        )
        .expect("write config");
        config
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `mqpilot poll` process, killed when dropped unless it has exited.
struct Poll(Child);

impl Poll {
    /// `mqpilot poll` on `server` with the config, `extra` flags and `stderr`, run in `dir`.
    fn start(server: &FakeQmProcess, dir: &Dir, config: &Path, extra: &[&str], stderr: Stdio) -> Self {
        Self::start_as(
            Command::new(env!("CARGO_BIN_EXE_mqpilot")),
            server,
            dir,
            config,
            extra,
            stderr,
        )
    }

    /// As [`Poll::start`], from `command` (set up as the test needs).
    fn start_as(
        mut command: Command,
        server: &FakeQmProcess,
        dir: &Dir,
        config: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> Self {
        for var in MACHINE_VARS {
            command.env_remove(var);
        }
        let child = command
            .args([
                "poll",
                "--fake-qm",
                &server.addr,
                "--conn",
                "APP.SVRCONN/TCP/localhost(1414)",
            ])
            .arg("--config")
            .arg(config)
            .args(["--wait-ms", "100"])
            .args(extra)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start mqpilot poll");
        Self(child)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.0.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {name} failed");
    }

    /// Waits for the exit; fails the test if it takes longer than [`BOUND`].
    fn exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(started.elapsed() < BOUND, "mqpilot did not exit within {BOUND:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn put(server: &FakeQmProcess, n: usize) {
    let messages = (0..n)
        .map(|i| AdminMessage {
            data: format!("m{i}"),
            ..AdminMessage::default()
        })
        .collect();
    assert_eq!(server.admin().put("IN", messages).expect("put").len(), n);
}

/// Polls `check` every 20 ms until it holds; fails the test after [`BOUND`] with `what`.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < BOUND, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
        .is_some_and(|state| !state.starts_with('Z'))
}

/// The pid a handler wrote to `pid` in `dir`, once it has.
fn handler_pid(dir: &Dir) -> u32 {
    let mut pid = 0;
    until("the handler to start", || {
        pid = dir.read("pid").trim().parse().unwrap_or(0);
        pid != 0
    });
    pid
}

/// Kills a handler left behind by a failing test.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
}

/// A handler that records its input, then writes far more to stdout and stderr than a pipe
/// holds (`set -e`: a failed write fails the delivery).
const NOISY: &str = r#"set -e
cat >> delivered
i=0
while [ $i -lt 3000 ]; do
  echo "handler stdout line $i, long enough to fill a pipe quickly enough"
  echo "handler stderr line $i, long enough to fill a pipe quickly enough" >&2
  i=$((i + 1))
done"#;

/// Every message on IN delivered once, committed, and none moved to the backout queue.
fn assert_each_delivered_once(server: &FakeQmProcess, dir: &Dir, n: usize) {
    assert_eq!(server.depth("IN"), 0);
    assert_eq!(
        server.depth("IN.BACKOUT"),
        0,
        "a healthy delivery was failed until it was moved aside"
    );
    let delivered = dir.read("delivered");
    let lines: Vec<serde_json::Value> = delivered
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), n, "each message once:\n{delivered}");
    assert!(lines.iter().all(|m| m["backout_count"] == 0), "{delivered}");
}

#[test]
fn handler_output_never_fails_a_delivery_when_stderr_is_closed() {
    let server = FakeQmProcess::start(QM);
    put(&server, 5);
    let dir = Dir::new("closed-stderr");
    let config = dir.exec_config(NOISY, 30_000);
    // Whatever read mqpilot's stderr has gone before the run starts.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut poll = Poll::start(&server, &dir, &config, &["--until-empty"], writer.into());
    assert_eq!(poll.exit().code(), Some(0));
    assert_each_delivered_once(&server, &dir, 5);
}

#[test]
fn handler_output_never_fails_a_delivery_when_nobody_reads_stderr() {
    let server = FakeQmProcess::start(QM);
    put(&server, 5);
    let dir = Dir::new("stalled-stderr");
    // A handler blocked on a full stderr would outlive this timeout and be killed.
    let config = dir.exec_config(NOISY, 10_000);
    let (_unread, writer) = std::io::pipe().expect("pipe");
    let mut poll = Poll::start(&server, &dir, &config, &["--until-empty"], writer.into());
    // And the summary, which nobody reads either, does not keep it from exiting.
    assert_eq!(poll.exit().code(), Some(0));
    assert_each_delivered_once(&server, &dir, 5);
}

/// A pipe whose buffer is already full, and its read end (never read).
fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    use std::os::fd::AsRawFd as _;
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let fd = writer.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor this function owns; only O_NONBLOCK changes.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == 0);
    let chunk = [b'x'; 4096];
    loop {
        match writer.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // Blocking again: mqpilot gets the pipe as a stalled reader leaves it.
    assert!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } == 0);
    (reader, writer)
}

#[test]
fn sigterm_ends_mqpilot_whose_stderr_is_full() {
    let server = FakeQmProcess::start(QM);
    put(&server, 3);
    let dir = Dir::new("full-stderr");
    let config = dir.exec_config(r#"echo $$ > pid; cat >> delivered; echo "handled" >&2"#, 30_000);
    let (_unread, writer) = full_pipe();
    let mut poll = Poll::start(&server, &dir, &config, &[], writer.into());
    until("the messages to be delivered", || {
        dir.read("delivered").lines().count() == 3
    });
    until("the batch to be committed", || server.depth("IN") == 0);
    poll.signal("TERM");
    assert_eq!(poll.exit().code(), Some(0), "the drain ends as asked");
}

#[test]
fn a_handler_dies_with_mqpilot_killed_by_sigkill() {
    dies_with_mqpilot_killed_by_sigkill("sigkill", "echo $$ > pid; exec sleep 600");
}

/// Regression: only the handler itself got the parent-death signal, so what it started (a
/// shell script's commands) outlived a `kill -9` of mqpilot and went on with messages MQ had
/// backed out for another worker. Its whole process group dies now.
#[test]
fn regression_what_a_handler_started_dies_with_mqpilot_killed_by_sigkill() {
    // No `exec`: the shell waits for its child, as a handler script's commands run.
    dies_with_mqpilot_killed_by_sigkill("sigkill-group", "sleep 600 & echo $! > pid; wait");
}

/// Runs `script` (which writes the pid to watch to `pid`) as the handler of one message,
/// kills mqpilot with SIGKILL, and waits for that process to die and for MQ to back the
/// batch out when the connection goes.
fn dies_with_mqpilot_killed_by_sigkill(name: &str, script: &str) {
    let server = FakeQmProcess::start(QM);
    put(&server, 1);
    let dir = Dir::new(name);
    let config = dir.exec_config(script, 600_000);
    let mut poll = Poll::start(&server, &dir, &config, &[], Stdio::null());
    let watched = handler_pid(&dir);
    let _reap = Reap(watched);
    assert!(alive(watched));
    poll.signal("KILL");
    poll.exit();
    until("the handler's process to die with mqpilot", || !alive(watched));
    until("the message to be back on IN", || {
        server
            .admin()
            .browse("IN")
            .expect("browse")
            .iter()
            .any(|m| m.state == "visible" && m.backout_count == 1)
    });
}

#[test]
fn regression_a_sigterm_that_also_reaches_the_guard_lets_the_handler_finish() {
    let server = FakeQmProcess::start(QM);
    put(&server, 2);
    let dir = Dir::new("guard-term");
    let config = dir.exec_config(
        "trap 'echo caught >> trapped' TERM; echo $$ > pid; cat >> delivered; \
         i=0; while [ $i -lt 100 ] && [ ! -s trapped ]; do sleep 0.1; i=$((i+1)); done",
        30_000,
    );
    let mut poll = Poll::start(&server, &dir, &config, &[], Stdio::null());
    let handler = handler_pid(&dir);
    let _reap = Reap(handler);
    let guard = parent_of(handler);
    assert_ne!(guard, poll.0.id(), "the handler runs under a guard");
    let ok = Command::new("kill")
        .args(["-s", "TERM", &guard.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -s TERM {guard} failed");
    poll.signal("TERM");
    assert_eq!(poll.exit().code(), Some(0));
    assert_eq!(dir.read("trapped").trim(), "caught", "the signal reached the command");
    assert_eq!(server.depth("IN"), 0, "the batch in flight was committed");
    assert_eq!(dir.read("delivered").lines().count(), 2);
}

/// The parent of `pid`, from `/proc`.
#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat fields");
    rest.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("ppid")
}

#[test]
fn sighup_drains_like_sigterm() {
    let server = FakeQmProcess::start(QM);
    put(&server, 2);
    let dir = Dir::new("sighup");
    // The handler is still running when the signal comes; it finishes, and its batch commits.
    let config = dir.exec_config("echo $$ > pid; cat >> delivered; sleep 1", 30_000);
    let mut poll = Poll::start(&server, &dir, &config, &[], Stdio::null());
    let handler = handler_pid(&dir);
    let _reap = Reap(handler);
    poll.signal("HUP");
    assert_eq!(poll.exit().code(), Some(0));
    assert_eq!(server.depth("IN"), 0, "the batch in flight was committed");
    assert_eq!(dir.read("delivered").lines().count(), 2);
}

#[test]
fn a_sighup_ignored_when_mqpilot_starts_stays_ignored_as_under_nohup() {
    use std::os::unix::process::CommandExt as _;
    let server = FakeQmProcess::start(QM);
    put(&server, 1);
    let dir = Dir::new("nohup");
    let config = dir.exec_config("cat >> delivered", 30_000);
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    // SAFETY: runs in the forked child before exec, and only calls signal(2), which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut poll = Poll::start_as(command, &server, &dir, &config, &[], Stdio::null());
    until("the first message to be delivered", || {
        dir.read("delivered").lines().count() == 1
    });
    poll.signal("HUP");
    // The run goes on: a message put after the SIGHUP is delivered too.
    put(&server, 1);
    until("the message put after SIGHUP to be delivered", || {
        assert!(
            matches!(poll.0.try_wait(), Ok(None)),
            "mqpilot ended on an ignored SIGHUP"
        );
        dir.read("delivered").lines().count() == 2
    });
    poll.signal("TERM");
    assert_eq!(poll.exit().code(), Some(0));
}

#[test]
fn the_shutdown_timeout_kills_a_handler_that_never_ends_and_its_batch_is_backed_out() {
    let server = FakeQmProcess::start(QM);
    put(&server, 1);
    let dir = Dir::new("shutdown-timeout");
    let config = dir.exec_config("echo $$ > pid; exec sleep 600", 600_000);
    let mut poll = Poll::start(&server, &dir, &config, &["--shutdown-timeout", "1"], Stdio::null());
    let handler = handler_pid(&dir);
    let _reap = Reap(handler);
    poll.signal("TERM");
    assert_eq!(poll.exit().code(), Some(130));
    until("the handler to be killed", || !alive(handler));
    until("the message to be back on IN with its backout count raised", || {
        let on_in = server.admin().browse("IN").expect("browse");
        on_in.len() == 1 && on_in[0].state == "visible" && on_in[0].backout_count == 1
    });
}

#[test]
fn a_shutdown_timeout_of_0_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args(["poll", "--fake", "--shutdown-timeout", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("run mqpilot");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--shutdown-timeout"), "{stderr}");
}

#[test]
fn an_exit_at_once_says_how_many_messages_received_without_syncpoint_it_loses() {
    let server = FakeQmProcess::start(QM);
    put(&server, 3);
    let dir = Dir::new("no-syncpoint-exit");
    let command = serde_json::to_string(&["sh", "-c", "echo $$ > pid; exec sleep 600"]).expect("json");
    let config = dir.path("worker.toml");
    std::fs::write(
        &config,
        format!(
            "[[queue]]\nname = \"IN\"\nreceive = \"no-syncpoint\"\nbatch = 10\n[queue.sink]\ntype = \"exec\"\n\
             command = {command}\ntimeout_ms = 600000\n"
        ),
    )
    .expect("write config");
    let stderr = std::fs::File::create(dir.path("stderr")).expect("stderr file");
    let mut poll = Poll::start(&server, &dir, &config, &["--shutdown-timeout", "1"], stderr.into());
    let handler = handler_pid(&dir);
    let _reap = Reap(handler);
    poll.signal("TERM");
    let code = poll.exit().code();
    let said = dir.read("stderr");
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains("up to 3 messages received without syncpoint and not yet delivered are LOST (IN 3)"),
        "{said}"
    );
    assert_eq!(
        server.depth("IN"),
        0,
        "got without syncpoint: MQ has nothing to back out"
    );
}

/// Polls 2 messages on IN under syncpoint to a handler that never ends, then a SIGTERM with
/// `--shutdown-timeout 1` (and `extra` flags): the exit code and what was said on stderr.
fn exit_at_once_with_a_stuck_handler(name: &str, extra: &[&str]) -> (Option<i32>, String) {
    let server = FakeQmProcess::start(QM);
    put(&server, 2);
    let dir = Dir::new(name);
    let config = dir.exec_config("echo $$ > pid; exec sleep 600", 600_000);
    let stderr = std::fs::File::create(dir.path("stderr")).expect("stderr file");
    let flags = [&["--shutdown-timeout", "1"][..], extra].concat();
    let mut poll = Poll::start(&server, &dir, &config, &flags, stderr.into());
    let _reap = Reap(handler_pid(&dir));
    poll.signal("TERM");
    let code = poll.exit().code();
    (code, dir.read("stderr"))
}

#[test]
fn an_exit_at_once_under_syncpoint_claims_no_loss() {
    let (code, said) = exit_at_once_with_a_stuck_handler("syncpoint-exit", &[]);
    assert_eq!(code, Some(130), "{said}");
    assert!(said.contains("exiting now; MQ backs out uncommitted work\n"), "{said}");
    assert!(!said.contains("LOST"), "{said}");
}

/// Regression: an exit at once (a second signal, `--shutdown-timeout`) printed no summary,
/// although one is printed at exit: it now prints the counts so far, before exiting 130.
#[test]
fn regression_an_exit_at_once_prints_the_summary_so_far() {
    let (code, said) = exit_at_once_with_a_stuck_handler("summary-at-once", &[]);
    assert_eq!(code, Some(130), "{said}");
    let summary = said
        .split_once("exiting now; MQ backs out uncommitted work\n")
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("no exit message:\n{said}"));
    let lines: Vec<&str> = summary.lines().take(4).collect();
    assert_eq!(lines[0], "mqpilot: summary at exit (counted so far)", "{said}");
    // The killed handler's batch may or may not be counted as backed out yet.
    assert!(lines[1].starts_with("  IN: received 2, delivered 0, "), "{said}");
    assert!(lines[2].starts_with("  connection 0: peak handles "), "{said}");
    assert!(lines[3].starts_with("  pool: 1 connects, 0 reconnects"), "{said}");
}

/// Under `--log-format json` an exit at once says so in one event and its summary so far in
/// the next, with the same one write keeping anything from landing in between.
#[test]
fn under_log_format_json_an_exit_at_once_is_an_event_followed_by_the_summary_so_far() {
    let (code, said) = exit_at_once_with_a_stuck_handler("summary-at-once-json", &["--log-format", "json"]);
    assert_eq!(code, Some(130), "{said}");
    let events: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{said}")))
        .collect();
    let exit = events
        .iter()
        .position(|e| {
            e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("exiting now; MQ backs out uncommitted work"))
        })
        .unwrap_or_else(|| panic!("no exit event:\n{said}"));
    assert_eq!(events[exit]["level"], "WARN", "{said}");
    assert_eq!(events[exit]["fields"]["exit_code"], 130, "{said}");
    // A log store orders by time: the summary must not come before the exit that says it.
    assert!(
        events[exit]["timestamp"].as_str() <= events[exit + 1]["timestamp"].as_str(),
        "{said}"
    );
    let summary = &events.get(exit + 1).unwrap_or_else(|| panic!("no summary:\n{said}"))["fields"];
    assert_eq!(summary["message"], "summary at exit (counted so far)", "{said}");
    assert_eq!(summary["queues"][0]["queue"], "IN", "{said}");
    assert_eq!(summary["queues"][0]["received"], 2, "{said}");
    assert_eq!(summary["queues"][0]["delivered"], 0, "{said}");
    assert!(summary["queues"][0]["in_flight"].is_u64(), "{said}");
    assert_eq!(summary["connections"][0]["connection"], 0, "{said}");
    assert_eq!(summary["pool"]["connects"], 1, "{said}");
}
