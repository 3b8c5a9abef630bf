//! Read-ahead of MQGET under syncpoint over TCP: messages fetched ahead and never handed out
//! go back where they were with their backout count unchanged at MQCMIT, MQBACK, MQCLOSE and
//! MQDISC; a lost connection backs them all out; MAXUMSGS, 2080, GET(DISABLED) and quiescing
//! answer at the same get as without read-ahead; a connection the queue manager breaks keeps what its client may still
//! hand out from other consumers; and two consumers with random units of work, lost and
//! broken connections get and commit every message exactly once, never both at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mqi::constants::{
    MQGMO_FAIL_IF_QUIESCING, MQGMO_SYNCPOINT, MQIA_CURRENT_Q_DEPTH, MQMO_MATCH_CORREL_ID, MQMO_MATCH_MSG_ID,
    MQOO_INPUT_AS_Q_DEF, MQOO_INQUIRE, MQOO_OUTPUT, MQOT_Q, MQPMO_NO_SYNCPOINT, MQPMO_SYNCPOINT, MQRC_GET_INHIBITED,
    MQRC_NO_MSG_AVAILABLE, MQRC_Q_MGR_QUIESCING, MQRC_SYNCPOINT_LIMIT_REACHED, MQRC_TRUNCATED_MSG_FAILED,
};
use mqpilot::fake::net::{RemoteVerbs, Server, ServerHandle};
use mqpilot::fake::{
    ChannelDef, ConnectRequest, FakeConfig, FakeQm, GetOptions, ObjectRef, PutSpec, QueueDef, Verbs, default_md,
};
use proptest::prelude::*;

const EMPTY: i32 = MQRC_NO_MSG_AVAILABLE.0;
const INHIBITED: i32 = MQRC_GET_INHIBITED.0;
const QUIESCING: i32 = MQRC_Q_MGR_QUIESCING.0;

/// QM1 with queues Q and OUT, MAXUMSGS `max_uncommitted`, served with read-ahead `read_ahead`.
fn serve(max_uncommitted: i32, read_ahead: u32) -> (FakeQm, ServerHandle) {
    let mut config = FakeConfig::default();
    config.queue_manager.max_uncommitted = max_uncommitted;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("Q").max_depth(100_000));
    config.queues.push(QueueDef::new("OUT").max_depth(100_000));
    let qm = FakeQm::new(config);
    let server = Server::bind("127.0.0.1:0", qm.clone())
        .map(|s| s.with_read_ahead(read_ahead))
        .and_then(Server::spawn)
        .expect("serve on loopback");
    (qm, server)
}

fn put(qm: &FakeQm, payloads: impl IntoIterator<Item = String>) {
    for p in payloads {
        qm.put_message("Q", PutSpec::text(p)).expect("put");
    }
}

fn numbered(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("m{i:02}"))
}

/// One client connection with Q open for input and inquire (and OUT for output), through
/// the remote verbs the `Mqi` adapter calls.
struct Client {
    verbs: RemoteVerbs,
    hconn: i32,
    input: i32,
    output: i32,
}

const INPUT: i32 = MQOO_INPUT_AS_Q_DEF.0 | MQOO_INQUIRE.0;

impl Client {
    fn new(server: &ServerHandle) -> Self {
        let verbs = RemoteVerbs::new(server.local_addr().to_string());
        let hconn = verbs
            .connect(&ConnectRequest {
                channel: Some("APP.SVRCONN".into()),
                ..ConnectRequest::default()
            })
            .expect("connect");
        let mut c = Self {
            verbs,
            hconn,
            input: 0,
            output: 0,
        };
        c.input = c.open("Q", INPUT);
        c.output = c.open("OUT", MQOO_OUTPUT.0);
        c
    }

    fn open(&self, queue: &str, options: i32) -> i32 {
        let object = ObjectRef {
            object_type: MQOT_Q.0,
            name: queue.into(),
        };
        self.verbs.open(self.hconn, &object, options).expect("open")
    }

    /// MQGET under syncpoint into a buffer of `buffer` bytes: payload and backout count,
    /// or the reason code (2080 comes back as `Err(2080)` with the message's length).
    fn get_into(&self, buffer: usize) -> Result<(String, i32), (i32, usize)> {
        let mut md = default_md();
        let gmo = GetOptions {
            options: MQGMO_SYNCPOINT.0 | MQGMO_FAIL_IF_QUIESCING.0,
            wait_interval: 0,
            match_options: MQMO_MATCH_MSG_ID.0 | MQMO_MATCH_CORREL_ID.0,
        };
        let mut buf = vec![0u8; buffer];
        match self.verbs.get(self.hconn, self.input, &mut md, &gmo, &mut buf) {
            Ok(got) if got.warning == 0 => Ok((
                String::from_utf8_lossy(&buf[..got.data_length]).into_owned(),
                md.BackoutCount,
            )),
            Ok(got) => Err((got.warning, got.data_length)),
            Err(reason) => Err((reason, 0)),
        }
    }

