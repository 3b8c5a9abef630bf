//! What `mqpilot poll` says of its run on stderr: the summary at exit (and at an exit at
//! once), the fake queue manager's depths after it, and the status line.
//!
//! The summary is text lines, or under `--log-format json` one INFO event whose fields hold
//! the same figures (see the README for their names). Each connection is shown by pool slot
//! with the highest peak of every connection that has filled that slot, since peak handles
//! against MAXHANDS is what the summary is for, and a reconnect must not hide an earlier
//! connection's peak. A MAXHANDS the queue manager did not give (MQINQ refused) is said to be
//! assumed, and a budget a 2017 lowered is said to be so. The status line is for a terminal
//! (it is only shown when stderr is one) and stays text.

use std::time::Duration;

use mqpilot::pool::{PoolSnapshot, SlotStats};
use mqpilot::worker::QueueTotals;
use mqpilot::worker::run::{RunHandle, RunSummary};
use serde_json::{Value, json};
use tracing::Level;

use crate::stderr;

/// Says the summary of a run that ends with exit `code`.
pub(crate) fn print(summary: &RunSummary, code: u8) {
    let queues = || summary.queues.iter().map(|(queue, t, _)| (queue.as_str(), *t));
    let stopped = summary.stopped();
    if stderr::json() {
        let mut fields = fields(queues(), &summary.pool, false);
        let stopped: Vec<Value> = stopped
            .iter()
            .map(|(queue, why)| json!({"queue": queue, "reason": why}))
            .collect();
        fields.push(("stopped", stopped.into()));
        fields.push(("exit_code", code.into()));
        stderr::say(stderr::event(Level::INFO, "summary", &fields).into_bytes());
        return;
    }
    let mut said = vec!["mqpilot: summary".to_owned()];
    said.extend(lines(queues(), &summary.pool, false));
    said.extend(stopped.iter().map(|(queue, why)| format!("  STOPPED {queue}: {why}")));
    say_lines(&said);
}

/// The summary an exit at once prints: the counters as they are, with each queue's messages
/// still in flight, as text lines or one JSON event line. Reads atomics and the pool's
/// counters only: nothing that waits on MQ, a sink or a network.
pub(crate) fn so_far(handle: &RunHandle) -> Vec<String> {
    const SAID: &str = "summary at exit (counted so far)";
    let totals = handle.totals();
    let queues = totals.iter().map(|(queue, t)| (queue.as_str(), *t));
    let pool = handle.pool();
    if stderr::json() {
        let event = stderr::event(Level::INFO, SAID, &fields(queues, &pool, true));
        return vec![event.trim_end().to_owned()];
    }
    let mut said = vec![format!("mqpilot: {SAID}")];
    said.extend(lines(queues, &pool, true));
    said
}

/// Says the depths of the fake queue manager's queues, after the summary.
pub(crate) fn print_fake_depths(depths: &[(String, i32)]) {
    if stderr::json() {
        let by_queue: serde_json::Map<String, Value> = depths
            .iter()
            .map(|(queue, depth)| (queue.clone(), (*depth).into()))
            .collect();
        let event = stderr::event(Level::INFO, "fake queue manager depths", &[("depths", by_queue.into())]);
        stderr::say(event.into_bytes());
        return;
    }
    let listed: Vec<String> = depths.iter().map(|(queue, depth)| format!("{queue} {depth}")).collect();
    say_lines(&[format!("  fake queue manager depths: {}", listed.join(", "))]);
}

/// A line every 10 s of what the run has done so far, while it runs. Text in either log
/// format: it is only shown when stderr is a terminal, read by a person.
pub(crate) async fn status_line(handle: RunHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let totals: Vec<String> = handle
            .totals()
            .iter()
            .map(|(q, t)| {
                format!(
                    "{q}: {} delivered, {} backed out, {} poisoned",
                    t.delivered, t.backed_out, t.poisoned
                )
            })
            .collect();
        let pool = handle.pool();
        let line = format!(
            "mqpilot: {} | connections {} | peak handles/connection {} | reconnects {}\n",
            totals.join("; "),
            pool.connections.len(),
            pool.peak_handles(),
            pool.reconnects
        );
        stderr::say(line.into_bytes());
    }
}

