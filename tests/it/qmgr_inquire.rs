//! An application user with only `+connect` on the queue manager (no `+inq`): MQ refuses the
//! queue manager object's MQOPEN for inquire with 2035, and mqpilot still runs on IBM's
//! default MAXHANDS and MAXUMSGS.

use std::sync::Arc;

use mqpilot::fake::{FakeQm, Verb};
use mqpilot::pool::PoolConfig;
use mqpilot::worker::poller::{PollEnd, SinkTarget};
use mqpilot::worker::run::QueueRun;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::mcp::{call, ok, open_policy, qm as mcp_qm, server, stdio_client};
use crate::worker::{Collect, fake, plan, pool_with, run_until_empty, seed};

fn no_qmgr_inquire(qm: &FakeQm) {
    qm.alter_qmgr(|def| def.qmgr_inquire = false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_user_without_qmgr_inquire_authority_still_drains_the_queue() {
    let qm = fake(256);
    no_qmgr_inquire(&qm);
    seed(&qm, "IN", 25);
    let config = PoolConfig {
        connections: 1,
        max_handles: 300,
        handle_reserve: 8,
        ..PoolConfig::default()
    };
    let pool = pool_with(&qm, config);
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool, queues).await;
    assert_eq!(summary.stopped(), Vec::<(String, String)>::new());
    assert_eq!(summary.queues[0].2, [PollEnd::Empty]);
    assert_eq!(sink.got.lock().unwrap().len(), 25);
    assert_eq!(qm.depth("IN"), Some(0));
    assert!(
        qm.reason_count(Verb::Open, 2035) >= 1,
        "the queue manager inquire was refused"
    );
    let mut lease = pool.checkout(&CancellationToken::new()).await.expect("a connection");
    let (budget, max_uncommitted) = lease.run(|c| Ok((c.budget(), c.max_uncommitted()))).await.unwrap();
    assert_eq!(
        (budget, max_uncommitted),
        (248, 10_000),
        "IBM's default MAXHANDS assumed, less the reserve, below the configured 300; MAXUMSGS 10000"
    );
}

#[tokio::test]
async fn regression_mcp_serves_a_user_without_qmgr_inquire_authority() {
    let qm = mcp_qm();
    no_qmgr_inquire(&qm);
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 1, 32, &cancel), &cancel).await;
    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(got["commit_outcome"], "committed", "{got}");
    assert_eq!(qm.depth("ORDERS"), Some(3));
    assert!(qm.reason_count(Verb::Open, 2035) >= 1);
    // pool_status says the MAXHANDS it shows was assumed, not read.
    let pool = ok(&client, "pool_status", json!({})).await;
    let conn = &pool["connections"][0];
    assert_eq!(
        (
            &conn["max_handles"],
            &conn["max_handles_assumed"],
            &conn["budget_shrunk"]
        ),
        (&json!(null), &json!(256), &json!(false)),
        "{pool}"
    );
    // Regression: a connection that replaced a broken one was shown by its connection number
    // (1, 2, ...), not by the pool slot it fills.
    qm.break_all();
    // The call that meets the broken connection fails (2009); the next gets a new one.
    let _ = call(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    let _ = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    let pool = ok(&client, "pool_status", json!({})).await;
    assert_eq!(pool["reconnects"], 1, "{pool}");
    assert_eq!(pool["connections"][0]["id"], 0, "{pool}");
}
