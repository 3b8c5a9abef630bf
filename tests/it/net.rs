//! The fake queue manager over TCP, in this process: the remote library runs the real `mqi`
//! API, a vanished client is backed out, a vanished server answers 2009, and bad frames
//! close only their own connection.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use mqi::connection::{MqServer, ThreadNoBlock};
use mqi::constants::{MQGMO_NO_WAIT, MQGMO_SYNCPOINT, MQOO_INPUT_AS_Q_DEF, MQOO_OUTPUT, MQPMO_NO_SYNCPOINT};
use mqi::types::QueueName;
use mqi::{Connection, Object, Syncpoint};
use mqpilot::fake::net::protocol::{Encoder, Request, WireConnect, encode_md, kind, read_frame};
use mqpilot::fake::net::{RemoteAdmin, RemoteMqi, RemoteVerbs, Server, ServerHandle};
use mqpilot::fake::{ChannelDef, ConnectRequest, FakeConfig, FakeQm, QueueDef, Verbs, default_md};

type Conn = Connection<RemoteMqi, ThreadNoBlock>;

fn serve() -> (FakeQm, ServerHandle) {
    serve_with(|s| s)
}

/// As [`serve`], with the server's settings changed by `configure`.
fn serve_with(configure: impl FnOnce(Server) -> Server) -> (FakeQm, ServerHandle) {
    let mut config = FakeConfig::default();
    config.queue_manager.max_handles = 3;
    config
        .channels
        .push(ChannelDef::new("APP.SVRCONN").sharecnv(2).max_inst(5));
    config.queues.push(QueueDef::new("A"));
    config.queues.push(QueueDef::new("B"));
    let qm = FakeQm::new(config);
    let handle = Server::bind("127.0.0.1:0", qm.clone())
        .map(configure)
        .and_then(Server::spawn)
        .expect("serve on loopback");
    (qm, handle)
}

fn connect(lib: RemoteMqi) -> Result<Conn, i32> {
    let server = MqServer::try_from("APP.SVRCONN/TCP/localhost(1414)").expect("MQSERVER syntax");
    mqi::connect_lib(lib, &server)
        .map(mqi::result::Completion::discard_warning)
        .map_err(|e| e.2.0)
}

fn open<'c>(conn: &'c Conn, queue: &str, options: mqi::types::MQOO) -> Result<Object<&'c Conn>, i32> {
    Object::open(conn, &(QueueName::from_str(queue).expect("name"), options))
        .map(mqi::result::Completion::discard_warning)
        .map_err(|e| e.2.0)
}

fn get(obj: &Object<&Conn>, options: mqi::types::MQGMO) -> Result<Option<Vec<u8>>, i32> {
    let mut buf = vec![0u8; 1024];
    obj.get_data(&options, &mut buf[..])
        .map(|c| c.discard_warning().map(<[u8]>::to_vec))
        .map_err(|e| e.2.0)
}

#[test]
fn the_remote_library_runs_mqi_with_the_fakes_reason_codes() {
    let (qm, mut server) = serve();
    let addr = server.local_addr().to_string();
    let conn = connect(RemoteMqi::connect_to(addr.clone())).expect("connect");
    let out = open(&conn, "A", MQOO_OUTPUT).expect("open A for output");
    out.put_message(&MQPMO_NO_SYNCPOINT, "hello")
        .expect("put")
        .discard_warning();
    let input = open(&conn, "A", MQOO_INPUT_AS_Q_DEF).expect("open A for input");
    assert_eq!(
        get(&input, MQGMO_SYNCPOINT | MQGMO_NO_WAIT).expect("get"),
        Some(b"hello".to_vec())
    );
    let _ = Syncpoint::new(&conn).backout().expect("backout");
    assert_eq!(
        qm.browse("A")[0].backout_count,
        1,
        "MQBACK over TCP raises the backout count"
    );
    assert_eq!(get(&input, MQGMO_NO_WAIT).expect("get"), Some(b"hello".to_vec()));
    assert_eq!(get(&input, MQGMO_NO_WAIT).expect("get on empty"), None, "2033");
    // MAXHANDS 3: the third open fills it, the fourth gets 2017.
    let _third = open(&conn, "B", MQOO_OUTPUT).expect("third handle");
    assert_eq!(open(&conn, "B", MQOO_INPUT_AS_Q_DEF).err(), Some(2017));
    assert_eq!(open(&conn, "NOPE", MQOO_OUTPUT).err(), Some(2085));
    // Connections of one library share an instance (SHARECNV 2), another library's do not.
    let second = connect(RemoteMqi::connect_to(addr.clone())).expect("second process");
    let same = connect(RemoteMqi::connect_to(addr)).expect("third process");
    let channel = qm.channel("APP.SVRCONN").expect("channel");
    assert_eq!((channel.instances, channel.conversations), (3, 3));
    assert_eq!(qm.connections()[0].client_address, "127.0.0.1");
    drop((second, same));
    server.shutdown();
}