/// Queues `said` as one write: nothing lands between its lines.
fn say_lines(said: &[String]) {
    stderr::say(format!("{}\n", said.join("\n")).into_bytes());
}

/// The messages received and not yet committed, backed out, moved or lost.
fn in_flight(t: &QueueTotals) -> u64 {
    let concluded = t.delivered + t.backed_out + t.poisoned + t.commit_unknown + t.lost_at_most_once;
    t.received.saturating_sub(concluded)
}

/// The summary's lines: per queue its counts (and, with `in_flight`, the messages received
/// and not yet concluded), each connection by pool slot (connection ids grow with every
/// reconnect; slots are what the metrics are labelled by), then the pool's counts.
fn lines<'a>(
    queues: impl Iterator<Item = (&'a str, QueueTotals)>,
    pool: &PoolSnapshot,
    in_flight: bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (queue, t) in queues {
        let mut line = format!(
            "  {queue}: received {}, delivered {}, backed out {}, poisoned {}, sink failures {}",
            t.received, t.delivered, t.backed_out, t.poisoned, t.sink_failures,
        );
        if t.commit_unknown > 0 {
            line.push_str(&format!(", commit outcome unknown {}", t.commit_unknown));
        }
        if t.lost_at_most_once > 0 {
            line.push_str(&format!(", LOST (no syncpoint) {}", t.lost_at_most_once));
        }
        let flying = self::in_flight(&t);
        if in_flight && flying > 0 {
            line.push_str(&format!(", in flight {flying}"));
        }
        lines.push(line);
    }
    lines.extend(pool.slots.iter().map(|(slot, s)| connection_line(*slot, s)));
    lines.push(format!(
        "  pool: {} connects, {} reconnects, {} budget shrinks after 2017",
        pool.connects, pool.reconnects, pool.budget_shrinks
    ));
    lines
}

/// `  connection 0: peak handles 2 of budget 248 (MAXHANDS 256)`, and what else is so of the
/// slot: a budget a 2017 lowered, a MAXHANDS assumed, its reconnects, no connection left.
fn connection_line(slot: usize, s: &SlotStats) -> String {
    let c = &s.last;
    let shrunk = if c.budget_shrunk { ", shrunk after 2017" } else { "" };
    let max_handles = if c.max_handles_assumed {
        format!("MAXHANDS not known: MQINQ refused, {} assumed", c.max_handles)
    } else {
        format!("MAXHANDS {}", c.max_handles)
    };
    let mut line = format!(
        "  connection {slot}: peak handles {} of budget {}{shrunk} ({max_handles})",
        s.peak_handles, c.budget
    );
    match s.connections.saturating_sub(1) {
        0 => {}
        1 => line.push_str(", reconnected 1 time"),
        n => line.push_str(&format!(", reconnected {n} times")),
    }
    if !s.connected {
        line.push_str(", not connected at the end");
    }
    line
}

