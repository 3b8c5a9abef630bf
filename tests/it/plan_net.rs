//! The planner against a `fake-qm` server with one real OS process per instance
//! (`mqplan validate --fake-qm`): observed connections, channel instances (per channel and per
//! address group, each group its own loopback client address) and peak handles per connection
//! equal the prediction, and limits give their reason codes. Every instance process is reaped
//! by the run (killed by PID on failure); servers started here are killed by their guards.
//! Random fleets reuse the in-process property test's strategy with at most 3 instances per app.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mqpilot::fake::net::{RemoteVerbs, Server};
use mqpilot::fake::{ChannelDef, ConnectRequest, FakeConfig, FakeQm, Verbs};
use mqpilot::plan::validate::net::{self, NetOptions};
use mqpilot::plan::validate::{self, Outcome};
use mqpilot::plan::{Plan, model::Model};

use crate::net_procs::{FakeQmProcess, Scratch};

const MQPLAN: &str = env!("CARGO_BIN_EXE_mqplan");

fn options(model: &Scratch) -> NetOptions {
    let mut options = NetOptions::new(&model.0, MQPLAN);
    options.ready_timeout = Duration::from_secs(30);
    options
}

/// Runs `toml` with one process per instance on a server of the run's own.
fn run(toml: &str) -> Outcome {
    let file = Scratch::new("model.toml", toml);
    let plan = Plan::new(Model::from_toml(toml, &file.0).expect("a valid model"));
    let outcome = net::run(&plan, &options(&file)).expect("the network validation runs");
    assert!(outcome.matches(), "{}\nmodel:\n{toml}", validate::render(&outcome));
    outcome
}

fn number(outcome: &Outcome, what: &str) -> (u64, u64) {
    let c = outcome
        .numbers
        .iter()
        .find(|c| c.what == what)
        .unwrap_or_else(|| panic!("{what} not compared:\n{}", validate::render(outcome)));
    (c.predicted, c.observed)
}

const HEADER: &str = r#"
[queue_manager]
name = "QM1"
max_handles = MAXHANDS
max_channels = 100
max_uncommitted = 10000

[[queue_manager.channel]]
name = "APP.SVRCONN"
max_instc = MAXINSTC
sharecnv = 10
"#;

fn header(max_handles: u32, max_instc: u32) -> String {
    HEADER
        .replace("MAXHANDS", &max_handles.to_string())
        .replace("MAXINSTC", &max_instc.to_string())
}

/// `models/logicapps-standard.toml` with 3 instances of a pool of 4 and smaller batches.
fn logicapps(max_handles: u32) -> String {
    header(max_handles, 999_999_999)
        + r#"
[[app]]
name = "orders"
profile = "logicapps-builtin"
channel = "APP.SVRCONN"
instances = 3
client_address = "per-instance"
connections = 4

[[app.workload]]
queue = "ORDERS.IN"
kind = "browse-lock-trigger"
batch = 5
concurrency = 4

[[app.workload]]
queue = "ORDERS.OUT"
kind = "send"
"#
}

/// `models/mixed-fleet.toml` shrunk: orders and payments behind one NAT address (8 channel
/// instances together), audit (mqpilot) on per-instance addresses.
fn mixed(max_instc: u32) -> String {
    header(256, max_instc)
        + r#"
[[app]]
name = "orders"
profile = "logicapps-builtin"
channel = "APP.SVRCONN"
instances = 2
client_address = "nat-egress"
connections = 10

[[app.workload]]
queue = "ORDERS.IN"
kind = "browse-lock-trigger"
batch = 2
concurrency = 10

[[app]]
name = "payments"
profile = "jms"
channel = "APP.SVRCONN"
instances = 3
client_address = "nat-egress"
sharecnv = 1

[[app.workload]]
queue = "PAYMENTS.IN"
kind = "listener"
concurrency = 1

[[app]]
name = "audit"
profile = "mqpilot"
channel = "APP.SVRCONN"
instances = 2
connections = 2

[[app.workload]]
queue = "AUDIT.IN"
kind = "poll"
batch = 5
concurrency = 2
"#
}