#[test]
fn connections_of_one_library_share_a_channel_instance_up_to_sharecnv() {
    let (qm, mut server) = serve();
    let lib = RemoteMqi::connect_to(server.local_addr().to_string());
    let conns: Vec<Conn> = (0..3).map(|_| connect(lib.clone()).expect("connect")).collect();
    let channel = qm.channel("APP.SVRCONN").expect("channel");
    assert_eq!((channel.instances, channel.conversations), (2, 3), "SHARECNV 2");
    drop(conns);
    assert_eq!(
        qm.channel("APP.SVRCONN").expect("channel").instances,
        0,
        "MQDISC ends them"
    );
    server.shutdown();
}

#[test]
fn maxinstc_counts_the_client_address_over_tcp() {
    let (qm, mut server) = serve();
    qm.define_channel(ChannelDef::new("APP.SVRCONN").sharecnv(1).max_inst(10).max_instc(2));
    let addr = server.local_addr().to_string();
    let lib = RemoteMqi::connect_to(addr.clone());
    let first = connect(lib.clone()).expect("first");
    let second = connect(RemoteMqi::connect_to(addr)).expect("second process, same address");
    assert_eq!(connect(lib).err(), Some(2537), "a third instance from 127.0.0.1");
    let channel = qm.channel("APP.SVRCONN").expect("channel");
    assert_eq!(channel.per_address.get("127.0.0.1"), Some(&2));
    drop((first, second));
    server.shutdown();
}

/// Sends a request frame on a raw socket and reads the answer's kind and body.
pub(crate) fn call(stream: &mut TcpStream, request: &Request) -> (u8, Vec<u8>) {
    let mut e = Encoder::default();
    request.encode(&mut e);
    stream.write_all(e.finish()).expect("send");
    let mut body = Vec::new();
    let k = read_frame(stream, &mut body).expect("answer");
    (k, body)
}

/// A raw client: connected over the channel, with `queue` open for input; returns hconn, hobj.
fn raw_client(addr: &str, queue: &str) -> (TcpStream, i32, i32) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let hconn = raw_connect(&mut s, 7);
    let hobj = raw_open(&mut s, hconn, queue);
    (s, hconn, hobj)
}

/// MQCONNX over the channel on a raw socket; returns the hconn.
pub(crate) fn raw_connect(s: &mut TcpStream, token: u64) -> i32 {
    let connect = Request::Connect {
        token,
        req: WireConnect {
            channel: Some("APP.SVRCONN".into()),
            ..WireConnect::default()
        },
    };
    let (k, body) = call(s, &connect);
    assert_eq!((k, body[0]), (kind::REPLY, 1), "connected: {body:?}");
    i32::from_le_bytes(body[5..9].try_into().expect("hconn"))
}

/// MQOPEN of `queue` for input on a raw socket; returns the hobj.
pub(crate) fn raw_open(s: &mut TcpStream, hconn: i32, queue: &str) -> i32 {
    let open = Request::Open {
        hconn,
        object_type: 1,
        name: queue.into(),
        options: MQOO_INPUT_AS_Q_DEF.0,
    };
    let (_, body) = call(s, &open);
    assert_eq!(body[0], 1, "opened: {body:?}");
    i32::from_le_bytes(body[5..9].try_into().expect("hobj"))
}

/// Sends a get on queue A that waits 60 s, lets the client vanish once the server waits on
/// it, and checks the server drops the connection well before the wait would end.
fn vanish_during_a_waiting_get(qm: &FakeQm, mut server: ServerHandle, mut s: TcpStream, hconn: i32, hobj: i32) {
    let mut e = Encoder::default();
    get_request(hconn, hobj, mqi::constants::MQGMO_WAIT.0, 60_000).encode(&mut e);
    s.write_all(e.finish()).expect("send");
    wait_for("the get to wait", || qm.waiting_gets("A") == 1);
    drop(s);
    wait_for("the server to drop the connection", || qm.connections().is_empty());
    assert_eq!(qm.waiting_gets("A"), 0);
    server.shutdown();
}