/// The summary's JSON fields: `queues`, `connections` (by slot) and `pool`, as [`lines`].
fn fields<'a>(
    queues: impl Iterator<Item = (&'a str, QueueTotals)>,
    pool: &PoolSnapshot,
    in_flight: bool,
) -> Vec<(&'static str, Value)> {
    let queues: Vec<Value> = queues
        .map(|(queue, t)| {
            let mut q = json!({
                "queue": queue,
                "received": t.received,
                "delivered": t.delivered,
                "backed_out": t.backed_out,
                "poisoned": t.poisoned,
                "sink_failures": t.sink_failures,
                "commit_unknown": t.commit_unknown,
                "lost_no_syncpoint": t.lost_at_most_once,
            });
            if in_flight {
                q["in_flight"] = self::in_flight(&t).into();
            }
            q
        })
        .collect();
    let connections: Vec<Value> = pool
        .slots
        .iter()
        .map(|(slot, s)| {
            let c = &s.last;
            let (read, assumed) = if c.max_handles_assumed {
                (None, Some(c.max_handles))
            } else {
                (Some(c.max_handles), None)
            };
            json!({
                "connection": slot,
                "peak_handles": s.peak_handles,
                "budget": c.budget,
                "budget_shrunk": c.budget_shrunk,
                "max_handles": read,
                "max_handles_assumed": assumed,
                "reconnects": s.connections.saturating_sub(1),
                "connected": s.connected,
            })
        })
        .collect();
    let counts = json!({
        "connects": pool.connects,
        "connect_failures": pool.connect_failures,
        "reconnects": pool.reconnects,
        "waits_for_connection": pool.waits_for_connection,
        "budget_shrinks": pool.budget_shrinks,
        "handle_closes_for_budget": pool.handle_closes_for_budget,
    });
    vec![
        ("queues", queues.into()),
        ("connections", connections.into()),
        ("pool", counts),
    ]
}

#[cfg(test)]
mod tests {
    use mqpilot::pool::ConnectionStats;

    use super::*;

    /// A slot whose last connection has `budget`, MAXHANDS 256 read, `connections` over the
    /// run and `peak_handles` among them.
    fn slot(budget: usize, peak_handles: usize, connections: u64) -> SlotStats {
        SlotStats {
            connections,
            peak_handles,
            last: ConnectionStats {
                budget,
                max_handles: 256,
                ..ConnectionStats::default()
            },
            connected: true,
        }
    }

    #[test]
    fn the_summary_lists_connections_by_pool_slot() {
        let mut pool = PoolSnapshot::default();
        for s in [2, 0, 3, 1] {
            pool.slots.insert(s, slot(248, 1, 1));
        }
        let lines = lines(std::iter::empty(), &pool, false);
        let slots: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("  connection "))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(slots, ["0", "1", "2", "3"]);
    }

    #[test]
    fn the_summary_at_exit_counts_what_is_in_flight() {
        let t = QueueTotals {
            received: 30,
            delivered: 10,
            backed_out: 5,
            poisoned: 1,
            ..QueueTotals::default()
        };
        let pool = PoolSnapshot::default();
        let at_exit = lines([("IN", t)].into_iter(), &pool, true);
        assert_eq!(
            at_exit[0],
            "  IN: received 30, delivered 10, backed out 5, poisoned 1, sink failures 0, in flight 14"
        );
        let at_end = lines([("IN", t)].into_iter(), &pool, false);
        assert!(!at_end[0].contains("in flight"), "{}", at_end[0]);
        let fields = fields([("IN", t)].into_iter(), &pool, true);
        assert_eq!(fields[0].1[0]["in_flight"], 14);
    }

    #[test]
    fn a_connection_line_says_what_its_figures_rest_on() {
        assert_eq!(
            connection_line(0, &slot(248, 2, 1)),
            "  connection 0: peak handles 2 of budget 248 (MAXHANDS 256)"
        );
        let mut replaced = slot(248, 2, 3);
        replaced.connected = false;
        assert_eq!(
            connection_line(1, &replaced),
            "  connection 1: peak handles 2 of budget 248 (MAXHANDS 256), reconnected 2 times, \
             not connected at the end"
        );
        let mut assumed = slot(3, 3, 1);
        assumed.last.max_handles_assumed = true;
        assumed.last.budget_shrunk = true;
        assert_eq!(
            connection_line(0, &assumed),
            "  connection 0: peak handles 3 of budget 3, shrunk after 2017 (MAXHANDS not known: MQINQ \
             refused, 256 assumed)"
        );
        let mut pool = PoolSnapshot::default();
        pool.slots.insert(0, assumed);
        let connection = &fields(std::iter::empty(), &pool, false)[1].1[0];
        assert_eq!(connection["max_handles"], Value::Null);
        assert_eq!(connection["max_handles_assumed"], 256);
        assert_eq!(connection["budget_shrunk"], true);
    }
}