#[test]
fn logicapps_instances_as_processes_hold_what_the_planner_predicts() {
    let outcome = run(&logicapps(256));
    assert!(outcome.server.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:")));
    assert_eq!(number(&outcome, "orders: connections"), (12, 12));
    assert_eq!(number(&outcome, "orders: channel instances"), (3, 3));
    // ceil(4 operations / 4 connections) x batch 5, plus the send's transient handle.
    assert_eq!(number(&outcome, "orders: peak handles per connection"), (6, 6));
    assert!(outcome.observed_reasons.is_empty());
}

#[test]
fn logicapps_processes_past_maxhands_get_2017() {
    let outcome = run(&logicapps(4));
    assert!(outcome.observed_reasons.get(&2017).copied().unwrap_or(0) > 0);
    assert_eq!(number(&outcome, "orders: peak handles per connection"), (4, 4));
}

#[test]
fn an_address_group_is_one_client_address_across_processes() {
    let outcome = run(&mixed(999_999_999));
    // orders: 2 x ceil(10/10) = 2; payments: 3 x ceil(2/1) = 6, all from one address.
    assert_eq!(
        number(&outcome, "channel APP.SVRCONN address group nat-egress instances"),
        (8, 8)
    );
    assert_eq!(number(&outcome, "payments: channel instances per instance"), (2, 2));
    assert_eq!(number(&outcome, "channel APP.SVRCONN instances"), (10, 10));
    assert_eq!(number(&outcome, "audit: connections"), (4, 4));
}

#[test]
fn an_address_group_past_maxinstc_across_processes_gets_2537() {
    let outcome = run(&mixed(7));
    assert!(outcome.connect_limited);
    assert!(outcome.predicted_reasons.contains(&2537));
    assert!(outcome.observed_reasons.get(&2537).copied().unwrap_or(0) > 0);
}

#[test]
fn mqpilot_instances_run_the_real_worker_in_their_own_processes() {
    let toml = header(256, 999_999_999)
        + r#"
[[app]]
name = "audit"
profile = "mqpilot"
channel = "APP.SVRCONN"
instances = 3
connections = 2

[[app.workload]]
queue = "AUDIT.IN"
kind = "poll"
batch = 7
concurrency = 3
"#;
    let outcome = run(&toml);
    assert_eq!(number(&outcome, "audit: connections"), (6, 6));
    assert_eq!(number(&outcome, "audit: channel instances"), (3, 3));
    // One cached handle for the queue, however big the batch under syncpoint.
    assert_eq!(number(&outcome, "audit: peak handles per connection"), (1, 1));
    assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
}

#[test]
fn mqpilot_instances_connect_with_the_models_client_sharecnv() {
    let toml = header(256, 999_999_999)
        + r#"
[[app]]
name = "audit"
profile = "mqpilot"
channel = "APP.SVRCONN"
instances = 2
connections = 3
sharecnv = 1

[[app.workload]]
queue = "AUDIT.IN"
kind = "poll"
batch = 2
concurrency = 3
"#;
    let plan = Plan::new(Model::from_toml(&toml, "sharecnv.toml".as_ref()).expect("valid"));
    let in_process = validate::run(&plan).expect("runs");
    assert!(in_process.matches(), "{}", validate::render(&in_process));
    assert_eq!(number(&in_process, "audit: channel instances per instance"), (3, 3));
    let outcome = run(&toml);
    // SHARECNV 1 on the client: one channel instance per connection, from the MQCD.
    assert_eq!(number(&outcome, "audit: channel instances per instance"), (3, 3));
    assert_eq!(number(&outcome, "audit: channel instances"), (6, 6));
}

#[test]
fn a_running_fake_qm_server_is_used_and_checked() {
    let server = FakeQmProcess::start(
        r#"
[queue_manager]
name = "QM1"
[[channel]]
name = "APP.SVRCONN"
[[queue]]
name = "ORDERS.IN"
max_depth = 100000
[[queue]]
name = "ORDERS.OUT"
"#,
    );
    let file = Scratch::new("model.toml", &logicapps(256));
    let plan = Plan::new(Model::from_toml(&logicapps(256), &file.0).expect("valid"));
    let mut opts = options(&file);
    opts.server = Some(server.addr.clone());
    let outcome = net::run(&plan, &opts).expect("runs on the running server");
    assert!(outcome.matches(), "{}", validate::render(&outcome));
    assert_eq!(outcome.server.as_deref(), Some(server.addr.as_str()));
    // The run returns once the server has seen every instance go: it is free for the next.
    assert_eq!(crate::net_procs::connections_of(&server.status(), "orders"), 0);
    let again = net::run(&plan, &opts).expect("a second run on the same server");
    assert!(again.matches(), "{}", validate::render(&again));

    let missing = Scratch::new("model.toml", &mixed(999_999_999));
    let plan = Plan::new(Model::from_toml(&mixed(999_999_999), &missing.0).expect("valid"));
    let mut opts = options(&missing);
    opts.server = Some(server.addr.clone());
    let err = net::run(&plan, &opts)
        .expect_err("the server lacks the model's queues")
        .to_string();
    assert!(err.contains("does not define queue AUDIT.IN"), "{err}");
    opts.server = Some("192.0.2.1:1414".into());
    let err = net::run(&plan, &opts).expect_err("not loopback").to_string();
    assert!(err.contains("must listen on IPv4 loopback"), "{err}");
    // The instances connect from 127.1.x.y: an IPv6 loopback server is refused up front, not
    // run into a mismatch of empty counts.
    opts.server = Some("[::1]:1414".into());
    let err = net::run(&plan, &opts).expect_err("IPv6").to_string();
    assert!(err.contains("must listen on IPv4 loopback"), "{err}");
}

#[test]
fn a_mqpilot_fake_qm_defined_by_emit_fake_qm_enforces_the_models_limits() {
    let toml = mixed(7);
    let file = Scratch::new("model.toml", &toml);
    let plan = Plan::new(Model::from_toml(&toml, &file.0).expect("valid"));
    let definition = validate::fake_config_toml(&plan);
    let parsed = FakeConfig::from_toml(&definition, "emitted.toml".as_ref()).expect("the fake reads it");
    assert_eq!(parsed.channels[0].max_instc, 7);
    assert_eq!(parsed.queues.len(), 3);
    let server = FakeQmProcess::start(&definition);
    let mut opts = options(&file);
    opts.server = Some(server.addr.clone());
    let outcome = net::run(&plan, &opts).expect("runs on the server");
    assert!(outcome.matches(), "{}", validate::render(&outcome));
    assert!(outcome.observed_reasons.get(&2537).copied().unwrap_or(0) > 0);
    let out = Command::new(MQPLAN)
        .args(["emit", "fake-qm", file.arg()])
        .output()
        .expect("run mqplan");
    assert_eq!(String::from_utf8_lossy(&out.stdout), definition);
}

#[test]
fn instances_not_ready_in_time_are_named_with_what_they_wrote() {
    let file = Scratch::new("model.toml", &logicapps(256));
    let plan = Plan::new(Model::from_toml(&logicapps(256), &file.0).expect("valid"));
    let script = Scratch::new(
        "silent-instance.sh",
        "#!/bin/sh\necho 'boom: cannot reach it' >&2\nexec sleep 30\n",
    );
    let mut permissions = std::fs::metadata(&script.0).expect("script").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script.0, permissions).expect("chmod");
    let mut opts = options(&file);
    opts.instance_program = script.0.clone();
    opts.ready_timeout = Duration::from_secs(2);
    let err = net::run(&plan, &opts).expect_err("never ready").to_string();
    assert!(err.contains("not ready in time"), "{err}");
    assert!(err.contains("boom: cannot reach it"), "{err}");
}

