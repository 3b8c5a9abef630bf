//! The MCP server through rmcp's real client over an in-memory stdio pipe, against the fake:
//! tool lists, each tool's happy path and errors, policy refusals that never reach MQ, locks
//! that never lose a message, and the handle budget under concurrent calls.

use std::sync::Arc;
use std::time::Duration;

use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::mcp::delivery::Closing;
use mqpilot::mcp::locks::Lifetime;
use mqpilot::mcp::queues::CallerGone;
use mqpilot::mcp::{self, Capability, McpServer, Policy};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::{Patience, PoolConfig};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServiceError, ServiceExt as _};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub type Client = RunningService<RoleClient, ()>;

/// QM1 with ORDERS (5 messages, BOTHRESH 3), OUT (MAXMSGL 64), SYSTEM.ADMIN.COMMAND.QUEUE,
/// PAYROLL, and Q00..Q19 for the handle-budget test.
pub fn qm() -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("ORDERS").backout(3, "ORDERS.BACKOUT"));
    config.queues.push(QueueDef::new("ORDERS.BACKOUT"));
    config.queues.push(QueueDef::new("OUT").max_msg_length(64));
    config.queues.push(QueueDef::new("PAYROLL"));
    config.queues.push(QueueDef::new("SYSTEM.ADMIN.COMMAND.QUEUE"));
    for i in 0..20 {
        config.queues.push(QueueDef::new(format!("Q{i:02}")));
    }
    let qm = FakeQm::new(config);
    for i in 0..5 {
        qm.put_message("ORDERS", PutSpec::text(format!("order {i}")))
            .expect("put");
    }
    qm
}

/// Every capability on every queue but PAYROLL.
pub fn open_policy() -> Policy {
    Policy::with(&Capability::ALL, &["*"]).deny(Capability::Browse, &["PAYROLL"])
}

/// Connect options for the test queue managers' APP.SVRCONN channel.
fn app_channel() -> ConnectOptions {
    ConnectOptions::builder()
        .with_channel(parse_mqserver("APP.SVRCONN/TCP/localhost(1414)", "test").expect("channel"))
        .build()
        .expect("options")
}

pub fn server(
    qm: &FakeQm,
    policy: Policy,
    connections: usize,
    max_handles: usize,
    cancel: &CancellationToken,
) -> McpServer {
    patient_server(qm, policy, connections, max_handles, Patience::default(), cancel)
}

/// [`server`] whose calls wait for a connection only as long as `patience` allows.
pub fn patient_server(
    qm: &FakeQm,
    policy: Policy,
    connections: usize,
    max_handles: usize,
    patience: Patience,
    cancel: &CancellationToken,
) -> McpServer {
    let pool = PoolConfig {
        connections,
        max_handles,
        ..PoolConfig::default()
    };
    mcp::build(
        MqLibrary::fake(qm.library("127.0.0.1")),
        app_channel(),
        pool,
        Arc::new(qm.clone()),
        policy,
        patience,
        cancel,
    )
}

/// A client connected to `server` over an in-memory pipe; the server task ends (backing
/// out its locks) when the client goes away.
pub async fn stdio_client(server: McpServer, cancel: &CancellationToken) -> (Client, tokio::task::JoinHandle<()>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(theirs);
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            mcp::serve_stream(server, read, write, cancel).await.expect("served");
        }
    });
    let client = ().serve(ours).await.expect("client initialized");
    (client, task)
}

pub async fn call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult, ServiceError> {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map)),
    )
    .await
    .expect("call finished in time")
}

/// The structured result of a successful call.
pub async fn ok(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await.expect("call");
    assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.structured_content);
    let s = r.structured_content.clone().expect("structured content");
    let text = r.content[0].as_text().expect("text content").text.clone();
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("text is JSON"),
        s,
        "text and structured content agree"
    );
    s
}

/// The failure of a call that failed as a tool error: its text, which is JSON (an error
/// carries no structured content, which clients check against the tool's output schema).
pub async fn tool_error(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await.expect("call");
    assert_eq!(r.is_error, Some(true), "{tool} should fail: {:?}", r.content);
    assert_eq!(r.structured_content, None, "{tool}: an error has no structured content");
    let text = &r.content[0].as_text().expect("text content").text;
    serde_json::from_str(text).expect("the failure is JSON")
}

/// Returns once `done` holds, checking every 10 ms; fails the test with `what` after `secs`.
pub async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Returns once an MQGET waits on `queue` (a receive has reached the queue manager).
pub async fn until_mqget_waits(qm: &FakeQm, queue: &str) {
    until(&format!("no MQGET waited on {queue}"), 10, || {
        qm.waiting_gets(queue) > 0
    })
    .await;
}

fn depth(qm: &FakeQm, q: &str) -> i32 {
    qm.depth(q).expect("queue exists")
}

async fn names(client: &Client) -> Vec<String> {
    let mut n: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn tools_list_matches_the_policy() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, Policy::default(), 2, 32, &cancel), &cancel).await;
    assert_eq!(
        names(&client).await,
        [
            "browse_messages",
            "explain_reason_code",
            "list_queues",
            "plan_capacity",
            "pool_status",
            "queue_status"
        ]
    );
    let (full, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let tools = full.list_all_tools().await.expect("tools");
    assert_eq!(tools.len(), 10);
    let get = |n: &str| tools.iter().find(|t| t.name == n).expect("tool listed").clone();
    let browse = get("browse_messages").annotations.expect("annotations");
    assert_eq!(
        (browse.read_only_hint, browse.destructive_hint),
        (Some(true), Some(false))
    );
    let receive = get("receive_messages").annotations.expect("annotations");
    assert_eq!(
        (receive.read_only_hint, receive.destructive_hint),
        (Some(false), Some(true))
    );
    assert!(get("lock_messages").annotations.expect("annotations").destructive_hint == Some(true));
    assert!(
        tools.iter().all(|t| t.output_schema.is_some()),
        "every tool has an output schema"
    );
    // A disabled tool is not callable either.
    let r = call(&client, "receive_messages", json!({"queue": "ORDERS"})).await;
    assert!(r.is_err() || r.expect("result").is_error == Some(true));
    assert_eq!(depth(&qm, "ORDERS"), 5);
}

