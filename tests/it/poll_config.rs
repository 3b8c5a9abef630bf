//! `mqpilot poll`'s configuration end to end: the file and the flags merged, the errors that
//! name a file's line or a flag, and the example files run against the fake they go with.
//!
//! Runs use `examples/fake-qm.toml` as the embedded fake (`--fake --fake-config`), whose
//! queues start empty, so a run that is not refused ends at once with `--until-empty`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mqpilot::fake::net::AdminMessage;

use crate::cli::{MACHINE_VARS, Run, run_within};
use crate::net_procs::{FakeQmProcess, Scratch};

/// Longest a run may take before it is killed and fails its test.
const RUN_DEADLINE: Duration = Duration::from_secs(30);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs `mqpilot args` in the project's directory with the machine's MQ variables removed,
/// killing it at the deadline.
fn mqpilot(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for var in MACHINE_VARS {
        command.env_remove(var);
    }
    run_within(command, RUN_DEADLINE)
}

/// `mqpilot poll` on the embedded fake of examples/fake-qm.toml over its channel, until every
/// queue is empty, plus `extra`.
fn poll_example_fake(extra: &[&str]) -> Run {
    let fake = example("fake-qm.toml");
    let args = [
        "poll",
        "--fake",
        "--fake-config",
        arg(&fake),
        "--conn",
        "APP.SVRCONN/TCP/localhost(1414)",
        "--until-empty",
        "--wait-ms",
        "50",
    ];
    mqpilot(&[&args[..], extra].concat())
}

/// BRIDGE.IN's sink is BRIDGE.OUT (line 5) and BRIDGE.OUT's is BRIDGE.IN (line 10).
const LOOP: &str = "[[queue]]\nname = \"BRIDGE.IN\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"BRIDGE.OUT\"\n\
                    [[queue]]\nname = \"BRIDGE.OUT\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"BRIDGE.IN\"\n";

/// Regression: two queues whose queue sinks point at each other passed the checks (only a
/// queue that is its own sink was refused) and moved the same messages round forever.
#[test]
fn regression_a_loop_of_queue_sinks_in_the_file_is_refused() {
    let config = Scratch::new("loop.toml", LOOP);
    let path = config.arg();
    poll_example_fake(&["--config", path])
        .expect_code(2)
        .stderr_starts(&format!(
            "mqpilot: {path}:5:1: queue[0].sink.queue: the queue sinks go round in a loop \
             (BRIDGE.IN -> BRIDGE.OUT -> BRIDGE.IN)"
        ))
        .stderr_has(&[
            &format!("BRIDGE.IN -> BRIDGE.OUT at {path}:5:1"),
            &format!("BRIDGE.OUT -> BRIDGE.IN at {path}:10:1"),
        ]);
}

#[test]
fn regression_a_loop_of_queue_sinks_through_a_flag_queue_is_refused_naming_the_flags() {
    let half = LOOP.split("[[queue]]").nth(1).expect("the first entry");
    let config = Scratch::new("half-loop.toml", &format!("[[queue]]{half}"));
    let path = config.arg();
    poll_example_fake(&["--config", path, "--queue", "BRIDGE.OUT", "--to", "BRIDGE.IN"])
        .expect_code(2)
        .stderr_starts("mqpilot: --to: the queue sinks go round in a loop (BRIDGE.IN -> BRIDGE.OUT -> BRIDGE.IN)")
        .stderr_has(&[
            &format!("BRIDGE.IN -> BRIDGE.OUT at {path}:5:1"),
            "BRIDGE.OUT -> BRIDGE.IN by --queue BRIDGE.OUT --to BRIDGE.IN",
        ]);
    // A chain that ends outside the polled queues is a bridge, not a loop.
    poll_example_fake(&["--config", path, "--queue", "BRIDGE.OUT", "--to", "AUDIT.IN"]).expect_code(0);
}

/// Regression: a file with no `[[queue]]` was refused when read (`FILE:0:0: queue: at least
/// one [[queue]] is required`), before the queues of --queue were added to it.
#[test]
fn regression_a_file_without_queues_polls_the_queues_of_the_flags() {
    let config = Scratch::new(
        "connection-only.toml",
        "[connection]\napplication_name = \"conn-only\"\n",
    );
    let path = config.arg();
    poll_example_fake(&["--config", path, "--queue", "ORDERS.IN"])
        .expect_code(0)
        .stderr_has(&["ORDERS.IN: received 0"]);
    let run = poll_example_fake(&["--config", path]);
    run.expect_code(2).stderr_starts(&format!(
        "mqpilot: no queue to poll: {path} has no [[queue]] and no --queue NAME was given"
    ));
    assert!(!run.stderr.contains(":0:0"), "{}", run.stderr);
}