    fn get(&self) -> Result<(String, i32), i32> {
        self.get_into(1024).map_err(|(r, _)| r)
    }

    /// MQGET under syncpoint without MQGMO_FAIL_IF_QUIESCING: payload and backout count.
    fn get_while_quiescing(&self) -> Result<(String, i32), i32> {
        let mut md = default_md();
        let gmo = GetOptions {
            options: MQGMO_SYNCPOINT.0,
            wait_interval: 0,
            match_options: MQMO_MATCH_MSG_ID.0 | MQMO_MATCH_CORREL_ID.0,
        };
        let mut buf = vec![0u8; 1024];
        let got = self.verbs.get(self.hconn, self.input, &mut md, &gmo, &mut buf)?;
        Ok((
            String::from_utf8_lossy(&buf[..got.data_length]).into_owned(),
            md.BackoutCount,
        ))
    }

    /// `n` gets that must each return a message; their payloads.
    fn take(&self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.get().expect("a message").0).collect()
    }

    fn put_out(&self) -> Result<(), i32> {
        let mut md = default_md();
        self.verbs
            .put(self.hconn, self.output, &mut md, MQPMO_SYNCPOINT.0, b"out")
    }

    /// MQPUT1 of `payload` to Q outside any unit of work.
    fn put_q(&self, payload: &str) -> Result<(), i32> {
        let mut md = default_md();
        let object = ObjectRef {
            object_type: MQOT_Q.0,
            name: "Q".into(),
        };
        self.verbs
            .put1(self.hconn, &object, &mut md, MQPMO_NO_SYNCPOINT.0, payload.as_bytes())
    }

    /// MQINQ of Q's CURDEPTH on the input handle.
    fn depth(&self) -> Result<Vec<mqpilot::fake::Attr>, i32> {
        self.verbs.inquire(self.hconn, self.input, &[MQIA_CURRENT_Q_DEPTH.0])
    }

    fn commit(&self) {
        self.verbs.commit(self.hconn).expect("commit");
    }

    fn backout(&self) {
        self.verbs.backout(self.hconn).expect("backout");
    }
}

/// (payload, state, backout count) of every message on Q, in delivery order.
fn queue(qm: &FakeQm) -> Vec<(String, &'static str, i32)> {
    qm.browse("Q")
        .into_iter()
        .map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.state, m.backout_count))
        .collect()
}

fn got_uncommitted(qm: &FakeQm) -> BTreeSet<String> {
    queue(qm)
        .into_iter()
        .filter(|(_, state, _)| *state == "got-uncommitted")
        .map(|(p, _, _)| p)
        .collect()
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i:02}")).collect()
}

