//! Several `mqpilot poll` processes on one `mqpilot fake-qm` server: a worker killed in the
//! middle of a batch loses nothing, a break of every connection is survived, and MAXINST
//! turns a fourth worker away with 2537 until a place frees up.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use mqpilot::fake::net::AdminMessage;

use crate::net_procs::{FakeQmProcess, Scratch, connections_of};

const CONFIG: &str = r#"
[queue_manager]
name = "QM1"

[[channel]]
name = "APP.SVRCONN"
max_inst = 100
max_instc = 100

[[queue]]
name = "IN"
max_depth = 20000
backout_threshold = 5
backout_queue = "IN.BACKOUT"

[[queue]]
name = "OUT"
max_depth = 20000

[[queue]]
name = "IN.BACKOUT"
"#;

/// Generous bound for a drain in a debug build on a loaded machine.
const DRAIN: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_secs(10);

const DRAIN_ARGS: [&str; 13] = [
    "-q",
    "IN",
    "--sink",
    "queue",
    "--to",
    "OUT",
    "--batch",
    "50",
    "--connections",
    "2",
    "--wait-ms",
    "200",
    "--until-empty",
];

fn seed(server: &FakeQmProcess, n: usize) {
    let messages = (0..n)
        .map(|i| AdminMessage {
            data: format!("m{i}"),
            ..AdminMessage::default()
        })
        .collect();
    assert_eq!(server.admin().put("IN", messages).expect("seed").len(), n);
}

/// Every message id on OUT, checking none appears twice.
fn unique_out_ids(server: &FakeQmProcess) -> usize {
    let out = server.admin().browse("OUT").expect("browse OUT");
    let ids: HashSet<&str> = out.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(ids.len(), out.len(), "a message id appears twice on OUT");
    let payloads: HashSet<&str> = out.iter().map(|m| m.data.as_str()).collect();
    assert_eq!(payloads.len(), out.len(), "a payload appears twice on OUT");
    out.len()
}

fn got_uncommitted(server: &FakeQmProcess) -> BTreeSet<String> {
    server
        .admin()
        .browse("IN")
        .expect("browse IN")
        .into_iter()
        .filter(|m| m.state == "got-uncommitted")
        .map(|m| m.msg_id)
        .collect()
}

#[test]
fn a_worker_killed_mid_batch_loses_nothing_and_its_batch_returns_with_backout_count_1() {
    const N: usize = 10_000;
    let server = FakeQmProcess::start(CONFIG);
    seed(&server, N);
    let mut w1 = server.worker("w1", &DRAIN_ARGS);
    let mut w2 = server.worker("w2", &DRAIN_ARGS);
    let victim = server.worker("victim", &DRAIN_ARGS);
    server.until(DRAIN, "the drain to get going", |s| s.depth("OUT") >= 500);

    // Freeze every worker; retry until the victim is caught inside a unit of work.
    let workers = [&w1, &w2, &victim];
    let mut caught = false;
    for _ in 0..200 {
        workers.iter().for_each(|w| w.signal("STOP"));
        // Let the server finish any call that was sent before the stop.
        std::thread::sleep(Duration::from_millis(30));
        let status = server.status();
        let victim_uow: usize = status
            .connections
            .iter()
            .filter(|c| c.appl_name == "victim")
            .map(|c| c.uncommitted)
            .sum();
        if victim_uow > 0 {
            caught = true;
            break;
        }
        workers.iter().for_each(|w| w.signal("CONT"));
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(caught, "the victim was never inside a unit of work");
    let before = got_uncommitted(&server);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        got_uncommitted(&server),
        before,
        "nothing moves while the workers are stopped"
    );
    let instances_before = server.status().channels[0].instances;

    let mut victim = victim;
    victim.signal("KILL");
    victim.wait(SHORT);
    server.until(SHORT, "the server to drop the victim's connections", |s| {
        connections_of(&s.status(), "victim") == 0
    });

    // Only the victim's unit of work came back (the gets it handed out and the messages it
    // had read ahead: the server cannot tell them apart), each with backout count 1; the
    // frozen workers' units of work are untouched.
    let in_queue = server.admin().browse("IN").expect("browse IN");
    let returned: BTreeSet<String> = in_queue
        .iter()
        .filter(|m| m.backout_count == 1)
        .map(|m| m.msg_id.clone())
        .collect();
    assert!(
        in_queue
            .iter()
            .filter(|m| returned.contains(&m.msg_id))
            .all(|m| m.state == "visible"),
        "returned messages are visible again"
    );
    let after = got_uncommitted(&server);
    assert!(!returned.is_empty(), "the killed batch came back");
    assert!(returned.is_disjoint(&after));
    let union: BTreeSet<String> = after.union(&returned).cloned().collect();
    assert_eq!(union, before, "exactly the victim's batch was backed out");
    let status = server.status();
    assert!(
        status.channels[0].instances < instances_before,
        "the victim's channel instance was freed"
    );

    w1.signal("CONT");
    w2.signal("CONT");
    let mut restarted = server.worker("victim-2", &DRAIN_ARGS);
    for w in [&mut w1, &mut w2, &mut restarted] {
        let status = w.wait(DRAIN);
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            w.name,
            w.stderr.read()
        );
    }
    let (input, output, backout) = (server.depth("IN"), server.depth("OUT"), server.depth("IN.BACKOUT"));
    assert_eq!(
        usize::try_from(input + output + backout).unwrap(),
        N,
        "IN {input} + OUT {output} + BACKOUT {backout}"
    );
    assert_eq!(unique_out_ids(&server), usize::try_from(output).unwrap());
}

