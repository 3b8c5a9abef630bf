//! The `mqpilot` binary end to end: exit codes, JSON lines on stdout, messages on stderr.
//!
//! Every test runs the real binary as a child process on the embedded fake queue manager (or,
//! once, without it), with the MQ variables of the machine removed so results do not depend on
//! where the tests run. A run that outlives `RUN_DEADLINE` is killed and fails its test.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a run may take before it is killed; the runs here take well under a second.
const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// Variables that would change what the binary connects to or authenticates with.
pub const MACHINE_VARS: [&str; 7] = [
    "MQSERVER",
    "MQCCDTURL",
    "MQ_PASSWORD",
    "MQ_PASSWORD_FILE",
    "MQ_LIB",
    "MQ_INSTALLATION_PATH",
    "RUST_LOG",
];

/// The demo drain: poll DEMO.IN until it is empty, with short waits.
const DEMO_UNTIL_EMPTY: [&str; 5] = ["poll", "--fake", "--until-empty", "--wait-ms", "50"];

/// How a run of the binary ended.
pub struct Run {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics, showing stderr, unless the run exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stderr:\n{}\nstdout (first 500 bytes):\n{}",
            self.stderr,
            self.stdout.chars().take(500).collect::<String>()
        );
        self
    }

    /// Panics unless stderr contains every one of `parts`.
    pub fn stderr_has(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(self.stderr.contains(part), "stderr lacks {part:?}:\n{}", self.stderr);
        }
        self
    }

    /// Panics unless stderr starts with `prefix`.
    pub fn stderr_starts(&self, prefix: &str) -> &Self {
        assert!(
            self.stderr.starts_with(prefix),
            "stderr does not start with {prefix:?}:\n{}",
            self.stderr
        );
        self
    }

    /// The words of stderr that start with `prefix` (`batch-size=5`), in order: an exec
    /// command's output is logged, a log line per line it writes.
    pub fn logged_words(&self, prefix: &str) -> Vec<&str> {
        (self.stderr.lines())
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with(prefix)))
            .collect()
    }

    pub fn stdout_empty(&self) -> &Self {
        assert!(self.stdout.is_empty(), "stdout is not empty:\n{}", self.stdout);
        self
    }
}

/// Runs `mqpilot args` with the machine's MQ variables removed.
fn mqpilot(args: &[&str]) -> Run {
    mqpilot_env(args, &[])
}

/// Runs `mqpilot args` with the machine's MQ variables removed and `env` added.
pub fn mqpilot_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(args);
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    run_within(command, RUN_DEADLINE)
}

/// Runs `command` with stdin closed, killing it after `deadline`.
pub fn run_within(mut command: Command, deadline: Duration) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mqpilot");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text).expect("read mqpilot's output");
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mqpilot") {
            break status;
        }
        if started.elapsed() > deadline {
            child.kill().expect("kill mqpilot");
            child.wait().expect("reap mqpilot");
            let stderr = stderr.join().expect("stderr reader");
            panic!("mqpilot still running after {deadline:?}, killed; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// A running mqpilot that is killed if the test fails before it exits, so a failing test
/// leaves no poller running behind it.
struct Running(std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Running {
    /// Sends `signal` to the process (or to its whole process group, as a terminal does).
    fn signal(&self, signal: &str, group: bool) {
        let pid = self.0.id();
        let target = if group { format!("-{pid}") } else { pid.to_string() };
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), "--", &target])
                .status()
                .expect("kill")
                .success()
        );
    }

    /// Waits for the exit, failing the test at `deadline`.
    fn exit_by(&mut self, deadline: Instant) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "mqpilot did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A child's stderr, read line by line on a thread as it arrives.
struct StderrLines {
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<String>,
}

impl StderrLines {
    fn read(stderr: std::process::ChildStderr) -> Self {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = std::thread::spawn({
            let seen = std::sync::Arc::clone(&seen);
            move || {
                use std::io::BufRead as _;
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut text = seen.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
                seen.lock().unwrap().clone()
            }
        });
        Self { seen, reader }
    }