#[tokio::test]
async fn inspect_tools_report_queues_pool_and_reason_codes() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let list = ok(&client, "list_queues", json!({"pattern": "ORD*"})).await;
    let queues = list["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), 2, "{list}");
    assert_eq!(queues[0]["name"], "ORDERS");
    assert_eq!(queues[0]["depth"], 5);
    assert_eq!(queues[0]["get_enabled"], true);
    let all = ok(&client, "list_queues", json!({})).await;
    assert!(
        all["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .all(|q| q["name"] != "SYSTEM.ADMIN.COMMAND.QUEUE"),
        "SYSTEM queues are not listed without an explicit allow"
    );
    let status = ok(&client, "queue_status", json!({"queue": "ORDERS"})).await;
    assert_eq!(status["depth"], 5);
    assert_eq!(status["backout_threshold"], 3);
    assert_eq!(status["backout_queue"], "ORDERS.BACKOUT");
    assert_eq!(status["uncommitted"], 0);
    let explained = ok(
        &client,
        "explain_reason_code",
        json!({"code": "MQRC_HANDLE_NOT_AVAILABLE"}),
    )
    .await;
    assert_eq!(explained["code"], 2017);
    let by_number = ok(&client, "explain_reason_code", json!({"code": 2085})).await;
    assert_eq!(by_number["name"], "MQRC_UNKNOWN_OBJECT_NAME");
    let pool = ok(&client, "pool_status", json!({})).await;
    let conns = pool["connections"].as_array().expect("connections");
    assert!(!conns.is_empty() && conns.len() <= 2, "{pool}");
    assert_eq!(conns[0]["budget"], 32);
    assert_eq!(
        (&conns[0]["max_handles"], &conns[0]["max_handles_assumed"]),
        (&json!(256), &json!(null)),
        "{pool}"
    );
}

#[tokio::test]
async fn browse_is_non_destructive_and_truncates() {
    let qm = qm();
    qm.put_message("Q00", PutSpec::text(vec![0xff, 0xfe, 0x00, 0x01]))
        .expect("put");
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let got = ok(
        &client,
        "browse_messages",
        json!({"queue": "ORDERS", "limit": 3, "max_payload_bytes": 5}),
    )
    .await;
    let msgs = got["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["payload"], "order");
    assert_eq!(msgs[0]["truncated"], true);
    assert_eq!(msgs[0]["format"], "MQSTR");
    assert_eq!(msgs[0]["msg_id"].as_str().expect("hex").len(), 48);
    assert_eq!(depth(&qm, "ORDERS"), 5, "browse leaves the messages");
    let whole = ok(&client, "browse_messages", json!({"queue": "ORDERS"})).await;
    assert_eq!(
        whole["messages"].as_array().expect("messages").len(),
        5,
        "the next browse starts at the front again"
    );
    assert_eq!(whole["messages"][4]["payload"], "order 4");
    assert_eq!(whole["messages"][4]["truncated"], false);
    let binary = ok(&client, "browse_messages", json!({"queue": "Q00"})).await;
    assert_eq!(binary["messages"][0]["payload_encoding"], "base64");
    assert_eq!(binary["messages"][0]["payload"], "//4AAQ==");
    let bare = ok(
        &client,
        "browse_messages",
        json!({"queue": "ORDERS", "limit": 1, "include_payload": false}),
    )
    .await;
    assert!(bare["messages"][0]["payload"].is_null());
}

#[tokio::test]
async fn receive_commits_and_put_sets_the_descriptor() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(got["messages"].as_array().expect("messages").len(), 2);
    assert_eq!(got["messages"][0]["payload"], "order 0");
    assert_eq!(depth(&qm, "ORDERS"), 3);
    assert_eq!(qm.queue_status("ORDERS").expect("status").uncommitted, 0, "committed");
    let empty = ok(&client, "receive_messages", json!({"queue": "Q01", "wait_ms": 10})).await;
    assert!(empty["messages"].as_array().expect("messages").is_empty());

    let put = ok(
        &client,
        "put_message",
        json!({"queue": "Q02", "payload": "aGk=", "encoding": "base64", "correl_id": "c0ffee", "priority": 7, "format": "MQSTR"}),
    )
    .await;
    assert_eq!(put["bytes"], 2);
    let seen = qm.browse("Q02");
    assert_eq!(seen[0].data, b"hi");
    assert_eq!(seen[0].priority, 7);
    assert_eq!(&seen[0].correl_id[..3], &[0xc0, 0xff, 0xee]);
}

#[tokio::test]
async fn receive_and_lock_stop_at_max_result_bytes_and_leave_the_rest_on_the_queue() {
    let qm = qm();
    // Each 2000-byte text payload costs 4006 bytes of a result (its JSON string and that
    // string's copy in the text); after two, 1988 bytes are left, room in base64 for 741.
    for c in ["a", "b", "c"] {
        qm.put_message("Q03", PutSpec::text(c.repeat(2000))).expect("put");
    }
    qm.put_message("Q04", PutSpec::text("x".repeat(20_000))).expect("put");
    let mut policy = open_policy();
    policy.limits.max_result_bytes = 10_000;
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, policy, 3, 32, &cancel), &cancel).await;

    let got = ok(&client, "receive_messages", json!({"queue": "Q03", "limit": 10})).await;
    let payloads: Vec<&str> = got["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["payload"].as_str().expect("payload")[..1])
        .collect();
    assert_eq!(payloads, ["a", "b"], "two of 2000 bytes fit in 10000, a third does not");
    assert_eq!(depth(&qm, "Q03"), 1, "the third stays on the queue");
    assert_eq!(qm.queue_status("Q03").expect("status").uncommitted, 0);
    assert_eq!(backout_counts(&qm, "Q03"), [0], "and was never taken");

    // A message longer than the whole cap is refused, and stays where it is; the refusal
    // says the limit and the largest payload that fits under it.
    let e = tool_error(&client, "receive_messages", json!({"queue": "Q04"})).await;
    assert_eq!(e["rule"], "limits.max_result_bytes", "{e}");
    assert_eq!(e["reason_code"], 2080, "{e}");
    let meaning = e["meaning"].as_str().expect("meaning");
    assert!(
        meaning.contains("longer than 3747 bytes") && meaning.contains("limits.max_result_bytes (10000)"),
        "{e}"
    );
    assert!(!e["advice"].as_str().expect("advice").contains("buffer"), "{e}");
    assert_eq!(depth(&qm, "Q04"), 1);
    assert_eq!(backout_counts(&qm, "Q04"), [0]);
    let e = tool_error(&client, "lock_messages", json!({"queue": "Q04"})).await;
    assert_eq!(e["rule"], "limits.max_result_bytes", "{e}");
    assert_eq!(ok(&client, "pool_status", json!({})).await["locks_held"], 0);
    assert_eq!(backout_counts(&qm, "Q04"), [0]);

    for c in ["d", "e"] {
        qm.put_message("Q03", PutSpec::text(c.repeat(2000))).expect("put");
    }
    let lock = ok(&client, "lock_messages", json!({"queue": "Q03", "limit": 10})).await;
    assert_eq!(lock["messages"].as_array().expect("messages").len(), 2);
    assert_eq!(depth(&qm, "Q03"), 1, "c and d are locked, e waits");
    let id = lock["lock_id"].as_str().expect("lock id");
    ok(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    let rest = ok(&client, "receive_messages", json!({"queue": "Q03", "limit": 10})).await;
    assert_eq!(
        rest["messages"][0]["payload"].as_str().expect("payload"),
        "e".repeat(2000)
    );
    assert_eq!(depth(&qm, "Q03"), 0);
}

#[tokio::test]
async fn browse_stops_at_max_result_bytes_too() {
    let qm = qm();
    for c in ["a", "b", "c"] {
        qm.put_message("Q05", PutSpec::text(c.repeat(2000))).expect("put");
    }
    let mut policy = open_policy();
    policy.limits.max_result_bytes = 10_000;
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, policy, 3, 32, &cancel), &cancel).await;
    let args = json!({"queue": "Q05", "limit": 10, "max_payload_bytes": 8000});
    let got = ok(&client, "browse_messages", args).await;
    let lengths: Vec<(usize, bool)> = got["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["payload"].as_str().expect("payload").len(), m["truncated"] == true))
        .collect();
    assert_eq!(lengths, [(2000, false), (2000, false)], "a third 2000 would pass 10000");
    // A first message longer than the whole cap comes back cut to fit, and says so: 4997
    // bytes of text cost 2 * 4997 + 6 = 10000.
    qm.put_message("Q06", PutSpec::text("z".repeat(20_000))).expect("put");
    let got = ok(
        &client,
        "browse_messages",
        json!({"queue": "Q06", "max_payload_bytes": 1_000_000}),
    )
    .await;
    assert_eq!(got["messages"][0]["payload"].as_str().expect("payload").len(), 4997);
    assert_eq!(got["messages"][0]["truncated"], true);
    assert_eq!(depth(&qm, "Q05"), 3, "browsing takes nothing");
    assert_eq!(depth(&qm, "Q06"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_refused_at_the_limit_take_no_message() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 6, 32, &cancel), &cancel).await;
    let client = Arc::new(client);
    // The policy's max_locks, below the 5 connections a lock may hold out of 6.
    let max = open_policy().limits.max_locks as u64;
    assert!(max < 5);
    // Five calls at once against the limit: the refused ones must not get (and back out)
    // messages first, which would raise the backout count of messages nobody saw.
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let c = Arc::clone(&client);
            tokio::spawn(async move {
                call(
                    &c,
                    "lock_messages",
                    json!({"queue": "ORDERS", "limit": 1, "lock_seconds": 300}),
                )
                .await
            })
        })
        .collect();
    let mut refused = 0_u64;
    for c in calls {
        if c.await.expect("task").expect("call").is_error == Some(true) {
            refused += 1;
        }
    }
    assert_eq!(refused, 5 - max, "max_locks {max}");
    assert!(
        backout_counts(&qm, "ORDERS").iter().all(|&n| n == 0),
        "{:?}",
        backout_counts(&qm, "ORDERS")
    );
}