#[test]
fn workers_reconnect_after_every_connection_breaks_and_finish() {
    const N: usize = 3_000;
    let server = FakeQmProcess::start(CONFIG);
    seed(&server, N);
    let mut workers: Vec<_> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| server.worker(name, &DRAIN_ARGS))
        .collect();
    server.until(DRAIN, "the drain to get going", |s| s.depth("OUT") >= 200);
    let broken = server.admin().break_connections(None).expect("break");
    assert!(broken > 0, "some connections were live");
    for w in &mut workers {
        let status = w.wait(DRAIN);
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            w.name,
            w.stderr.read()
        );
    }
    let reconnects: Vec<String> = workers.iter().map(|w| w.stderr.read()).collect();
    assert!(
        reconnects
            .iter()
            .any(|e| e.contains("reconnects") && !e.contains(" 0 reconnects")),
        "no worker reconnected:\n{}",
        reconnects.join("\n---\n")
    );
    assert_eq!(server.depth("IN"), 0);
    assert_eq!(unique_out_ids(&server), N);
    assert!(
        reconnects.iter().all(|e| e.contains("fake queue manager depths: IN ")),
        "the summary shows the server's depths"
    );
    let status = server.status();
    assert!(
        status.reasons.iter().any(|r| r.reason == 2009 && r.count > 0),
        "the workers saw 2009"
    );
}

#[test]
fn a_fourth_worker_past_maxinst_gets_2537_backs_off_and_starts_when_one_exits() {
    let config = CONFIG.replace("max_inst = 100", "max_inst = 3");
    let server = FakeQmProcess::start(&config);
    let file = "[pool]\nconnections = 1\nreconnect_max_ms = 200\n\n[[queue]]\nname = \"IN\"\nwait_ms = 100\n";
    let worker_config = Scratch::new("worker.toml", file);
    let args = ["--config", worker_config.arg()];
    let mut first: Vec<_> = ["i1", "i2", "i3"].iter().map(|n| server.worker(n, &args)).collect();
    server.until(SHORT, "three channel instances", |s| {
        s.status().channels[0].instances == 3
    });
    let mut fourth = server.worker("i4", &args);
    server.until(SHORT, "the fourth worker to report 2537", |_| {
        fourth.stderr.read().contains("2537")
    });
    let advice = mqpilot::mq::reason::lookup(2537).expect("2537 is known").advice;
    let log = fourth.stderr.read();
    assert!(log.contains(advice), "the advice is logged:\n{log}");
    assert!(fourth.running(), "the fourth worker keeps backing off");
    let status = server.status();
    assert_eq!(status.channels[0].instances, 3);
    assert_eq!(connections_of(&status, "i4"), 0);

    first[0].signal("TERM");
    assert!(first[0].wait(SHORT).success());
    server.until(SHORT, "the fourth worker to connect", |s| {
        connections_of(&s.status(), "i4") == 1
    });
    assert_eq!(
        server.status().channels[0].peak_instances,
        3,
        "MAXINST was never passed"
    );
    for w in first.iter_mut().skip(1).chain(std::iter::once(&mut fourth)) {
        w.signal("TERM");
        assert!(w.wait(SHORT).success(), "{}:\n{}", w.name, w.stderr.read());
    }
}
