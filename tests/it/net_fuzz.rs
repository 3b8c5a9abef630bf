//! Protocol robustness against a real `mqpilot fake-qm` process: random, truncated and
//! out-of-order frames never take the server down, and a well-behaved client working
//! alongside them is unaffected.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::str::FromStr;
use std::time::Duration;

use mqi::Object;
use mqi::connection::MqServer;
use mqi::constants::{MQGMO_NO_WAIT, MQOO_INPUT_AS_Q_DEF, MQOO_OUTPUT, MQPMO_NO_SYNCPOINT};
use mqi::types::QueueName;
use mqpilot::fake::default_md;
use mqpilot::fake::net::RemoteMqi;
use mqpilot::fake::net::protocol::{Encoder, Request, WireConnect, encode_md, kind};

use crate::net_procs::FakeQmProcess;

const CONFIG: &str = r#"
[[channel]]
name = "APP.SVRCONN"

[[queue]]
name = "A"
"#;

/// xorshift64*: a fixed-seed generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).expect("small")
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A valid frame of a random request kind, with random numbers in it.
fn valid_frame(rng: &mut Rng) -> Vec<u8> {
    let h = (rng.next() % 8) as i32;
    let request = match rng.below(8) {
        0 => Request::Connect {
            token: rng.next(),
            req: WireConnect {
                channel: Some("APP.SVRCONN".into()),
                ..WireConnect::default()
            },
        },
        1 => Request::Open {
            hconn: h,
            object_type: 1,
            name: "A".into(),
            options: rng.next() as i32,
        },
        2 => Request::Get {
            hconn: h,
            hobj: 1,
            options: rng.next() as i32 & !0x1, // no MQGMO_WAIT: no long waits
            wait_interval: 0,
            match_options: rng.next() as i32,
            buffer_len: rng.next() as u32,
            md: encode_md(&default_md()),
            ahead: rng.next() as u32,
        },
        3 => Request::Put {
            hconn: h,
            hobj: 1,
            options: rng.next() as i32,
            md: encode_md(&default_md()),
            data: rng.bytes(20),
        },
        4 => Request::Inq {
            hconn: h,
            hobj: rng.next() as i32,
            selectors: (0..rng.below(5)).map(|_| rng.next() as i32).collect(),
        },
        5 => Request::Admin(rng.bytes(30)),
        6 => Request::Disc { hconn: h },
        _ => Request::Back { hconn: h },
    };
    let mut e = Encoder::default();
    request.encode(&mut e);
    e.finish().to_vec()
}

/// One hostile connection: some frames, valid or not, cut anywhere; then close.
fn hostile(addr: &str, rng: &mut Rng) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        panic!("the server stopped accepting")
    };
    s.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    for _ in 0..1 + rng.below(4) {
        let mut frame = match rng.below(5) {
            0 => {
                let n = rng.below(64);
                rng.bytes(n)
            }
            1 => {
                let mut f = valid_frame(rng);
                let cut = rng.below(f.len() as u64);
                f.truncate(cut.max(1));
                f
            }
            2 => {
                let mut f = valid_frame(rng);
                let i = rng.below(f.len() as u64);
                f[i] ^= 1 << rng.below(8);
                f
            }
            3 => {
                let len = u32::try_from(2 + rng.below(40)).expect("small");
                let mut f = len.to_le_bytes().to_vec();
                f.push(1);
                f.push(rng.below(256) as u8);
                f.extend(rng.bytes(len as usize - 2));
                f
            }
            _ => valid_frame(rng),
        };
        if frame.is_empty() {
            frame.push(0);
        }
        if s.write_all(&frame).is_err() {
            return;
        }
        // Read whatever comes back (a reply, an error frame, or nothing yet).
        let mut buf = [0u8; 4096];
        if let Ok(0) = s.read(&mut buf) {
            return;
        }
    }
}

#[test]
fn random_and_truncated_frames_never_take_the_server_down() {
    let mut server = FakeQmProcess::start(CONFIG);
    let mqserver = MqServer::try_from("APP.SVRCONN/TCP/localhost(1414)").expect("MQSERVER");
    let conn =
        mqi::connect_lib::<mqi::connection::ThreadNoBlock, _>(RemoteMqi::connect_to(server.addr.clone()), &mqserver)
            .expect("a well-behaved client connects")
            .discard_warning();
    let queue = QueueName::from_str("A").expect("name");
    let out = Object::open(&conn, &(queue, MQOO_OUTPUT))
        .expect("open")
        .discard_warning();
    let input = Object::open(&conn, &(queue, MQOO_INPUT_AS_Q_DEF))
        .expect("open")
        .discard_warning();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 64];
    for round in 0..300 {
        hostile(&server.addr, &mut rng);
        if round % 25 == 0 {
            let text = format!("round {round}");
            out.put_message(&MQPMO_NO_SYNCPOINT, text.as_str())
                .expect("the good client's put")
                .discard_warning();
            let got = input
                .get_data(&MQGMO_NO_WAIT, &mut buf[..])
                .expect("the good client's get")
                .discard_warning()
                .map(<[u8]>::to_vec);
            assert_eq!(got.as_deref(), Some(text.as_bytes()), "round {round}");
        }
    }
    assert!(server.proc.running(), "the server is still running");
    let status = server.status();
    assert!(status.connections.iter().filter(|c| c.broken.is_none()).count() >= 1);
    drop(input);
    drop(out);
    drop(conn);
    let log = server.proc.stderr.read();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    assert!(log.contains("bad frame"), "refusals are logged:\n{log}");
    let _ = kind::ERROR;
}
