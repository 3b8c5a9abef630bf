//! The `exec` sink: runs a command (no shell) per batch or per message and judges it by its exit.
//!
//! Exit status 0 is the only success. A non-zero exit, death by a signal, a program that cannot
//! be started or one that outlives the timeout (it is killed) fails the batch. The child's
//! stdout and stderr are pipes that mqpilot reads to the end and logs line by line, naming the
//! queue and the program, within bounds (see `output.rs`): a handler's output can never
//! corrupt a `stdout` sink's JSON lines, and whatever happens to mqpilot's own stderr (closed,
//! stalled, a terminal with `stty tostop`) never reaches the handler as an EPIPE, a SIGPIPE, a
//! blocked write or a SIGTTOU, so it cannot turn a delivery into a failure.
//!
//! Each run gets a process group of its own. A Ctrl-C at a terminal signals the terminal's
//! whole foreground group, which would kill a handler halfway through the batch the first
//! signal is supposed to let finish; in its own group the handler only hears from us. The group
//! is what a timeout kills (a `sh -c` handler's children with it), and what
//! [`kill_running_commands`] kills when the process exits at once; from then on no command
//! starts. On Linux the group is also killed if mqpilot dies without a chance to kill it
//! (SIGKILL, a crash): the process mqpilot starts is a small guard that leads the group, runs
//! the command in it and kills the group on mqpilot's death (see `guard.rs`).
//!
//! Error messages and logs name the program only, never its arguments, which may hold secrets.

use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use self::guard::die_with_parent;
use super::output::Output;
use super::stdout::json_lines;
use super::{Delivery, Per, Sink, SinkError, message_fields};
use crate::Error;
use crate::mq::message::Message;

mod guard;

/// Runs a program with the batch (JSON lines) or one message's payload on its stdin.
///
/// Per batch the environment carries `MQ_BATCH_SIZE` and `MQ_QUEUE`; per message it carries
/// `MQ_` plus each [`message_fields`] name (`MQ_MSG_ID`, `MQ_CORREL_ID`, ...). The rest of the
/// environment is inherited.
#[derive(Debug, Clone)]
pub struct ExecSink {
    command: Vec<String>,
    per: Per,
    timeout: Duration,
    /// Variables the command must not inherit besides the MQ password ones: those that hold
    /// other sinks' secrets.
    hidden_env: Vec<String>,
}

/// The commands running now, and whether new ones may start.
struct Running {
    /// Process groups of the commands running now (each run leads its own group).
    groups: Vec<u32>,
    /// Set by [`kill_running_commands`]: no command starts after it.
    closed: bool,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    groups: Vec::new(),
    closed: false,
});

/// Kills every exec sink command running now, with whatever it started (SIGKILL to each
/// run's process group), and keeps any more from starting. For a process about to exit
/// without running destructors: the batches those commands were handling are uncommitted, so
/// MQ backs them out. Starting and listing a command happen under the same lock, so none can
/// start between the kill and the exit.
pub fn kill_running_commands() {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner).close();
}

impl Running {
    /// Kills the groups listed and starts no command from now on.
    fn close(&mut self) {
        self.closed = true;
        for &group in &self.groups {
            kill_group(group);
        }
    }

    /// Starts a command with `spawn` and lists its group (`group` of what `spawn` returned),
    /// unless closed: `None` then, and `spawn` is not called.
    fn start<C>(
        &mut self,
        spawn: impl FnOnce() -> io::Result<C>,
        group: impl Fn(&C) -> Option<u32>,
    ) -> Option<io::Result<C>> {
        if self.closed {
            return None;
        }
        let started = spawn();
        if let Some(id) = started.as_ref().ok().and_then(&group) {
            self.groups.push(id);
        }
        Some(started)
    }
}

/// SIGKILL to process group `group`; one that has already gone is no error.
fn kill_group(group: u32) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group. Groups
    // are only ever ones this process created (`process_group(0)` on spawn) and still owns.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// A running command's process group, listed in [`RUNNING`] while the command runs. Dropping
/// it kills the group, so a command cannot outlive the batch it was for.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        let Some(group) = self.0 else { return };
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.groups.retain(|&g| g != group);
        // Whatever the command left running in its group goes with it.
        kill_group(group);
    }
}