/// Waits (without a time assertion: the bound only keeps a broken build from hanging) until
/// the server has dropped connections down to `live`.
fn until_connections(qm: &FakeQm, live: usize) {
    for _ in 0..2000 {
        if qm.connections().len() <= live {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the server kept {} connections", qm.connections().len());
}

/// A first unit of work of `batch` gets teaches the handle its batch size.
fn learn(c: &Client, batch: usize) -> Vec<String> {
    let got = c.take(batch);
    c.commit();
    got
}

#[test]
fn commit_releases_what_was_not_handed_out_with_backout_count_0_to_another_consumer() {
    let (qm, mut server) = serve(10_000, 64);
    put(&qm, numbered(10));
    let a = Client::new(&server);
    assert_eq!(learn(&a, 5), names(0..5));
    assert_eq!(a.take(1), names(5..6));
    assert_eq!(
        got_uncommitted(&qm),
        names(5..10).into_iter().collect(),
        "one round trip took the rest of the batch into the unit of work"
    );
    assert_eq!(a.take(1), names(6..7));
    a.commit();
    let expected: Vec<_> = names(7..10).into_iter().map(|p| (p, "visible", 0)).collect();
    assert_eq!(queue(&qm), expected, "released in place, backout count 0");
    let b = Client::new(&server);
    assert_eq!(b.get(), Ok(("m07".into(), 0)), "visible to another consumer");
    assert_eq!(b.take(2), names(8..10));
    b.commit();
    assert_eq!(qm.depth("Q"), Some(0));
    server.shutdown();
}

#[test]
fn backout_raises_the_count_only_of_messages_handed_out() {
    let (qm, mut server) = serve(10_000, 64);
    put(&qm, numbered(10));
    let a = Client::new(&server);
    learn(&a, 5);
    assert_eq!(a.take(2), names(5..7));
    a.backout();
    assert_eq!(
        queue(&qm),
        vec![
            ("m05".into(), "visible", 1),
            ("m06".into(), "visible", 1),
            ("m07".into(), "visible", 0),
            ("m08".into(), "visible", 0),
            ("m09".into(), "visible", 0),
        ]
    );
    let again: Vec<_> = (0..5).map(|_| a.get().expect("message")).collect();
    assert_eq!(
        again.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 1, 0, 0, 0],
        "{again:?}"
    );
    server.shutdown();
}

#[test]
fn mqclose_and_mqdisc_release_what_was_not_handed_out() {
    let (qm, mut server) = serve(10_000, 64);
    put(&qm, numbered(20));
    let a = Client::new(&server);
    learn(&a, 5);
    assert_eq!(a.take(2), names(5..7));
    a.verbs.close(a.hconn, a.input).expect("close");
    let q = queue(&qm);
    assert_eq!(
        &q[..2],
        &[
            ("m05".into(), "got-uncommitted", 0),
            ("m06".into(), "got-uncommitted", 0)
        ]
    );
    assert!(q[2..].iter().all(|(_, s, n)| (*s, *n) == ("visible", 0)), "{q:?}");
    assert_eq!(q[2].0, "m07");
    a.commit();

    let mut a = a;
    a.input = a.open("Q", INPUT);
    assert_eq!(learn(&a, 5), names(7..12));
    assert_eq!(a.take(2), names(12..14));
    assert_eq!(got_uncommitted(&qm).len(), 5, "read ahead on the new handle");
    a.verbs.disconnect(a.hconn).expect("disconnect");
    let expected: Vec<_> = names(14..20).into_iter().map(|p| (p, "visible", 0)).collect();
    assert_eq!(
        queue(&qm),
        expected,
        "MQDISC committed what was handed out, released the rest"
    );
    server.shutdown();
}

#[test]
fn a_lost_connection_backs_out_everything_it_held_with_backout_count_1() {
    let (qm, mut server) = serve(10_000, 64);
    put(&qm, numbered(10));
    let a = Client::new(&server);
    learn(&a, 5);
    assert_eq!(a.take(2), names(5..7));
    drop(a);
    until_connections(&qm, 0);
    let expected: Vec<_> = names(5..10).into_iter().map(|p| (p, "visible", 1)).collect();
    assert_eq!(
        queue(&qm),
        expected,
        "handed out or not, the client may have delivered them: each comes back once"
    );
    server.shutdown();
}

/// Client A learns a batch of 5, gets m05 and fetches m06..m09 ahead; B consumes Q too.
fn a_holds_four_fetched_ahead(qm: &FakeQm, server: &ServerHandle) -> (Client, Client) {
    let a = Client::new(server);
    let b = Client::new(server);
    put(qm, numbered(5));
    learn(&a, 5);
    put(qm, names(5..10));
    assert_eq!(a.take(1), names(5..6));
    assert_eq!(got_uncommitted(qm), names(5..10).into_iter().collect());
    (a, b)
}

#[test]
fn regression_a_broken_connection_keeps_what_its_client_fetched_ahead_from_other_consumers() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.break_connection(a.hconn);
    // m05 was handed out with the reply: backed out at once, as without read-ahead. The
    // rest A's client may still hand out, so nobody else may have them meanwhile.
    assert_eq!(b.get(), Ok(("m05".into(), 1)));
    assert_eq!(b.get(), Err(EMPTY), "{:?}", queue(&qm));
    b.commit();
    assert_eq!(a.take(4), names(6..10), "handed out without a round trip");
    assert_eq!(
        a.verbs.commit(a.hconn),
        Err(2009),
        "the application learns of the break at its commit"
    );
    let expected: Vec<_> = names(6..10).into_iter().map(|p| (p, "visible", 1)).collect();
    assert_eq!(queue(&qm), expected, "back once the client knows, each handed out once");
    assert_eq!(b.take(4), names(6..10));
    b.commit();
    server.shutdown();
}