#[tokio::test]
async fn mq_errors_are_tool_errors_with_the_reason_explained() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let e = tool_error(&client, "browse_messages", json!({"queue": "NO.SUCH.QUEUE"})).await;
    assert_eq!(e["reason_code"], 2085);
    assert_eq!(e["reason_name"], "MQRC_UNKNOWN_OBJECT_NAME");
    assert!(e["advice"].as_str().is_some_and(|a| !a.is_empty()));
    // Only the fields that apply: no policy rule refused this.
    assert!(e.get("rule").is_none(), "{e}");
    let e = tool_error(&client, "queue_status", json!({"queue": "NO.SUCH.QUEUE"})).await;
    assert_eq!(e["reason_code"], 2085);
    // OUT has MAXMSGL 64: MQ refuses, the server says why.
    let e = tool_error(
        &client,
        "put_message",
        json!({"queue": "OUT", "payload": "x".repeat(65)}),
    )
    .await;
    assert_eq!(e["reason_code"], 2030, "{e}");
    assert_eq!(depth(&qm, "OUT"), 0);
}

#[tokio::test]
async fn oversize_put_is_refused_before_mq() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let policy = Policy::from_toml(
        "capabilities = [\"produce\"]\n[produce]\nallow = [\"Q*\"]\n[limits]\nmax_put_bytes = 8\n",
        std::path::Path::new("policy.toml"),
    )
    .expect("policy");
    let (client, _) = stdio_client(server(&qm, policy, 2, 32, &cancel), &cancel).await;
    let e = tool_error(&client, "put_message", json!({"queue": "Q03", "payload": "123456789"})).await;
    assert!(e["error"].as_str().expect("error").contains("at most 8"), "{e}");
    assert_eq!(e["rule"], "limits.max_put_bytes");
    assert_eq!(qm.peak_connections(), 0, "no MQ call was made");
}

#[tokio::test]
async fn denied_queues_name_the_rule_and_never_reach_mq() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let before = qm.reason_counts();
    let e = tool_error(&client, "browse_messages", json!({"queue": "PAYROLL"})).await;
    assert_eq!(e["rule"], "browse.deny[0] \"PAYROLL\" in a built-in policy");
    let e = tool_error(&client, "queue_status", json!({"queue": "SYSTEM.ADMIN.COMMAND.QUEUE"})).await;
    assert!(e["rule"].as_str().expect("rule").contains("SYSTEM.*"), "{e}");
    let e = tool_error(
        &client,
        "receive_messages",
        json!({"queue": "SYSTEM.ADMIN.COMMAND.QUEUE"}),
    )
    .await;
    assert!(e["rule"].as_str().expect("rule").contains("SYSTEM.*"), "{e}");
    assert_eq!(qm.peak_connections(), 0, "the queue manager saw no connection");
    assert_eq!(qm.reason_counts(), before, "and no MQI call");
}

#[tokio::test]
async fn names_mq_would_read_differently_never_pass_the_policy() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    // MQ stops at a NUL and ignores trailing blanks: both would open PAYROLL, which is denied.
    for queue in [
        "PAYROLL ",
        "PAYROLL\u{0}.IN",
        "",
        "A".repeat(49).as_str(),
        "ORDERS;DROP",
    ] {
        match call(&client, "browse_messages", json!({ "queue": queue })).await {
            Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602, "{queue:?}: {e:?}"),
            other => panic!("{queue:?}: expected invalid params, got {other:?}"),
        }
    }
    // The error names the argument that is wrong.
    for (args, arg) in [
        (
            json!({"queue": "Q00", "payload": "x", "reply_to": "REPLY Q"}),
            "reply_to",
        ),
        (json!({"queue": "Q 00", "payload": "x", "reply_to": "REPLY.Q"}), "queue"),
    ] {
        match call(&client, "put_message", args.clone()).await {
            Err(ServiceError::McpError(e)) => {
                assert_eq!(e.code.0, -32602, "{args}: {e:?}");
                assert!(e.message.starts_with(&format!("{arg} must be")), "{args}: {e:?}");
            }
            other => panic!("{args}: expected invalid params, got {other:?}"),
        }
    }
    assert_eq!(qm.peak_connections(), 0, "the queue manager saw no connection");
}

#[tokio::test]
async fn invalid_arguments_are_json_rpc_invalid_params() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    for (tool, args) in [
        ("browse_messages", json!({"queue": "ORDERS", "limit": 0})),
        ("browse_messages", json!({"queue": "ORDERS", "limit": 101})),
        ("browse_messages", json!({"limit": 1})),
        ("receive_messages", json!({"queue": "ORDERS", "wait_ms": 60000})),
        ("lock_messages", json!({"queue": "ORDERS", "lock_seconds": 301})),
        ("complete_messages", json!({"lock_id": "x", "action": "rollback"})),
        (
            "put_message",
            json!({"queue": "Q00", "payload": "%%%", "encoding": "base64"}),
        ),
        (
            "put_message",
            json!({"queue": "Q00", "payload": "x", "correl_id": "nothex"}),
        ),
        ("explain_reason_code", json!({"code": "NOT_A_REASON"})),
    ] {
        match call(&client, tool, args.clone()).await {
            Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602, "{tool} {args}: {e:?}"),
            other => panic!("{tool} {args}: expected invalid params, got {other:?}"),
        }
    }
    assert_eq!(qm.peak_connections(), 0);
    assert_eq!(depth(&qm, "ORDERS"), 5);
}

fn backout_counts(qm: &FakeQm, q: &str) -> Vec<i32> {
    qm.browse(q)
        .iter()
        .filter(|m| m.state == "visible")
        .map(|m| m.backout_count)
        .collect()
}

#[tokio::test]
async fn locks_commit_abort_and_reject_wrong_ids() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    let lock = ok(
        &client,
        "lock_messages",
        json!({"queue": "ORDERS", "limit": 2, "lock_seconds": 60}),
    )
    .await;
    let id = lock["lock_id"].as_str().expect("lock id").to_owned();
    assert_eq!(lock["messages"].as_array().expect("messages").len(), 2);
    assert!(lock["expires_at"].as_str().expect("expiry").ends_with('Z'));
    assert_eq!(depth(&qm, "ORDERS"), 3, "locked messages are hidden");
    let e = tool_error(
        &client,
        "complete_messages",
        json!({"lock_id": "0123456789abcdef0123456789abcdef", "action": "commit"}),
    )
    .await;
    assert!(e["error"].as_str().expect("error").contains("no such lock"), "{e}");
    let done = ok(&client, "complete_messages", json!({"lock_id": id, "action": "abort"})).await;
    assert_eq!(done["messages"], 2);
    assert_eq!(depth(&qm, "ORDERS"), 5);
    assert_eq!(
        backout_counts(&qm, "ORDERS"),
        [1, 1, 0, 0, 0],
        "aborted messages come back with backout count + 1"
    );
    let e = tool_error(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert!(
        e["error"].as_str().expect("error").contains("no such lock"),
        "a completed id is gone: {e}"
    );

    let lock = ok(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    let id = lock["lock_id"].as_str().expect("lock id").to_owned();
    ok(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert_eq!(depth(&qm, "ORDERS"), 4);
    let none = ok(&client, "lock_messages", json!({"queue": "Q05"})).await;
    assert!(none["lock_id"].is_null(), "nothing to lock holds nothing: {none}");
    assert_eq!(ok(&client, "pool_status", json!({})).await["locks_held"], 0);
}

#[tokio::test]
async fn expired_locks_put_messages_back() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let lock = ok(
        &client,
        "lock_messages",
        json!({"queue": "ORDERS", "limit": 3, "lock_seconds": 1}),
    )
    .await;
    let id = lock["lock_id"].as_str().expect("lock id").to_owned();
    assert_eq!(depth(&qm, "ORDERS"), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while depth(&qm, "ORDERS") != 5 {
        assert!(tokio::time::Instant::now() < deadline, "the lock never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 1, 0, 0]);
    let e = tool_error(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert!(e["error"].as_str().expect("error").contains("expired"), "{e}");
    assert_eq!(depth(&qm, "ORDERS"), 5);
}

#[tokio::test]
async fn shutdown_backs_out_held_locks() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, task) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    ok(
        &client,
        "lock_messages",
        json!({"queue": "ORDERS", "limit": 2, "lock_seconds": 300}),
    )
    .await;
    ok(
        &client,
        "lock_messages",
        json!({"queue": "ORDERS", "limit": 1, "lock_seconds": 300}),
    )
    .await;
    let e = tool_error(&client, "lock_messages", json!({"queue": "ORDERS"})).await;
    assert!(
        e["error"].as_str().expect("error").contains("locks are held"),
        "one connection stays free: {e}"
    );
    assert_eq!(depth(&qm, "ORDERS"), 2);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stopped")
        .expect("task");
    assert_eq!(depth(&qm, "ORDERS"), 5);
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 1, 0, 0]);
    drop(client);
}

#[tokio::test]
async fn concurrent_calls_never_exceed_the_handle_budget() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let budget = 4;
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, budget, &cancel), &cancel).await;
    let client = Arc::new(client);
    let mut calls = Vec::new();
    for i in 0..60 {
        let client = Arc::clone(&client);
        calls.push(tokio::spawn(async move {
            let q = format!("Q{:02}", i % 20);
            let (tool, args) = match i % 3 {
                0 => ("browse_messages", json!({"queue": q})),
                1 => ("queue_status", json!({"queue": q})),
                _ => ("put_message", json!({"queue": q, "payload": "m"})),
            };
            ok(&client, tool, args).await
        }));
    }
    for c in calls {
        c.await.expect("call task");
    }
    let conns = qm.connections();
    assert!(!conns.is_empty());
    for c in &conns {
        assert!(
            c.peak_handles <= budget,
            "connection {} peaked at {} handles (budget {budget})",
            c.hconn,
            c.peak_handles
        );
    }
    let pool = ok(&client, "pool_status", json!({})).await;
    assert!(pool["connections"].as_array().expect("connections").len() <= 3);
    assert_eq!(qm.reason_count(mqpilot::fake::Verb::Open, 2017), 0, "no 2017");
}