/// One run of the command: what goes on stdin and which variables are added.
struct Run {
    stdin: bytes::Bytes,
    env: Vec<(String, String)>,
    /// Which message(s) the run is for, for error messages.
    what: String,
    /// The queue the messages came from, for the logged output.
    queue: String,
}

/// Checks that `program` can be run as `Command::new` would find it: a path containing `/`
/// as it is (relative to the working directory), otherwise in a directory of `PATH` (or, with
/// no `PATH`, of `/bin:/usr/bin`).
fn find_program(program: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return if runnable(std::path::Path::new(program)) {
            Ok(())
        } else {
            Err(format!("cannot run {program}: not an executable file"))
        };
    }
    // With no PATH, the C library's exec searches its default, as spawning will.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    if std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))) {
        Ok(())
    } else {
        Err(format!("cannot run {program}: no executable of that name on PATH"))
    }
}

impl ExecSink {
    /// A sink running `command` (program, then arguments) once per batch or per message; a run
    /// still going after `timeout` is killed and fails the batch.
    ///
    /// # Errors
    ///
    /// [`Error::Options`] when `command` is empty, or its program is not an executable file
    /// (a path with a `/` as it is, else on `PATH`): a typo would otherwise fail every batch
    /// until the queue had gone to its backout queue.
    pub fn new(command: Vec<String>, per: Per, timeout: Duration) -> Result<Self, Error> {
        let problem = match command.first().filter(|program| !program.is_empty()) {
            None => Some("names no program".to_owned()),
            Some(program) => find_program(program).err(),
        };
        if let Some(message) = problem {
            return Err(Error::Options {
                source_name: "sink.command".to_owned(),
                message,
            });
        }
        Ok(Self {
            command,
            per,
            timeout,
            hidden_env: Vec::new(),
        })
    }

    /// Also keeps these environment variables (secrets of other sinks) from the command.
    #[must_use]
    pub fn hiding_env(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.hidden_env.extend(names);
        self
    }

    /// The runs a batch needs, in order.
    fn runs(&self, batch: &[Message]) -> Vec<Run> {
        match self.per {
            Per::Batch => vec![Run {
                stdin: json_lines(batch).into(),
                env: vec![
                    ("MQ_BATCH_SIZE".to_owned(), batch.len().to_string()),
                    (
                        "MQ_QUEUE".to_owned(),
                        batch.first().map(|m| m.queue.to_string()).unwrap_or_default(),
                    ),
                ],
                what: format!("a batch of {}", batch.len()),
                queue: batch.first().map(|m| m.queue.to_string()).unwrap_or_default(),
            }],
            Per::Message => batch
                .iter()
                .map(|m| Run {
                    stdin: m.data.clone(),
                    env: message_fields(m)
                        .into_iter()
                        .map(|(suffix, value)| (format!("MQ_{suffix}"), value))
                        .collect(),
                    what: format!("message {}", m.msg_id_hex()),
                    queue: m.queue.to_string(),
                })
                .collect(),
        }
    }

    /// Starts the command with stdin, stdout and stderr piped, in a process group of its own
    /// that is listed in [`RUNNING`]; refuses once [`kill_running_commands`] has run. The MQ
    /// password variables are not passed on: the command has no business with them.
    fn spawn(&self, env: Vec<(String, String)>) -> Result<(Child, Group), SinkError> {
        let program = &self.command[0];
        let mut command = Command::new(program);
        for name in self
            .hidden_env
            .iter()
            .map(String::as_str)
            .chain(["MQ_PASSWORD", "MQ_PASSWORD_FILE"])
        {
            command.env_remove(name);
        }
        command
            .args(&self.command[1..])
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let started = RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .start(|| command.spawn(), Child::id);
        let child = started
            .ok_or_else(|| fail(format!("{self} not started: mqpilot is exiting")))?
            .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
        let group = Group(child.id());
        Ok((child, group))
    }