#[test]
fn after_a_break_what_the_client_did_not_hand_out_comes_back_unchanged_at_its_next_request() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, _b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.stop();
    qm.start();
    assert_eq!(a.take(2), names(6..8));
    assert_eq!(
        got_uncommitted(&qm),
        names(6..10).into_iter().collect(),
        "m05 is back, the rest waits for the client"
    );
    assert_eq!(a.verbs.backout(a.hconn), Err(2162), "stopped: 2162");
    assert_eq!(
        queue(&qm),
        vec![
            ("m05".into(), "visible", 1),
            ("m06".into(), "visible", 1),
            ("m07".into(), "visible", 1),
            ("m08".into(), "visible", 0),
            ("m09".into(), "visible", 0),
        ],
        "released in front of the MQBACK: never handed out"
    );
    server.shutdown();
}

#[test]
fn a_client_that_goes_away_after_a_break_gives_back_what_it_fetched_ahead_with_count_1() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, _b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.break_connection(a.hconn);
    assert_eq!(got_uncommitted(&qm), names(6..10).into_iter().collect());
    drop(a);
    until_connections(&qm, 1);
    let expected: Vec<_> = names(5..10).into_iter().map(|p| (p, "visible", 1)).collect();
    assert_eq!(queue(&qm), expected);
    server.shutdown();
}

#[test]
fn regression_get_disabled_answers_2016_at_the_next_get_and_gives_back_what_was_fetched_ahead() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.set_get_enabled("Q", false);
    assert_eq!(a.get(), Err(INHIBITED), "as the fake in-process answers at this call");
    assert_eq!(a.get(), Err(INHIBITED));
    let mut expected = vec![("m05".to_owned(), "got-uncommitted", 0)];
    expected.extend(names(6..10).into_iter().map(|p| (p, "visible", 0)));
    assert_eq!(
        queue(&qm),
        expected,
        "the get before the inhibit stays; what was fetched ahead is back, count unchanged"
    );
    a.commit();
    assert_eq!(b.get(), Err(INHIBITED));
    qm.set_get_enabled("Q", true);
    assert_eq!(b.get(), Ok(("m06".into(), 0)), "another consumer gets them");
    assert_eq!(a.take(3), names(7..10), "and the client reads on once enabled");
    assert_eq!((a.get(), b.get()), (Err(EMPTY), Err(EMPTY)));
    a.commit();
    b.commit();
    assert_eq!(qm.depth("Q"), Some(0), "nothing lost, nothing twice");
    server.shutdown();
}

#[test]
fn regression_quiescing_answers_2161_at_the_next_get_that_fails_if_quiescing() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.quiesce();
    assert_eq!(a.get(), Err(QUIESCING), "MQGMO_FAIL_IF_QUIESCING");
    let expected: Vec<_> = names(6..10).into_iter().map(|p| (p, "visible", 0)).collect();
    assert_eq!(&queue(&qm)[1..], &expected[..], "fetched ahead, back unchanged");
    assert_eq!(
        b.get_while_quiescing(),
        Ok(("m06".into(), 0)),
        "another consumer gets them"
    );
    assert_eq!(
        a.get_while_quiescing(),
        Ok(("m07".into(), 0)),
        "a get that does not fail"
    );
    qm.start();
    assert_eq!(a.take(2), names(8..10));
    a.commit();
    b.commit();
    assert_eq!(qm.depth("Q"), Some(0));
    server.shutdown();
}

#[test]
fn get_disabled_on_another_queue_or_quiescing_leave_unrelated_read_ahead_alone() {
    let (qm, mut server) = serve(10_000, 64);
    let (a, _b) = a_holds_four_fetched_ahead(&qm, &server);
    qm.set_get_enabled("OUT", false);
    assert_eq!(a.take(1), names(6..7));
    assert_eq!(got_uncommitted(&qm), names(5..10).into_iter().collect(), "still held");
    qm.set_get_enabled("OUT", true);
    a.commit();
    put(&qm, names(10..20));
    assert_eq!(a.get_while_quiescing(), Ok(("m07".into(), 0)));
    assert_eq!(got_uncommitted(&qm).len(), 2, "read ahead");
    qm.quiesce();
    assert_eq!(
        a.get_while_quiescing(),
        Ok(("m08".into(), 0)),
        "terms without FAIL_IF_QUIESCING"
    );
    qm.start();
    a.commit();
    server.shutdown();
}

#[test]
fn a_higher_priority_message_put_after_a_read_ahead_comes_after_the_messages_held() {
    for (read_ahead, next) in [(64, "m06"), (0, "urgent")] {
        let (qm, mut server) = serve(10_000, read_ahead);
        let a = Client::new(&server);
        put(&qm, numbered(10));
        learn(&a, 5);
        assert_eq!(a.take(1), names(5..6));
        let urgent = PutSpec {
            priority: Some(9),
            ..PutSpec::text("urgent")
        };
        qm.put_message("Q", urgent).expect("put");
        assert_eq!(
            a.get().map(|(p, _)| p).as_deref(),
            Ok(next),
            "read-ahead {read_ahead}: a documented difference, MQ's order without it"
        );
        server.shutdown();
    }
}

