//! The polling connector on the fake: pool, pollers, sinks, poison, limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef, Verb};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::message::Message;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::{Pool, PoolConfig};
use mqpilot::worker::config::QueueConfig;
use mqpilot::worker::limits::RunLimits;
use mqpilot::worker::poller::{PollEnd, PollPlan, SinkTarget};
use mqpilot::worker::run::{QueueRun, RunSummary, start};
use mqpilot::worker::sink::SinkConfig;
use mqpilot::worker::sink::{Delivery, Sink, SinkError};
use tokio_util::sync::CancellationToken;

/// A sink that keeps what it is given and fails the first `fail` batches.
#[derive(Default)]
pub struct Collect {
    pub got: Mutex<Vec<Message>>,
    pub fail: AtomicUsize,
}

impl Sink for Collect {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(SinkError::retry("collect", "planned failure".into()));
            }
            self.got.lock().unwrap().extend_from_slice(batch);
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "collect"
    }
}

pub fn fake(max_handles: i32) -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.max_handles = max_handles;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("IN").backout(3, "IN.BACKOUT"));
    config.queues.push(QueueDef::new("IN.BACKOUT"));
    config.queues.push(QueueDef::new("OUT"));
    config.queues.push(QueueDef::new("NOBOQ").backout(2, ""));
    FakeQm::new(config)
}

pub fn pool(qm: &FakeQm, connections: usize) -> Pool {
    let config = PoolConfig {
        connections,
        handle_reserve: 0,
        ..PoolConfig::default()
    };
    pool_with(qm, config)
}

/// A pool on APP.SVRCONN with `config`.
pub fn pool_with(qm: &FakeQm, config: PoolConfig) -> Pool {
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver("APP.SVRCONN/TCP/localhost(1414)", "test").unwrap())
        .build()
        .unwrap();
    Pool::new(MqLibrary::fake(qm.library("10.0.0.1")), options, config)
}

pub fn plan(queue: &str, batch: usize, sink: SinkTarget) -> Arc<PollPlan> {
    Arc::new(PollPlan {
        queue: queue.into(),
        syncpoint: true,
        batch,
        max_batch_bytes: 1 << 20,
        wait_ms: 50,
        backout_threshold: 3,
        backout_queue: Some("IN.BACKOUT".into()),
        sink,
    })
}

pub fn seed(qm: &FakeQm, queue: &str, n: usize) {
    for i in 0..n {
        qm.put_message(queue, PutSpec::text(format!("m{i}"))).unwrap();
    }
}

/// Drains IN on one connection with one poller, batch `batch`, into a [`Collect`] sink.
async fn collect_until_empty(qm: &FakeQm, batch: usize) -> (Arc<Collect>, RunSummary) {
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", batch, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool(qm, 1), queues).await;
    (sink, summary)
}

pub async fn run_until_empty(pool: &Pool, queues: Vec<QueueRun>) -> RunSummary {
    let cancel = CancellationToken::new();
    let (_handle, run) = start(pool, &queues, RunLimits::new(true, None), &cancel);
    run.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_sink_moves_every_message_exactly_once() {
    let qm = fake(256);
    seed(&qm, "IN", 200);
    let pool = pool(&qm, 2);
    let queues = vec![QueueRun {
        plan: plan("IN", 20, SinkTarget::Queue("OUT".into())),
        workers: 3,
    }];
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(qm.depth("IN"), Some(0));
    assert_eq!(qm.depth("OUT"), Some(200));
    let mut ids: Vec<_> = qm.browse("OUT").into_iter().map(|m| m.data).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(summary.total().delivered, 200);
    // One input and one output handle per connection: the budget's worth, nothing per message.
    assert!(
        qm.connections().iter().all(|c| c.peak_handles <= 3),
        "{:?}",
        qm.connections()
    );
    assert!(summary.stopped().is_empty(), "{:?}", summary.stopped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_backs_out_and_the_messages_come_back_one_at_a_time() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    sink.fail.store(3, Ordering::SeqCst);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool, queues).await;
    // The batch of five fails (backout count 1 each); then m0 alone fails twice more and, at
    // BOTHRESH 3, goes to the backout queue. The sink is back for m1 to m4, one by one.
    let boq = qm.browse("IN.BACKOUT");
    assert_eq!(boq.iter().map(|m| m.data.as_slice()).collect::<Vec<_>>(), [b"m0"]);
    assert_eq!(boq[0].state, "visible");
    let got: Vec<_> = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|m| (m.data.clone(), m.backout_count()))
        .collect();
    let expected: Vec<_> = (1..5).map(|i| (bytes::Bytes::from(format!("m{i}")), 1)).collect();
    assert_eq!(got, expected);
    let totals = summary.total();
    assert_eq!(
        (
            totals.delivered,
            totals.poisoned,
            totals.sink_failures,
            totals.backed_out
        ),
        (4, 1, 3, 7)
    );
    assert_eq!(qm.depth("IN"), Some(0));
}

/// A sink that rejects every batch holding `bad`.
struct Rejects {
    bad: &'static [u8],
    got: Mutex<Vec<Message>>,
}

