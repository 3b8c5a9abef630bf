//! Reason codes of an MQ client that reconnects by itself (MQCNO_RECONNECT): a failed
//! reconnection ends the connection, and an MQCMIT cut by reconnection has an unknown outcome.

use std::sync::Arc;

use mqpilot::fake::Verb;
use mqpilot::worker::poller::{PollEnd, SinkTarget};
use mqpilot::worker::run::QueueRun;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::mcp::{open_policy, qm as mcp_qm, server, stdio_client, tool_error};
use crate::worker::{Collect, fake, plan, pool, run_until_empty, seed};

/// Drains IN on one connection with one poller, batch 10, into a [`Collect`] sink.
async fn drain(qm: &mqpilot::fake::FakeQm) -> (Arc<Collect>, mqpilot::worker::run::RunSummary) {
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool(qm, 1), queues).await;
    (sink, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_failed_client_reconnection_replaces_the_connection_instead_of_stopping() {
    // 2546: reconnection reached another queue manager; 2556: it timed out. Both end the
    // connection; neither is a configuration problem to stop polling for.
    for reason in [2546, 2556] {
        let qm = fake(256);
        seed(&qm, "IN", 5);
        qm.fail_next(Verb::Get, 1, reason);
        let (sink, summary) = drain(&qm).await;
        assert_eq!(summary.stopped(), Vec::<(String, String)>::new(), "{reason}");
        assert_eq!(summary.queues[0].2, [PollEnd::Empty], "{reason}");
        assert_eq!(sink.got.lock().unwrap().len(), 5, "{reason}");
        assert_eq!(qm.depth("IN"), Some(0), "{reason}");
        assert!(summary.pool.reconnects >= 1, "{reason}: {:?}", summary.pool);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_commit_cut_by_client_reconnection_is_counted_as_unknown_not_backed_out() {
    let qm = fake(256);
    seed(&qm, "IN", 5);
    // MQ committed; the reconnecting client answers 2549: it cannot tell whether it did.
    qm.fail_after_commit(1, 2549);
    let (sink, summary) = drain(&qm).await;
    let t = summary.total();
    assert_eq!(
        (t.received, t.delivered, t.commit_unknown, t.backed_out),
        (5, 0, 5, 0),
        "in doubt, like a commit lost with its connection; never counted as backed out"
    );
    assert_eq!(sink.got.lock().unwrap().len(), 5, "delivered once");
    assert_eq!(qm.reason_count(Verb::Cmit, 2549), 1);
    assert_eq!(qm.depth("IN"), Some(0));
}

#[tokio::test]
async fn regression_an_mcp_receive_whose_commit_is_cut_by_reconnection_returns_its_messages() {
    let qm = mcp_qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    qm.fail_after_commit(1, 2549);
    let got = crate::mcp::ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(got["commit_outcome"], "unknown", "{got}");
    assert_eq!(got["messages"].as_array().map(Vec::len), Some(2), "{got}");
    assert_eq!(qm.depth("ORDERS"), Some(3), "MQ committed them");
    // A failure that leaves the unit of work open is still backed out and an error.
    qm.fail_next(Verb::Cmit, 1, 2195);
    let e = tool_error(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    assert_eq!(e["reason_code"], 2195, "{e}");
    assert_eq!(qm.depth("ORDERS"), Some(3));
}