/// QM, channel and Q with MAXMSGL 100 MiB, served with read-ahead `read_ahead`.
fn serve_large(read_ahead: u32) -> (FakeQm, ServerHandle) {
    let mut config = FakeConfig::default();
    config.queue_manager.max_msg_length = MAX_MSG_LENGTH;
    config
        .channels
        .push(ChannelDef::new("APP.SVRCONN").max_msg_length(MAX_MSG_LENGTH));
    config.queues.push(QueueDef::new("Q").max_msg_length(MAX_MSG_LENGTH));
    config.queues.push(QueueDef::new("OUT"));
    let qm = FakeQm::new(config);
    let server = Server::bind("127.0.0.1:0", qm.clone())
        .map(|s| s.with_read_ahead(read_ahead))
        .and_then(Server::spawn)
        .expect("serve on loopback");
    (qm, server)
}

/// MQ's largest message, 100 MiB.
const MAX_MSG_LENGTH: i32 = 100 * 1024 * 1024;

#[test]
fn regression_a_read_ahead_reply_stays_within_one_frame_after_a_100_mib_message() {
    let (qm, mut server) = serve_large(64);
    let a = Client::new(&server);
    put(&qm, numbered(2));
    learn(&a, 2);
    let first = MAX_MSG_LENGTH as usize - 1024;
    let second = 128 * 1024;
    for (len, byte) in [(first, b'a'), (second, b'b')] {
        qm.put_message("Q", PutSpec::text(vec![byte; len])).expect("put");
    }
    let gmo = GetOptions {
        options: MQGMO_SYNCPOINT.0,
        wait_interval: 0,
        match_options: MQMO_MATCH_MSG_ID.0 | MQMO_MATCH_CORREL_ID.0,
    };
    let mut buffer = vec![0u8; MAX_MSG_LENGTH as usize];
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut md = default_md();
        let g = a.verbs.get(a.hconn, a.input, &mut md, &gmo, &mut buffer);
        got.push(g.map(|g| (g.data_length, g.warning, buffer[0], md.BackoutCount)));
    }
    assert_eq!(got, [Ok((first, 0, b'a', 0)), Ok((second, 0, b'b', 0))]);
    a.commit();
    assert_eq!(qm.depth("Q"), Some(0));
    server.shutdown();
}

/// What one client sees in a script of gets, puts under syncpoint, commits and backouts on
/// a server with MAXUMSGS 7, with and without read-ahead.
fn maxumsgs_transcript(read_ahead: u32) -> Vec<String> {
    let (qm, mut server) = serve(7, read_ahead);
    put(&qm, numbered(40));
    let a = Client::new(&server);
    let mut log = Vec::new();
    let get_until_failure = |log: &mut Vec<String>| loop {
        match a.get() {
            Ok((p, n)) => log.push(format!("{p}/{n}")),
            Err(r) => break log.push(format!("reason {r}")),
        }
    };
    get_until_failure(&mut log);
    a.backout();
    get_until_failure(&mut log);
    a.commit();
    log.extend(a.take(3));
    log.push(format!("put {:?}", a.put_out()));
    log.push(format!("put {:?}", a.put_out()));
    get_until_failure(&mut log);
    log.push(format!("put {:?}", a.put_out()));
    a.commit();
    log.extend(a.take(2));
    a.backout();
    log.push(format!("depth {:?}", qm.depth("Q")));
    server.shutdown();
    log
}

#[test]
fn maxumsgs_answers_2024_at_the_same_get_as_without_read_ahead() {
    let with = maxumsgs_transcript(64);
    let without = maxumsgs_transcript(0);
    assert_eq!(with, without);
    let limit = format!("reason {}", MQRC_SYNCPOINT_LIMIT_REACHED.0);
    assert_eq!(with[7], limit, "the eighth get of the first unit of work: {with:?}");
    assert_eq!(with[15], limit, "and of the second: {with:?}");
    assert_eq!(with[23], limit, "three gets and two puts, then two gets: {with:?}");
    assert_eq!(with[24], format!("put Err({})", MQRC_SYNCPOINT_LIMIT_REACHED.0));
}