#[test]
fn queue_flags_add_to_the_files_queues() {
    let config = Scratch::new("orders.toml", "[[queue]]\nname = \"ORDERS.IN\"\n");
    poll_example_fake(&["--config", config.arg(), "--queue", "AUDIT.IN"])
        .expect_code(0)
        .stderr_has(&["ORDERS.IN: received 0", "AUDIT.IN: received 0"]);
}

/// Regression: `--batch` over a file's `receive = "single"` queue did not say which queue.
#[test]
fn regression_batch_over_a_single_queue_of_the_file_names_the_queue_and_its_line() {
    let worker = example("worker.toml");
    let run = mqpilot(&["poll", "--fake", "--config", arg(&worker), "--batch", "50"]);
    run.expect_code(2).stderr_starts(&format!(
        "mqpilot: --batch: is 50, but queue AUDIT.IN has receive = \"single\" ({}:25:1: queue[1].receive)",
        worker.display()
    ));
}

/// Regression: `--receive no-syncpoint` over the file's queue-sink queue was reported as
/// `FILE and the command line:0:0: queue[2].receive: ...`.
#[test]
fn regression_receive_over_a_queue_sink_names_the_flag_and_the_queue() {
    let worker = example("worker.toml");
    let run = mqpilot(&["poll", "--fake", "--config", arg(&worker), "--receive", "no-syncpoint"]);
    run.expect_code(2)
        .stderr_starts("mqpilot: --receive: a queue sink puts inside the unit of work")
        .stderr_has(&[&format!("(queue BRIDGE.IN at {}:32:1)", worker.display())]);
}

/// Regression: `--receive batch` over a `receive = "single"` queue kept its batch of 1.
#[test]
fn regression_receive_batch_over_a_single_queue_takes_the_default_batch() {
    let config = Scratch::new(
        "single-exec.toml",
        "[[queue]]\nname = \"DEMO.IN\"\nreceive = \"single\"\n[queue.sink]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"echo batch-size=$MQ_BATCH_SIZE\"]\n",
    );
    let args = ["poll", "--fake", "--config", config.arg(), "--max-messages", "40"];
    let run = mqpilot(&[&args[..], &["--wait-ms", "50", "--receive", "batch"]].concat());
    run.expect_code(0);
    let sizes = run.logged_words("batch-size=");
    assert_eq!(sizes, ["batch-size=20"; 2], "stderr:\n{}", run.stderr);
}

/// Regression: a `backout_queue` on a queue whose threshold is 0 (BOTHRESH 0, no
/// `backout_threshold`) was neither checked nor used, without a word.
#[test]
fn regression_a_backout_queue_without_a_threshold_stops_the_start() {
    let config = Scratch::new(
        "audit-boq.toml",
        "[[queue]]\nname = \"AUDIT.IN\"\nbackout_queue = \"BRIDGE.BACKOUT\"\n",
    );
    poll_example_fake(&["--config", config.arg()])
        .expect_code(3)
        .stderr_starts(
            "mqpilot: cannot start: queue AUDIT.IN: backout_queue is BRIDGE.BACKOUT, but the backout threshold is 0",
        )
        .stderr_has(&["set backout_threshold"]);
    let with_threshold = Scratch::new(
        "audit-boq-threshold.toml",
        "[[queue]]\nname = \"AUDIT.IN\"\nbackout_queue = \"BRIDGE.BACKOUT\"\nbackout_threshold = 2\n",
    );
    poll_example_fake(&["--config", with_threshold.arg()]).expect_code(0);
}

/// Regression: a header name that HTTP does not allow failed the start (exit 3) without
/// saying where it was set.
#[test]
fn regression_a_bad_header_name_is_a_config_error_naming_its_line() {
    let config = Scratch::new(
        "bad-header.toml",
        "[[queue]]\nname = \"AUDIT.IN\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/in\"\n\
         [[queue.sink.headers]]\nname = \"Bad Header\"\nvalue = \"x\"\n",
    );
    poll_example_fake(&["--config", config.arg()])
        .expect_code(2)
        .stderr_starts(&format!(
            "mqpilot: {}:7:1: queue[0].sink.headers[0].name: \"Bad Header\" is not a valid HTTP header name",
            config.arg()
        ));
}