/// `mqpilot mcp --stdio` plus `args` as a child process, with an rmcp client on its stdio.
/// With `rust_log`, that is its `RUST_LOG` and its stderr is piped for the test to read;
/// without, stderr is discarded.
async fn binary_client(args: &[&str], rust_log: Option<&str>) -> (tokio::process::Child, Client) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqpilot"));
    command.args(["mcp", "--stdio"]).args(args);
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(if rust_log.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mqpilot");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    let client = tokio::time::timeout(Duration::from_secs(10), ().serve((stdout, stdin)))
        .await
        .expect("initialized in time")
        .expect("initialized");
    (child, client)
}

/// Closes the client (the server's stdin) and waits for the process to exit.
async fn close_and_wait(mut child: tokio::process::Child, client: Client) -> std::process::ExitStatus {
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exited")
        .expect("status")
}

#[tokio::test]
async fn the_binary_serves_stdio_on_the_fake() {
    let (child, client) = binary_client(&["--fake"], None).await;
    let got = ok(&client, "browse_messages", json!({"queue": "DEMO.IN", "limit": 2})).await;
    assert_eq!(got["messages"].as_array().expect("messages").len(), 2);
    assert!(
        got["messages"][0]["payload"]
            .as_str()
            .expect("payload")
            .contains("\"order\":1000")
    );
    let status = ok(&client, "queue_status", json!({"queue": "DEMO.IN"})).await;
    assert_eq!(status["depth"], 1000);
    let code = close_and_wait(child, client).await;
    assert_eq!(code.code(), Some(0), "stdin closed: a clean exit");
}

#[tokio::test]
async fn debug_logs_carry_no_payloads() {
    let (mut child, client) = binary_client(&["--fake"], Some("debug")).await;
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .expect("stderr");
        text
    });
    let got = ok(&client, "browse_messages", json!({"queue": "DEMO.IN", "limit": 2})).await;
    assert!(
        got["messages"][0]["payload"]
            .as_str()
            .expect("payload")
            .contains("widget-")
    );
    close_and_wait(child, client).await;
    let logs = logs.await.expect("stderr task");
    assert!(logs.contains("DEBUG"), "RUST_LOG=debug is in effect: {logs}");
    assert!(!logs.contains("widget-"), "a browsed payload reached the log: {logs}");
}

#[tokio::test]
async fn the_binary_serves_a_fake_qm_server_through_its_pool() {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("ORDERS"));
    let qm = FakeQm::new(config);
    for i in 0..3 {
        qm.put_message("ORDERS", PutSpec::text(format!("order {i}")))
            .expect("seed");
    }
    let server = mqpilot::fake::net::Server::bind("127.0.0.1:0", qm.clone())
        .and_then(mqpilot::fake::net::Server::spawn)
        .expect("serve on loopback");
    let addr = server.local_addr().to_string();
    let (child, client) = binary_client(&["--fake-qm", &addr, "--conn", "APP.SVRCONN/TCP/localhost(1414)"], None).await;
    let listed = ok(&client, "list_queues", json!({})).await;
    assert!(listed.to_string().contains("ORDERS"), "{listed}");
    let got = ok(&client, "browse_messages", json!({"queue": "ORDERS", "limit": 5})).await;
    assert_eq!(got["messages"].as_array().expect("messages").len(), 3);
    // The server saw the MCP server's own pooled connection on the channel.
    assert!(
        qm.channels()
            .iter()
            .any(|c| c.name == "APP.SVRCONN" && c.peak_instances >= 1)
    );
    let code = close_and_wait(child, client).await;
    assert_eq!(code.code(), Some(0));
}

#[tokio::test]
async fn the_binary_names_the_fake_qm_server_it_cannot_reach() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    // --conn's host(port) is not what --fake-qm dials.
    let (child, client) = binary_client(
        &["--fake-qm", &addr, "--conn", "APP.SVRCONN/TCP/localhost(21414)"],
        None,
    )
    .await;
    let e = tool_error(&client, "browse_messages", json!({"queue": "ORDERS"})).await;
    assert_eq!(e["reason_code"], 2538, "{e}");
    let text = e.to_string();
    assert!(text.contains(&addr) && text.contains("--fake-qm"), "{text}");
    assert!(!text.contains("21414"), "{text}");
    close_and_wait(child, client).await;
}

#[test]
fn the_example_files_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let policy = Policy::from_file(&root.join("mcp-policy.toml")).expect("example policy");
    assert!(policy.check(Capability::Consume, "DEMO.IN").is_ok());
    assert!(policy.check(Capability::Browse, "DEMO.BACKOUT").is_err());
    assert!(policy.check(Capability::Inspect, "SYSTEM.DEAD.LETTER.QUEUE").is_ok());
    mcp::Authenticator::none()
        .with_tokens_file(&root.join("mcp-tokens.toml"))
        .expect("example tokens");
}

#[tokio::test]
async fn stdio_serves_2026_07_28_discovery_clients_too() {
    use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
    let qm = qm();
    let cancel = CancellationToken::new();
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(theirs);
    tokio::spawn(mcp::serve_stream(
        server(&qm, open_policy(), 2, 32, &cancel),
        read,
        write,
        cancel.clone(),
    ));
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    let client = ().serve_with_lifecycle(ours, lifecycle).await.expect("discovered");
    assert_eq!(
        client.peer_info().expect("peer").protocol_version.to_string(),
        "2026-07-28"
    );
    let got = ok(&client, "browse_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    assert_eq!(got["messages"][0]["payload"], "order 0");
    let legacy = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel)
        .await
        .0;
    assert_eq!(
        legacy.peer_info().expect("peer").protocol_version.to_string(),
        "2025-11-25"
    );
}

