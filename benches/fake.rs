//! What one consumer cycle costs on the fake queue manager, next to a plain in-memory queue.
//!
//! The cycle is MQPUT (no syncpoint), MQGET under syncpoint and MQCMIT of a 1 KiB message,
//! through `mqi` on `FakeMqi`: the path production code takes. The baseline pushes a copy of
//! the same payload onto a `Mutex<VecDeque<Vec<u8>>>` and pops it off, allocation and free
//! included, since the fake copies the payload too. Target: a cycle on one thread costs at
//! most 10x the baseline. Results and how to read them are in BENCHMARKS.md.
//!
//! Each benchmark thread has its own connection and queue handle, opened once per thread
//! outside the timed part and reused for every iteration; all of them share one queue
//! manager and one queue, as consumers of one queue do.
//!
//! Two more cases measure how a get's cost grows with messages it must pass over, through the
//! fake's safe verbs: a browse-lock (BROWSE_FIRST + LOCK, then UNLOCK) with N messages ahead
//! of it already locked by other handles, and a put + syncpoint get + commit with N messages
//! ahead of it put under syncpoint by another connection and not committed. Each should cost
//! about the same whatever N.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use divan::Bencher;
use libmqm_sys as mq;
use mqi::connection::{NO_CONNECT_OPTIONS, ThreadNone};
use mqi::constants::{MQENC_NATIVE, MQGMO_SYNCPOINT, MQOO_INPUT_AS_Q_DEF, MQOO_OUTPUT, MQPMO_NO_SYNCPOINT};
use mqi::header::{TextEnc, fmt::MQFMT_NONE};
use mqi::string::CCSID;
use mqi::types::{MessageFormat, QueueName};
use mqi::{Connection, Object, Syncpoint};
use mqpilot::fake::{
    ConnectRequest, FakeConfig, FakeMqi, FakeQm, GetOptions, ObjectRef, PutSpec, QueueDef, default_md,
};

const PAYLOAD_BYTES: usize = 1024;
const QUEUE: &str = "BENCH.QUEUE";

/// Binary data (MQFMT_NONE), so nothing converts it on the way.
const BYTES: MessageFormat = MessageFormat {
    ccsid: CCSID(1208),
    encoding: MQENC_NATIVE,
    fmt: TextEnc::Ascii(MQFMT_NONE),
};

static PAYLOAD: LazyLock<Vec<u8>> = LazyLock::new(|| (0..PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect());

static QM: LazyLock<FakeQm> = LazyLock::new(|| {
    let mut config = FakeConfig::default();
    config.queues.push(QueueDef::new(QUEUE));
    FakeQm::new(config)
});

/// One benchmark thread's connection and its open queue. It lives in a thread-local and divan
/// runs a thread's iterations on that thread, so the connection never moves: `ThreadNone`.
struct Consumer {
    queue: Object<Connection<FakeMqi, ThreadNone>>,
    buffer: Vec<u8>,
}

thread_local! {
    static CONSUMER: RefCell<Option<Consumer>> = const { RefCell::new(None) };
}

impl Consumer {
    fn connect() -> Self {
        let conn = mqi::connect_lib(QM.library("10.0.0.1"), NO_CONNECT_OPTIONS)
            .expect("connect to the fake")
            .discard_warning();
        let name = QueueName::from_str(QUEUE).expect("queue name");
        let queue = Object::open(conn, &(name, MQOO_INPUT_AS_Q_DEF | MQOO_OUTPUT))
            .expect("open the bench queue")
            .discard_warning();
        Self {
            queue,
            buffer: vec![0; PAYLOAD_BYTES],
        }
    }

    /// MQPUT, MQGET under syncpoint, MQCMIT.
    fn cycle(&mut self) -> usize {
        self.queue
            .put_message(&MQPMO_NO_SYNCPOINT, &(PAYLOAD.as_slice(), BYTES))
            .expect("MQPUT")
            .discard_warning();
        let got = self
            .queue
            .get_data(&MQGMO_SYNCPOINT, &mut self.buffer)
            .expect("MQGET")
            .discard_warning()
            .map_or(0, <[u8]>::len);
        Syncpoint::new(self.queue.connection())
            .commit()
            .expect("MQCMIT")
            .discard_warning();
        got
    }
}

/// Opens this thread's connection and queue handle the first time the thread runs.
fn ensure_consumer() {
    CONSUMER.with_borrow_mut(|c| {
        c.get_or_insert_with(Consumer::connect);
    });
}

// Both benchmarks take 500 samples of 64 iterations: left to tune itself, divan settles on
// one iteration per sample for the cycle when its first sample runs cold, and the timer's
// precision then weighs on every sample.

/// A 1 KiB put + get under syncpoint + commit through `mqi` on the fake.
#[divan::bench(threads = [1, 4], sample_count = 500, sample_size = 64)]
fn put_get_commit(bencher: Bencher) {
    bencher.with_inputs(ensure_consumer).bench_values(|()| {
        let got = CONSUMER.with_borrow_mut(|c| c.as_mut().expect("opened in with_inputs").cycle());
        assert_eq!(got, PAYLOAD_BYTES, "every get finds a message");
    });
}

static BASELINE: Mutex<VecDeque<Vec<u8>>> = Mutex::new(VecDeque::new());

/// Push a fresh copy of the 1 KiB payload, pop one and free it: the floor for any queue.
#[divan::bench(threads = [1, 4], sample_count = 500, sample_size = 64)]
fn vecdeque_push_pop(bencher: Bencher) {
    LazyLock::force(&PAYLOAD);
    bencher.bench(|| {
        let copy = PAYLOAD.clone();
        BASELINE.lock().expect("baseline lock").push_back(copy);
        let popped = BASELINE.lock().expect("baseline lock").pop_front();
        assert!(popped.is_some_and(|m| m.len() == PAYLOAD_BYTES));
    });
}

/// A queue with `n` messages at its head that a new handle cannot see, and one it can.
struct Hidden {
    qm: FakeQm,
    hconn: i32,
    hobj: i32,
}

const HIDDEN_QUEUE: &str = "HIDDEN";

fn hidden_qm() -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.max_handles = 1_000_000;
    config.queue_manager.max_uncommitted = 1_000_000;
    let mut queue = QueueDef::new(HIDDEN_QUEUE);
    queue.max_depth = i32::MAX;
    config.queues.push(queue);
    FakeQm::new(config)
}