    /// What has arrived so far.
    fn so_far(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    /// Everything, once the stream has closed (which anything the process left running
    /// would hold open).
    fn all(self) -> String {
        self.reader.join().expect("stderr reader")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A file under the temp directory, unique to this process and test, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mqpilot-cli-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("temp path is UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Parses stdout's JSON lines, checking the fields every line carries; returns each payload's
/// `order` number.
fn demo_orders(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(message["queue"], "DEMO.IN", "{line}");
            let msg_id = message["msg_id"].as_str().unwrap_or_else(|| panic!("msg_id: {line}"));
            assert!(
                msg_id.len() == 48 && msg_id.bytes().all(|b| b.is_ascii_hexdigit()),
                "msg_id is not 48 hex digits: {line}"
            );
            let payload = message["payload"].as_str().unwrap_or_else(|| panic!("payload: {line}"));
            let body: Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {line}"));
            body["order"].as_u64().unwrap_or_else(|| panic!("order: {line}"))
        })
        .collect()
}

/// Every 100th demo message (order 1099, 1199, ...) was backed out three times already.
fn is_demo_poison(order: u64) -> bool {
    order % 100 == 99
}

#[test]
fn demo_until_empty_prints_990_json_lines_and_moves_10_poison_messages() {
    let run = mqpilot(&DEMO_UNTIL_EMPTY);
    run.expect_code(0).stderr_has(&[
        "DEMO.IN: received 1000, delivered 990, backed out 0, poisoned 10, sink failures 0",
        "fake queue manager depths: DEMO.IN 0, DEMO.BACKOUT 10, DEMO.OUT 0",
    ]);
    let orders = demo_orders(&run.stdout);
    assert_eq!(orders.len(), 990);
    let printed: BTreeSet<u64> = orders.into_iter().collect();
    let expected: BTreeSet<u64> = (1000..2000).filter(|&o| !is_demo_poison(o)).collect();
    assert_eq!(printed, expected, "each good message exactly once, no poison");
    // Each poison message is logged with where it went and its id, to find it there.
    let moved: BTreeSet<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("moved poison messages to the backout queue"))
        .map(|l| {
            assert!(l.contains("queue=DEMO.IN backout_queue=DEMO.BACKOUT"), "{l}");
            l.split("msg_ids=").nth(1).unwrap_or_else(|| panic!("no msg_ids: {l}"))
        })
        .flat_map(|ids| ids.split(','))
        .collect();
    assert_eq!(moved.len(), 10, "{moved:?}");
    assert!(moved.iter().all(|id| id.len() == 48), "{moved:?}");
}

/// The numbers in `line`, in order ("received 5, delivered 3" gives 5, 3).
fn numbers_in(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The first line of `text` that contains `label`.
fn line_with<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

#[test]
fn a_closed_stdout_stops_the_run_with_nothing_moved_aside_or_lost() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    command
        .args(DEMO_UNTIL_EMPTY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Running(command.spawn().expect("start mqpilot"));
    let stderr = StderrLines::read(child.stderr.take().expect("stderr"));
    // `mqpilot poll ... | head -c 300`: the reader takes a little and goes.
    let mut stdout = child.stdout.take().expect("stdout");
    stdout.read_exact(&mut [0; 300]).expect("the first lines");
    drop(stdout);
    let status = child.exit_by(Instant::now() + RUN_DEADLINE);
    let stderr = stderr.all();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("standard output was closed"), "{stderr}");
    let [received, delivered, backed_out, poisoned, _] = numbers_in(line_with(&stderr, "DEMO.IN: received"))[..] else {
        panic!("{stderr}")
    };
    let [left, parked, _] = numbers_in(line_with(&stderr, "fake queue manager depths"))[..] else {
        panic!("{stderr}")
    };
    assert!(
        backed_out >= 1 && left > 0,
        "the batch after the close was backed out:\n{stderr}"
    );
    assert_eq!(parked, poisoned, "only messages that came poison went aside:\n{stderr}");
    assert_eq!(left + parked + delivered, 1000, "none lost:\n{stderr}");
    assert!(received < 1000, "the run did not go on:\n{stderr}");
    // The batch was backed out: the connection is sound, not lost and replaced.
    assert!(stderr.contains("  connection 0: peak handles"), "{stderr}");
    assert!(stderr.contains("  pool: 1 connects, 0 reconnects,"), "{stderr}");
}

#[test]
fn queue_sink_moves_990_messages_to_the_target_and_prints_nothing() {
    let run = mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--sink", "queue", "--to", "DEMO.OUT"]].concat());
    run.expect_code(0).stdout_empty().stderr_has(&[
        "DEMO.IN: received 1000, delivered 990, backed out 0, poisoned 10",
        "fake queue manager depths: DEMO.IN 0, DEMO.BACKOUT 10, DEMO.OUT 990",
    ]);
}

#[test]
fn max_messages_counts_poison_messages_as_received() {
    let run = mqpilot(&["poll", "--fake", "--max-messages", "100", "--wait-ms", "50"]);
    run.expect_code(0).stderr_has(&[
        "DEMO.IN: received 100, delivered 99, backed out 0, poisoned 1,",
        "fake queue manager depths: DEMO.IN 900, DEMO.BACKOUT 1, DEMO.OUT 0",
    ]);
    let orders = demo_orders(&run.stdout);
    let expected: Vec<u64> = (1000..1099).collect();
    assert_eq!(orders, expected, "the first 100 messages but the poison one, in order");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    mqpilot(&["poll", "--fake", "--no-such-flag"])
        .expect_code(2)
        .stdout_empty()
        .stderr_has(&["unexpected argument '--no-such-flag'"]);
}

#[test]
fn the_help_says_which_flags_apply_to_every_queue() {
    let run = mqpilot(&["poll", "--help"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("Messages per batch (1..=10000), for every queue (the --config file's too)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_flag_out_of_its_range_is_a_usage_error_naming_the_flag() {
    for (flag, value, why) in [
        ("--batch", "0", "0 is not in 1..=10000"),
        ("--workers", "0", "0 is not in 1..=64"),
        ("--wait-ms", "70000", "70000 is not in 0..=60000"),
        ("--connections", "0", "0 is not in 1..=1000"),
        ("--max-handles", "0", "must be at least 1"),
        // It would end the run having done nothing.
        ("--max-messages", "0", "must be at least 1"),
    ] {
        let expected = format!("error: invalid value '{value}' for '{flag} <");
        mqpilot(&["poll", "--fake", "--until-empty", flag, value])
            .expect_code(2)
            .stdout_empty()
            .stderr_starts(&expected)
            .stderr_has(&[why]);
    }
}

#[test]
fn an_mcp_flag_of_0_is_a_usage_error_naming_the_flag() {
    for (flag, why) in [
        ("--connections", "0 is not in 1..=1000"),
        ("--max-handles", "0 is not in 1.."),
        ("--max-in-flight", "0 is not in 1.."),
        ("--max-body-bytes", "0 is not in 1.."),
    ] {
        let expected = format!("error: invalid value '0' for '{flag} <");
        mqpilot(&["mcp", "--stdio", "--fake", flag, "0"])
            .expect_code(2)
            .stdout_empty()
            .stderr_starts(&expected)
            .stderr_has(&[why]);
    }
}

#[test]
fn flags_that_do_not_fit_together_are_a_usage_error_naming_the_flag() {
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--receive", "single", "--batch", "5"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --batch: is 5, but receive = \"single\" takes one message at a time");
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--queue", "DEMO.IN", "--queue", "DEMO.IN"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --queue: duplicate queue DEMO.IN");
}

#[test]
fn a_queue_sink_needs_a_target_other_than_the_queue() {
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--sink", "queue"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_has(&["the following required arguments were not provided", "--to <QUEUE>"]);
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--sink", "queue", "--to", "DEMO.IN"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --to: is the queue itself");
}

#[test]
fn to_alone_means_the_queue_sink_and_a_sink_flag_that_would_do_nothing_is_refused() {
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--to", "DEMO.OUT"]].concat())
        .expect_code(0)
        .stdout_empty()
        .stderr_has(&["fake queue manager depths: DEMO.IN 0, DEMO.BACKOUT 10, DEMO.OUT 990"]);
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--sink", "stdout", "--to", "DEMO.OUT"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --to: is the target of --sink queue, but --sink is stdout");
    let config = TempFile::new("worker-sink.toml", "[[queue]]\nname = \"DEMO.IN\"\n");
    for flags in [&["--to", "DEMO.OUT"][..], &["--sink", "stdout"]] {
        let run = mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--config", config.arg()], flags].concat());
        run.expect_code(2).stdout_empty().stderr_starts(&format!(
            "mqpilot: {}: sets the sink of queues given with --queue",
            flags[0]
        ));
    }
}

#[test]
fn an_unknown_key_in_the_config_file_names_file_line_column_and_field() {
    let config = TempFile::new("worker.toml", "[[queue]]\nname = \"DEMO.IN\"\nbacth = 5\n");
    let expected = format!(
        "mqpilot: {}:3:1: queue[0].bacth: unknown field `bacth`",
        config.path().display()
    );
    mqpilot(&["poll", "--fake", "--until-empty", "--config", config.arg()])
        .expect_code(2)
        .stdout_empty()
        .stderr_starts(&expected);
}

#[test]
fn a_missing_config_file_is_a_usage_error_naming_it() {
    let missing = std::env::temp_dir().join(format!("mqpilot-cli-{}-absent.toml", std::process::id()));
    let missing = missing.to_str().expect("temp path is UTF-8");
    mqpilot(&["poll", "--fake", "--until-empty", "--config", missing])
        .expect_code(2)
        .stdout_empty()
        .stderr_starts(&format!("mqpilot: cannot read {missing}"));
}

#[test]
fn an_unreadable_password_file_is_a_usage_error_naming_it() {
    let args = [&DEMO_UNTIL_EMPTY[..], &["--password-file", "/no/such/mq-password"]].concat();
    mqpilot(&[&args[..], &["--user", "app"]].concat())
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --password-file: cannot read /no/such/mq-password: ");
    // Without a user the file is not read: the missing user is reported first.
    mqpilot(&args)
        .expect_code(2)
        .stdout_empty()
        .stderr_starts("mqpilot: --password-file: a password is set but no user");
}