#[tokio::test]
async fn plan_capacity_reports_on_a_model_without_touching_mq() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, Policy::default(), 2, 32, &cancel), &cancel).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mqpilot.toml");
    let text = std::fs::read_to_string(&path).expect("model");
    let from_toml = ok(&client, "plan_capacity", json!({"model": text})).await;
    assert_eq!(from_toml["schema_version"], 1);
    assert_eq!(from_toml["apps"][0]["name"], "orders-worker", "{from_toml}");
    assert!(from_toml["status"].is_string());
    let value: toml::Value = toml::from_str(&text).expect("toml");
    let object = serde_json::to_value(value).expect("json");
    let from_json = ok(&client, "plan_capacity", json!({"model": object})).await;
    assert_eq!(
        from_json["checks"], from_toml["checks"],
        "TOML and JSON give the same plan"
    );
    let e = tool_error(
        &client,
        "plan_capacity",
        json!({"model": "[queue_manager]\nname = 7\n"}),
    )
    .await;
    assert!(e["error"].as_str().expect("error").contains("model:2:"), "{e}");
    match call(&client, "plan_capacity", json!({"model": text, "headroom_pct": 100})).await {
        Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602),
        other => panic!("expected invalid params, got {other:?}"),
    }
    assert_eq!(qm.peak_connections(), 0, "the planner makes no MQ call");
    let (denied, _) = stdio_client(
        server(&qm, Policy::with(&[Capability::Inspect], &["*"]), 2, 32, &cancel),
        &cancel,
    )
    .await;
    assert!(!names(&denied).await.contains(&"plan_capacity".to_owned()));
}

#[tokio::test]
async fn a_call_answers_instead_of_waiting_for_ever_for_a_connection() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let patience = Patience {
        busy: Duration::from_millis(300),
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
    };
    let server = patient_server(&qm, open_policy(), 2, 32, patience, &cancel);
    let (client, _) = stdio_client(server.clone(), &cancel).await;
    let (other, _) = stdio_client(server, &cancel).await;

    // Both connections held: one by a lock, one by a receive waiting on an empty queue.
    ok(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    let waiting =
        tokio::spawn(async move { call(&other, "receive_messages", json!({"queue": "Q07", "wait_ms": 3000})).await });
    until_mqget_waits(&qm, "Q07").await;
    let e = tool_error(&client, "queue_status", json!({"queue": "ORDERS"})).await;
    let text = e["error"].as_str().expect("error text");
    assert!(
        text.contains("no MQ connection came free within 300ms: all 2 are in use"),
        "{e}"
    );
    let _ = waiting.await;

    // The queue manager down: the call answers with MQCONNX's reason code.
    let (down, _) = stdio_client(patient_server(&qm, open_policy(), 2, 32, patience, &cancel), &cancel).await;
    qm.stop();
    let e = tool_error(&down, "queue_status", json!({"queue": "ORDERS"})).await;
    assert_eq!(e["reason_code"], 2059, "{e}");
    qm.start();
    ok(&down, "queue_status", json!({"queue": "ORDERS"})).await;

    // A queue manager slow to answer a connect (150 ms a call, so MQCONNX and the inquiry
    // of MAXHANDS and MAXUMSGS take 750 ms, past the 500 ms connect patience) still
    // connects: that patience bounds retries, not an attempt.
    let slow = self::qm();
    slow.set_latency(Duration::from_millis(150));
    let (client, _) = stdio_client(patient_server(&slow, open_policy(), 2, 32, patience, &cancel), &cancel).await;
    ok(&client, "queue_status", json!({"queue": "ORDERS"})).await;

    // A listener that accepts and never answers: the attempt is given up on.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = mcp::build(
        MqLibrary::remote(silent.local_addr().expect("addr").to_string()),
        app_channel(),
        PoolConfig::default(),
        Arc::new(mcp::Listed(vec!["ORDERS".into()])),
        open_policy(),
        patience,
        &cancel,
    );
    let (client, _) = stdio_client(server, &cancel).await;
    let e = tool_error(&client, "queue_status", json!({"queue": "ORDERS"})).await;
    assert!(
        e["error"]
            .as_str()
            .expect("text")
            .contains("did not answer the connect within 2s"),
        "{e}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_receive_whose_commit_reply_is_lost_still_returns_its_messages() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    // MQCMIT takes effect, then the connection breaks before its reply (2009): the
    // messages are gone from the queue, so the agent must have them.
    qm.fail_after_commit(1, 2009);
    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 3})).await;
    let payloads: Vec<&str> = got["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["payload"].as_str().expect("payload"))
        .collect();
    assert_eq!(payloads, ["order 0", "order 1", "order 2"]);
    assert_eq!(got["commit_outcome"], "unknown", "{got}");
    assert!(
        got["note"].as_str().expect("note").contains("may be delivered again"),
        "{got}"
    );
    assert_eq!(depth(&qm, "ORDERS"), 2, "MQ committed them");

    // MQCMIT fails with the connection before it takes effect: MQ backs the gets out, and
    // the agent, who cannot tell the two apart, has the messages all the same.
    qm.fail_next(mqpilot::fake::Verb::Cmit, 1, 2009);
    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    assert_eq!(got["messages"][0]["payload"], "order 3");
    assert_eq!(got["commit_outcome"], "unknown", "{got}");
    assert_eq!(depth(&qm, "ORDERS"), 2, "MQ backed it out");
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 0]);

    // A commit that fails on a live connection is backed out: nothing is delivered.
    qm.fail_next(mqpilot::fake::Verb::Cmit, 1, 2195);
    let e = tool_error(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(e["reason_code"], 2195, "{e}");
    assert_eq!(depth(&qm, "ORDERS"), 2);
    assert_eq!(qm.queue_status("ORDERS").expect("status").uncommitted, 0);
    assert_eq!(backout_counts(&qm, "ORDERS"), [2, 1]);

    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(got["commit_outcome"], "committed", "{got}");
    assert!(got.get("note").is_none(), "{got}");
    assert_eq!(depth(&qm, "ORDERS"), 0);
}

