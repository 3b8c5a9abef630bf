//! What the polling connector tells an operator while it runs: per-queue metrics, a poller
//! that stops, and batches kept within MAXUMSGS.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::worker::limits::RunLimits;
use mqpilot::worker::poller::{PollEnd, SinkTarget};
use mqpilot::worker::run::{QueueRun, Run, start};
use tokio_util::sync::CancellationToken;

use crate::worker::{Collect, fake, plan, pool, run_until_empty, seed};

/// Starts `queues` with their series in `recorder`, the run's own (pollers of other tests
/// count elsewhere).
fn start_recorded(
    recorder: &PrometheusRecorder,
    pool: &mqpilot::pool::Pool,
    queues: &[QueueRun],
    limits: RunLimits,
    cancel: &CancellationToken,
) -> Run {
    metrics::with_local_recorder(recorder, || start(pool, queues, limits, cancel).1)
}

/// Renders `recorder` until it shows every one of `wanted`; that page.
async fn page_showing(recorder: &PrometheusRecorder, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = recorder.handle().render();
        if wanted.iter().all(|w| page.contains(w)) {
            return page;
        }
        assert!(Instant::now() < deadline, "{wanted:?} never shown:\n{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Error lines logged by every test of this binary: the process's own subscriber, since one
/// scoped to a test's thread can miss events whose call site another test's thread registered
/// first. Tests tell their lines apart by queue name.
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<Vec<u8>>>);

impl Write for ErrorLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ErrorLog {
    fn installed() -> &'static Self {
        static LOG: OnceLock<ErrorLog> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Self::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::ERROR)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this binary");
            log
        })
    }

    fn lines_with(&self, word: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(word)).map(str::to_owned).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_that_stops_says_why_at_once_and_leaves_the_pollers_gauge() {
    let log = ErrorLog::installed();
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("IN"));
    config.queues.push(QueueDef::new("STOPS.HERE").backout(2, ""));
    let qm = FakeQm::new(config);
    qm.put_message(
        "STOPS.HERE",
        PutSpec {
            backout_count: 2,
            ..PutSpec::text("bad")
        },
    )
    .unwrap();
    let mut stops = (*plan("STOPS.HERE", 10, SinkTarget::External(Arc::new(Collect::default())))).clone();
    stops.backout_threshold = 2;
    stops.backout_queue = None;
    let queues = [
        QueueRun {
            plan: Arc::new(stops),
            workers: 1,
        },
        QueueRun {
            plan: plan("IN", 10, SinkTarget::External(Arc::new(Collect::default()))),
            workers: 2,
        },
    ];
    let recorder = PrometheusBuilder::new().build_recorder();
    let cancel = CancellationToken::new();
    let run = start_recorded(&recorder, &pool(&qm, 2), &queues, RunLimits::new(false, None), &cancel);
    // Received, found poison with nowhere to go, stopped; IN's two pollers go on.
    let stopped = [
        "mqpilot_messages_received_total{queue=\"STOPS.HERE\"} 1",
        "mqpilot_pollers{queue=\"STOPS.HERE\"} 0",
        "mqpilot_pollers{queue=\"IN\"} 2",
    ];
    page_showing(&recorder, &stopped).await;
    // Said while the run goes on, not only in the summary at its end.
    let stopped = log.lines_with("STOPS.HERE");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(
        stopped[0].contains("ERROR")
            && stopped[0].contains("stopped polling")
            && stopped[0].contains("no backout queue"),
        "{stopped:?}"
    );
    cancel.cancel();
    let summary = run.finish().await;
    assert_eq!(summary.queues[1].2, [PollEnd::Cancelled, PollEnd::Cancelled]);
    let page = recorder.handle().render();
    assert!(page.contains("mqpilot_pollers{queue=\"IN\"} 0"), "{page}");
    assert_eq!(qm.depth("STOPS.HERE"), Some(1), "the poison message stays where it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_lost_without_syncpoint_are_counted_in_the_metrics_and_the_sink_is_timed() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    let sink = Arc::new(Collect::default());
    sink.fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let mut at_most_once = (*plan("IN", 10, SinkTarget::External(sink.clone()))).clone();
    at_most_once.syncpoint = false;
    let queues = [QueueRun {
        plan: Arc::new(at_most_once),
        workers: 1,
    }];
    let recorder = PrometheusBuilder::new().build_recorder();
    let cancel = CancellationToken::new();
    let summary = start_recorded(&recorder, &pool(&qm, 1), &queues, RunLimits::new(true, None), &cancel)
        .finish()
        .await;
    assert_eq!(summary.total().lost_at_most_once, 5);
    let page = recorder.handle().render();
    for series in [
        "mqpilot_messages_lost_total{queue=\"IN\"} 5",
        "mqpilot_sink_failures_total{queue=\"IN\"} 1",
        "mqpilot_sink_seconds_count{queue=\"IN\"} 1",
    ] {
        assert!(page.contains(series), "{series} missing:\n{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_mid_batch_does_not_take_a_batch_of_maxumsgs_past_it() {
    let mut config = FakeConfig::default();
    config.queue_manager.max_uncommitted = 10;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("IN").backout(3, "IN.BACKOUT"));
    config.queues.push(QueueDef::new("IN.BACKOUT"));
    let qm = FakeQm::new(config);
    for i in 0..11 {
        let spec = PutSpec {
            backout_count: if i == 5 { 5 } else { 0 },
            ..PutSpec::text(format!("m{i}"))
        };
        qm.put_message("IN", spec).unwrap();
    }
    let sink = Arc::new(Collect::default());
    // A batch of MAXUMSGS gets: with a poison message in it, its put to the backout queue
    // would be the unit of work's eleventh operation (2024).
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool(&qm, 1), queues).await;
    assert_eq!(summary.stopped(), []);
    let totals = summary.total();
    assert_eq!((totals.delivered, totals.poisoned, totals.backed_out), (10, 1, 0));
    let boq: Vec<_> = qm.browse("IN.BACKOUT").into_iter().map(|m| m.data).collect();
    assert_eq!(boq, [b"m5".to_vec()]);
    assert_eq!(sink.got.lock().unwrap().len(), 10);
}