#[test]
fn a_connection_flag_that_breaks_a_limit_is_named() {
    let long_app = "a".repeat(29);
    let long_qmgr = "Q".repeat(49);
    for (flags, expected) in [
        (
            ["--application-name", long_app.as_str()],
            "mqpilot: --application-name: ",
        ),
        (["--qmgr", long_qmgr.as_str()], "mqpilot: --qmgr: "),
        (
            ["--cipher-spec", "ANY_TLS13"],
            "mqpilot: --cipher-spec: a cipher spec needs an explicit channel (--conn, connection.server or MQSERVER)",
        ),
    ] {
        mqpilot(&[&["poll", "--queue", "Q"][..], &flags].concat())
            .expect_code(2)
            .stderr_starts(expected);
    }
    // The demo's own channel is not a --conn: a CCDT replaces it.
    let run = mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--ccdt-url", "file:///no/such/ccdt.json"]].concat());
    assert!(!run.stderr.contains("--conn is set as well"), "{}", run.stderr);
    mqpilot(&[
        "poll",
        "--queue",
        "Q",
        "--conn",
        "C/TCP/h(1)",
        "--ccdt-url",
        "file:///c.json",
    ])
    .expect_code(2)
    .stderr_starts("mqpilot: --ccdt-url: --conn is set as well");
}

#[test]
fn an_unreadable_header_file_names_the_queue_and_the_header() {
    let config = TempFile::new(
        "http-header.toml",
        "[[queue]]\nname = \"DEMO.IN\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://127.0.0.1:1/in\"\n\
         headers = [{ name = \"Authorization\", value_file = \"/no/such/token\" }]\n",
    );
    mqpilot(&["poll", "--fake", "--until-empty", "--config", config.arg()])
        .expect_code(3)
        .stdout_empty()
        .stderr_starts(
            "mqpilot: cannot start: queue DEMO.IN: header Authorization: value_file: cannot read /no/such/token: ",
        );
}

#[test]
fn an_unknown_queue_fails_the_start_with_2085() {
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--queue", "NOPE"]].concat())
        .expect_code(3)
        .stdout_empty()
        .stderr_starts("mqpilot: cannot start: MQOPEN of NOPE failed: 2085 MQRC_UNKNOWN_OBJECT_NAME");
}

#[test]
fn an_unknown_sink_queue_fails_the_start_with_2085_naming_it_as_the_sink() {
    mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--sink", "queue", "--to", "NOPE.OUT"]].concat())
        .expect_code(3)
        .stdout_empty()
        .stderr_starts(
            "mqpilot: cannot start: MQOPEN of NOPE.OUT failed: 2085 MQRC_UNKNOWN_OBJECT_NAME \
             (the queue sink's target for DEMO.IN, from --to or sink.queue)",
        );
}

#[test]
fn an_exec_sink_whose_program_cannot_run_stops_the_start_before_any_message_moves() {
    // The second queue's sink is the bad one: it is checked before the first queue is used.
    let config = TempFile::new(
        "exec-typo.toml",
        "[[queue]]\nname = \"DEMO.IN\"\n\n[[queue]]\nname = \"DEMO.OUT\"\n[queue.sink]\ntype = \"exec\"\n\
         command = [\"./no-such-handlr.sh\"]\n",
    );
    mqpilot(&["poll", "--fake", "--until-empty", "--config", config.arg()])
        .expect_code(3)
        .stdout_empty()
        .stderr_starts(
            "mqpilot: cannot start: queue DEMO.OUT: sink.command: cannot run ./no-such-handlr.sh: not an executable file",
        );
}

#[test]
fn a_closed_stdout_refuses_the_stdout_sink_but_dev_null_is_a_choice() {
    let through_sh = |redirect: &str| {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("exec \"$0\" poll --fake --until-empty {redirect}"),
            env!("CARGO_BIN_EXE_mqpilot"),
        ]);
        run_within(command, RUN_DEADLINE)
    };
    // Closed, every write would succeed into nothing and the 990 messages be committed.
    through_sh(">&-").expect_code(3).stderr_starts(
        "mqpilot: cannot start: queue DEMO.IN: sink stdout: standard output is /dev/null opened read-write",
    );
    through_sh(">/dev/null").expect_code(0).stderr_has(&["delivered 990"]);
}

/// `poll` on the real path with `MQ_LIB` at `path` and no other MQ setting of this machine.
fn with_mq_lib(path: &str) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(["poll", "--queue", "Q", "--conn", "CH/TCP/localhost(1414)"]);
    for var in MACHINE_VARS.into_iter().chain(["LD_LIBRARY_PATH"]) {
        command.env_remove(var);
    }
    command.env("MQ_LIB", path);
    run_within(command, RUN_DEADLINE)
}

#[test]
fn without_the_ibm_library_the_real_path_names_the_paths_tried() {
    if Path::new("/opt/mqm/lib64/libmqm_r.so").exists() {
        eprintln!("skipped: the IBM MQ client is installed here, so it would be loaded");
        return;
    }
    with_mq_lib("/no/such/libmqm_r.so")
        .expect_code(3)
        .stdout_empty()
        .stderr_starts(
            "mqpilot: cannot load the IBM MQ client library \
             (tried: /no/such/libmqm_r.so (MQ_LIB: no such file), libmqm_r.so on LD_LIBRARY_PATH and the loader's path, \
             /opt/mqm/lib64/libmqm_r.so); \
             install the IBM MQ redistributable client",
        );
    // A file that is there but is no MQ client: its own error is the one shown, not the
    // last path's "no such file".
    let not_a_library = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    with_mq_lib(not_a_library).expect_code(3).stderr_has(&[
        &format!("tried: {not_a_library} (MQ_LIB: a file that does not load), "),
        &format!("Could not open library: {not_a_library}: invalid ELF header"),
    ]);
}