#[tokio::test]
async fn a_lock_commit_whose_reply_is_lost_says_its_outcome_is_unknown() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    let lock = ok(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    let id = lock["lock_id"].as_str().expect("lock id");
    qm.fail_after_commit(1, 2009);
    let e = tool_error(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    let text = e["error"].as_str().expect("error");
    assert!(text.contains("outcome is unknown"), "{e}");
    assert!(!text.contains("failed"), "{e}");
    assert_eq!(e["reason_code"], 2009, "{e}");
    assert_eq!(depth(&qm, "ORDERS"), 3);
    // The pool replaced the broken connection.
    ok(&client, "receive_messages", json!({"queue": "ORDERS"})).await;
    assert_eq!(depth(&qm, "ORDERS"), 2);
}

#[tokio::test]
async fn a_lock_abort_whose_connection_is_lost_is_an_abort() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    let lock = ok(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    let id = lock["lock_id"].as_str().expect("lock id");
    qm.fail_next(mqpilot::fake::Verb::Back, 1, 2009);
    let done = ok(&client, "complete_messages", json!({"lock_id": id, "action": "abort"})).await;
    assert_eq!(done["messages"], 2, "{done}");
    // MQ backed the lost connection's unit of work out: both messages are back.
    assert_eq!(depth(&qm, "ORDERS"), 5);
    ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    assert_eq!(depth(&qm, "ORDERS"), 4, "the pool replaced the lost connection");
}

#[tokio::test]
async fn lock_refusals_say_why_and_name_the_rule() {
    let qm = qm();
    let cancel = CancellationToken::new();
    // One connection: a lock would take the one other tools need.
    let (one, _) = stdio_client(server(&qm, open_policy(), 1, 32, &cancel), &cancel).await;
    let e = tool_error(&one, "lock_messages", json!({"queue": "ORDERS"})).await;
    let text = e["error"].as_str().expect("error");
    assert!(
        text.starts_with("locks are disabled") && text.contains("--connections 1"),
        "{e}"
    );
    assert_eq!(e["rule"], "--connections", "{e}");

    let mut policy = open_policy();
    policy.limits.max_locks = 0;
    let (none, _) = stdio_client(server(&qm, policy, 4, 32, &cancel), &cancel).await;
    let e = tool_error(&none, "lock_messages", json!({"queue": "ORDERS"})).await;
    assert_eq!(e["error"], "locks are disabled: limits.max_locks is 0", "{e}");
    assert_eq!(e["rule"], "limits.max_locks", "{e}");

    // Full: the rule is whichever of the two is lower.
    let (two, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    ok(&two, "lock_messages", json!({"queue": "ORDERS"})).await;
    let e = tool_error(&two, "lock_messages", json!({"queue": "ORDERS"})).await;
    assert!(
        e["error"].as_str().expect("error").contains("1 lock is held already"),
        "{e}"
    );
    assert_eq!(e["rule"], "--connections", "{e}");
    let (four, _) = stdio_client(server(&qm, open_policy(), 4, 32, &cancel), &cancel).await;
    for _ in 0..open_policy().limits.max_locks {
        ok(&four, "lock_messages", json!({"queue": "ORDERS"})).await;
    }
    let e = tool_error(&four, "lock_messages", json!({"queue": "ORDERS"})).await;
    assert_eq!(e["rule"], "limits.max_locks", "{e}");
    assert_eq!(depth(&qm, "ORDERS"), 2, "refused locks took nothing");
}

#[tokio::test]
async fn a_get_failing_mid_batch_returns_the_messages_already_taken() {
    // MAXUMSGS 2: the third get of a batch fails with 2024.
    let mut config = FakeConfig::default();
    config.queue_manager.max_uncommitted = 2;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("ORDERS"));
    let qm = FakeQm::new(config);
    for i in 0..6 {
        qm.put_message("ORDERS", PutSpec::text(format!("order {i}")))
            .expect("put");
    }
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    let got = ok(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 5})).await;
    assert_eq!(got["messages"].as_array().expect("messages").len(), 2, "{got}");
    assert_eq!(got["commit_outcome"], "committed", "{got}");
    assert!(got["note"].as_str().expect("note").contains("2024"), "{got}");
    assert_eq!(depth(&qm, "ORDERS"), 4);
    assert_eq!(backout_counts(&qm, "ORDERS"), [0, 0, 0, 0], "nothing was backed out");

    let lock = ok(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 5})).await;
    assert_eq!(lock["messages"].as_array().expect("messages").len(), 2, "{lock}");
    assert!(lock["note"].as_str().expect("note").contains("2024"), "{lock}");
    let id = lock["lock_id"].as_str().expect("lock id");
    ok(&client, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert_eq!(depth(&qm, "ORDERS"), 2);
    assert_eq!(backout_counts(&qm, "ORDERS"), [0, 0]);

    // A first get that fails is still the error.
    qm.fail_next(mqpilot::fake::Verb::Get, 1, 2016);
    let e = tool_error(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(e["reason_code"], 2016, "{e}");
    assert_eq!(backout_counts(&qm, "ORDERS"), [0, 0]);
}

/// A `tools/call` the test can cancel (`notifications/cancelled`) while it runs.
async fn cancellable(client: &Client, tool: &str, args: Value) -> rmcp::service::RequestHandle<RoleClient> {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    let request = rmcp::model::CallToolRequest::new(CallToolRequestParams::new(tool.to_owned()).with_arguments(map));
    client
        .peer()
        .send_cancellable_request(
            rmcp::model::ClientRequest::CallToolRequest(request),
            rmcp::service::PeerRequestOptions::no_options(),
        )
        .await
        .expect("request sent")
}

/// What the build step of a receive or lock saw of ORDERS: (depth, uncommitted).
type Seen = Arc<std::sync::Mutex<Option<(i32, u32)>>>;

fn look(qm: &FakeQm, seen: &Seen) {
    let status = qm.queue_status("ORDERS").expect("status");
    *seen.lock().expect("seen") = Some((status.depth, status.uncommitted));
}

#[tokio::test]
async fn regression_a_receive_builds_its_answer_before_the_commit_and_backs_out_if_cancelled_meanwhile() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, open_policy(), 2, 32, &cancel);
    let queues = server.queues().clone();
    let budget = open_policy().limits.max_result_bytes;
    let never = CancellationToken::new;

    // The answer is built while the gets are still uncommitted, then they are committed.
    let seen = Seen::default();
    let (watch, saw) = (qm.clone(), Arc::clone(&seen));
    let caller = CallerGone::new(never(), never());
    let taken = queues
        .receive("ORDERS", 2, 0, budget, &caller, move |messages| {
            look(&watch, &saw);
            Ok(messages.len())
        })
        .await
        .expect("received");
    assert_eq!((taken.answer, taken.messages), (2, 2));
    assert_eq!(*seen.lock().expect("seen"), Some((3, 2)), "two got, not yet committed");
    assert_eq!(depth(&qm, "ORDERS"), 3);
    assert_eq!(qm.queue_status("ORDERS").expect("status").uncommitted, 0, "committed");

    // The caller cancels after the gets, while the answer is being built: nothing is
    // committed, the messages are back (backout count + 1).
    let request = never();
    let caller = CallerGone::new(request.clone(), never());
    let taken = queues
        .receive("ORDERS", 2, 0, budget, &caller, move |messages| {
            request.cancel();
            Ok(messages.len())
        })
        .await;
    assert!(taken.is_err(), "a cancelled receive returns nothing: {taken:?}");
    assert_eq!(depth(&qm, "ORDERS"), 3);
    assert_eq!(qm.queue_status("ORDERS").expect("status").uncommitted, 0);
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 0]);

    // The same for an HTTP response dropped meanwhile.
    let response = never();
    let caller = CallerGone::new(never(), response.clone());
    let taken = queues
        .receive("ORDERS", 1, 0, budget, &caller, move |messages| {
            response.cancel();
            Ok(messages.len())
        })
        .await;
    assert!(taken.is_err(), "{taken:?}");
    assert_eq!(depth(&qm, "ORDERS"), 3);
    assert_eq!(backout_counts(&qm, "ORDERS"), [2, 1, 0]);
}

#[tokio::test]
async fn regression_a_lock_whose_caller_goes_before_its_answer_is_handed_back_is_backed_out_at_once() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, open_policy(), 3, 32, &cancel);
    let queues = server.queues().clone();
    let budget = open_policy().limits.max_result_bytes;
    let life = |caller| Lifetime {
        ttl: Duration::from_secs(300),
        caller,
    };

    // Cancelled while its answer is built (after the gets): no lock is left behind.
    let request = CancellationToken::new();
    let caller = CallerGone::new(request.clone(), CancellationToken::new());
    let seen = Seen::default();
    let (watch, saw) = (qm.clone(), Arc::clone(&seen));
    let locked = queues
        .lock("stdio", "ORDERS", 2, budget, life(caller), move |taken| {
            look(&watch, &saw);
            request.cancel();
            Ok(taken.held.is_some())
        })
        .await;
    assert!(locked.is_err(), "a cancelled lock returns nothing");
    assert_eq!(
        *seen.lock().expect("seen"),
        Some((3, 2)),
        "the answer was built with the gets"
    );
    assert_eq!(queues.pool_status().locks_held, 0, "and the lock backed out at once");
    assert_eq!(depth(&qm, "ORDERS"), 5);
    assert_eq!(qm.queue_status("ORDERS").expect("status").uncommitted, 0);
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 0, 0, 0]);

    // Gone before the lock starts: no MQGET at all.
    let gone = CancellationToken::new();
    gone.cancel();
    let caller = CallerGone::new(gone, CancellationToken::new());
    let locked = queues
        .lock("stdio", "ORDERS", 2, budget, life(caller), |taken| {
            Ok(taken.messages.len())
        })
        .await;
    assert!(locked.is_err());
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 0, 0, 0], "nothing was taken");
    assert_eq!(
        qm.reason_count(mqpilot::fake::Verb::Get, 0),
        2,
        "the two gets of the first lock only"
    );
}

#[tokio::test]
async fn regression_a_lock_cancelled_while_it_waits_for_a_connection_takes_nothing() {
    let qm = qm();
    let cancel = CancellationToken::new();
    // Two connections, both busy with receives waiting on an empty queue.
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    let client = Arc::new(client);
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let c = Arc::clone(&client);
            tokio::spawn(async move { ok(&c, "receive_messages", json!({"queue": "Q01", "wait_ms": 10_000})).await })
        })
        .collect();
    until("both receives wait on Q01", 10, || qm.waiting_gets("Q01") == 2).await;
    let lock = cancellable(&client, "lock_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    let pool = || async { ok(&client, "pool_status", json!({})).await };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool().await["waits_for_connection"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock never waited for a connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lock.cancel(Some("stop".into())).await.expect("cancel sent");
    // The next call in line gets the first connection that frees up: had the lock still
    // been waiting, it would have got it first, taken messages and held them.
    let status = {
        let c = Arc::clone(&client);
        tokio::spawn(async move { ok(&c, "queue_status", json!({"queue": "ORDERS"})).await })
    };
    qm.put_message("Q01", PutSpec::text("wake one")).expect("put");
    let status = tokio::time::timeout(Duration::from_secs(5), status)
        .await
        .expect("the freed connection went to the next call")
        .expect("task");
    assert_eq!(
        (status["depth"].as_i64(), status["uncommitted"].as_i64()),
        (Some(5), Some(0))
    );
    assert_eq!(pool().await["locks_held"], 0);
    assert_eq!(
        backout_counts(&qm, "ORDERS"),
        [0; 5],
        "no message was taken or backed out"
    );
    qm.put_message("Q01", PutSpec::text("wake the other")).expect("put");
    for w in waiting {
        w.await.expect("receive");
    }
}