/// Gets with a small buffer meet a long message fetched ahead and then one left on the queue.
fn truncation_transcript(read_ahead: u32) -> Vec<String> {
    let (qm, mut server) = serve(10_000, read_ahead);
    let long = "L".repeat(100);
    put(
        &qm,
        ["s0", "s1", "s2", "s3", &long, "s5", "s6", &long, "s8"].map(String::from),
    );
    let a = Client::new(&server);
    let mut log = learn(&a, 3);
    let mut step = |buffer: usize| {
        log.push(match a.get_into(buffer) {
            Ok((p, n)) => format!("{}/{n}", &p[..p.len().min(4)]),
            Err((r, len)) => format!("reason {r} length {len}"),
        });
    };
    // The first get (a large buffer) reads the long message ahead; the small buffer meets it.
    step(1024);
    step(50);
    step(50);
    step(1024);
    step(50);
    a.commit();
    // Read ahead with a small buffer: the long message is left on the queue.
    step(50);
    step(50);
    step(1024);
    step(1024);
    a.commit();
    log.push(format!("{:?}", queue(&qm)));
    server.shutdown();
    log
}

#[test]
fn a_message_longer_than_the_buffer_answers_2080_and_stays_for_the_next_get() {
    let with = truncation_transcript(64);
    assert_eq!(with, truncation_transcript(0));
    let truncated = format!("reason {} length 100", MQRC_TRUNCATED_MSG_FAILED.0);
    assert_eq!(
        with[3..],
        [
            "s3/0".to_owned(),
            truncated.clone(),
            truncated.clone(),
            "LLLL/0".into(),
            "s5/0".into(),
            "s6/0".into(),
            truncated,
            "LLLL/0".into(),
            "s8/0".into(),
            "[]".into(),
        ]
    );
}

#[test]
fn with_read_ahead_off_each_get_takes_one_message() {
    let (qm, mut server) = serve(10_000, 0);
    put(&qm, numbered(10));
    let a = Client::new(&server);
    learn(&a, 5);
    assert_eq!(a.take(1), names(5..6));
    assert_eq!(got_uncommitted(&qm), names(5..6).into_iter().collect());
    a.commit();
    assert_eq!(qm.depth("Q"), Some(4));
    server.shutdown();
}

/// One call of a single consumer in the transcript property test.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// MQGET under syncpoint with a buffer of 1024 bytes (or 50 when false).
    Get(bool),
    /// MQPUT under syncpoint to OUT.
    PutOut,
    /// MQPUT1 to Q outside syncpoint.
    PutQ,
    /// MQINQ of CURDEPTH.
    Depth,
    Commit,
    Backout,
    /// MQCLOSE of the input handle and MQOPEN of a new one.
    Reopen,
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        10 => Just(Call::Get(true)),
        2 => Just(Call::Get(false)),
        2 => Just(Call::PutOut),
        1 => Just(Call::PutQ),
        1 => Just(Call::Depth),
        3 => Just(Call::Commit),
        2 => Just(Call::Backout),
        1 => Just(Call::Reopen),
    ]
}

/// Everything one consumer sees running `calls` on a server with read-ahead `read_ahead`,
/// MAXUMSGS `max_uncommitted`, and what is left on the queues at the end.
fn transcript(read_ahead: u32, max_uncommitted: i32, long: &[bool], calls: &[Call]) -> Vec<String> {
    let (qm, mut server) = serve(max_uncommitted, read_ahead);
    let long_payload = |i: usize| format!("m{i:02}{}", "L".repeat(100));
    put(
        &qm,
        long.iter()
            .enumerate()
            .map(|(i, &l)| if l { long_payload(i) } else { format!("m{i:02}") }),
    );
    let mut a = Client::new(&server);
    let mut log = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        log.push(match *call {
            Call::Get(big) => match a.get_into(if big { 1024 } else { 50 }) {
                Ok((p, n)) => format!("get {}/{n}", &p[..3]),
                Err((r, len)) => format!("get reason {r} length {len}"),
            },
            Call::PutOut => format!("put {:?}", a.put_out()),
            Call::PutQ => format!("put1 {:?}", a.put_q(&format!("p{i:03}"))),
            Call::Depth => format!("depth {:?}", a.depth()),
            Call::Commit => format!("commit {:?}", a.verbs.commit(a.hconn)),
            Call::Backout => format!("backout {:?}", a.verbs.backout(a.hconn)),
            Call::Reopen => {
                let closed = a.verbs.close(a.hconn, a.input);
                a.input = a.open("Q", INPUT);
                format!("reopen {closed:?}")
            }
        });
    }
    a.verbs.disconnect(a.hconn).expect("disconnect");
    log.push(format!("{:?}", queue(&qm)));
    log.push(format!("OUT {:?}", qm.depth("OUT")));
    server.shutdown();
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// For one consumer read-ahead is invisible: every call answers what it answers with
    /// read-ahead off (messages, backout counts, 2024, 2080, CURDEPTH), and the queues end
    /// the same.
    #[test]
    fn one_consumer_sees_the_same_calls_with_and_without_read_ahead(
        max_uncommitted in 2i32..12,
        long in proptest::collection::vec(proptest::bool::weighted(0.15), 25),
        calls in proptest::collection::vec(call(), 1..150),
    ) {
        let with = transcript(64, max_uncommitted, &long, &calls);
        let without = transcript(0, max_uncommitted, &long, &calls);
        prop_assert_eq!(with, without);
    }
}