fn get_request(hconn: i32, hobj: i32, options: i32, wait: i32) -> Request {
    Request::Get {
        hconn,
        hobj,
        options,
        wait_interval: wait,
        match_options: 0,
        buffer_len: 1024,
        md: encode_md(&default_md()),
        ahead: 0,
    }
}

fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_client_that_vanishes_mid_unit_of_work_is_backed_out_and_its_instance_freed() {
    let (qm, mut server) = serve();
    qm.put_message("A", mqpilot::fake::PutSpec::text("one")).expect("put");
    let (mut s, hconn, hobj) = raw_client(&server.local_addr().to_string(), "A");
    let (_, body) = call(&mut s, &get_request(hconn, hobj, MQGMO_SYNCPOINT.0, 0));
    assert_eq!(body[0], 1, "got under syncpoint");
    assert_eq!(qm.browse("A")[0].state, "got-uncommitted");
    drop(s);
    wait_for("the server to drop the connection", || qm.connections().is_empty());
    let m = &qm.browse("A")[0];
    assert_eq!((m.state, m.backout_count), ("visible", 1));
    assert_eq!(qm.queue_status("A").expect("A").ipprocs, 0, "handle released");
    assert_eq!(qm.channel("APP.SVRCONN").expect("channel").instances, 0);
    server.shutdown();
}

#[test]
fn a_failed_mqdisc_still_releases_the_connection() {
    let (qm, mut server) = serve();
    qm.put_message("A", mqpilot::fake::PutSpec::text("one")).expect("put");
    let (mut s, hconn, hobj) = raw_client(&server.local_addr().to_string(), "A");
    let (_, body) = call(&mut s, &get_request(hconn, hobj, MQGMO_SYNCPOINT.0, 0));
    assert_eq!(body[0], 1, "got under syncpoint");
    qm.fail_next(mqpilot::fake::Verb::Disc, 1, 2195);
    let (_, body) = call(&mut s, &Request::Disc { hconn });
    let reason = i32::from_le_bytes(body[1..5].try_into().expect("a reason code"));
    assert_eq!(reason, 2195, "the MQDISC failed as injected: {body:?}");
    // The socket stays open, yet the connection it gave up is backed out and gone.
    wait_for("the connection to be released", || qm.connections().is_empty());
    let m = &qm.browse("A")[0];
    assert_eq!((m.state, m.backout_count), ("visible", 1));
    assert_eq!(qm.channel("APP.SVRCONN").expect("channel").instances, 0);
    drop(s);
    server.shutdown();
}

#[test]
fn a_client_that_vanishes_during_a_waiting_get_is_noticed_at_once() {
    let (qm, server) = serve();
    let (s, hconn, hobj) = raw_client(&server.local_addr().to_string(), "A");
    vanish_during_a_waiting_get(&qm, server, s, hconn, hobj);
}

#[test]
fn a_vanishing_client_is_noticed_during_a_waiting_get_after_reconnecting_on_its_socket() {
    let (qm, server) = serve();
    let (mut s, first, hobj) = raw_client(&server.local_addr().to_string(), "A");
    // A short waiting get starts the socket's watcher while the first connection is current.
    let (_, body) = call(&mut s, &get_request(first, hobj, mqi::constants::MQGMO_WAIT.0, 1));
    assert_eq!(body[0], 0, "nothing to get: {body:?}");
    let (_, body) = call(&mut s, &Request::Disc { hconn: first });
    assert_eq!(body[0], 1, "disconnected: {body:?}");
    let second = raw_connect(&mut s, 8);
    assert_ne!(second, first);
    let hobj = raw_open(&mut s, second, "A");
    // The watcher must break the second connection, the one whose get waits.
    vanish_during_a_waiting_get(&qm, server, s, second, hobj);
}

#[test]
fn a_call_in_flight_when_the_server_goes_away_answers_2009() {
    let (qm, mut server) = serve();
    let lib =
        RemoteMqi::over(RemoteVerbs::new(server.local_addr().to_string()).with_call_timeout(Duration::from_secs(5)));
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let conn = connect(lib).expect("connect");
            let input = open(&conn, "A", MQOO_INPUT_AS_Q_DEF).expect("open");
            let wait = mqi::constants::MQGMO_WAIT;
            let mut buf = [0u8; 16];
            let result = input.get_data(&(wait, mqi::get::GetWait::Wait(30_000)), &mut buf[..]);
            tx.send(result.err().map(|e| e.2.0)).expect("report");
        });
        wait_for("the get to wait", || qm.waiting_gets("A") == 1);
        server.shutdown();
        let reason = rx.recv_timeout(Duration::from_secs(10)).expect("the get returned");
        assert_eq!(reason, Some(2009));
    });
}