fn hidden_object() -> ObjectRef {
    ObjectRef {
        object_type: mq::MQOT_Q,
        name: HIDDEN_QUEUE.to_owned(),
    }
}

fn gmo(options: i32) -> GetOptions {
    GetOptions {
        options: options | mq::MQGMO_NO_WAIT,
        wait_interval: 0,
        match_options: mq::MQMO_NONE,
    }
}

impl Hidden {
    /// `n` messages locked by other handles (of one other connection), then one free message.
    fn locked(n: usize) -> Self {
        let qm = hidden_qm();
        let other = qm.connect(&ConnectRequest::default()).expect("connect");
        for _ in 0..=n {
            qm.put_message(HIDDEN_QUEUE, PutSpec::text("m")).expect("put");
        }
        for _ in 0..n {
            let h = qm
                .open(other, &hidden_object(), mq::MQOO_BROWSE | mq::MQOO_INPUT_SHARED)
                .expect("open");
            let got = qm.get(
                other,
                h,
                &mut default_md(),
                &gmo(mq::MQGMO_BROWSE_FIRST | mq::MQGMO_LOCK),
                &mut [0; 8],
            );
            got.expect("browse-lock");
        }
        let hconn = qm.connect(&ConnectRequest::default()).expect("connect");
        let hobj = qm
            .open(hconn, &hidden_object(), mq::MQOO_BROWSE | mq::MQOO_INPUT_SHARED)
            .expect("open");
        Self { qm, hconn, hobj }
    }

    /// `n` messages put under syncpoint by another connection and not committed.
    fn uncommitted(n: usize) -> Self {
        let qm = hidden_qm();
        let other = qm.connect(&ConnectRequest::default()).expect("connect");
        let h = qm.open(other, &hidden_object(), mq::MQOO_OUTPUT).expect("open");
        for _ in 0..n {
            qm.put(other, h, &mut default_md(), mq::MQPMO_SYNCPOINT, b"m")
                .expect("put");
        }
        let hconn = qm.connect(&ConnectRequest::default()).expect("connect");
        let hobj = qm
            .open(hconn, &hidden_object(), mq::MQOO_INPUT_SHARED | mq::MQOO_OUTPUT)
            .expect("open");
        Self { qm, hconn, hobj }
    }
}

/// BROWSE_FIRST + LOCK past `n` messages locked by others, then UNLOCK.
#[divan::bench(args = [100, 1_000, 10_000], sample_count = 200, sample_size = 16)]
fn browse_lock_past_locked(bencher: Bencher, n: usize) {
    let h = Hidden::locked(n);
    bencher.bench(|| {
        let got = h.qm.get(
            h.hconn,
            h.hobj,
            &mut default_md(),
            &gmo(mq::MQGMO_BROWSE_FIRST | mq::MQGMO_LOCK),
            &mut [0; 8],
        );
        assert!(got.is_ok(), "the free message is found");
        let unlocked =
            h.qm.get(h.hconn, h.hobj, &mut default_md(), &gmo(mq::MQGMO_UNLOCK), &mut []);
        assert!(unlocked.is_ok_and(|g| g.warning == 0), "the lock is released");
    });
}

/// MQPUT + MQGET under syncpoint + MQCMIT past `n` uncommitted puts of another connection.
#[divan::bench(args = [100, 1_000, 10_000], sample_count = 200, sample_size = 16)]
fn syncpoint_get_past_uncommitted(bencher: Bencher, n: usize) {
    let h = Hidden::uncommitted(n);
    bencher.bench(|| {
        h.qm.put(h.hconn, h.hobj, &mut default_md(), mq::MQPMO_NO_SYNCPOINT, b"m")
            .expect("put");
        let got = h.qm.get(
            h.hconn,
            h.hobj,
            &mut default_md(),
            &gmo(mq::MQGMO_SYNCPOINT),
            &mut [0; 8],
        );
        assert!(got.is_ok(), "the committed message is found");
        h.qm.commit(h.hconn).expect("commit");
    });
}

fn main() {
    divan::main();
}