#[test]
fn an_instance_that_dies_fails_the_run_with_its_reason() {
    let file = Scratch::new("model.toml", &logicapps(256));
    let plan = Plan::new(Model::from_toml(&logicapps(256), &file.0).expect("valid"));
    let mut opts = options(&file);
    opts.instance_program = "/bin/false".into();
    let err = net::run(&plan, &opts).expect_err("no instance gets ready").to_string();
    assert!(err.contains("ended before it was ready"), "{err}");
}

#[test]
fn the_cli_validates_with_processes_and_hides_the_instance_command() {
    let file = Scratch::new("model.toml", &logicapps(256));
    let out = Command::new(MQPLAN)
        .args(["validate", file.arg(), "--fake-qm"])
        .output()
        .expect("run mqplan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("one process per instance"), "{stdout}");
    assert!(stdout.contains("result: observed matches predicted"), "{stdout}");
    let help = Command::new(MQPLAN).arg("--help").output().expect("run mqplan");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("validate") && !help.contains("validate-instance"),
        "{help}"
    );
}

#[test]
fn a_client_bound_to_a_loopback_address_is_counted_at_it() {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    let qm = FakeQm::new(config);
    let mut server = Server::bind("127.0.0.1:0", qm.clone())
        .and_then(Server::spawn)
        .expect("serve");
    let source = IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3));
    let verbs = RemoteVerbs::new(server.local_addr().to_string()).with_source_address(source);
    let request = ConnectRequest {
        channel: Some("APP.SVRCONN".into()),
        ..ConnectRequest::default()
    };
    verbs.connect(&request).expect("connect from 127.1.2.3");
    let channel = qm.channels().into_iter().next().expect("the channel");
    assert_eq!(channel.per_address.get("127.1.2.3"), Some(&1));
    assert_eq!(net::client_ip(1).to_string(), "127.1.0.1");
    assert_eq!(net::client_ip(257).to_string(), "127.1.1.1");
    server.shutdown();
}