#[test]
fn a_server_that_stops_answering_gets_2009_after_the_call_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    // Answers MQCONNX, then reads every later frame and never answers.
    let silent = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut body = Vec::new();
        read_frame(&mut s, &mut body).expect("connect frame");
        let mut e = Encoder::frame(kind::REPLY);
        e.u8(1).i32(0).i32(1).u32(0);
        s.write_all(e.finish()).expect("reply");
        let _ = read_frame(&mut s, &mut body);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let lib = RemoteMqi::over(RemoteVerbs::new(addr).with_call_timeout(Duration::from_millis(200)));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let conn = connect(lib).expect("connect");
        let first = open(&conn, "A", MQOO_OUTPUT).err();
        let second = open(&conn, "A", MQOO_OUTPUT).err();
        let _ = tx.send((first, second));
    });
    // Without the deadline the call would wait for ever; the bound here only keeps a broken
    // build from hanging the test run.
    let (first, second) = rx.recv_timeout(Duration::from_secs(20)).expect("the call returned");
    assert_eq!(first, Some(2009));
    assert_eq!(second, Some(2009), "and broken from then on");
    silent.join().expect("silent server");
}

#[test]
fn connecting_to_no_server_answers_2538() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let lib = RemoteMqi::connect_to(format!("127.0.0.1:{port}"));
    assert_eq!(connect(lib).err(), Some(2538));
    let admin = RemoteAdmin::new(format!("127.0.0.1:{port}"));
    let err = admin.status().unwrap_err().to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn a_connection_may_only_use_its_own_hconn() {
    let (_qm, mut server) = serve();
    let addr = server.local_addr().to_string();
    let (_a, hconn_a, _) = raw_client(&addr, "A");
    let (mut b, _, _) = raw_client(&addr, "B");
    let (_, body) = call(&mut b, &Request::Cmit { hconn: hconn_a });
    assert_eq!(
        (body[0], i32::from_le_bytes(body[1..5].try_into().expect("rc"))),
        (0, 2018)
    );
    server.shutdown();
}

#[test]
fn bad_frames_get_an_error_frame_and_only_their_connection_closes() {
    let (qm, mut server) = serve();
    let addr = server.local_addr().to_string();
    let good = connect(RemoteMqi::connect_to(addr.clone())).expect("connect");
    let cases: [&[u8]; 4] = [
        &[6, 0, 0, 0, 9, kind::CMIT, 1, 0, 0, 0], // version 9
        &[0xff, 0xff, 0xff, 0x7f, 1, kind::PUT],  // 2 GiB frame
        &[2, 0, 0, 0, 1, 200],                    // unknown kind
        &[3, 0, 0, 0, 1, kind::CMIT, 1],          // truncated integer
    ];
    for (i, frame) in cases.iter().enumerate() {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(frame).expect("send");
        let mut body = Vec::new();
        assert_eq!(
            read_frame(&mut s, &mut body).expect("error frame"),
            kind::ERROR,
            "case {i}"
        );
        let text = String::from_utf8_lossy(&body[4..]).into_owned();
        assert!(!text.is_empty(), "case {i} says why");
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).expect("closed"), 0, "case {i}: closed");
    }
    assert_eq!(server.protocol_errors(), 4);
    // The well-behaved connection is unaffected.
    let out = open(&good, "A", MQOO_OUTPUT).expect("open");
    out.put_message(&MQPMO_NO_SYNCPOINT, "still here")
        .expect("put")
        .discard_warning();
    assert_eq!(qm.depth("A"), Some(1));
    server.shutdown();
}

/// MQ's largest message, 100 MiB.
const MAX_MSG_LENGTH: i32 = 100 * 1024 * 1024;