/// What a consumer does next in the property test.
#[derive(Debug, Clone, Copy)]
enum Step {
    Get,
    Commit,
    Backout,
    /// MQDISC (commits), then connect again.
    Disconnect,
    /// The connection is lost without MQDISC, then connect again.
    Lose,
    /// The queue manager breaks the connection (`break`): the client learns of it at its
    /// next round trip, and is then replaced.
    Break,
}

fn step() -> impl Strategy<Value = (usize, Step)> {
    let step = prop_oneof![
        12 => Just(Step::Get),
        3 => Just(Step::Commit),
        2 => Just(Step::Backout),
        1 => Just(Step::Disconnect),
        1 => Just(Step::Lose),
        1 => Just(Step::Break),
    ];
    (0usize..2, step)
}

/// Two consumers and what the test knows: for each message its expected backout count, what
/// each consumer handed out in its unit of work, what a consumer whose connection broke
/// handed out that the break kept from the other one, and what was committed.
struct Run {
    qm: FakeQm,
    server: ServerHandle,
    clients: [Option<Client>; 2],
    backouts: BTreeMap<String, i32>,
    handed: [Vec<String>; 2],
    /// Set once the consumer's connection is broken, until the client is replaced: the
    /// messages it handed out that the fake still keeps for it.
    kept: [Option<Vec<String>>; 2],
    committed: BTreeSet<String>,
}

impl Run {
    fn client(&mut self, c: usize) -> &Client {
        let server = &self.server;
        self.clients[c].get_or_insert_with(|| Client::new(server))
    }

    fn get(&mut self, c: usize) -> Result<bool, TestCaseError> {
        let before = self.kept[c].as_ref().map(|_| self.snapshot());
        match self.client(c).get() {
            Ok((p, n)) => {
                prop_assert_eq!(n, self.backouts[&p], "backout count of {} handed out", p);
                prop_assert!(!self.committed.contains(&p), "{} was committed already", p);
                let other = 1 - c;
                let with_other =
                    self.handed[other].contains(&p) || self.kept[other].as_ref().is_some_and(|k| k.contains(&p));
                prop_assert!(!with_other, "{} is with the other consumer too", p);
                match &mut self.kept[c] {
                    Some(kept) => kept.push(p),
                    None => self.handed[c].push(p),
                }
                Ok(true)
            }
            Err(EMPTY) => Ok(false),
            Err(r) if let Some(before) = before => {
                prop_assert_eq!(r, 2009);
                self.replace_broken(c, before)?;
                Ok(false)
            }
            Err(r) => Err(TestCaseError::fail(format!("MQGET answered {r}"))),
        }
    }

    fn committed(&mut self, c: usize) -> Result<(), TestCaseError> {
        for p in self.handed[c].drain(..) {
            prop_assert!(self.committed.insert(p.clone()), "{} committed twice", p);
        }
        Ok(())
    }

    /// What was got and uncommitted, and how many connections the server has.
    fn snapshot(&self) -> (BTreeSet<String>, usize) {
        (got_uncommitted(&self.qm), self.qm.connections().len())
    }

    /// Client `c`, broken, has made a call that answered 2009 (`before` is the snapshot taken
    /// before it): what the break kept comes back, each message it handed out with backout
    /// count + 1, those it released unchanged. The client is replaced.
    fn replace_broken(&mut self, c: usize, (before, live): (BTreeSet<String>, usize)) -> Result<(), TestCaseError> {
        let returned: BTreeSet<String> = before.difference(&got_uncommitted(&self.qm)).cloned().collect();
        for p in self.kept[c].take().unwrap_or_default() {
            prop_assert!(returned.contains(&p), "{} was kept and did not come back", p);
            *self.backouts.get_mut(&p).expect("known") += 1;
        }
        self.clients[c] = None;
        until_connections(&self.qm, live - 1);
        Ok(())
    }