/// One custom app of 2 instances x 520 connections: 1,040 connections, past the 1,024
/// sockets a `fake-qm` serves by default.
const WIDE: &str = r#"
[queue_manager]
name = "QM1"
max_channels = 5000

[[queue_manager.channel]]
name = "APP.SVRCONN"

[[app]]
name = "wide"
profile = "custom"
channel = "APP.SVRCONN"
instances = 2
client_address = "per-instance"
connections = 520
handles_per_connection = 1
uncommitted = 0
"#;

#[test]
fn regression_a_fleet_past_1024_connections_validates_with_processes() {
    let outcome = run(WIDE);
    assert_eq!(number(&outcome, "wide: connections"), (1040, 1040));
}

#[test]
fn regression_a_running_server_short_of_sockets_is_named_as_the_cause() {
    // logicapps(256) opens 12 connections; this server takes 4 sockets at once.
    let toml = logicapps(256);
    let file = Scratch::new("model.toml", &toml);
    let plan = Plan::new(Model::from_toml(&toml, &file.0).expect("valid"));
    let config = FakeConfig::from_toml(&validate::fake_config_toml(&plan), "qm.toml".as_ref()).expect("definition");
    let mut server = Server::bind("127.0.0.1:0", FakeQm::new(config))
        .map(|s| s.with_max_sockets(4))
        .and_then(Server::spawn)
        .expect("serve");
    let mut opts = options(&file);
    opts.server = Some(server.local_addr().to_string());
    let err = net::run(&plan, &opts)
        .expect_err("the server refuses sockets")
        .to_string();
    server.shutdown();
    assert!(err.contains("--max-sockets"), "{err}");
    assert!(err.contains("12 connections"), "{err}");
}