#[test]
fn a_get_buffer_longer_than_the_channels_maxmsgl_gets_2010_as_in_process() {
    let mut config = FakeConfig::default();
    config.queue_manager.max_msg_length = MAX_MSG_LENGTH;
    config
        .channels
        .push(ChannelDef::new("APP.SVRCONN").max_msg_length(MAX_MSG_LENGTH));
    config.queues.push(QueueDef::new("A"));
    let qm = FakeQm::new(config);
    let mut server = Server::bind("127.0.0.1:0", qm.clone())
        .and_then(Server::spawn)
        .expect("serve on loopback");
    let (mut s, hconn, hobj) = raw_client(&server.local_addr().to_string(), "A");
    let reason = |body: &[u8]| i32::from_le_bytes(body[1..5].try_into().expect("a reason code"));
    for (buffer_len, expected) in [
        (MAX_MSG_LENGTH as u32, 2033),
        (MAX_MSG_LENGTH as u32 + 1, 2010),
        (u32::MAX, 2010),
    ] {
        let mut get = get_request(hconn, hobj, mqi::constants::MQGMO_NO_WAIT.0, 0);
        if let Request::Get { buffer_len: len, .. } = &mut get {
            *len = buffer_len;
        }
        let (_, body) = call(&mut s, &get);
        assert_eq!(reason(&body), expected, "buffer of {buffer_len} bytes");
    }
    drop(s);
    server.shutdown();
}

#[test]
fn a_socket_without_an_mq_connection_is_closed_once_it_idles() {
    let (qm, mut server) = serve_with(|s| s.with_unconnected_idle(Duration::from_millis(200)));
    let addr = server.local_addr().to_string();
    let mut idle = TcpStream::connect(&addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut body = Vec::new();
    assert_eq!(read_frame(&mut idle, &mut body).expect("an error frame"), kind::ERROR);
    let text = String::from_utf8_lossy(&body[4..]).into_owned();
    assert!(text.contains("no MQCONNX"), "{text}");
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).expect("closed"), 0);
    assert_eq!(server.protocol_errors(), 0, "an idle socket sent no bad frame");

    // A connected socket may idle as long as it likes.
    let (mut s, hconn, _) = raw_client(&addr, "A");
    std::thread::sleep(Duration::from_millis(600));
    raw_open(&mut s, hconn, "B");
    assert_eq!(qm.connections().len(), 1);
    drop(s);
    server.shutdown();
}

#[test]
fn regression_backout_counts_stop_at_999_999_999_and_the_admin_refuses_larger_ones() {
    let (qm, mut server) = serve();
    let max = mqpilot::fake::MAX_BACKOUT_COUNT;
    let seeded = |n| mqpilot::fake::PutSpec {
        backout_count: n,
        ..mqpilot::fake::PutSpec::text("poison")
    };
    qm.put_message("A", seeded(max)).expect("put");
    let (mut s, hconn, hobj) = raw_client(&server.local_addr().to_string(), "A");
    let (_, body) = call(&mut s, &get_request(hconn, hobj, MQGMO_SYNCPOINT.0, 0));
    assert_eq!(body[0], 1, "got under syncpoint");
    let (_, body) = call(&mut s, &Request::Back { hconn });
    assert_eq!(body[0], 1, "backed out: {body:?}");
    let m = &qm.browse("A")[0];
    assert_eq!((m.state, m.backout_count), ("visible", max), "MQ stops counting there");
    assert_eq!(qm.connections().len(), 1, "the connection serves on");

    qm.put_message("A", seeded(i32::MAX)).expect("put");
    assert_eq!(qm.browse("A")[1].backout_count, max, "seeded at most at MQ's largest");
    let admin = RemoteAdmin::new(server.local_addr().to_string());
    let message = |n| mqpilot::fake::net::AdminMessage {
        data: "poison".into(),
        backout_count: n,
        ..mqpilot::fake::net::AdminMessage::default()
    };
    for n in [i32::MAX, max + 1, -1] {
        let err = admin.put("A", vec![message(0), message(n)]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("message 2 has backout count {n}")) && err.contains("nothing was put"),
            "{err}"
        );
    }
    assert_eq!(qm.depth("A"), Some(2), "a refused put puts nothing");
    admin.put("A", vec![message(max)]).expect("MQ's largest is accepted");
    drop(s);
    server.shutdown();
}

