//! What a `mqpilot fake-qm` process holds in memory: an MQGET costs the message it returns,
//! not the client's buffer length. Measured on a real server process from
//! `/proc/<pid>/status`, so the test's own threads do not count.
#![cfg(target_os = "linux")]

use std::net::TcpStream;
use std::time::Duration;

use mqpilot::fake::default_md;
use mqpilot::fake::net::AdminMessage;
use mqpilot::fake::net::protocol::{Request, encode_md};

use crate::net::{call, raw_connect, raw_open};
use crate::net_procs::FakeQmProcess;

/// A queue manager, channel and queue that allow MQ's largest message (100 MiB).
const CONFIG: &str = r#"
[queue_manager]
name = "QM1"
max_msg_length = 104857600

[[channel]]
name = "APP.SVRCONN"
max_msg_length = 104857600

[[queue]]
name = "A"
max_msg_length = 104857600
"#;

const MIB: u64 = 1024 * 1024;

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`: resident now, at the peak).
fn memory(server: &FakeQmProcess, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.proc.pid())).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// A raw client with A open for input on the server; its socket, hconn and hobj.
fn client(server: &FakeQmProcess) -> (TcpStream, i32, i32) {
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let hconn = raw_connect(&mut s, 1);
    let hobj = raw_open(&mut s, hconn, "A");
    (s, hconn, hobj)
}

/// An MQGET without wait into a buffer of `buffer_len` bytes: the reason and the data.
fn get(s: &mut TcpStream, hconn: i32, hobj: i32, buffer_len: u32) -> (i32, Vec<u8>) {
    let request = Request::Get {
        hconn,
        hobj,
        options: mqi::constants::MQGMO_NO_WAIT.0,
        wait_interval: 0,
        match_options: 0,
        buffer_len,
        md: encode_md(&default_md()),
        ahead: 0,
    };
    let (_, body) = call(s, &request);
    let reason = i32::from_le_bytes(body[1..5].try_into().expect("a reason code"));
    if body[0] != 1 {
        return (reason, Vec::new());
    }
    // u8 ok, i32 reason, u64 data length, MQMD (u32 length + bytes), data (u32 length + bytes).
    let md_len = u32::from_le_bytes(body[13..17].try_into().expect("MQMD length")) as usize;
    let at = 17 + md_len;
    let len = u32::from_le_bytes(body[at..at + 4].try_into().expect("data length")) as usize;
    (reason, body[at + 4..at + 4 + len].to_vec())
}

#[test]
fn regression_an_mqget_holds_memory_for_the_message_it_returns_not_for_its_buffer_length() {
    let server = FakeQmProcess::start(CONFIG);
    let (mut s, hconn, hobj) = client(&server);
    let before = memory(&server, "VmHWM");
    for _ in 0..4 {
        assert_eq!(get(&mut s, hconn, hobj, 100 * 1024 * 1024).0, 2033);
    }
    let message = AdminMessage {
        data: "small".into(),
        ..AdminMessage::default()
    };
    server.admin().put("A", vec![message]).expect("put");
    assert_eq!(get(&mut s, hconn, hobj, 100 * 1024 * 1024), (0, b"small".to_vec()));
    let grown = memory(&server, "VmHWM").saturating_sub(before);
    assert!(
        grown < 32 * MIB,
        "the server's peak memory grew by {} MiB for gets of nothing and of 5 bytes",
        grown / MIB
    );
}

#[test]
fn regression_a_socket_keeps_no_large_frame_while_it_idles() {
    const BIG: usize = 90 * 1024 * 1024;
    let server = FakeQmProcess::start(CONFIG);
    let (mut connected, hconn, hobj) = client(&server);
    let before = memory(&server, "VmRSS");
    // Large MQPUTs on sockets with no MQ connection (2018), which then idle.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&server.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let put = Request::Put {
            hconn: 0,
            hobj: 1,
            options: 0,
            md: encode_md(&default_md()),
            data: vec![b'x'; BIG],
        };
        let (_, body) = call(&mut s, &put);
        assert_eq!(i32::from_le_bytes(body[1..5].try_into().expect("reason")), 2018);
        idle.push(s);
    }
    // A large message put and got on a connected socket: a large request and a large reply.
    let put1 = Request::Put1 {
        hconn,
        object_type: mqi::constants::MQOT_Q.0,
        name: "A".into(),
        options: mqi::constants::MQPMO_NO_SYNCPOINT.0,
        md: encode_md(&default_md()),
        data: vec![b'y'; BIG],
    };
    let (_, body) = call(&mut connected, &put1);
    assert_eq!(body[..5], [1, 0, 0, 0, 0], "put");
    let (reason, data) = get(&mut connected, hconn, hobj, BIG as u32);
    assert_eq!((reason, data.len()), (0, BIG));
    let held = memory(&server, "VmRSS").saturating_sub(before);
    assert!(
        held < 64 * MIB,
        "four idle sockets that carried 90 MiB frames hold {} MiB",
        held / MIB
    );
    drop(idle);
}