/// One mqpilot app polling a queue nothing is put on: its pollers never reach the gate, so
/// its instance waits there for its --gate-timeout.
const WAITING: &str = r#"
[queue_manager]
name = "QM1"

[[queue_manager.channel]]
name = "APP.SVRCONN"

[[app]]
name = "audit"
profile = "mqpilot"
channel = "APP.SVRCONN"
instances = 1
connections = 2

[[app.workload]]
queue = "AUDIT.IN"
kind = "poll"
batch = 5
concurrency = 2
"#;

#[test]
fn regression_an_instance_ends_when_its_parent_goes_during_the_gate_wait() {
    let file = Scratch::new("model.toml", WAITING);
    let plan = Plan::new(Model::from_toml(WAITING, &file.0).expect("valid"));
    let config = FakeConfig::from_toml(&validate::fake_config_toml(&plan), "qm.toml".as_ref()).expect("definition");
    let qm = FakeQm::new(config);
    let mut server = Server::bind("127.0.0.1:0", qm.clone())
        .and_then(Server::spawn)
        .expect("serve");
    let address = server.local_addr().to_string();
    let mut child = Command::new(MQPLAN)
        .args(["validate-instance", file.arg(), "--app", "audit", "--instance", "0"])
        .args(["--server", &address, "--source", "127.1.0.1", "--gate-timeout", "120"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start an instance");
    let stdin = child.stdin.take();
    let live = || {
        qm.connections()
            .iter()
            .filter(|c| c.appl_name == "audit" && c.broken.is_none())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while live() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let connected = live() > 0;
    // What a parent killed outright does to the instance: its end of the pipe closes.
    drop(stdin);
    let closed = Instant::now();
    let ended = loop {
        if child.try_wait().expect("wait").is_some() {
            break true;
        }
        if closed.elapsed() > Duration::from_secs(5) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while live() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = live();
    server.shutdown();
    assert!(connected, "the instance never connected");
    assert!(
        ended,
        "the instance still ran 5 s after its parent's pipe closed, in its gate wait"
    );
    assert_eq!(left, 0, "the instance's connections outlived it");
}

/// A random fleet of the in-process property test, at most 3 instances per app (each one a
/// process here), as a TOML file.
fn small_fleet() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::strategy::Strategy as _;
    crate::plan_validate::model_strategy().prop_map(|mut model| {
        if let Some(apps) = model["app"].as_array_mut() {
            for app in apps {
                let n = app["instances"].as_u64().unwrap_or(1).min(3);
                app["instances"] = serde_json::json!(n);
            }
        }
        model
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 10, failure_persistence: None, ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn random_fleets_as_processes_observe_what_the_planner_predicts(model in small_fleet()) {
        let toml = toml::to_string(&model).expect("the model as TOML");
        let file = Scratch::new("model.toml", &toml);
        let plan = Plan::new(Model::from_toml(&toml, &file.0).expect("a valid model"));
        let outcome = net::run(&plan, &options(&file)).expect("the network validation runs");
        proptest::prop_assert!(outcome.matches(), "{}\nmodel:\n{toml}", validate::render(&outcome));
    }
}

/// Regression: an instance started with no run behind it (stdin already closed) and a bad
/// argument ended with exit 74 and said nothing, since it watched its stdin before it
/// checked its arguments.
#[test]
fn regression_an_instance_with_a_bad_argument_says_so_with_stdin_closed() {
    let file = Scratch::new("model.toml", WAITING);
    let out = Command::new(MQPLAN)
        .args(["validate-instance", file.arg(), "--app", "nosuch", "--instance", "0"])
        .args(["--server", "127.0.0.1:1", "--source", "127.1.0.1"])
        .stdin(Stdio::null())
        .output()
        .expect("run an instance");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--app: no app \"nosuch\""), "{stderr}");
}