/// A sink that holds each batch until a permit is added.
struct Held(tokio::sync::Semaphore);

impl mqpilot::worker::sink::Sink for Held {
    fn deliver<'a>(&'a self, _batch: &'a [mqpilot::mq::message::Message]) -> mqpilot::worker::sink::Delivery<'a> {
        Box::pin(async move {
            self.0.acquire().await.expect("open").forget();
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "held"
    }
}

/// What an exit now would lose of `queue`: messages got without syncpoint, MQGETs under way.
async fn at_stake_becomes(queue: &str, wanted: (u64, u64)) {
    let started = Instant::now();
    loop {
        let now = mqpilot::worker::undelivered_without_syncpoint()
            .into_iter()
            .find(|u| u.queue == queue)
            .map_or((0, 0), |u| (u.messages, u.gets));
        if now == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{queue}: {now:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_got_without_syncpoint_count_from_their_mqget_until_the_sink_has_them() {
    const QUEUE: &str = "UNSYNCED.IN";
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new(QUEUE));
    let qm = FakeQm::new(config);
    let sink = Arc::new(Held(tokio::sync::Semaphore::new(0)));
    let mut unsynced = (*plan(QUEUE, 10, SinkTarget::External(sink.clone()))).clone();
    unsynced.syncpoint = false;
    unsynced.wait_ms = 60_000;
    let queues = [QueueRun {
        plan: Arc::new(unsynced),
        workers: 1,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool(&qm, 1), &queues, RunLimits::new(false, None), &cancel);
    // Idle: its MQGET waits, and may take a message at any moment.
    at_stake_becomes(QUEUE, (0, 1)).await;
    // One message at a time: the waiting MQGET takes each as it comes, a batch of its own.
    for i in 1..=2 {
        qm.put_message(QUEUE, PutSpec::text(format!("m{i}"))).expect("put");
        // Off the queue, with the sink, until it has taken them.
        at_stake_becomes(QUEUE, (1, 0)).await;
        assert_eq!(qm.depth(QUEUE).expect("depth"), 0);
        sink.0.add_permits(1);
        at_stake_becomes(QUEUE, (0, 1)).await;
    }
    cancel.cancel();
    let summary = run.finish().await;
    assert_eq!(summary.total().delivered, 2);
    at_stake_becomes(QUEUE, (0, 0)).await;
}