    /// The connection of `c` is lost: everything it held comes back with backout count + 1.
    fn lose(&mut self, c: usize) -> Result<(), TestCaseError> {
        let Some(client) = self.clients[c].take() else {
            return Ok(());
        };
        let before = got_uncommitted(&self.qm);
        let live = self.qm.connections().len();
        drop(client);
        until_connections(&self.qm, live - 1);
        let returned: BTreeSet<String> = before.difference(&got_uncommitted(&self.qm)).cloned().collect();
        let held = self.handed[c].drain(..).chain(self.kept[c].take().unwrap_or_default());
        for p in held.collect::<Vec<_>>() {
            prop_assert!(returned.contains(&p), "{} was handed out and did not come back", p);
        }
        for p in returned {
            *self.backouts.get_mut(&p).expect("known") += 1;
        }
        Ok(())
    }

    /// The queue manager breaks the connection of `c`: what it handed out comes back now
    /// (backout count + 1) unless it came from a read-ahead the client may still be handing
    /// out, which the fake keeps from the other consumer until the client learns of it.
    fn break_connection(&mut self, c: usize) -> Result<(), TestCaseError> {
        let Some(hconn) = self.clients[c].as_ref().map(|client| client.hconn) else {
            return Ok(());
        };
        if self.kept[c].is_some() {
            return Ok(());
        }
        let before = got_uncommitted(&self.qm);
        self.qm.break_connection(hconn);
        let after = got_uncommitted(&self.qm);
        for p in before.difference(&after) {
            *self.backouts.get_mut(p).expect("known") += 1;
        }
        let (kept, _returned): (Vec<String>, Vec<String>) = self.handed[c].drain(..).partition(|p| after.contains(p));
        self.kept[c] = Some(kept);
        Ok(())
    }

    fn run(&mut self, c: usize, step: Step) -> Result<(), TestCaseError> {
        if self.kept[c].is_some() && matches!(step, Step::Commit | Step::Backout | Step::Disconnect) {
            let before = self.snapshot();
            let client = self.clients[c].as_ref().expect("a broken client");
            let result = match step {
                Step::Commit => client.verbs.commit(client.hconn),
                Step::Backout => client.verbs.backout(client.hconn),
                _ => client.verbs.disconnect(client.hconn),
            };
            prop_assert_eq!(result, Err(2009), "{:?} on a broken connection", step);
            return self.replace_broken(c, before);
        }
        match step {
            Step::Get => {
                self.get(c)?;
            }
            Step::Commit => {
                self.client(c).commit();
                self.committed(c)?;
            }
            Step::Backout => {
                self.client(c).backout();
                for p in self.handed[c].drain(..) {
                    *self.backouts.get_mut(&p).expect("known") += 1;
                }
            }
            Step::Disconnect => {
                if let Some(client) = self.clients[c].take() {
                    client.verbs.disconnect(client.hconn).expect("disconnect");
                }
                self.committed(c)?;
            }
            Step::Lose => self.lose(c)?,
            Step::Break => self.break_connection(c)?,
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every message is got and committed exactly once, and never handed out to both
    /// consumers at once, whatever connections are lost or broken; each time it is handed
    /// out its backout count is the number of units of work that handed it out and were
    /// backed out or broken, plus the lost connections that held it (handed out or fetched
    /// ahead).
    #[test]
    fn two_consumers_commit_every_message_exactly_once(steps in proptest::collection::vec(step(), 1..120)) {
        const N: usize = 30;
        let (qm, server) = serve(10_000, 64);
        put(&qm, numbered(N));
        let mut run = Run {
            qm: qm.clone(),
            server,
            clients: [None, None],
            backouts: numbered(N).map(|p| (p, 0)).collect(),
            handed: [Vec::new(), Vec::new()],
            kept: [None, None],
            committed: BTreeSet::new(),
        };
        for (c, step) in steps {
            run.run(c, step)?;
        }
        // Drain what is left: both consumers, in turns of a few gets, until both find nothing.
        for c in 0..2 {
            run.run(c, Step::Commit)?;
        }
        let mut idle = 0;
        let mut turn = 0;
        while idle < 2 {
            let c = turn % 2;
            turn += 1;
            let mut any = false;
            for _ in 0..(turn % 7) + 1 {
                any |= run.get(c)?;
            }
            run.run(c, Step::Commit)?;
            idle = if any { 0 } else { idle + 1 };
        }
        let all: BTreeSet<String> = numbered(N).collect();
        prop_assert_eq!(&run.committed, &all);
        prop_assert_eq!(qm.depth("Q"), Some(0));
        run.server.shutdown();
    }
}