#[tokio::test]
async fn regression_a_receive_or_a_lock_leaves_no_input_handle_open_after_it() {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config
        .queues
        .push(QueueDef::new("EX").default_share(mqpilot::fake::Sharing::Exclusive));
    let qm = FakeQm::new(config);
    for i in 0..4 {
        qm.put_message("EX", PutSpec::text(format!("m{i}"))).expect("put");
    }
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 3, 32, &cancel), &cancel).await;
    // Another application, which opens EX for exclusive input between the agent's calls.
    let other = crate::support::connect(&qm);
    let exclusive =
        || crate::support::open(&other, "EX", mqi::constants::MQOO_INPUT_EXCLUSIVE).map(|handle| drop(handle.close()));
    let open_input = |qm: &FakeQm| qm.queue_status("EX").expect("status").ipprocs;

    ok(&client, "receive_messages", json!({"queue": "EX"})).await;
    assert_eq!(open_input(&qm), 0, "no idle consumer after a receive");
    assert_eq!(
        ok(&client, "queue_status", json!({"queue": "EX"})).await["open_input"],
        0
    );
    assert_eq!(exclusive(), Ok(()), "the queue can be opened exclusively");

    let again = ok(&client, "receive_messages", json!({"queue": "EX"})).await;
    assert_eq!(
        again["messages"].as_array().map(Vec::len),
        Some(1),
        "the handle opens again"
    );
    assert_eq!(open_input(&qm), 0);
    for action in ["commit", "abort"] {
        let lock = ok(&client, "lock_messages", json!({"queue": "EX"})).await;
        assert_eq!(open_input(&qm), 1, "a held lock is a consumer");
        let id = lock["lock_id"].as_str().expect("lock id");
        ok(&client, "complete_messages", json!({"lock_id": id, "action": action})).await;
        assert_eq!(open_input(&qm), 0, "none after a lock's {action}");
        assert_eq!(exclusive(), Ok(()));
    }
    let lock = ok(&client, "lock_messages", json!({"queue": "EX", "lock_seconds": 1})).await;
    assert!(lock["lock_id"].is_string());
    assert_eq!(depth(&qm, "EX"), 0);
    until("the lock expired", 10, || depth(&qm, "EX") == 1).await;
    until("its input handle closed", 10, || open_input(&qm) == 0).await;
    assert_eq!(exclusive(), Ok(()));
}

/// What `payload` takes of a result as serde_json writes it: its JSON string in the
/// structured content, and that string again, escaped, in the text.
fn encoded(payload: &str) -> usize {
    let structured = serde_json::to_string(payload).expect("json");
    structured.len() + serde_json::to_string(&structured).expect("json").len() - 2
}

#[tokio::test]
async fn regression_a_result_of_nul_padded_quoted_or_binary_payloads_stays_within_max_result_bytes() {
    let qm = qm();
    let nul_padded = [b"CUST0001".as_slice(), &[0u8; 2992]].concat();
    let quoted = "say \"hi\\\" ".repeat(300);
    let binary: Vec<u8> = (0..3000_u32).map(|i| (i * 7 % 256) as u8).collect();
    for _ in 0..10 {
        qm.put_message("Q07", PutSpec::text(nul_padded.clone())).expect("put");
        qm.put_message("Q07", PutSpec::text(quoted.clone())).expect("put");
        qm.put_message("Q07", PutSpec::text(binary.clone())).expect("put");
    }
    let budget = 100_000;
    let mut policy = open_policy();
    policy.limits.max_result_bytes = budget;
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, policy, 2, 32, &cancel), &cancel).await;
    let result = call(&client, "receive_messages", json!({"queue": "Q07", "limit": 100}))
        .await
        .expect("call");
    assert_ne!(result.is_error, Some(true), "{:?}", result.structured_content);
    let got = result.structured_content.clone().expect("structured");
    let messages = got["messages"].as_array().expect("messages");
    let payloads: usize = messages
        .iter()
        .map(|m| encoded(m["payload"].as_str().expect("payload")))
        .sum();
    assert!(
        payloads <= budget,
        "payloads take {payloads} bytes of the result, past {budget}"
    );
    // What is left is the other fields: the result is the payloads and little more.
    let written = serde_json::to_string(&result).expect("json").len();
    assert!(
        written - payloads < 1024 * (messages.len() + 1),
        "{written} bytes in all for {payloads} of payloads"
    );
    assert!(payloads > budget * 8 / 10, "a full result: {payloads} of {budget}");
    // NUL-padded records come as base64, and each payload is the message's.
    use base64::Engine as _;
    for (i, m) in messages.iter().enumerate() {
        let payload = m["payload"].as_str().expect("payload");
        let data = match m["payload_encoding"].as_str() {
            Some("text") => payload.as_bytes().to_vec(),
            _ => base64::engine::general_purpose::STANDARD
                .decode(payload)
                .expect("base64"),
        };
        let expected = [nul_padded.as_slice(), quoted.as_bytes(), &binary][i % 3];
        assert_eq!(data, expected, "message {i}");
        assert_eq!(m["payload_bytes"], data.len());
    }
    assert_eq!(messages[0]["payload_encoding"], "base64", "NULs are not sent as text");
    // Nothing was committed that is not in the answer.
    assert_eq!(depth(&qm, "Q07") as usize, 30 - messages.len());
    assert_eq!(qm.queue_status("Q07").expect("status").uncommitted, 0);
    assert!(backout_counts(&qm, "Q07").iter().all(|&n| n == 0));
}

#[tokio::test]
async fn regression_a_payload_one_byte_past_what_fits_in_base64_stays_on_the_queue() {
    let qm = qm();
    let budget = 10_000;
    // 3747 bytes are 4996 base64 characters, twice 9992 bytes, with the quotes 9998.
    let fits = 3747;
    let binary = |n: usize| vec![0xff_u8; n];
    qm.put_message("Q08", PutSpec::text(binary(fits + 1))).expect("put");
    qm.put_message("Q09", PutSpec::text(binary(fits))).expect("put");
    let mut policy = open_policy();
    policy.limits.max_result_bytes = budget;
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, policy, 3, 32, &cancel), &cancel).await;
    for tool in ["receive_messages", "lock_messages"] {
        let e = tool_error(&client, tool, json!({"queue": "Q08"})).await;
        assert_eq!(e["rule"], "limits.max_result_bytes", "{e}");
        assert!(
            e["meaning"]
                .as_str()
                .expect("meaning")
                .contains("longer than 3747 bytes"),
            "{e}"
        );
        assert_eq!(depth(&qm, "Q08"), 1);
        assert_eq!(backout_counts(&qm, "Q08"), [0], "{tool}: never taken");
    }
    let got = ok(&client, "receive_messages", json!({"queue": "Q09"})).await;
    assert_eq!(got["messages"][0]["payload_bytes"], fits);
    assert_eq!(encoded(got["messages"][0]["payload"].as_str().expect("payload")), 9998);
    assert_eq!(depth(&qm, "Q09"), 0);
}

#[tokio::test]
async fn regression_browse_cuts_text_between_characters() {
    let qm = qm();
    qm.put_message("Q10", PutSpec::text("Grüße aus Köln")).expect("put");
    qm.put_message("Q10", PutSpec::text(b"ok\0\0".to_vec())).expect("put");
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    for (bytes, text) in [(2, "Gr"), (3, "Gr"), (4, "Grü"), (5, "Grü")] {
        let got = ok(
            &client,
            "browse_messages",
            json!({"queue": "Q10", "limit": 1, "max_payload_bytes": bytes}),
        )
        .await;
        let m = &got["messages"][0];
        assert_eq!(m["payload_encoding"], "text", "{bytes}: {m}");
        assert_eq!(m["payload"], text, "{bytes}");
        assert_eq!(m["payload_bytes"], text.len(), "{bytes}");
        assert_eq!(m["truncated"], true, "{bytes}");
    }
    // A payload with control characters stays base64, cut or not.
    let got = ok(
        &client,
        "browse_messages",
        json!({"queue": "Q10", "max_payload_bytes": 3}),
    )
    .await;
    assert_eq!(got["messages"][1]["payload_encoding"], "base64", "{got}");
    assert_eq!(got["messages"][1]["payload"], "b2sA");
}