/// Regression: a bad key inside an inline table was reported at `FILE:0:0`, or at the line
/// of the table around it.
#[test]
fn regression_a_bad_key_in_an_inline_table_is_named_at_its_line_and_column() {
    let cases = [
        (
            "queue = [{name = \"A\", batch = 0}]\n",
            "1:23: queue[0].batch: is 0, must be 1 to 10000",
        ),
        (
            "queue = [{name = \"A\", wait_ms = \"soon\"}]\n",
            "1:33: queue[0].wait_ms: invalid type: string \"soon\"",
        ),
        (
            "[[queue]]\nname = \"A\"\nsink = { type = \"exec\", command = [] }\n",
            "3:25: queue[0].sink.command: is empty",
        ),
        (
            "queue = [{name = \"A\", sink = {type = \"exec\", command = [\"cat\"], timeout_ms = \"5\"}}]\n",
            "1:65: queue[0].sink.timeout_ms: invalid type: string \"5\"",
        ),
    ];
    for (text, error) in cases {
        let config = Scratch::new("inline.toml", text);
        let path = config.arg();
        poll_example_fake(&["--config", path])
            .expect_code(2)
            .stderr_starts(&format!("mqpilot: {path}:{error}"));
    }
}

/// A reserve that leaves one handle per connection is warned about, naming the key.
#[test]
fn a_handle_reserve_that_leaves_one_handle_is_warned_about() {
    let config = Scratch::new(
        "reserve.toml",
        "[pool]\nhandle_reserve = 1000\n[[queue]]\nname = \"AUDIT.IN\"\n",
    );
    poll_example_fake(&["--config", config.arg()])
        .expect_code(0)
        .stderr_has(&["pool.handle_reserve leaves a handle budget of 1"]);
    let config = Scratch::new("no-reserve.toml", "[[queue]]\nname = \"AUDIT.IN\"\n");
    let run = poll_example_fake(&["--config", config.arg()]);
    run.expect_code(0);
    assert!(!run.stderr.contains("handle_reserve"), "{}", run.stderr);
}

/// Regression: `--metrics-listen` took only an IP address.
#[test]
fn regression_metrics_listen_takes_a_host_name() {
    poll_example_fake(&["--queue", "AUDIT.IN", "--metrics-listen", "localhost:0"])
        .expect_code(0)
        .stderr_has(&["serving Prometheus metrics at /metrics"]);
}

/// The README's runnable pair: `mqpilot fake-qm` with examples/fake-qm.toml, and
/// `mqpilot poll` with examples/worker-fake.toml against it.
#[test]
fn the_readme_example_pair_runs_against_the_fake_qm_server() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    for documented in [
        "mqpilot fake-qm --listen 127.0.0.1:1414 --config examples/fake-qm.toml",
        "mqpilot poll --fake-qm 127.0.0.1:1414 --config examples/worker-fake.toml --until-empty",
    ] {
        assert!(readme.contains(documented), "the README no longer shows {documented:?}");
    }
    let definition = std::fs::read_to_string(example("fake-qm.toml")).expect("examples/fake-qm.toml");
    let server = FakeQmProcess::start(&definition);
    let admin = server.admin();
    for queue in ["ORDERS.IN", "AUDIT.IN", "BRIDGE.IN"] {
        let messages = (1..=30)
            .map(|n| AdminMessage {
                data: format!("{queue} {n}"),
                priority: None,
                persistent: None,
                backout_count: 0,
            })
            .collect();
        admin.put(queue, messages).expect("put");
    }
    let worker = example("worker-fake.toml");
    let run = mqpilot(&[
        "poll",
        "--fake-qm",
        &server.addr,
        "--config",
        arg(&worker),
        "--until-empty",
    ]);
    run.expect_code(0).stderr_has(&[
        "ORDERS.IN: received 30, delivered 30",
        "AUDIT.IN: received 30, delivered 30",
        "BRIDGE.IN: received 30, delivered 30",
    ]);
    assert_eq!(run.stdout.lines().count(), 30, "one JSON line per ORDERS.IN message");
    assert_eq!(run.stderr.matches("audited ").count(), 30, "{}", run.stderr);
    for (queue, depth) in [("ORDERS.IN", 0), ("AUDIT.IN", 0), ("BRIDGE.IN", 0), ("BRIDGE.OUT", 30)] {
        assert_eq!(server.depth(queue), depth, "{queue}");
    }
}