    /// Runs the command once and waits for it, killing it at the timeout.
    async fn run(&self, run: Run) -> Result<(), SinkError> {
        let (mut child, group) = self.spawn(run.env)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let program = &self.command[0];
        let output = Output::read(&mut child, &run.queue, program);
        let input = run.stdin;
        let feed = async move {
            let written = stdin.write_all(&input).await;
            // Dropping stdin closes it, so the command sees end of input.
            drop(stdin);
            written
        };
        let what = run.what;
        let finished = tokio::time::timeout(self.timeout, async { tokio::join!(feed, child.wait()) }).await;
        let Ok((written, status)) = finished else {
            // Kill its group and reap it; if it exited in the meantime there is nothing left
            // to kill. What it wrote until then is logged first.
            drop(group);
            let _ = child.kill().await;
            output.finish().await;
            let ms = self.timeout.as_millis();
            return Err(fail(format!(
                "{self} timed out after {ms} ms for {what} and was killed"
            )));
        };
        // Its last lines are logged before its verdict; its group is killed after that.
        output.finish().await;
        let status = status.map_err(|e| fail(format!("waiting for {self} ({what}): {e}")))?;
        if !status.success() {
            return Err(fail(format!("{self} {} for {what}", describe(status))));
        }
        // The exit status is the command's verdict: one that exits 0 without reading all of
        // its input (a closed pipe) has chosen to. Any other write error is ours, and fails.
        match written {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(fail(format!("writing stdin of {self} ({what}): {e}")))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for ExecSink {
    /// The program, for error messages; never its arguments, which may hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.command[0])
    }
}

impl Sink for ExecSink {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        Box::pin(async move {
            for run in self.runs(batch) {
                self.run(run).await?;
            }
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "exec"
    }
}

/// How a command ended, e.g. `exited with status 3` or `was killed by signal 9`.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended with {status}")
}

fn fail(message: String) -> SinkError {
    SinkError::retry("exec", message)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn message(data: &[u8], msg_id: u8) -> Message {
        let mut md = libmqm_default::MQMD_DEFAULT;
        md.MsgId[0] = msg_id;
        md.BackoutCount = 1;
        Message::new("IN.Q", md, data.to_vec())
    }

    /// A fresh path in the temp directory for one test's output.
    fn scratch(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("mqpilot-exec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// `sh -c script` with `$1` set to `arg`.
    fn sh(script: &str, arg: &std::path::Path, per: Per) -> ExecSink {
        let command = ["sh", "-c", script, "sh", arg.to_str().unwrap()];
        ExecSink::new(command.map(String::from).to_vec(), per, Duration::from_secs(10)).unwrap()
    }

    #[tokio::test]
    async fn per_batch_gets_json_lines_and_batch_variables() {
        let out = scratch("batch");
        let sink = sh(
            r#"cat > "$1"; echo "$MQ_BATCH_SIZE $MQ_QUEUE" >> "$1""#,
            &out,
            Per::Batch,
        );
        sink.deliver(&[message(b"one", 1), message(b"two", 2)]).await.unwrap();

        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(first["payload"], "one");
        assert_eq!(second["payload"], "two");
        assert_eq!(lines[2], "2 IN.Q");
        let _ = std::fs::remove_file(out);
    }

    #[tokio::test]
    async fn per_message_gets_raw_payload_and_mqmd_variables_in_order() {
        let out = scratch("message");
        let script = r#"cat >> "$1"; echo " $MQ_MSG_ID $MQ_BACKOUT_COUNT $MQ_QUEUE $MQ_PERSISTENT" >> "$1""#;
        let sink = sh(script, &out, Per::Message);
        let batch = [message(b"alpha", 0xa1), message(b"beta", 0xb2)];
        sink.deliver(&batch).await.unwrap();

        let text = std::fs::read_to_string(&out).unwrap();
        let expected = format!(
            "alpha {} 1 IN.Q false\nbeta {} 1 IN.Q false\n",
            batch[0].msg_id_hex(),
            batch[1].msg_id_hex()
        );
        assert_eq!(text, expected);
        let _ = std::fs::remove_file(out);
    }

    #[tokio::test]
    async fn a_non_zero_exit_fails_and_stops_the_batch() {
        let out = scratch("exit");
        // The first run records itself and fails; a second run would record itself too.
        let sink = sh(r#"echo run >> "$1"; exit 3"#, &out, Per::Message);
        let err = sink.deliver(&[message(b"a", 1), message(b"b", 2)]).await.unwrap_err();
        assert_eq!(err.sink, "exec");
        assert!(err.message.contains("exited with status 3"), "{err}");
        assert!(err.message.contains("`sh`"), "{err}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "run\n");
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn a_program_that_cannot_run_is_refused_when_the_sink_is_built() {
        let refused = |program: &str| {
            ExecSink::new(vec![program.to_owned()], Per::Batch, Duration::from_secs(5))
                .unwrap_err()
                .to_string()
        };
        let e = refused("/nonexistent/mqpilot-handler");
        assert!(
            e.contains("cannot run /nonexistent/mqpilot-handler: not an executable file"),
            "{e}"
        );
        let e = refused("mqpilot-no-such-handler");
        assert!(e.contains("no executable of that name on PATH"), "{e}");
        // Neither a file without an execute bit nor a directory is a program.
        for path in [
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            env!("CARGO_MANIFEST_DIR"),
        ] {
            assert!(refused(path).contains("not an executable file"), "{path}");
        }
        assert!(ExecSink::new(vec!["sh".into()], Per::Batch, Duration::from_secs(5)).is_ok());
    }

    #[tokio::test]
    async fn a_program_gone_after_the_start_fails_the_batch_naming_it() {
        let program = std::env::temp_dir().join(format!("mqpilot-handler-{}", std::process::id()));
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let name = program.to_str().unwrap().to_owned();
        let sink = ExecSink::new(vec![name.clone()], Per::Batch, Duration::from_secs(5)).unwrap();
        std::fs::remove_file(&program).unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(err.message.contains(&name), "{err}");
        assert!(err.message.contains("cannot run"), "{err}");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_and_fails() {
        let command = ["sleep", "5"].map(String::from).to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_millis(200)).unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(err.message.contains("timed out after 200 ms"), "{err}");
        assert!(err.message.contains("`sleep`"), "{err}");
    }

    #[tokio::test]
    async fn a_command_killed_by_a_signal_fails() {
        let command = ["sh", "-c", "kill -9 $$"].map(String::from).to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_secs(5)).unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(err.message.contains("killed by signal 9"), "{err}");
    }

    #[tokio::test]
    async fn exit_zero_without_reading_stdin_is_success() {
        let command = ["true"].map(String::from).to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_secs(5)).unwrap();
        let big = vec![b'x'; 1 << 20];
        let result = sink.deliver(&[message(&big, 1)]).await;
        assert!(result.is_ok(), "a command may ignore its stdin: {result:?}");
    }

    #[tokio::test]
    async fn hidden_variables_do_not_reach_the_command() {
        // HOME stands in for a secret another sink reads: it is set wherever tests run.
        assert!(std::env::var_os("HOME").is_some());
        let command = ["sh", "-c", "test -z \"$HOME\""].map(String::from).to_vec();
        let shown = ExecSink::new(command.clone(), Per::Batch, Duration::from_secs(5)).unwrap();
        assert!(shown.deliver(&[message(b"a", 1)]).await.is_err());
        let hidden = ExecSink::new(command, Per::Batch, Duration::from_secs(5))
            .unwrap()
            .hiding_env(["HOME".to_owned()]);
        let result = hidden.deliver(&[message(b"a", 1)]).await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn errors_name_the_program_but_never_its_arguments() {
        let command = ["sh", "-c", "exit 3", "sh", "--token=s3cret"]
            .map(String::from)
            .to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_secs(5)).unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(err.message.contains("`sh` exited with status 3"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let command = ["sleep", "5", "s3cret"].map(String::from).to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_millis(100)).unwrap();
        let err = sink.deliver(&[message(b"a", 1)]).await.unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn no_command_starts_once_running_ones_are_killed() {
        // A list of its own: closing the process-wide one would stop the other tests' runs.
        let mut running = Running {
            groups: Vec::new(),
            closed: false,
        };
        let started = running.start(|| Ok(7_u32), |&id| Some(id));
        assert!(matches!(started, Some(Ok(7))));
        assert_eq!(running.groups, [7]);
        running.groups.clear();
        running.close();
        let started = running.start(|| -> io::Result<u32> { panic!("started after close") }, |&id| Some(id));
        assert!(started.is_none());
    }

    #[tokio::test]
    async fn a_command_with_much_output_on_both_streams_succeeds() {
        // Far more than a pipe holds, on both streams: the readers keep up to the end.
        let script = "head -c 1000000 /dev/zero | tr '\\0' 'o'; head -c 1000000 /dev/zero | tr '\\0' 'e' >&2";
        let command = ["sh", "-c", script].map(String::from).to_vec();
        let sink = ExecSink::new(command, Per::Batch, Duration::from_secs(20)).unwrap();
        let result = sink.deliver(&[message(b"a", 1)]).await;
        assert!(result.is_ok(), "{result:?}");
    }

    /// Delivers one message through `sh -c script`, whose `setsid` daemon (started with
    /// [`DAEMON`]) leaves the command's process group, so it outlives the group's kill, and
    /// keeps the command's stdout and stderr open; then kills the daemon. The delivery's
    /// result, and how many more tasks are alive than before it.
    async fn deliver_past_a_daemon(name: &str, script: &str, timeout: Duration) -> (Result<(), SinkError>, usize) {
        let pid_file = scratch(name);
        let command = ["sh", "-c", script, "sh", pid_file.to_str().unwrap()].map(String::from);
        let sink = ExecSink::new(command.to_vec(), Per::Batch, timeout).unwrap();
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        // The daemon lives 60 s: a delivery that waits for it is cut short here.
        let delivered = tokio::time::timeout(Duration::from_secs(30), sink.deliver(&[message(b"a", 1)])).await;
        let left = metrics.num_alive_tasks().saturating_sub(before);
        let daemon = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let _ = std::fs::remove_file(pid_file);
        let pid: libc::pid_t = daemon.trim().parse().expect("the daemon's pid");
        // SAFETY: kill(2) with plain integers, on the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        (delivered.expect("the delivery waited for the daemon"), left)
    }

    /// Starts the daemon of [`deliver_past_a_daemon`] in the background.
    const DAEMON: &str = r#"setsid sh -c 'echo $$ > "$1"; exec sleep 60' sh "$1" &"#;

    #[tokio::test]
    async fn output_readers_end_with_the_grace_when_a_daemon_holds_the_pipes() {
        let script = format!("{DAEMON} echo started");
        let (delivered, left) = deliver_past_a_daemon("daemon-pid", &script, Duration::from_secs(10)).await;
        assert!(delivered.is_ok(), "{delivered:?}");
        assert_eq!(left, 0, "the output readers outlived the delivery");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_leaves_no_output_reader_behind_a_daemon() {
        let script = format!("{DAEMON} exec sleep 60");
        let (delivered, left) = deliver_past_a_daemon("daemon-timeout-pid", &script, Duration::from_millis(300)).await;
        assert!(delivered.unwrap_err().message.contains("timed out"));
        assert_eq!(left, 0, "the output readers outlived the delivery");
    }

    /// Waits (bounded) for `path` to exist.
    async fn until_exists(path: &std::path::Path) {
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while !path.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        waited
            .await
            .unwrap_or_else(|_| panic!("{} never appeared", path.display()));
    }

    /// The guard that runs a command holds none of mqpilot's descriptors: not the stdin of a
    /// command started before it, which would then never see the end of its input while
    /// the later command runs (nor the socket on which the spawn learns that the command
    /// started, which would block it: two threads, so that the timeouts still fire).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_sees_the_end_of_its_input_while_a_later_one_runs() {
        let dir = scratch("guard-fds");
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str| dir.join(name);
        // The first command holds off reading its input (more than a pipe holds, so mqpilot
        // is still writing it) until the second one has started.
        let first = sh(
            r#"touch "$1/first"; while [ ! -e "$1/go" ]; do sleep 0.01; done; cat > /dev/null"#,
            &dir,
            Per::Batch,
        );
        let second = sh(r#"touch "$1/second"; exec sleep 60"#, &dir, Per::Batch);
        let big = vec![b'x'; 1 << 20];
        let reading = tokio::spawn(async move { first.deliver(&[message(&big, 1)]).await });
        until_exists(&file("first")).await;
        let running = tokio::spawn(async move { second.deliver(&[message(b"b", 2)]).await });
        until_exists(&file("second")).await;
        std::fs::write(file("go"), "").unwrap();
        let read = tokio::time::timeout(Duration::from_secs(30), reading).await;
        running.abort();
        let _ = std::fs::remove_dir_all(&dir);
        let read = read.expect("the first command never saw the end of its input");
        assert!(matches!(read, Ok(Ok(()))), "{read:?}");
    }

    #[test]
    fn an_empty_command_is_rejected() {
        assert!(ExecSink::new(Vec::new(), Per::Batch, Duration::from_secs(1)).is_err());
        assert!(ExecSink::new(vec![String::new()], Per::Batch, Duration::from_secs(1)).is_err());
    }
}