#[tokio::test]
async fn regression_unknown_or_ill_typed_arguments_name_the_argument() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let (client, _) = stdio_client(server(&qm, open_policy(), 2, 32, &cancel), &cancel).await;
    for (tool, args, says) in [
        ("pool_status", json!({"x": 1}), "unknown field `x`"),
        (
            "explain_reason_code",
            json!({"code": 2085.5}),
            "code to be a reason code number",
        ),
        (
            "explain_reason_code",
            json!({"code": true}),
            "code to be a reason code number",
        ),
        ("explain_reason_code", json!({"code": 4_294_967_296_u64}), "4294967296"),
        ("explain_reason_code", json!({"code": -3_000_000_000_i64}), "code to be"),
        // A value of the wrong type names its argument, not only the type it should have.
        (
            "browse_messages",
            json!({"queue": "IN", "limit": "x"}),
            "`limit`: invalid type",
        ),
        (
            "receive_messages",
            json!({"queue": "IN", "wait_ms": -1}),
            "`wait_ms`: invalid value",
        ),
        ("queue_status", json!({"queue": 5}), "`queue`: invalid type"),
        ("browse_messages", json!({"limit": 1}), "missing field `queue`"),
    ] {
        match call(&client, tool, args.clone()).await {
            Err(ServiceError::McpError(e)) => {
                assert_eq!(e.code.0, -32602, "{tool} {args}: {e:?}");
                assert!(e.message.contains(says), "{tool} {args}: {e:?}");
            }
            other => panic!("{tool} {args}: expected invalid params, got {other:?}"),
        }
    }
    assert_eq!(
        ok(&client, "explain_reason_code", json!({"code": 2085})).await["code"],
        2085
    );
    assert_eq!(
        ok(&client, "explain_reason_code", json!({"code": "UNKNOWN_OBJECT_NAME"})).await["code"],
        2085
    );
    ok(&client, "pool_status", json!({})).await;
}

#[tokio::test]
async fn regression_a_receive_or_lock_stopped_after_its_gets_says_they_were_backed_out() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, open_policy(), 3, 32, &cancel);
    let queues = server.queues().clone();
    let budget = open_policy().limits.max_result_bytes;
    let never = CancellationToken::new;

    // The transport closes (a stop's answer deadline) while the answer is built: nothing is
    // committed, and the error says why and what became of the gets.
    let stop = never();
    let caller = CallerGone::new(never(), never()).closing(Closing::under(&stop));
    let e = queues
        .receive("ORDERS", 2, 0, budget, &caller, move |messages| {
            stop.cancel();
            Ok(messages.len())
        })
        .await
        .expect_err("nothing is committed once the server stops")
        .to_string();
    assert!(
        e.contains("the server is stopping: the 2 messages this call got were backed out"),
        "{e}"
    );
    assert_eq!(backout_counts(&qm, "ORDERS"), [1, 1, 0, 0, 0]);

    // A caller that cancels after the gets is told the same of them.
    let request = never();
    let caller = CallerGone::new(request.clone(), never());
    let e = queues
        .receive("ORDERS", 1, 0, budget, &caller, move |messages| {
            request.cancel();
            Ok(messages.len())
        })
        .await
        .expect_err("cancelled")
        .to_string();
    assert!(
        e.contains("cancelled by the caller") && e.contains("the message this call got was backed out"),
        "{e}"
    );
    assert_eq!(backout_counts(&qm, "ORDERS"), [2, 1, 0, 0, 0]);

    // Gone before any get: the error says nothing was taken.
    let gone = never();
    gone.cancel();
    let e = queues
        .receive("ORDERS", 1, 0, budget, &CallerGone::new(gone, never()), |m| Ok(m.len()))
        .await
        .expect_err("gone")
        .to_string();
    assert!(e.contains("this call took no message from the queue"), "{e}");

    // A lock whose transport closes after its gets.
    let stop = never();
    let life = Lifetime {
        ttl: Duration::from_secs(300),
        caller: CallerGone::new(never(), never()).closing(Closing::under(&stop)),
    };
    let e = queues
        .lock("stdio", "ORDERS", 3, budget, life, move |taken| {
            stop.cancel();
            Ok(taken.messages.len())
        })
        .await
        .expect_err("no lock once the server stops");
    let e = e.to_string();
    assert!(
        e.contains("the server is stopping: the 3 messages this call got were backed out"),
        "{e}"
    );
    assert_eq!(queues.pool_status().locks_held, 0);
    assert_eq!(backout_counts(&qm, "ORDERS"), [3, 2, 1, 0, 0]);
    assert_eq!(depth(&qm, "ORDERS"), 5, "nothing lost");
}

#[tokio::test]
async fn regression_a_receive_waiting_for_a_message_ends_when_its_transport_closes() {
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, open_policy(), 2, 32, &cancel);
    let queues = server.queues().clone();
    let budget = open_policy().limits.max_result_bytes;
    let stop = CancellationToken::new();
    let caller = CallerGone::new(CancellationToken::new(), CancellationToken::new()).closing(Closing::under(&stop));
    let receive = tokio::spawn(async move { queues.receive("Q07", 1, 10_000, budget, &caller, |m| Ok(m.len())).await });
    until_mqget_waits(&qm, "Q07").await;
    stop.cancel();
    // It stops waiting (at its next slice) instead of holding its connection for the rest
    // of its 10 s.
    let e = tokio::time::timeout(Duration::from_secs(5), receive)
        .await
        .expect("the receive stopped waiting once its transport closed")
        .expect("task")
        .expect_err("stopped");
    assert!(
        e.to_string()
            .contains("the server is stopping: this call took no message from the queue"),
        "{e}"
    );
    // A message that comes now stays on the queue, untouched.
    qm.put_message("Q07", PutSpec::text("later")).expect("put");
    assert_eq!(backout_counts(&qm, "Q07"), [0]);
}

/// Everything logged at WARN while it is held, on this thread (a current-thread runtime's
/// tasks included).
pub struct Warnings {
    text: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Warnings {
    pub fn capture() -> Self {
        #[derive(Clone)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("log").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let text = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Sink(Arc::clone(&text));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Self {
            text,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().expect("log")).into_owned()
    }
}

/// `bytes` in hex, as message ids are logged.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that fails every write once `broken` is set: a client that has gone.
struct Breakable<W> {
    inner: W,
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Breakable<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn regression_a_stdio_answer_that_cannot_be_written_after_its_commit_is_logged_with_its_ids() {
    let warnings = Warnings::capture();
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, open_policy(), 2, 32, &cancel);
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(theirs);
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let write = Breakable {
        inner: write,
        broken: Arc::clone(&broken),
    };
    let served = tokio::spawn({
        let cancel = cancel.clone();
        async move { mcp::serve_stream(server, read, write, cancel).await }
    });
    let client = ().serve(ours).await.expect("client initialized");
    let ids: Vec<String> = qm.browse("ORDERS").iter().take(2).map(|m| hex(&m.msg_id)).collect();
    // The client's end of stdout is gone: the answer cannot be written.
    broken.store(true, std::sync::atomic::Ordering::SeqCst);
    let receive = cancellable(&client, "receive_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    until("the receive never committed", 10, || depth(&qm, "ORDERS") == 3).await;
    until("the lost answer was not logged", 10, || {
        warnings.text().contains("could not be delivered")
    })
    .await;
    let logged = warnings.text();
    for id in &ids {
        assert!(logged.contains(id.as_str()), "{id} not logged: {logged}");
    }
    assert!(!logged.contains("order 0"), "a payload reached the log: {logged}");
    drop(receive);
    cancel.cancel();
    let _ = served.await;
}