#[test]
fn regression_mqconnx_strings_longer_than_mqs_are_refused_and_never_reach_status() {
    let (qm, mut server) = serve();
    let addr = server.local_addr().to_string();
    // A raw client sending a 60 MiB application name: its frame is refused, twice over.
    for token in [1, 2] {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let connect = Request::Connect {
            token,
            req: WireConnect {
                channel: Some("APP.SVRCONN".into()),
                appl_name: "x".repeat(60 << 20),
                ..WireConnect::default()
            },
        };
        let (k, body) = call(&mut s, &connect);
        let text = String::from_utf8_lossy(body.get(4..).unwrap_or_default()).into_owned();
        assert_eq!(k, kind::ERROR, "refused: {:?}", &text[..text.len().min(80)]);
        assert!(text.contains("application name longer than 28 characters"), "{text}");
    }
    assert!(qm.connections().is_empty());
    RemoteAdmin::new(addr.clone()).status().expect("status answers");

    // The remote library answers what the in-process fake does, and cuts a long application
    // name to MQ's 28 characters, as both show it.
    let remote = RemoteVerbs::new(addr);
    let request = |change: fn(&mut ConnectRequest)| {
        let mut req = ConnectRequest {
            channel: Some("APP.SVRCONN".into()),
            ..ConnectRequest::default()
        };
        change(&mut req);
        req
    };
    type Change = fn(&mut ConnectRequest);
    let cases: [(Change, i32); 5] = [
        (|r| r.qmgr_name = "Q".repeat(49), 2058),
        (|r| r.channel = Some("C".repeat(21)), 2059),
        (|r| r.channel = Some("NO.SUCH.SVRCONN".into()), 2540),
        (|r| r.user = Some("u".repeat(1025)), 2595),
        (|r| r.password = Some("p".repeat(1025)), 2595),
    ];
    for (change, reason) in cases {
        assert_eq!(remote.connect(&request(change)), Err(reason));
        assert_eq!(qm.connect(&request(change)), Err(reason), "in-process");
    }
    let long_name = |r: &mut ConnectRequest| r.appl_name = "an-application-name-of-40-characters-xyz".into();
    let hconn = remote.connect(&request(long_name)).expect("remote connect");
    let local = qm.connect(&request(long_name)).expect("in-process connect");
    let shown: Vec<String> = qm.connections().into_iter().map(|c| c.appl_name).collect();
    assert_eq!(shown, ["an-application-name-of-40-ch"; 2]);
    remote.disconnect(hconn).expect("disconnect");
    qm.disconnect(local).expect("disconnect");
    server.shutdown();
}

#[test]
fn a_short_idle_limit_for_unconnected_sockets_leaves_a_connected_clients_slow_frame_alone() {
    let (qm, mut server) = serve_with(|s| s.with_unconnected_idle(Duration::from_millis(200)));
    let (mut s, hconn, _) = raw_client(&server.local_addr().to_string(), "A");
    let mut e = Encoder::default();
    Request::Open {
        hconn,
        object_type: 1,
        name: "B".into(),
        options: MQOO_INPUT_AS_Q_DEF.0,
    }
    .encode(&mut e);
    let frame = e.finish().to_vec();
    // A frame that arrives in two parts, 600 ms apart: within the frame-stall limit.
    s.write_all(&frame[..8]).expect("first part");
    std::thread::sleep(Duration::from_millis(600));
    s.write_all(&frame[8..]).expect("the rest");
    let mut body = Vec::new();
    assert_eq!(read_frame(&mut s, &mut body).expect("answered"), kind::REPLY);
    assert_eq!(qm.connections().len(), 1, "the connection lives on");
    server.shutdown();
}

#[test]
fn sockets_past_the_most_allowed_are_closed_at_once_and_counted() {
    let (qm, mut server) = serve_with(|s| s.with_max_sockets(2));
    let addr = server.local_addr().to_string();
    // One MQ connection and one socket that has not connected fill the server.
    let first = connect(RemoteMqi::connect_to(addr.clone())).expect("first client");
    let held = TcpStream::connect(&addr).expect("an idle socket");
    // The third socket is accepted and closed at once, without a thread or a frame.
    let mut third = TcpStream::connect(&addr).expect("the listener still accepts");
    third.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut rest = Vec::new();
    assert_eq!(third.read_to_end(&mut rest).expect("closed"), 0, "{rest:?}");
    assert_eq!(server.refused_sockets(), 1);
    // An MQ client past the limit gets a connection-level reason code, which it retries.
    let refused = connect(RemoteMqi::connect_to(addr.clone())).err();
    assert!(matches!(refused, Some(2009 | 2538)), "{refused:?}");
    assert_eq!(server.refused_sockets(), 2);
    assert_eq!(qm.connections().len(), 1, "the first client is untouched");
    // A socket that goes frees its place.
    drop(held);
    wait_for("a freed place to take a new client", || {
        connect(RemoteMqi::connect_to(addr.clone())).is_ok()
    });
    drop(first);
    server.shutdown();
}
