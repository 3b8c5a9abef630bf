//! `mqpilot mcp --stdio` as a process: a signal stops it while its client keeps stdin open,
//! before `initialize` too, a receive waiting when stdin closes takes nothing, a tool error is
//! the failure as JSON text, and a call refused while its arguments are read is audited.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Generous bound for anything here to happen in a debug build on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// An initialized `mqpilot mcp --stdio --fake --log-format json`, killed when dropped unless
/// it has exited.
struct Server {
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    /// The lines it writes on stdout.
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&["--fake"])
    }

    /// `mqpilot mcp --stdio --log-format json` and `args`, initialized.
    fn start_with(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqpilot"))
            .args(["mcp", "--stdio", "--log-format", "json"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqpilot");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut server = Self { child, stdin, lines };
        let init = server.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        assert!(init.get("result").is_some(), "{init}");
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Sends a request and returns its answer.
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.answer(id).expect("an answer before stdout closed")
    }

    /// The answer to request `id`; `None` if stdout closes first.
    fn answer(&mut self, id: u64) -> Option<Value> {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no answer to {id} within {BOUND:?}"),
            };
            let message: Value = serde_json::from_str(&line).expect("stdout is JSON-RPC");
            if message["id"] == id {
                return Some(message);
            }
        }
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.request(id, "tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// Its exit status, once it has exited; fails the test if it has not within [`BOUND`].
    fn exit(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mqpilot still running {BOUND:?} after {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What it wrote on stderr, once it has exited.
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        self.child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut text)
            .expect("read stderr");
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn sigterm_stops_the_stdio_server_while_its_client_keeps_stdin_open() {
    let mut server = Server::start();
    let status = server.call(2, "pool_status", json!({}));
    assert_eq!(status["result"]["isError"], false, "{status}");
    let pid = i32::try_from(server.child.id()).expect("pid");
    // SAFETY: kill(2) with a pid this test started and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = server.exit("SIGTERM with stdin still open");
    assert_eq!(status.code(), Some(0), "a signal is a clean stop: {status:?}");
    assert!(server.stdin.is_some(), "stdin stayed open throughout");
}

#[test]
fn a_tool_error_is_the_failure_as_json_text_without_structured_content() {
    let mut server = Server::start();
    let answer = server.call(2, "queue_status", json!({"queue": "NO.SUCH.QUEUE"}));
    let result = &answer["result"];
    assert_eq!(result["isError"], true, "{answer}");
    // Clients check structured content against the tool's output schema, which is the shape
    // of a success: an error carries none.
    assert!(result.get("structuredContent").is_none(), "{answer}");
    let text = result["content"][0]["text"].as_str().expect("text content");
    let failure: Value = serde_json::from_str(text).expect("the failure is JSON");
    assert_eq!(failure["reason_code"], 2085, "{failure}");
    assert_eq!(failure["reason_name"], "MQRC_UNKNOWN_OBJECT_NAME", "{failure}");
    assert!(failure["advice"].is_string(), "{failure}");
}

#[test]
fn a_call_refused_while_its_arguments_are_read_is_audited() {
    let mut server = Server::start();
    let refused = server.call(2, "browse_messages", json!({"queue": "DEMO.IN", "limit": "five"}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let refused = server.call(3, "queue_status", json!({"queue": "DEMO.IN", "colour": "red"}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // Read, but out of range: refused by the tool itself, audited the same way.
    let refused = server.call(4, "browse_messages", json!({"queue": "DEMO.OUT.OF.RANGE", "limit": 0}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    drop(server.stdin.take());
    assert_eq!(server.exit("stdin closed").code(), Some(0));
    let audited: Vec<Value> = server
        .stderr()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "mqpilot::audit")
        .map(|line| line["fields"].clone())
        .collect();
    for (tool, queue) in [
        ("browse_messages", "DEMO.IN"),
        ("queue_status", "DEMO.IN"),
        ("browse_messages", "DEMO.OUT.OF.RANGE"),
    ] {
        assert!(
            audited.iter().any(|f| f["tool"] == tool
                && f["queue"] == queue
                && f["caller"] == "stdio"
                && f["outcome"] == "invalid"),
            "no audit line for the refused {tool}: {audited:?}"
        );
    }
}

/// `mqpilot mcp --stdio --fake` with its stdin as given, not initialized; killed when dropped.
fn uninitialized(stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args(["mcp", "--stdio", "--fake"])
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqpilot")
}

/// Waits for `child` to exit; its status and stderr.
fn exited(mut child: Child, what: &str) -> (ExitStatus, String) {
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "mqpilot still running {BOUND:?} after {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut text)
        .expect("read stderr");
    (status, text)
}

#[test]
fn regression_stdin_closed_before_initialize_is_a_clean_stop() {
    let (status, stderr) = exited(uninitialized(Stdio::null()), "stdin closed");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn regression_a_signal_before_initialize_is_a_clean_stop() {
    // The client keeps stdin open and has not initialized yet.
    let mut child = uninitialized(Stdio::piped());
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    // Signals are watched before this line is written.
    while !line.contains("serving MCP on stdio") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("stderr") > 0, "no start line");
    }
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid this test started and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "mqpilot still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(0), "a signal is a clean stop: {rest}");
    assert!(child.stdin.is_some(), "stdin stayed open throughout");
}

#[test]
fn regression_a_receive_waiting_when_stdin_closes_takes_nothing() {
    use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("ORDERS"));
    let qm = FakeQm::new(config);
    let fake = mqpilot::fake::net::Server::bind("127.0.0.1:0", qm.clone())
        .and_then(mqpilot::fake::net::Server::spawn)
        .expect("serve on loopback");
    let addr = fake.local_addr().to_string();
    let policy = std::env::temp_dir().join(format!("mqpilot-mcp-cli-{}-consume.toml", std::process::id()));
    std::fs::write(
        &policy,
        "capabilities = [\"inspect\", \"consume\"]\n[consume]\nallow = [\"ORDERS\"]\n",
    )
    .expect("policy");
    let policy_arg = policy.to_string_lossy().into_owned();
    let mut server = Server::start_with(&[
        "--fake-qm",
        &addr,
        "--conn",
        "APP.SVRCONN/TCP/localhost(1414)",
        "--policy",
        &policy_arg,
    ]);
    server.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "receive_messages", "arguments": {"queue": "ORDERS", "wait_ms": 10_000}}}));
    let deadline = Instant::now() + BOUND;
    while qm.waiting_gets("ORDERS") == 0 {
        assert!(Instant::now() < deadline, "the receive never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The client closes stdin: the receive stops waiting (within its 1 s MQGET slice, not
    // its 10 s wait_ms) and takes nothing; a message that comes then stays on the queue.
    // (Put only once the server has stopped: one put at the instant stdin closes may be got
    // and committed before the server has read the end of its input, and then answered.)
    drop(server.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    while qm.waiting_gets("ORDERS") != 0 {
        assert!(Instant::now() < deadline, "the receive still waits after stdin closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    qm.put_message("ORDERS", PutSpec::text("for a client that left"))
        .expect("put");
    // Its answer, for a client that still reads stdout, says why nothing came.
    let answer = server.answer(2).expect("an answer before the exit");
    let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("stdin was closed"), "{answer}");
    assert_eq!(server.exit("stdin closed").code(), Some(0));
    let messages = qm.browse("ORDERS");
    assert!(
        matches!(messages.as_slice(), [m] if m.state == "visible"),
        "the message was taken for a client that had gone: {:?}",
        messages.iter().map(|m| m.state).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_file(&policy);
}