#[test]
fn regression_an_mq_lib_that_is_a_directory_or_missing_says_so_and_shows_its_own_error() {
    if Path::new("/opt/mqm/lib64/libmqm_r.so").exists() {
        eprintln!("skipped: the IBM MQ client is installed here, so it would be loaded");
        return;
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    let run = with_mq_lib(dir);
    run.expect_code(3).stdout_empty().stderr_starts(&format!(
        "mqpilot: cannot load the IBM MQ client library (tried: {dir} (MQ_LIB: a directory; \
         point MQ_LIB at the library file itself, e.g. /opt/mqm/lib64/libmqm_r.so), "
    ));
    assert!(
        run.stderr.contains(&format!("Could not open library: {dir}: ")),
        "MQ_LIB's own error is the cause shown:\n{}",
        run.stderr
    );
    with_mq_lib("/no/such/libmqm_r.so").expect_code(3).stderr_has(&[
        "tried: /no/such/libmqm_r.so (MQ_LIB: no such file), ",
        "Could not open library: /no/such/libmqm_r.so: cannot open shared object file",
    ]);
}

/// A small fake queue manager whose only channel is APP.SVRCONN, as in examples/fake-qm.toml.
const ORDERS_QM: &str = r#"[queue_manager]
name = "QM1"
max_handles = 64

[[channel]]
name = "APP.SVRCONN"

[[queue]]
name = "ORDERS.IN"
backout_threshold = 3
backout_queue = "ORDERS.BACKOUT"

[[queue]]
name = "ORDERS.BACKOUT"
"#;

#[test]
fn fake_config_defines_the_queue_manager_and_an_empty_queue_ends_the_run() {
    let fake = TempFile::new("fake-qm.toml", ORDERS_QM);
    let args = ["poll", "--fake", "--fake-config", fake.arg(), "--queue", "ORDERS.IN"];
    let conn = [
        "--conn",
        "APP.SVRCONN/TCP/localhost(1414)",
        "--until-empty",
        "--wait-ms",
        "50",
    ];
    mqpilot(&[&args[..], &conn].concat())
        .expect_code(0)
        .stdout_empty()
        .stderr_has(&[
            "ORDERS.IN: received 0, delivered 0, backed out 0, poisoned 0",
            "peak handles 1 of budget 56 (MAXHANDS 64)",
            "fake queue manager depths: ORDERS.IN 0, ORDERS.BACKOUT 0",
        ]);
}

/// `mqpilot poll --until-empty` of `queue` on the fake that `fake` defines, plus `extra`.
fn poll_fake_config(fake: &TempFile, queue: &str, extra: &[&str]) -> Run {
    let args = [
        "poll",
        "--fake",
        "--fake-config",
        fake.arg(),
        "--queue",
        queue,
        "--conn",
        "APP.SVRCONN/TCP/localhost(1414)",
        "--until-empty",
        "--wait-ms",
        "50",
    ];
    mqpilot(&[&args[..], extra].concat())
}

#[test]
fn a_backout_queue_that_does_not_exist_stops_the_run_before_it_starts() {
    let without_boq = ORDERS_QM.replace("[[queue]]\nname = \"ORDERS.BACKOUT\"\n", "");
    assert_ne!(without_boq, ORDERS_QM);
    let fake = TempFile::new("fake-qm-no-boq.toml", &without_boq);
    poll_fake_config(&fake, "ORDERS.IN", &[])
        .expect_code(3)
        .stdout_empty()
        .stderr_has(&[
            "cannot start: MQOPEN of ORDERS.BACKOUT failed: 2085",
            "(the backout queue of ORDERS.IN, from BOQNAME)",
        ]);
}

#[test]
fn a_boqname_that_names_the_queue_itself_stops_the_run_before_it_starts() {
    let looping = ORDERS_QM.replace("backout_queue = \"ORDERS.BACKOUT\"", "backout_queue = \"ORDERS.IN\"");
    assert_ne!(looping, ORDERS_QM);
    let fake = TempFile::new("fake-qm-boq-itself.toml", &looping);
    poll_fake_config(&fake, "ORDERS.IN", &[])
        .expect_code(3)
        .stdout_empty()
        .stderr_starts(
            "mqpilot: cannot start: queue ORDERS.IN: its backout queue (BOQNAME) is ORDERS.IN, the queue itself",
        );
}

#[test]
fn a_batch_past_maxumsgs_stops_the_run_before_it_starts() {
    let small = ORDERS_QM.replace("max_handles = 64", "max_handles = 64\nmax_uncommitted = 30");
    assert_ne!(small, ORDERS_QM);
    let fake = TempFile::new("fake-qm-maxumsgs.toml", &small);
    // A queue sink puts every message it gets: 20 + 20 in one unit of work.
    let bridge = ["--batch", "20", "--sink", "queue", "--to", "ORDERS.BACKOUT"];
    poll_fake_config(&fake, "ORDERS.IN", &bridge)
        .expect_code(3)
        .stderr_has(&[
            "batch of queue ORDERS.IN: one unit of work would hold 20 gets and 20 puts to the queue \
             sink, past the queue manager's MAXUMSGS 30",
            "set batch to at most 15",
        ]);
    poll_fake_config(&fake, "ORDERS.IN", &["--batch", "31"])
        .expect_code(3)
        .stderr_has(&["would hold 31 gets, past the queue manager's MAXUMSGS 30", "at most 30"]);
    // Within the limit, the run goes ahead.
    poll_fake_config(&fake, "ORDERS.IN", &["--batch", "30"]).expect_code(0);
}

#[test]
fn a_queue_without_a_backout_threshold_is_warned_about_at_start() {
    let fake = TempFile::new("fake-qm-bothresh.toml", ORDERS_QM);
    poll_fake_config(&fake, "ORDERS.BACKOUT", &[])
        .expect_code(0)
        .stderr_has(&[
            "queue=ORDERS.BACKOUT",
            "the backout threshold is 0 (BOTHRESH, or backout_threshold): a message the sink keeps \
         rejecting is retried forever",
        ]);
    // A queue with BOTHRESH set says nothing of the kind.
    let run = poll_fake_config(&fake, "ORDERS.IN", &[]);
    run.expect_code(0);
    assert!(!run.stderr.contains("retried forever"), "{}", run.stderr);
}

#[test]
fn an_unknown_key_in_the_fake_config_names_file_and_line() {
    let fake = TempFile::new("bad-fake-qm.toml", &format!("{ORDERS_QM}max_dept = 5\n"));
    let run = mqpilot(&["poll", "--fake", "--fake-config", fake.arg(), "--queue", "ORDERS.IN"]);
    run.expect_code(2)
        .stdout_empty()
        .stderr_starts(&format!("mqpilot: {}:15:1: ", fake.path().display()))
        .stderr_has(&[": queue[1].max_dept: unknown field `max_dept`"]);
}

#[test]
fn a_mistake_in_the_fake_config_comes_before_there_being_no_queue_to_poll() {
    let fake = TempFile::new("typo-fake-qm.toml", "[[queue]]\nname = \"ORDERS.IN\"\nmax_dept = 5\n");
    mqpilot(&["poll", "--fake", "--fake-config", fake.arg()])
        .expect_code(2)
        .stdout_empty()
        .stderr_starts(&format!(
            "mqpilot: {}:3:1: queue[0].max_dept: unknown field `max_dept`",
            fake.path().display()
        ));
}

/// Regression: a channel the queue manager does not define was answered 2059 and retried
/// for ever with the advice to check that the queue manager runs. MQ answers 2540, which no
/// retry fixes: the run stops at once (exit 3) naming the code and the channel, in process
/// and against a `fake-qm` server alike.
#[test]
fn regression_a_channel_the_queue_manager_does_not_define_exits_3_with_2540() {
    let conn = ["--conn", "NO.SUCH.SVRCONN/TCP/localhost(1414)", "--until-empty"];
    let fake = TempFile::new("fake-qm-channel.toml", ORDERS_QM);
    let in_process = ["poll", "--fake", "--fake-config", fake.arg(), "--queue", "ORDERS.IN"];
    let server = crate::net_procs::FakeQmProcess::start(ORDERS_QM);
    let remote = ["poll", "--fake-qm", &server.addr, "--queue", "ORDERS.IN"];
    let demo = ["poll", "--fake"];
    for args in [&in_process[..], &remote[..], &demo[..]] {
        let run = mqpilot(&[args, &conn[..]].concat());
        run.expect_code(3).stdout_empty().stderr_has(&[
            "2540 MQRC_UNKNOWN_CHANNEL_NAME (channel NO.SUCH.SVRCONN to ",
            "check the channel name (case matters) in --conn against the fake's channels: the [[channel]] names",
            &format!("or the demo's {}", mqpilot::worker::demo::DEMO_CHANNEL),
        ]);
        // DEFINE CHANNEL is the advice for a real queue manager, not for the fake.
        assert!(!run.stderr.contains("DEFINE"), "{}", run.stderr);
        assert!(!run.stderr.contains("connect failed"), "retried:\n{}", run.stderr);
    }
}

/// Regression: `--fake-config` without `--conn` connects over the demo's DEV.APP.SVRCONN,
/// which a definition like examples/fake-qm.toml does not have, and the pool retries 2059
/// forever instead of ending the run.
#[test]
fn fake_config_without_conn_ends_the_run() {
    let fake = TempFile::new("fake-qm-no-conn.toml", ORDERS_QM);
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(["poll", "--fake", "--fake-config", fake.arg(), "--queue", "ORDERS.IN"]);
    command.args(["--until-empty", "--wait-ms", "50"]);
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    let run = run_within(command, Duration::from_secs(10));
    assert!(
        run.code == Some(0) || run.code == Some(3),
        "exit {:?}; stderr:\n{}",
        run.code,
        run.stderr
    );
}

/// Regression: `--receive batch` sets every queue's batch to at least 20
/// (`r.default_batch().max(q.batch)`), so a file's `batch = 5` becomes 20.
#[test]
fn receive_flag_keeps_the_files_batch_size() {
    let config = TempFile::new(
        "exec-worker.toml",
        "[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n\n[queue.sink]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"echo batch-size=$MQ_BATCH_SIZE\"]\n",
    );
    let args = ["poll", "--fake", "--config", config.arg(), "--max-messages", "20"];
    for receive in [&[][..], &["--receive", "batch"]] {
        let run = mqpilot(&[&args[..], &["--wait-ms", "50"], receive].concat());
        run.expect_code(0);
        let sizes = run.logged_words("batch-size=");
        assert_eq!(sizes, ["batch-size=5"; 4], "with {receive:?}; stderr:\n{}", run.stderr);
    }
}

#[test]
fn an_exec_commands_stderr_is_logged_at_warn_and_its_stdout_at_info() {
    let config = TempFile::new(
        "exec-stderr.toml",
        "[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n\n[queue.sink]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"cat > /dev/null; echo command-says-stderr >&2; echo command-says-stdout\"]\n",
    );
    let args = ["poll", "--fake", "--config", config.arg(), "--max-messages", "5"];
    // With RUST_LOG=warn a failing command's own words must still show.
    let run = mqpilot_env(&[&args[..], &["--wait-ms", "50"]].concat(), &[("RUST_LOG", "warn")]);
    run.expect_code(0);
    let lines = |word: &str| run.stderr.lines().filter(|l| l.contains(word)).count();
    assert_eq!(lines("command-says-stderr"), 1, "{}", run.stderr);
    assert_eq!(lines("command-says-stdout"), 0, "{}", run.stderr);
}

#[test]
fn an_exec_commands_last_output_is_logged_when_a_daemon_it_started_keeps_the_pipes() {
    let pid_file = std::env::temp_dir().join(format!("mqpilot-daemon-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    // The daemon leaves the command's process group and keeps its stdout and stderr open; the
    // command's last words have no newline.
    let script = format!(
        "cat > /dev/null; setsid sh -c 'echo $$ > {}; exec sleep 60' & printf last-words-no-newline",
        pid_file.display()
    );
    let command = serde_json::to_string(&["sh", "-c", &script]).expect("json");
    let config = TempFile::new(
        "exec-daemon.toml",
        &format!("[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n\n[queue.sink]\ntype = \"exec\"\ncommand = {command}\n"),
    );
    let args = [
        "poll",
        "--fake",
        "--config",
        config.arg(),
        "--max-messages",
        "5",
        "--wait-ms",
        "50",
    ];
    let run = mqpilot_env(&args, &[("RUST_LOG", "info")]);
    if let Ok(pid) = std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .parse::<i32>()
    {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let _ = std::fs::remove_file(&pid_file);
    run.expect_code(0).stderr_has(&[
        "last-words-no-newline",
        "not read further: a process the command started keeps this output open",
    ]);
}

#[test]
fn the_password_never_reaches_stdout_or_stderr() {
    let secret = format!("pw-{}-Zq8vR2", std::process::id());
    let password_file = TempFile::new("mq-password", &format!("{secret}\n"));
    let user = [&DEMO_UNTIL_EMPTY[..], &["--user", "app"]].concat();
    // Without a password, --user alone is refused: the runs below do use the secret.
    mqpilot(&user)
        .expect_code(2)
        .stderr_starts("mqpilot: --user: user \"app\" is set but no password");
    let debug = [("RUST_LOG", "debug"), ("MQ_PASSWORD", secret.as_str())];
    let from_file = [&user[..], &["--password-file", password_file.arg()]].concat();
    let json_log = [&user[..], &["--log-format", "json"]].concat();
    let unknown_queue = [&user[..], &["--queue", "NOPE"]].concat();
    let runs = [
        (mqpilot_env(&user, &debug), 0),
        (mqpilot_env(&json_log, &debug), 0),
        (mqpilot_env(&from_file, &[("RUST_LOG", "debug")]), 0),
        (mqpilot_env(&unknown_queue, &debug), 3),
    ];
    for (run, code) in &runs {
        run.expect_code(*code).stderr_has(&["***"]);
        assert!(!run.stdout.contains(&secret), "password on stdout");
        assert!(!run.stderr.contains(&secret), "password on stderr:\n{}", run.stderr);
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// GET `path` from 127.0.0.1:`port` until the server answers 200 with a body containing
/// `wanted`; that answer.
fn http_get(port: u16, path: &str, wanted: &str, deadline: Instant) -> String {
    use std::io::Write as _;
    loop {
        assert!(
            Instant::now() < deadline,
            "no 200 answer containing {wanted:?} from {path} on port {port}"
        );
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.starts_with("HTTP/1.1 200") && text.contains(wanted) {
                return text;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `poll --fake` bridging the demo queue to `DEMO.OUT`, serving metrics; its metrics port.
fn demo_bridge_with_metrics() -> (Running, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        cmd.env_remove(var);
    }
    let child = cmd
        .args([
            "poll",
            "--fake",
            "--sink",
            "queue",
            "--to",
            "DEMO.OUT",
            "--wait-ms",
            "100",
        ])
        .args(["--metrics-listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqpilot");
    (Running(child), port)
}

/// Waits until `/metrics` shows the demo queue drained (its 1,000 messages less the 10
/// poison ones committed, the 10 moved), sends SIGTERM and waits for the exit. The metrics
/// page, and the exit status.
fn drained_then_terminated(child: &mut Running, port: u16) -> (String, std::process::ExitStatus) {
    let deadline = Instant::now() + RUN_DEADLINE;
    let body = http_get(
        port,
        "/metrics",
        "mqpilot_messages_committed_total{queue=\"DEMO.IN\"} 990",
        deadline,
    );
    assert!(
        body.contains("mqpilot_messages_poisoned_total{queue=\"DEMO.IN\"} 10"),
        "{body}"
    );
    child.signal("TERM", false);
    (body, child.exit_by(deadline))
}

#[test]
fn metrics_show_no_connection_while_the_queue_manager_cannot_be_reached_at_start() {
    // Nothing listens where the fake-qm server should be: every connect fails.
    let (server, metrics) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        cmd.env_remove(var);
    }
    let mut child = Running(
        cmd.args([
            "poll",
            "--fake-qm",
            &format!("127.0.0.1:{server}"),
            "--queue",
            "ORDERS.IN",
        ])
        .args(["--conn", "APP.SVRCONN/TCP/localhost(1414)"])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqpilot"),
    );
    let deadline = Instant::now() + RUN_DEADLINE;
    let page = http_get(metrics, "/metrics", "mqpilot_connect_failures_total 1", deadline);
    // An alert on no connection fires before the first connect ever succeeded.
    assert!(page.contains("\nmqpilot_connections 0\n"), "{page}");
    assert!(page.contains("# HELP mqpilot_connections "), "{page}");
    child.signal("TERM", false);
    child.exit_by(deadline);
}

#[test]
fn metrics_are_served_and_sigterm_drains_and_exits_zero() {
    let (mut child, port) = demo_bridge_with_metrics();
    // The pool's counters are listed from the start, and only /metrics answers.
    let first = http_get(port, "/metrics", "mqpilot_", Instant::now() + RUN_DEADLINE);
    for zero in [
        "mqpilot_connect_failures_total 0",
        "mqpilot_reconnects_total 0",
        "mqpilot_connection_waits_total 0",
        "mqpilot_budget_shrinks_total 0",
        "mqpilot_handle_closes_for_budget_total 0",
    ] {
        assert!(first.contains(zero), "{zero} missing:\n{first}");
    }
    use std::io::Write as _;
    let mut other = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        other,
        "GET /other HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    let _ = other.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // SIGTERM once everything is committed, so that the summary's count does not race the
    // drain: stop new gets, finish in-flight batches, exit 0 with a summary.
    let (body, status) = drained_then_terminated(&mut child, port);
    assert!(body.contains("mqpilot_connections"), "{body}");
    // Every per-queue series is there, with the run's numbers.
    for series in [
        "mqpilot_messages_received_total{queue=\"DEMO.IN\"} 1000",
        "mqpilot_batch_messages_sum{queue=\"DEMO.IN\"} 1000",
        "mqpilot_messages_lost_total{queue=\"DEMO.IN\"} 0",
        "mqpilot_pollers{queue=\"DEMO.IN\"} 1",
        // Histograms with buckets, which add up across replicas (a summary's quantiles do not),
        // and every series described.
        "# TYPE mqpilot_batch_messages histogram",
        "mqpilot_batch_messages_bucket{queue=\"DEMO.IN\",le=\"+Inf\"}",
        "# TYPE mqpilot_sink_seconds histogram",
        "mqpilot_sink_seconds_bucket{queue=\"DEMO.IN\",le=\"0.01\"}",
        "# HELP mqpilot_pollers ",
        "# HELP mqpilot_messages_committed_total ",
        "# HELP mqpilot_handle_budget ",
        // MAXHANDS 256 less the default reserve of 8, from the connect on (no 2017 needed).
        "mqpilot_handle_budget{connection=\"0\"} 248",
    ] {
        assert!(body.contains(series), "{series} missing:\n{body}");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("mqpilot: summary"), "{stderr}");
    assert!(
        stderr.contains("DEMO.OUT 990"),
        "every message was moved before the signal:\n{stderr}"
    );
}

#[test]
fn a_closed_stderr_neither_stops_the_work_nor_the_signals() {
    // Whatever read mqpilot's stderr (a pipe to a log shipper, `| head`) has gone before the
    // first line, so the poison messages' warnings are among the lines nobody reads: the
    // work goes on, and SIGTERM still drains and exits 0.
    let (mut child, port) = demo_bridge_with_metrics();
    drop(child.stderr.take());
    let (_, status) = drained_then_terminated(&mut child, port);
    assert_eq!(status.code(), Some(0));
}

/// `mqpilot poll` of ORDERS.IN on a `fake-qm` expected at `port`, with its stderr collected.
fn poll_queue_manager_at(port: u16) -> (Running, StderrLines) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        cmd.env_remove(var);
    }
    let mut child = Running(
        cmd.args(["poll", "--fake-qm", &format!("127.0.0.1:{port}")])
            .args([
                "--conn",
                &format!("APP.SVRCONN/TCP/localhost({port})"),
                "--queue",
                "ORDERS.IN",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqpilot"),
    );
    let stderr = StderrLines::read(child.stderr.take().expect("stderr"));
    (child, stderr)
}

#[test]
fn a_fake_qm_server_that_is_not_there_is_named_in_the_connect_error() {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        cmd.env_remove(var);
    }
    // --conn's host(port) is not what --fake-qm dials.
    cmd.args(["poll", "--fake-qm", &format!("127.0.0.1:{port}")]).args([
        "--conn",
        "APP.SVRCONN/TCP/localhost(21414)",
        "--queue",
        "ORDERS.IN",
    ]);
    let mut child = Running(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqpilot"),
    );
    let stderr = StderrLines::read(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + RUN_DEADLINE;
    while !stderr.so_far().contains("connect failed") {
        assert!(Instant::now() < deadline, "no connect failure:\n{}", stderr.so_far());
        std::thread::sleep(Duration::from_millis(20));
    }
    child.signal("KILL", false);
    let text = stderr.all();
    let named = format!(
        "2538 MQRC_HOST_NOT_AVAILABLE (channel APP.SVRCONN to the mqpilot fake-qm server at 127.0.0.1:{port} \
         (--fake-qm): nothing answers there"
    );
    assert!(text.contains(&named), "{text}");
    assert!(!text.contains("localhost(21414)"), "{text}");
}

/// A signal before the start-up checks finished: exit 0, and says nothing was received.
fn assert_stopped_before_the_checks(status: std::process::ExitStatus, stderr: StderrLines) {
    let text = stderr.all();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains("stopped by a signal before the queues were checked"),
        "{text}"
    );
}

#[test]
fn sigterm_while_the_queue_manager_is_not_up_yet_is_a_clean_stop() {
    // Nothing listens on the port: connects fail with 2538 and retry with backoff until the
    // signal, which ends the run as asked (exit 0, as systemd expects of a stop).
    let port = free_port();
    let (mut child, stderr) = poll_queue_manager_at(port);
    let deadline = Instant::now() + RUN_DEADLINE;
    while !stderr.so_far().contains("2538") {
        assert!(Instant::now() < deadline, "no failed connect:\n{}", stderr.so_far());
        std::thread::sleep(Duration::from_millis(20));
    }
    child.signal("TERM", false);
    let status = child.exit_by(deadline);
    assert_stopped_before_the_checks(status, stderr);
}

#[test]
fn sigterm_while_a_connect_hangs_is_a_clean_stop() {
    // The listener accepts (the kernel completes the handshake) and never answers, like a
    // queue manager host that is up while the queue manager hangs: MQCONNX waits for the
    // client's own timeout. The signal must not wait for it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let (mut child, stderr) = poll_queue_manager_at(port);
    let deadline = Instant::now() + RUN_DEADLINE;
    let _held = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "mqpilot never connected:\n{}",
                    stderr.so_far()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    child.signal("TERM", false);
    let status = child.exit_by(Instant::now() + Duration::from_secs(5));
    assert_stopped_before_the_checks(status, stderr);
}

/// A `poll --fake` process whose `DEMO.IN` goes to an exec sink running `script` under `sh -c`
/// (batches of 5), with its stderr collected as it arrives.
struct ExecRun {
    child: Running,
    stderr: StderrLines,
    dir: PathBuf,
}

/// `mqpilot poll --fake` on DEMO.IN, batch 5, into an exec sink running `sh -c script` in a
/// directory of its own (returned); stdout to /dev/null, stderr piped.
fn exec_poll(name: &str, script: &str, own_group: bool) -> (std::path::PathBuf, Running) {
    use std::os::unix::process::CommandExt as _;
    let dir = std::env::temp_dir().join(format!("mqpilot-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("worker.toml");
    let command = serde_json::to_string(&["sh", "-c", script]).expect("json");
    std::fs::write(
        &config,
        format!("[[queue]]\nname = \"DEMO.IN\"\nbatch = 5\n[queue.sink]\ntype = \"exec\"\ncommand = {command}\n"),
    )
    .expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    for var in MACHINE_VARS {
        cmd.env_remove(var);
    }
    if own_group {
        cmd.process_group(0);
    }
    let child = cmd
        .args(["poll", "--fake", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqpilot");
    (dir, Running(child))
}

impl ExecRun {
    fn start(name: &str, script: &str, own_group: bool) -> Self {
        let (dir, mut child) = exec_poll(name, script, own_group);
        let stderr = StderrLines::read(child.stderr.take().expect("stderr"));
        Self { child, stderr, dir }
    }

    /// Waits until the sink's first command has written its pid to `pid` in the run's
    /// directory, and returns it.
    fn first_command(&self) -> u32 {
        let deadline = Instant::now() + RUN_DEADLINE;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.dir.join("pid"))
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the sink never ran:\n{}",
                self.stderr.so_far()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the process (or to its whole process group, as a terminal does).
    fn signal(&self, signal: &str, group: bool) {
        self.child.signal(signal, group);
    }

    /// Waits for the exit and the end of stderr; returns the status and everything on stderr.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.exit_by(Instant::now() + RUN_DEADLINE);
        let text = self.stderr.all();
        let _ = std::fs::remove_dir_all(&self.dir);
        (status, text)
    }
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
        .is_some_and(|state| !state.starts_with('Z'))
}

#[test]
fn a_second_signal_exits_at_once_with_130_and_takes_the_sink_command_along() {
    // A sink that would take 20 s: the first signal waits for it, the second does not, and
    // the command must not outlive mqpilot.
    let run = ExecRun::start("second-signal", "echo $$ > pid; exec sleep 20", false);
    let command = run.first_command();
    assert!(alive(command));
    let started = Instant::now();
    for _ in 0..2 {
        run.signal("TERM", false);
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, text) = run.wait();
    let exited_after = started.elapsed();
    assert_eq!(status.code(), Some(130), "{text}");
    // `wait` also waits for the end of stderr, which only mqpilot itself holds.
    assert!(
        exited_after < Duration::from_millis(1500),
        "it waited for the sink: {exited_after:?}"
    );
    assert!(text.contains("second signal"), "{text}");
    assert!(!alive(command), "the sink command {command} outlived mqpilot");
}

#[test]
fn signals_still_stop_mqpilot_when_nobody_reads_its_stderr() {
    // The sink command's output, logged a line each, fills mqpilot's stderr pipe (64 KiB),
    // whose reader never reads: stderr now takes nothing, the signal's own message included.
    let script = "echo $$ > pid; yes | head -n 2000 >&2; sleep 20";
    let (dir, mut child) = exec_poll("stalled-stderr", script, false);
    let _unread = child.stderr.take();
    let deadline = Instant::now() + RUN_DEADLINE;
    while !dir.join("pid").exists() {
        assert!(Instant::now() < deadline, "the sink never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..2 {
        child.signal("TERM", false);
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = child.exit_by(Instant::now() + Duration::from_secs(3));
    assert_eq!(status.code(), Some(130));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terminal_interrupt_lets_the_running_sink_command_finish_its_batch() {
    // Ctrl-C at a terminal signals the whole foreground process group. The sink command must
    // not get it: the first signal lets the batch in flight finish and commit.
    let run = ExecRun::start("terminal-interrupt", "echo $$ > pid; cat > /dev/null; sleep 1", true);
    run.first_command();
    run.signal("INT", true);
    let (status, text) = run.wait();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("sink failures 0"), "{text}");
    assert!(
        text.contains("delivered 5,"),
        "the batch in flight was delivered: {text}"
    );
}

/// Each line of `stderr` as a JSON event (`level`, `fields.message`, ...); fails the test on
/// a line that is not one.
fn json_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            let event: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stderr}"));
            assert!(
                event["level"].is_string() && event["fields"]["message"].is_string(),
                "not an event: {line}"
            );
            event
        })
        .collect()
}

/// The one event of `events` whose message is `message`.
fn the_event<'a>(events: &'a [Value], message: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["fields"]["message"] == message).collect();
    assert_eq!(found.len(), 1, "events with message {message:?}: {events:#?}");
    found[0]
}

#[test]
fn under_log_format_json_every_line_on_stderr_is_an_event_and_the_summary_has_fields() {
    let run = mqpilot(&[&DEMO_UNTIL_EMPTY[..], &["--log-format", "json"]].concat());
    run.expect_code(0);
    let events = json_events(&run.stderr);
    let summary = the_event(&events, "summary");
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["target"], "mqpilot");
    let fields = &summary["fields"];
    assert_eq!(
        fields["queues"],
        serde_json::json!([{
            "queue": "DEMO.IN", "received": 1000, "delivered": 990, "backed_out": 0, "poisoned": 10,
            "sink_failures": 0, "commit_unknown": 0, "lost_no_syncpoint": 0,
        }])
    );
    assert_eq!(
        fields["connections"],
        serde_json::json!([{
            "connection": 0, "peak_handles": 2, "budget": 248, "budget_shrunk": false,
            "max_handles": 256, "max_handles_assumed": null, "reconnects": 0, "connected": true,
        }])
    );
    assert_eq!(fields["pool"]["connects"], 1);
    assert_eq!(fields["pool"]["reconnects"], 0);
    assert_eq!(fields["pool"]["budget_shrinks"], 0);
    assert_eq!(fields["stopped"], serde_json::json!([]));
    assert_eq!(fields["exit_code"], 0);
    let depths = the_event(&events, "fake queue manager depths");
    assert_eq!(
        depths["fields"]["depths"],
        serde_json::json!({"DEMO.IN": 0, "DEMO.BACKOUT": 10, "DEMO.OUT": 0})
    );
}

#[test]
fn under_log_format_json_an_error_that_ends_mqpilot_is_an_error_event_with_its_exit_code() {
    let unknown_queue = [&DEMO_UNTIL_EMPTY[..], &["--queue", "NOPE"]].concat();
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &unknown_queue,
            3,
            "cannot start: MQOPEN of NOPE failed: 2085 MQRC_UNKNOWN_OBJECT_NAME",
        ),
        // clap's own refusal of a flag.
        (
            &["poll", "--fake", "--batch", "0"],
            2,
            "invalid value '0' for '--batch <BATCH>'",
        ),
        (
            &["poll", "--fake", "--config", "/no/such/worker.toml"],
            2,
            "cannot read /no/such/worker.toml",
        ),
        (
            &["mcp", "--stdio", "--fake", "--policy", "/no/such/policy.toml"],
            2,
            "cannot read /no/such/policy.toml",
        ),
    ];
    for (args, code, says) in cases {
        let run = mqpilot(&[args, &["--log-format", "json"]].concat());
        run.expect_code(code);
        let events = json_events(&run.stderr);
        let last = events
            .last()
            .unwrap_or_else(|| panic!("nothing on stderr for {args:?}"));
        assert_eq!(last["level"], "ERROR", "{}", run.stderr);
        assert_eq!(last["fields"]["exit_code"], code, "{}", run.stderr);
        let message = last["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(says) || message.contains(says), "{}", run.stderr);
        assert!(!message.starts_with("mqpilot: "), "{}", run.stderr);
    }
}

#[test]
fn under_log_format_json_a_library_that_cannot_load_is_an_error_event() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args([
        "poll",
        "--queue",
        "Q",
        "--conn",
        "CH/TCP/localhost(1414)",
        "--log-format",
        "json",
    ]);
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    command.env("MQ_LIB", "/no/such/libmqm_r.so");
    let run = run_within(command, RUN_DEADLINE);
    run.expect_code(3);
    let events = json_events(&run.stderr);
    let last = events.last().expect("an event");
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["exit_code"], 3);
    let message = last["fields"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("cannot load the IBM MQ client library (tried: /no/such/libmqm_r.so"),
        "{message}"
    );
}

#[test]
fn regression_an_invalid_rust_log_is_warned_about_once_and_logging_goes_on_at_info() {
    for spec in ["garbage[", "mqpilot=debg"] {
        let run = mqpilot_env(&DEMO_UNTIL_EMPTY, &[("RUST_LOG", spec)]);
        run.expect_code(0);
        let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("RUST_LOG")).collect();
        assert_eq!(warnings.len(), 1, "{}", run.stderr);
        assert!(warnings[0].contains(" WARN "), "{}", warnings[0]);
        assert!(warnings[0].contains(spec), "{}", warnings[0]);
        assert!(run.stderr.contains("queue ready"), "info applies:\n{}", run.stderr);
        assert!(!run.stderr.contains(" DEBUG "), "{}", run.stderr);
    }
    let json = [&DEMO_UNTIL_EMPTY[..], &["--log-format", "json"]].concat();
    let run = mqpilot_env(&json, &[("RUST_LOG", "garbage[")]);
    run.expect_code(0);
    let events = json_events(&run.stderr);
    let warnings: Vec<&Value> = events
        .iter()
        .filter(|e| e["fields"]["message"].as_str().is_some_and(|m| m.contains("RUST_LOG")))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["fields"]["rust_log"], "garbage[");
    assert!(warnings[0]["fields"]["error"].is_string(), "{}", warnings[0]);
}