impl Sink for Rejects {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        Box::pin(async move {
            if batch.iter().any(|m| m.data == self.bad) {
                return Err(SinkError::retry("rejects", "cannot take that one".into()));
            }
            self.got.lock().unwrap().extend_from_slice(batch);
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "rejects"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backout_queue_that_refuses_a_poison_message_delivers_nothing_twice() {
    let qm = fake(256);
    qm.put_message("IN", PutSpec::text("good-a")).unwrap();
    let mut poison = PutSpec::text("poison");
    poison.backout_count = 3;
    qm.put_message("IN", poison).unwrap();
    qm.put_message("IN", PutSpec::text("good-b")).unwrap();
    // The backout queue is full for the first poison put: the batch is backed out.
    qm.fail_next(Verb::Put, 1, 2053);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    let got: Vec<_> = sink.got.lock().unwrap().iter().map(|m| m.data.to_vec()).collect();
    // Before the sink saw the batch, not after: each good message reaches it once.
    assert_eq!(got, [b"good-a".to_vec(), b"good-b".to_vec()]);
    let boq: Vec<_> = qm.browse("IN.BACKOUT").into_iter().map(|m| m.data).collect();
    assert_eq!(boq, [b"poison".to_vec()]);
    assert_eq!(summary.total().delivered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_the_sink_rejects_goes_to_the_backout_queue_alone() {
    let qm = fake(256);
    seed(&qm, "IN", 20);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Rejects {
        bad: b"m7",
        got: Mutex::default(),
    });
    let queues = vec![QueueRun {
        plan: plan("IN", 20, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool, queues).await;
    let boq: Vec<_> = qm.browse("IN.BACKOUT").into_iter().map(|m| m.data).collect();
    assert_eq!(boq, [b"m7".to_vec()], "only the message the sink rejects is poison");
    let got: Vec<_> = sink.got.lock().unwrap().iter().map(|m| m.data.clone()).collect();
    let expected: Vec<_> = (0..20)
        .filter(|&i| i != 7)
        .map(|i| bytes::Bytes::from(format!("m{i}")))
        .collect();
    assert_eq!(got, expected, "the 19 others are delivered once each, in order");
    let totals = summary.total();
    assert_eq!((totals.delivered, totals.poisoned, totals.sink_failures), (19, 1, 3));
    assert_eq!(qm.depth("IN"), Some(0));
}

/// A sink whose reader has gone for good, as a closed standard output.
struct Gone;

impl Sink for Gone {
    fn deliver<'a>(&'a self, _: &'a [Message]) -> Delivery<'a> {
        Box::pin(async {
            Err(SinkError {
                permanent: true,
                ..SinkError::retry("gone", "its reader has gone".into())
            })
        })
    }

    fn name(&self) -> &'static str {
        "gone"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_can_take_nothing_more_stops_the_run_and_moves_nothing_aside() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    let sink: Arc<dyn Sink> = Arc::new(Gone);
    let queues: Vec<_> = ["IN", "OUT"]
        .into_iter()
        .map(|q| QueueRun {
            plan: plan(q, 10, SinkTarget::External(Arc::clone(&sink))),
            workers: 1,
        })
        .collect();
    let cancel = CancellationToken::new();
    let (_h, run) = start(&pool(&qm, 2), &queues, RunLimits::new(false, None), &cancel);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run.finish())
        .await
        .expect("the run stops by itself");
    assert!(!cancel.is_cancelled(), "the run's own token, not the caller's");
    let stopped = summary.stopped();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].0, "IN");
    assert!(
        stopped[0]
            .1
            .contains("its reader has gone; the batch was backed out and the run stopped"),
        "{}",
        stopped[0].1
    );
    assert_eq!(
        summary.queues[1].2,
        [PollEnd::Cancelled],
        "OUT's poller stopped with the run"
    );
    // Backed out once, none moved to the backout queue, none lost.
    let back: Vec<_> = qm.browse("IN").iter().map(|m| (m.state, m.backout_count)).collect();
    assert_eq!(back, [("visible", 1); 5]);
    assert_eq!(qm.depth("IN.BACKOUT"), Some(0));
    let t = summary.total();
    assert_eq!((t.delivered, t.backed_out, t.poisoned, t.sink_failures), (0, 5, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_can_take_nothing_more_stops_the_run_even_when_mqback_fails() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    qm.fail_next(Verb::Back, 1, 2009);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(Arc::new(Gone))),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_h, run) = start(&pool(&qm, 1), &queues, RunLimits::new(true, None), &cancel);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run.finish())
        .await
        .expect("the run stops by itself");
    assert_eq!(summary.stopped().len(), 1, "{:?}", summary.queues);
    // The sink was asked once: no second batch after reconnecting.
    assert_eq!(summary.total().sink_failures, 1);
    // The broken connection's unit of work went back: every message is there, counted once.
    let back: Vec<_> = qm.browse("IN").iter().map(|m| (m.state, m.backout_count)).collect();
    assert_eq!(back, [("visible", 1); 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_without_a_backout_queue_stops_the_poller_and_keeps_the_message() {
    let qm = fake(256);
    qm.put_message(
        "NOBOQ",
        PutSpec {
            backout_count: 2,
            ..PutSpec::text("bad")
        },
    )
    .unwrap();
    let pool = pool(&qm, 1);
    let mut p = (*plan("NOBOQ", 10, SinkTarget::External(Arc::new(Collect::default())))).clone();
    p.backout_threshold = 2;
    p.backout_queue = None;
    let summary = run_until_empty(
        &pool,
        vec![QueueRun {
            plan: Arc::new(p),
            workers: 1,
        }],
    )
    .await;
    let stopped = summary.stopped();
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].1.contains("no backout queue"), "{}", stopped[0].1);
    assert_eq!(qm.depth("NOBOQ"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_backed_out_after_an_mqget_fails_mid_batch_are_counted() {
    let qm = fake(256);
    seed(&qm, "IN", 10);
    // The fourth MQGET of the batch fails with 2024: three are in the unit of work.
    qm.alter_qmgr(|q| q.max_uncommitted = 3);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    assert!(sink.got.lock().unwrap().is_empty());
    let stopped = summary.stopped();
    assert!(stopped.len() == 1 && stopped[0].1.contains("2024"), "{stopped:?}");
    let t = summary.total();
    assert_eq!((t.received, t.backed_out), (3, 3), "{t:?}");
    let counts: Vec<_> = qm.browse("IN").iter().map(|m| m.backout_count).collect();
    assert_eq!(counts, [[1; 3].as_slice(), &[0; 7]].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_disabled_in_the_middle_of_a_batch_delivers_what_was_got_and_raises_no_backout_count() {
    let qm = fake(256);
    // Each MQGET takes 50 ms: a batch of 20 takes a second to fill.
    let (sink, cancel, run) = filling_a_batch(&qm, 20, 50).await;
    // The MQ administrator pauses consumers: ALTER QLOCAL(IN) GET(DISABLED).
    qm.set_get_enabled("IN", false);
    until(
        || !sink.got.lock().unwrap().is_empty(),
        "the messages got are delivered",
    )
    .await;
    cancel.cancel();
    let summary = tokio::time::timeout(std::time::Duration::from_secs(60), run.finish())
        .await
        .expect("the run ends");
    let t = summary.total();
    assert_eq!(t.backed_out, 0, "nothing was wrong with the messages got: {t:?}");
    let delivered = sink.got.lock().unwrap().len();
    assert!((1..20).contains(&delivered), "{delivered} of 20 delivered: {t:?}");
    let left = qm.browse("IN");
    assert!(left.iter().all(|m| m.backout_count == 0), "{left:?}");
    assert_eq!(left.len() + delivered, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_messages_stops_after_exactly_that_many() {
    let qm = fake(256);
    seed(&qm, "IN", 50);
    let pool = pool(&qm, 2);
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", 7, SinkTarget::External(sink.clone())),
        workers: 3,
    }];
    let cancel = CancellationToken::new();
    let (_h, run) = start(&pool, &queues, RunLimits::new(false, Some(23)), &cancel);
    let summary = run.finish().await;
    assert_eq!(sink.got.lock().unwrap().len(), 23);
    assert_eq!(qm.depth("IN"), Some(27));
    assert!(summary.queues[0].2.iter().all(|e| *e == PollEnd::Limit));
}

/// IN and OUT, one poller each, into one [`Collect`] sink; `wait_ms` as given.
fn in_and_out(wait_ms: u32, sink: &Arc<Collect>) -> Vec<QueueRun> {
    ["IN", "OUT"]
        .into_iter()
        .map(|q| QueueRun {
            plan: Arc::new(PollPlan {
                wait_ms,
                ..PollPlan::clone(&plan(q, 10, SinkTarget::External(sink.clone())))
            }),
            workers: 1,
        })
        .collect()
}

/// Regression: a poller claimed a whole batch of `--max-messages` before its MQGET wait, and
/// one that found the limit claimed ended at once. With OUT idle, its poller held the room
/// while IN's ended `Limit`, and the run never ended, nothing delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_max_messages_is_not_held_by_a_poller_waiting_on_an_idle_queue() {
    let qm = fake(256);
    seed(&qm, "IN", 50);
    let sink = Arc::new(Collect::default());
    let cancel = CancellationToken::new();
    // OUT's poller waits up to a minute for a message that never comes.
    let queues = in_and_out(60_000, &sink);
    let (_h, run) = start(&pool(&qm, 2), &queues, RunLimits::new(false, Some(10)), &cancel);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run.finish())
        .await
        .expect("the run ends once 10 are delivered, not after OUT's wait");
    assert_eq!(sink.got.lock().unwrap().len(), 10);
    assert_eq!(qm.depth("IN"), Some(40));
    assert_eq!(summary.total().delivered, 10);
    for (queue, _, ends) in &summary.queues {
        assert_eq!(ends, &[PollEnd::Limit], "{queue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_messages_waits_for_messages_on_every_queue_until_n_are_delivered() {
    let qm = fake(256);
    let sink = Arc::new(Collect::default());
    let cancel = CancellationToken::new();
    let queues = in_and_out(5_000, &sink);
    let (_h, run) = start(&pool(&qm, 2), &queues, RunLimits::new(false, Some(10)), &cancel);
    // Both pollers wait on their empty queues (a poller that ended already never will: give
    // it a few seconds), then five messages come to each: ten in all, the limit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while qm.waiting_gets("IN") + qm.waiting_gets("OUT") < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    seed(&qm, "IN", 5);
    seed(&qm, "OUT", 5);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run.finish())
        .await
        .expect("the run ends once 10 are delivered");
    assert_eq!(sink.got.lock().unwrap().len(), 10);
    assert_eq!((qm.depth("IN"), qm.depth("OUT")), (Some(0), Some(0)));
    for (queue, totals, ends) in &summary.queues {
        assert_eq!(totals.delivered, 5, "{queue}");
        assert_eq!(ends, &[PollEnd::Limit], "{queue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_empty_ends_when_idle_pollers_pass_the_last_room_to_each_other() {
    let qm = fake(256);
    let sink = Arc::new(Collect::default());
    let cancel = CancellationToken::new();
    // Room for one message, two idle queues: the poller holding the room gives it up to the
    // waiting one every second. Each must still see its queue empty for its whole wait.
    let queues = in_and_out(3_000, &sink);
    let (_h, run) = start(&pool(&qm, 2), &queues, RunLimits::new(true, Some(1)), &cancel);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(30), run.finish())
        .await
        .expect("both queues are found empty");
    for (queue, _, ends) in &summary.queues {
        assert_eq!(ends, &[PollEnd::Empty], "{queue}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_syncpoint_max_messages_counts_what_a_failing_sink_lost() {
    let qm = fake(256);
    seed(&qm, "IN", 50);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    sink.fail.store(usize::MAX, Ordering::SeqCst);
    let mut plan = PollPlan::clone(&plan("IN", 7, SinkTarget::External(sink.clone())));
    plan.syncpoint = false;
    let queues = vec![QueueRun {
        plan: Arc::new(plan),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_h, run) = start(&pool, &queues, RunLimits::new(false, Some(10)), &cancel);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(10), run.finish())
        .await
        .expect("the run ends at the limit");
    // 7 lost in the first batch, 3 in the second: then the limit is reached.
    assert_eq!(qm.depth("IN"), Some(40));
    assert_eq!(summary.total().lost_at_most_once, 10);
    assert!(summary.queues[0].2.iter().all(|e| *e == PollEnd::Limit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_queue_sink_target_refuses_as_too_long_goes_to_the_backout_queue() {
    let qm = fake(256);
    // The bridge's target takes at most 10 bytes (MAXMSGL 10); IN takes 4 MiB.
    qm.define_queue(QueueDef::new("SMALL").max_msg_length(10));
    let big = "x".repeat(100);
    for data in ["m0".to_owned(), big.clone(), "m2".to_owned()] {
        qm.put_message("IN", PutSpec::text(data)).unwrap();
    }
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::Queue("SMALL".into())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool(&qm, 1), queues).await;
    assert!(
        summary.stopped().is_empty(),
        "one message stopped the bridge: {:?}",
        summary.stopped()
    );
    let moved: Vec<_> = qm.browse("IN.BACKOUT").into_iter().map(|m| m.data).collect();
    assert_eq!(moved, [big.into_bytes()]);
    let out: Vec<_> = qm.browse("SMALL").into_iter().map(|m| m.data).collect();
    assert_eq!(out, [b"m0".to_vec(), b"m2".to_vec()]);
    assert_eq!(qm.depth("IN"), Some(0));
    assert_eq!(summary.total().poisoned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_has_closed_its_handles_and_disconnected() {
    let qm = fake(256);
    seed(&qm, "IN", 30);
    // Every call takes 20 ms, as over a long link: each connection's MQCLOSE of its two
    // handles and its MQDISC take 60 ms after the run's last batch.
    qm.set_latency(std::time::Duration::from_millis(20));
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::Queue("OUT".into())),
        workers: 2,
    }];
    let summary = run_until_empty(&pool(&qm, 2), queues).await;
    assert_eq!(summary.total().delivered, 30);
    // Right after the run: a process that exits now cuts no connection off.
    assert_eq!(qm.connections(), [], "connections still open when the run returned");
    assert_eq!(qm.reason_count(Verb::Disc, 0), qm.reason_count(Verb::Connx, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connections_are_replaced_and_nothing_is_lost() {
    let qm = fake(256);
    seed(&qm, "IN", 100);
    let pool = pool(&qm, 2);
    qm.fail_next(Verb::Get, 3, 2009);
    qm.fail_next(Verb::Cmit, 1, 2009);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::Queue("OUT".into())),
        workers: 2,
    }];
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(qm.depth("OUT").unwrap() + qm.depth("IN").unwrap(), 100);
    assert_eq!(qm.depth("OUT"), Some(100));
    assert!(summary.pool.reconnects >= 4, "{:?}", summary.pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_lost_one_after_the_other_reconnect_with_the_configured_backoff() {
    use mqpilot::pool::BackoffConfig;
    use std::time::Duration;
    // Every connect succeeds and every MQGET then breaks its connection (2009): a proxy that
    // resets sessions. With a reconnect backoff of 1 s the poller connects at 0, again at
    // once, then no sooner than 0.5 s and 1.5 s later (equal jitter), not every few
    // hundred milliseconds.
    let qm = fake(256);
    seed(&qm, "IN", 5);
    qm.fail_next(Verb::Get, 1_000, 2009);
    let config = PoolConfig {
        connections: 1,
        handle_reserve: 0,
        backoff: BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        },
        ..PoolConfig::default()
    };
    let pool = pool_with(&qm, config);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(Arc::new(Collect::default()))),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool, &queues, RunLimits::new(false, None), &cancel);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let connects = pool.stats().snapshot().connects;
    cancel.cancel();
    run.finish().await;
    assert!(
        (2..=3).contains(&connects),
        "{connects} connects in 1.2 s with a reconnect backoff of 1 s"
    );
    assert_eq!(qm.depth("IN"), Some(5), "nothing was taken off the queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_the_start_up_checks_is_replaced_and_the_checks_rerun() {
    let qm = fake(256);
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    // Connected first, so the failure below is the checks' own MQOPEN of IN.
    drop(pool.checkout(&cancel).await.expect("connect"));
    qm.fail_next(Verb::Open, 1, 2009);
    let mut queue = QueueConfig::new("IN");
    queue.sink = SinkConfig::Queue { queue: "OUT".into() };
    let runs = mqpilot::worker::prepare::prepare(&pool, &[queue.clone()], &cancel)
        .await
        .expect("the checks run again on a new connection");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].plan.backout_queue.as_deref(),
        Some("IN.BACKOUT"),
        "read on the new connection"
    );
    let stats = pool.stats().snapshot();
    assert!(stats.reconnects >= 1, "{stats:?}");

    // Anything else still fails the start at once.
    qm.fail_next(Verb::Open, 1, 2035);
    let err = mqpilot::worker::prepare::prepare(&pool, &[queue], &cancel)
        .await
        .expect_err("2035 is not retried");
    assert!(err.to_string().contains("2035"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boqname_that_names_the_queue_itself_stops_the_start() {
    let qm = fake(256);
    qm.define_queue(QueueDef::new("SELF").backout(1, "SELF"));
    let cancel = CancellationToken::new();
    let err = mqpilot::worker::prepare::prepare(&pool(&qm, 1), &[QueueConfig::new("SELF")], &cancel)
        .await
        .expect_err("a poison message would loop on its own queue");
    let err = err.to_string();
    assert!(
        err.starts_with("queue SELF: its backout queue (BOQNAME) is SELF, the queue itself"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_backout_threshold_a_missing_boqname_does_not_stop_the_start() {
    let qm = fake(256);
    // BOTHRESH 0: no message is ever poison, so MISSING would never be used.
    qm.define_queue(QueueDef::new("NOTHRESH").backout(0, "MISSING"));
    let cancel = CancellationToken::new();
    let runs = mqpilot::worker::prepare::prepare(&pool(&qm, 1), &[QueueConfig::new("NOTHRESH")], &cancel)
        .await
        .expect("the backout queue is not checked");
    assert_eq!(runs[0].plan.backout_threshold, 0);
    assert_eq!(runs[0].plan.backout_queue, None);
    assert_eq!(qm.reason_count(Verb::Open, 2085), 0, "MISSING was not even opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_longer_than_the_buffer_grows_it_and_is_never_truncated() {
    let qm = fake(256);
    let big = "x".repeat(100_000);
    qm.put_message("IN", PutSpec::text(big.clone())).unwrap();
    let options = ConnectOptions::builder().build().unwrap();
    let config = PoolConfig {
        connections: 1,
        buffer_bytes: 64,
        ..PoolConfig::default()
    };
    let pool = Pool::new(MqLibrary::fake(qm.library("h")), options, config);
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", 5, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    run_until_empty(&pool, queues).await;
    let got = sink.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, big.as_bytes());
    assert_eq!(qm.reason_count(Verb::Get, 2079), 0, "truncation is never accepted");
    assert!(
        qm.reason_count(Verb::Get, 2080) >= 1,
        "the 64-byte buffer was too small at first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_refused_with_2537_backs_off_until_an_instance_is_free() {
    let qm = fake(256);
    qm.define_channel(ChannelDef::new("APP.SVRCONN").max_inst(1).sharecnv(0));
    let first = pool(&qm, 1);
    let second = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let held = first.checkout(&cancel).await.unwrap();
    let waiting = tokio::spawn({
        let (second, cancel) = (second.clone(), cancel.clone());
        async move { second.checkout(&cancel).await.map(|lease| lease.connection_id()) }
    });
    // The second pool keeps getting 2537 and backing off while the instance is taken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while second.stats().snapshot().connect_failures < 2 {
        assert!(std::time::Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(qm.reason_count(Verb::Connx, 2537) >= 2);
    drop(held);
    first.close_idle();
    let id = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        id.is_ok(),
        "the second pool connected once the instance was free: {id:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_whose_connect_keeps_getting_2537_takes_a_connection_another_gave_back() {
    use std::time::Duration;
    // Three pollers on a pool of three, but the channel takes two instances: the third
    // connect gets 2537 for as long as the other two are connected.
    let qm = fake(256);
    qm.define_channel(ChannelDef::new("APP.SVRCONN").max_inst(2).sharecnv(0));
    let sink = Arc::new(Collect::default());
    for (limits, end) in [
        (RunLimits::new(true, None), PollEnd::Empty),
        (RunLimits::new(false, Some(5)), PollEnd::Limit),
    ] {
        seed(&qm, "IN", 5);
        let queues = vec![QueueRun {
            plan: plan("IN", 2, SinkTarget::External(sink.clone())),
            workers: 3,
        }];
        let cancel = CancellationToken::new();
        let (_h, run) = start(&pool(&qm, 3), &queues, limits, &cancel);
        let summary = tokio::time::timeout(Duration::from_secs(20), run.finish())
            .await
            .unwrap_or_else(|_| panic!("a run to {end:?} ends although one slot never connects"));
        assert!(
            summary.queues[0].2.iter().all(|e| *e == end),
            "{:?}",
            summary.queues[0].2
        );
    }
    assert_eq!(sink.got.lock().unwrap().len(), 10);
    assert!(qm.reason_count(Verb::Connx, 2537) >= 1, "a third connect was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_2017_shrinks_the_budget_and_the_work_still_completes() {
    let qm = fake(256);
    seed(&qm, "IN", 30);
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    // Connect while MAXHANDS is 256, then lower it: the pool's budget no longer fits.
    drop(pool.checkout(&cancel).await.unwrap());
    qm.alter_qmgr(|q| q.max_handles = 1);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::Queue("OUT".into())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(qm.depth("OUT"), Some(30));
    assert_eq!(summary.pool.budget_shrinks, 1);
    assert_eq!(summary.pool.peak_handles(), 1, "{:?}", summary.pool);
    assert_eq!(qm.reason_count(Verb::Open, 2017), 1, "one 2017, then the budget holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_closed_after_an_unexpected_2017_is_counted_like_any_close_for_the_budget() {
    let qm = fake(256);
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let mut lease = pool.checkout(&cancel).await.unwrap();
    lease.run(|c| c.open_output("OUT")).await.unwrap();
    qm.alter_qmgr(|q| q.max_handles = 1);
    // The second handle gets 2017: the budget shrinks to 1, OUT is closed, the open retried.
    lease.run(|c| c.open_output("IN.BACKOUT")).await.unwrap();
    drop(lease);
    let stats = pool.stats().snapshot();
    assert_eq!(stats.budget_shrinks, 1);
    assert_eq!(stats.handle_closes_for_budget, 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_dropped_in_a_unit_of_work_whose_mqback_fails_is_never_reused() {
    use mqpilot::mq::session::GetRequest;
    let qm = fake(256);
    seed(&qm, "IN", 2);
    // Every call takes 30 ms: the replacement connection could overtake the old one's
    // second MQBACK and disconnect if the slot came back before them.
    qm.set_latency(std::time::Duration::from_millis(30));
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let queue: Arc<str> = Arc::from("IN");
    let under_syncpoint = GetRequest {
        syncpoint: true,
        wait_ms: 0,
    };
    // The first lease gets m0 under syncpoint and is dropped without a commit (an MCP call
    // whose caller went away); the MQBACK that follows fails once.
    let mut first = pool.checkout(&cancel).await.unwrap();
    let q = Arc::clone(&queue);
    let got = first.run(move |c| c.get(&q, under_syncpoint)).await.unwrap();
    assert_eq!(got.map(|m| m.data.to_vec()), Some(b"m0".to_vec()));
    qm.fail_next(Verb::Back, 1, 2102);
    drop(first);
    // The next lease must not be that connection: its MQCMIT would commit m0 with it.
    let mut second = pool.checkout(&cancel).await.unwrap();
    let q = Arc::clone(&queue);
    let (in_uow, got) = second
        .run(move |c| {
            let in_uow = c.in_unit_of_work();
            let got = c.get(&q, under_syncpoint)?;
            c.commit()?;
            Ok((in_uow, got.map(|m| m.data.to_vec())))
        })
        .await
        .unwrap();
    assert!(!in_uow);
    assert_eq!(got, Some(b"m0".to_vec()), "m0 came back for the next caller");
    drop(second);
    assert_eq!(qm.depth("IN"), Some(1), "m1 is still there, nothing was lost");
    assert_eq!(qm.peak_connections(), 1, "a pool of one had two connections at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_outside_a_unit_of_work_is_free_at_once_and_one_cut_short_is_backed_out_first() {
    use mqpilot::mq::session::GetRequest;
    let qm = fake(256);
    seed(&qm, "IN", 1);
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let queue: Arc<str> = Arc::from("IN");
    let under_syncpoint = GetRequest {
        syncpoint: true,
        wait_ms: 0,
    };
    // A job that ended its unit of work: the connection is idle as soon as the lease drops,
    // with no hand-over to its thread, so the next checkout does not wait.
    let mut lease = pool.checkout(&cancel).await.unwrap();
    lease.run(|c| Ok(c.in_unit_of_work())).await.unwrap();
    drop(lease);
    let mut lease = pool.checkout(&cancel).await.unwrap();
    assert_eq!(
        pool.stats().snapshot().waits_for_connection,
        0,
        "the slot came back with the lease"
    );
    // A job cut short (its caller went away) while it holds a message under syncpoint: the
    // lease goes back only after the unit of work is backed out on the connection's thread.
    let q = Arc::clone(&queue);
    let cut_short = tokio::time::timeout(
        std::time::Duration::from_millis(20),
        lease.run(move |c| {
            let got = c.get(&q, under_syncpoint)?;
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(got.is_some())
        }),
    )
    .await;
    assert!(cut_short.is_err(), "the job was still running");
    drop(lease);
    let mut lease = pool.checkout(&cancel).await.unwrap();
    let (in_uow, got) = lease
        .run(move |c| {
            let in_uow = c.in_unit_of_work();
            let got = c.get(&queue, under_syncpoint)?;
            c.commit()?;
            Ok((in_uow, got.map(|m| (m.data.to_vec(), m.backout_count()))))
        })
        .await
        .unwrap();
    assert!(!in_uow, "the next lease started outside a unit of work");
    assert_eq!(got, Some((b"m0".to_vec(), 1)), "m0 was backed out, not committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_dropped_after_its_connect_answered_keeps_the_slot_until_disconnected() {
    use std::future::Future as _;
    use std::time::Duration;
    let qm = fake(256);
    qm.set_latency(Duration::from_millis(100));
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let mut checkout = Box::pin(pool.checkout(&cancel));
    // Polled once: the slot is taken and the connect thread started.
    std::future::poll_fn(|cx| {
        assert!(checkout.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    // The thread connects and answers while nobody polls; then the caller gives up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while qm.connections().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(checkout);
    // MQDISC takes 100 ms: until it is done, the next checkout must wait for the slot.
    let live = qm.connections().len();
    let waits = pool.stats().snapshot().waits_for_connection;
    let again = pool.checkout(&cancel).await.unwrap();
    let waited = pool.stats().snapshot().waits_for_connection - waits;
    drop(again);
    assert!(
        live == 0 || waited == 1,
        "the slot came back while the first connection was live"
    );
    assert_eq!(qm.peak_connections(), 1, "a pool of one had two connections at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_given_up_on_never_take_the_pool_past_its_size() {
    use mqpilot::pool::Patience;
    use std::time::Duration;
    // Every call takes 150 ms, so each connect (MQCONNX and its inquiries) outlasts the
    // 50 ms patience: six callers in a row give up on six connects.
    let qm = fake(256);
    qm.set_latency(Duration::from_millis(150));
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let patience = Patience {
        busy: Duration::from_secs(10),
        connect: Duration::from_millis(50),
        attempt: Duration::from_millis(50),
    };
    for _ in 0..6 {
        let _ = pool.checkout_within(patience, &cancel).await;
    }
    // Each abandoned attempt keeps the pool's one slot until it has disconnected.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !qm.connections().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "connections left: {:?}",
            qm.connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(qm.peak_connections(), 1, "a pool of one had more connections at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_broken_connection_never_takes_the_pool_past_its_size() {
    use std::time::Duration;
    let qm = fake(256);
    let pool = pool(&qm, 3);
    let cancel = CancellationToken::new();
    let mut a = pool.checkout(&cancel).await.unwrap();
    let mut b = pool.checkout(&cancel).await.unwrap();
    let mut d = pool.checkout(&cancel).await.unwrap();
    for lease in [&mut b, &mut d] {
        lease
            .run(|c| {
                for q in ["OUT", "IN.BACKOUT", "NOBOQ"] {
                    c.open_output(q)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    drop(b);
    drop(d);
    assert_eq!(qm.peak_connections(), 3);
    // A round trip per call: an idle connection's teardown (three MQCLOSE and MQDISC) takes
    // four, while a new connection's MQCONNX comes after one.
    qm.set_latency(Duration::from_millis(50));
    a.mark_broken();
    drop(a);
    let (c, e) = tokio::join!(pool.checkout(&cancel), pool.checkout(&cancel));
    let (_c, _e) = (c.unwrap(), e.unwrap());
    assert_eq!(
        qm.peak_connections(),
        3,
        "a pool of 3 held more connections at once while replacing a broken one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_given_back_after_the_pool_closed_its_idle_connections_disconnects_too() {
    // A shutdown closes the idle connections while a caller still holds one (a sender of
    // `mqplan validate`, an MCP call): given back afterwards, it is not kept connected.
    let qm = fake(256);
    let pool = pool(&qm, 2);
    let cancel = CancellationToken::new();
    let lease = pool.checkout(&cancel).await.unwrap();
    drop(pool.checkout(&cancel).await.unwrap());
    pool.close_idle();
    drop(lease);
    assert!(
        pool.disconnected_within(std::time::Duration::from_secs(5)).await,
        "still connected: {:?}",
        qm.connections()
    );
    assert_eq!(qm.connections(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mqback_replaces_the_connection_and_loses_nothing() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    sink.fail.store(1, Ordering::SeqCst);
    qm.fail_next(Verb::Back, 1, 2195);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool, queues).await;
    // The unit of work survived the failed MQBACK; the connection was replaced (its drop backed
    // the batch out), and the retry delivered every message once.
    assert_eq!(sink.got.lock().unwrap().len(), 5);
    assert!(summary.pool.reconnects >= 1, "{:?}", summary.pool);
    assert_eq!(qm.depth("IN"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_mqback_keeps_failing_the_connection_is_abandoned_not_committed() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    sink.fail.store(100, Ordering::SeqCst);
    qm.fail_next(Verb::Back, 2, 2195);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_h, run) = start(&pool, &queues, RunLimits::new(true, None), &cancel);
    // The first connection's batch can be neither backed out nor committed: it stays with MQ.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while qm.browse("IN").iter().filter(|m| m.state == "got-uncommitted").count() < 5 {
        assert!(std::time::Instant::now() < deadline, "{:?}", qm.browse("IN"));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    cancel.cancel();
    run.finish().await;
    assert!(sink.got.lock().unwrap().is_empty());
    // The abandoned connection is still there, holding the batch: MQDISC would have committed it.
    assert!(
        qm.connections().iter().any(|c| c.uncommitted == 5),
        "{:?}",
        qm.connections()
    );
    let states: Vec<_> = qm.browse("IN").iter().map(|m| m.state).collect();
    assert_eq!(states, ["got-uncommitted"; 5], "nothing was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_sees_a_checkout_waiting_for_its_connection() {
    let qm = fake(256);
    let pool = pool(&qm, 1);
    let cancel = CancellationToken::new();
    let first = pool.checkout(&cancel).await.unwrap();
    assert!(!first.waiters().any());
    let second = tokio::spawn({
        let (pool, cancel) = (pool.clone(), cancel.clone());
        async move { pool.checkout(&cancel).await.map(|lease| lease.connection_id()) }
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !first.waiters().any() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting checkout was never counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let waiters = first.waiters();
    let id = first.connection_id();
    drop(first);
    assert_eq!(second.await.unwrap().unwrap(), id);
    assert!(
        !waiters.any(),
        "a checkout that got its connection no longer counts as waiting"
    );
}

/// Records which queue each delivered batch came from. Its first delivery waits until
/// another poller is waiting for the pool's connection, so the test does not depend on how
/// fast the second poller's task gets scheduled.
struct Order {
    batches: Mutex<Vec<String>>,
    pool: Pool,
}

impl Sink for Order {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        let first = {
            let mut batches = self.batches.lock().unwrap();
            batches.push(batch[0].queue.to_string());
            batches.len() == 1
        };
        Box::pin(async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while first && self.pool.stats().snapshot().waits_for_connection == 0 {
                assert!(std::time::Instant::now() < deadline, "the second poller never waited");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "order"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_sharing_one_connection_take_turns() {
    let qm = fake(256);
    seed(&qm, "IN", 3000);
    seed(&qm, "OUT", 3000);
    let pool = pool(&qm, 1);
    let order = Arc::new(Order {
        batches: Mutex::default(),
        pool: pool.clone(),
    });
    let queues = ["IN", "OUT"]
        .into_iter()
        .map(|q| QueueRun {
            plan: plan(q, 10, SinkTarget::External(Arc::clone(&order) as Arc<dyn Sink>)),
            workers: 1,
        })
        .collect();
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(summary.total().delivered, 6000);
    let order = order.batches.lock().unwrap();
    // Without turns, the first poller would keep the connection for hundreds of batches.
    let first_switch = order
        .iter()
        .position(|q| *q != order[0])
        .expect("both queues delivered");
    assert!(
        first_switch <= 40,
        "the other queue waited {first_switch} batches for the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_queue_with_wait_ms_0_is_not_polled_in_a_tight_loop() {
    let qm = fake(256);
    let pool = pool(&qm, 1);
    let plan = Arc::new(PollPlan {
        wait_ms: 0,
        ..PollPlan::clone(&plan("IN", 10, SinkTarget::External(Arc::new(Collect::default()))))
    });
    let cancel = CancellationToken::new();
    let (_handle, run) = start(
        &pool,
        &[QueueRun { plan, workers: 1 }],
        RunLimits::new(false, None),
        &cancel,
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    cancel.cancel();
    run.finish().await;
    // About ten empty receives a second, not tens of thousands.
    let empty = qm.reason_count(Verb::Get, 2033);
    assert!((3..=15).contains(&empty), "{empty} empty MQGETs in one second");
}

/// Waits up to 30 s for `done`, checking every 5 ms.
/// Seeds IN with `batch` messages and starts one poller taking them in one batch, each MQGET
/// taking `per_get_ms`; returns once the batch's first message is got, with the sink, the
/// run's token and the run.
async fn filling_a_batch(
    qm: &FakeQm,
    batch: usize,
    per_get_ms: u64,
) -> (Arc<Collect>, CancellationToken, mqpilot::worker::run::Run) {
    seed(qm, "IN", batch);
    qm.set_latency(std::time::Duration::from_millis(per_get_ms));
    let sink = Arc::new(Collect::default());
    let queues = [QueueRun {
        plan: plan("IN", batch, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool(qm, 1), &queues, RunLimits::new(false, None), &cancel);
    let got = || qm.browse("IN").iter().any(|m| m.state == "got-uncommitted");
    until(got, "the first message of the batch is got").await;
    (sink, cancel, run)
}

async fn until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_out_a_long_mqget_wait() {
    let qm = fake(256);
    let plan = Arc::new(PollPlan {
        wait_ms: 60_000,
        ..PollPlan::clone(&plan("IN", 10, SinkTarget::External(Arc::new(Collect::default()))))
    });
    let cancel = CancellationToken::new();
    let queues = [QueueRun { plan, workers: 1 }];
    let (_handle, run) = start(&pool(&qm, 1), &queues, RunLimits::new(false, None), &cancel);
    until(|| qm.waiting_gets("IN") == 1, "the poller waits on IN").await;
    cancel.cancel();
    let summary = tokio::time::timeout(std::time::Duration::from_secs(20), run.finish())
        .await
        .expect("the poller stops within a wait slice, not after its minute");
    assert_eq!(summary.queues[0].2, [PollEnd::Cancelled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_growing_at_shutdown_and_what_was_got_is_committed() {
    let qm = fake(256);
    // Each MQGET takes 100 ms: a batch of 100 would take ten seconds to fill.
    let (sink, cancel, run) = filling_a_batch(&qm, 100, 100).await;
    cancel.cancel();
    let summary = tokio::time::timeout(std::time::Duration::from_secs(60), run.finish())
        .await
        .expect("the run ends");
    let delivered = sink.got.lock().unwrap().len();
    assert!((1..100).contains(&delivered), "{delivered} delivered of a batch of 100");
    assert_eq!(summary.total().delivered, delivered as u64);
    assert_eq!(summary.total().backed_out, 0);
    // The rest was never got: still there, never backed out.
    let left = qm.browse("IN");
    assert_eq!(left.len(), 100 - delivered);
    assert!(
        left.iter().all(|m| m.state == "visible" && m.backout_count == 0),
        "{left:?}"
    );
    assert_eq!(summary.queues[0].2, [PollEnd::Cancelled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_mq_backs_out_is_counted_as_backed_out_and_the_batch_comes_back() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    // MQCMIT answers MQCC_WARNING 2003: MQ backed the unit of work out instead (its log full).
    qm.fail_next(Verb::Cmit, 1, 2003);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    let totals = summary.total();
    assert_eq!(
        (totals.delivered, totals.backed_out, totals.batches),
        (5, 5, 5),
        "the batch is counted as backed out, then each message is delivered alone"
    );
    let got: Vec<_> = sink.got.lock().unwrap().iter().map(|m| m.backout_count()).collect();
    assert_eq!(got, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "delivered again, at least once");
    assert_eq!(qm.depth("IN"), Some(0));
    assert_eq!(qm.reason_count(Verb::Cmit, 2003), 1);
}

/// Each message the sink got, with its backout count then, in order.
fn got_with_counts(sink: &Collect) -> Vec<(String, i32)> {
    let got = sink.got.lock().unwrap();
    got.iter()
        .map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.backout_count()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_lost_with_its_connection_is_counted_as_unknown_and_no_mqback_follows() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    // The connection breaks under MQCMIT: MQ may have committed, or backed out (the fake does).
    qm.fail_next(Verb::Cmit, 1, 2009);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    let t = summary.total();
    assert_eq!(
        (t.received, t.delivered, t.commit_unknown, t.backed_out),
        (10, 5, 5, 0),
        "the batch is in doubt, not backed out; then each message is delivered alone"
    );
    let expected: Vec<_> = (0..5)
        .map(|i| (format!("m{i}"), 0))
        .chain((0..5).map(|i| (format!("m{i}"), 1)))
        .collect();
    assert_eq!(
        got_with_counts(&sink),
        expected,
        "MQ backed out: the sink sees them again"
    );
    assert_eq!(
        qm.reason_count(Verb::Back, 2009),
        0,
        "no MQBACK on a connection that is gone"
    );
    assert_eq!(qm.depth("IN"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_took_effect_before_its_reply_was_lost_is_counted_as_unknown_once() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    // MQ committed, then the connection went before the reply came back.
    qm.fail_after_commit(1, 2009);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    let t = summary.total();
    assert_eq!((t.received, t.delivered, t.commit_unknown, t.backed_out), (5, 0, 5, 0));
    let expected: Vec<_> = (0..5).map(|i| (format!("m{i}"), 0)).collect();
    assert_eq!(got_with_counts(&sink), expected, "delivered once: nothing came back");
    assert_eq!(qm.depth("IN"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_fails_on_a_live_connection_is_backed_out_never_committed_by_mqdisc() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    // MQCMIT fails and leaves the unit of work open; the MQBACK that follows fails too. The
    // connection is retired, and its drop backs the batch out.
    qm.fail_next(Verb::Cmit, 1, 2102);
    qm.fail_next(Verb::Back, 1, 2102);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    let expected: Vec<_> = (0..5)
        .map(|i| (format!("m{i}"), 0))
        .chain((0..5).map(|i| (format!("m{i}"), 1)))
        .collect();
    assert_eq!(got_with_counts(&sink), expected, "backed out, then delivered again");
    let t = summary.total();
    assert_eq!((t.delivered, t.backed_out, t.commit_unknown), (5, 5, 0));
    assert!(summary.pool.reconnects >= 1, "{:?}", summary.pool);
    assert_eq!(qm.depth("IN"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_and_every_mqback_failing_leave_the_batch_to_mq_uncommitted() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    qm.fail_next(Verb::Cmit, 1, 2102);
    qm.fail_next(Verb::Back, 2, 2102);
    let (sink, summary) = collect_until_empty(&qm, 10).await;
    assert_eq!(sink.got.lock().unwrap().len(), 5);
    assert_eq!(summary.total().delivered, 0);
    // The retired connection could back out neither time: it is left to MQ, which backs the
    // batch out when the process ends, instead of disconnected (MQDISC would commit it).
    assert!(
        qm.connections().iter().any(|c| c.uncommitted == 5),
        "{:?}",
        qm.connections()
    );
    let states: Vec<_> = qm.browse("IN").iter().map(|m| m.state).collect();
    assert_eq!(states, ["got-uncommitted"; 5], "nothing was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_mq_no_longer_accepts_is_closed_and_opened_again() {
    let qm = fake(256);
    seed(&qm, "IN", 30);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    // 2019 (handle not valid) and 2041 (the queue changed since it was opened) on MQGET.
    qm.fail_next(Verb::Get, 1, 2019);
    let opens_before = qm.reason_count(Verb::Open, 0);
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(summary.total().delivered, 30);
    assert_eq!(qm.depth("IN"), Some(0));
    assert_eq!(
        qm.reason_count(Verb::Open, 0) - opens_before,
        3,
        "the queue manager (MAXHANDS at connect), IN, and IN again after the 2019"
    );
    qm.fail_next(Verb::Get, 1, 2041);
    seed(&qm, "IN", 5);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let opens_before = qm.reason_count(Verb::Open, 0);
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(summary.total().delivered, 5);
    assert_eq!(
        qm.reason_count(Verb::Open, 0) - opens_before,
        3,
        "a new connection's queue manager, IN, and IN again after the 2041"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_sink_outage_the_retry_pause_keeps_growing_as_poison_moves() {
    let qm = fake(256);
    seed(&qm, "IN", 20);
    let pool = pool(&qm, 1);
    let sink = Arc::new(Collect::default());
    sink.fail.store(usize::MAX, Ordering::SeqCst);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool, &queues, RunLimits::new(false, None), &cancel);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    cancel.cancel();
    run.finish().await;
    // Each message needs two more failures after its batch's (BOTHRESH 3). Had moving m0 to
    // the backout queue reset the pause (100 ms, then 200 ms), about a message every 0.3 s
    // would follow it; growing, the pauses let at most two through in 2.5 s.
    let moved = qm.depth("IN.BACKOUT").unwrap_or_default();
    assert!((1..=2).contains(&moved), "{moved} messages in the backout queue");
    assert_eq!(qm.depth("IN").unwrap_or_default() + moved, 20, "none lost");
}