/// A `fake-qm` whose IN moves a message backed out 3 times to IN.BO.
const BACKOUT_QM: &str = "[queue_manager]\nname = \"QM1\"\n\n[[channel]]\nname = \"APP.SVRCONN\"\n\n\
    [[queue]]\nname = \"IN\"\nbackout_threshold = 3\nbackout_queue = \"IN.BO\"\n\n[[queue]]\nname = \"IN.BO\"\n";

fn message(data: &str, backout_count: i32) -> mqpilot::fake::net::AdminMessage {
    mqpilot::fake::net::AdminMessage {
        data: data.to_owned(),
        backout_count,
        ..mqpilot::fake::net::AdminMessage::default()
    }
}

/// Regression: the summary listed the connections open at the end only, so a connection that
/// had held two handles (a queue and its backout queue) and was then replaced showed the
/// peak of its replacement, 1.
#[test]
fn regression_a_connections_peak_handles_in_the_summary_count_the_connections_it_replaced() {
    let server = crate::net_procs::FakeQmProcess::start(BACKOUT_QM);
    let admin = server.admin();
    admin.put("IN", vec![message("poison", 3)]).expect("put");
    let mut worker = server.worker("peak", &["--queue", "IN", "--connections", "1", "--wait-ms", "100"]);
    server.until(RUN_DEADLINE, "the poison message to move", |s| s.depth("IN.BO") == 1);
    assert_eq!(admin.break_connections(None).expect("break"), 1);
    // Received on the connection that replaced the broken one: one handle, IN.
    admin.put("IN", vec![message("after the break", 0)]).expect("put");
    server.until(RUN_DEADLINE, "the message after the break", |s| s.depth("IN") == 0);
    worker.signal("TERM");
    let status = worker.wait(RUN_DEADLINE);
    let said = worker.stderr.read();
    assert_eq!(status.code(), Some(0), "{said}");
    let line = line_with(&said, "  connection 0:");
    assert!(
        line.starts_with("  connection 0: peak handles 2 of budget 248 (MAXHANDS 256)"),
        "{said}"
    );
    assert!(line.contains("reconnected 1 time"), "{said}");
    assert!(said.contains("  pool: 2 connects, 1 reconnects"), "{said}");
}

/// A `fake-qm` with MAXHANDS 2 that refuses MQINQ on the queue manager object.
const NO_INQUIRE_QM: &str = "[queue_manager]\nname = \"QM1\"\nmax_handles = 2\nqmgr_inquire = false\n\n\
    [[channel]]\nname = \"APP.SVRCONN\"\n\n[[queue]]\nname = \"A\"\n\n[[queue]]\nname = \"B\"\n\n[[queue]]\nname = \"OUT\"\n";

/// Regression: with MAXHANDS not read (MQINQ refused), the summary gave IBM's default as
/// the queue manager's MAXHANDS, even after a 2017 had shown it to be lower.
#[test]
fn regression_the_summary_says_maxhands_was_assumed_and_the_budget_shrunk_after_2017() {
    let server = crate::net_procs::FakeQmProcess::start(NO_INQUIRE_QM);
    let admin = server.admin();
    for queue in ["A", "B"] {
        admin.put(queue, vec![message("m", 0), message("m", 0)]).expect("put");
    }
    // Three handles on one connection (A, B and OUT): the third MQOPEN gets 2017.
    let args = [
        "--queue",
        "A",
        "--queue",
        "B",
        "--to",
        "OUT",
        "--connections",
        "1",
        "--until-empty",
        "--wait-ms",
        "50",
    ];
    let mut worker = server.worker("assumed", &args);
    let status = worker.wait(RUN_DEADLINE);
    let said = worker.stderr.read();
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(server.depth("OUT"), 4, "{said}");
    let line = line_with(&said, "  connection 0:");
    assert_eq!(
        line,
        "  connection 0: peak handles 2 of budget 2, shrunk after 2017 \
         (MAXHANDS not known: MQINQ refused, 256 assumed)",
        "{said}"
    );
    assert!(said.contains("1 budget shrinks after 2017"), "{said}");
}

/// Regression: the missing `+inq` authority was named with placeholders (`-m QM ... -p USER`)
/// even when the queue manager and user were known.
#[test]
fn regression_the_missing_inquire_authority_warning_names_the_queue_manager_and_user() {
    let qm = ORDERS_QM.replace("name = \"QM1\"\n", "name = \"QM2\"\nqmgr_inquire = false\n")
        + "\n[[queue_manager.users]]\nname = \"app\"\npassword = \"pw\"\n";
    let fake = TempFile::new("fake-qm-no-inquire.toml", &qm);
    let password = TempFile::new("password", "pw\n");
    let known = ["--qmgr", "QM2", "--user", "app", "--password-file", password.arg()];
    poll_fake_config(&fake, "ORDERS.IN", &known)
        .expect_code(0)
        .stderr_has(&[
            "setmqaut -m QM2 -t qmgr -p app +inq",
            "SET AUTHREC OBJTYPE(QMGR) PRINCIPAL('app') AUTHADD(INQ)",
        ]);
    let anonymous = qm.replace("[[queue_manager.users]]\nname = \"app\"\npassword = \"pw\"\n", "");
    let fake = TempFile::new("fake-qm-no-inquire-anonymous.toml", &anonymous);
    let run = poll_fake_config(&fake, "ORDERS.IN", &[]);
    run.expect_code(0)
        .stderr_has(&["setmqaut -m <qmgr> -t qmgr -p <user> +inq", "PRINCIPAL('<user>')"]);
    assert!(!run.stderr.contains("-p USER"), "{}", run.stderr);
}
