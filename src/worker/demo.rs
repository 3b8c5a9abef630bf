//! The embedded demo: a fake queue manager with a queue worth draining.
//!
//! `DEMO.IN` holds 1,000 messages with BOTHRESH 3 and BOQNAME `DEMO.BACKOUT`; every 100th
//! message has already been backed out three times, so a run shows poison handling too.

use crate::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};

/// The demo's input queue.
pub const DEMO_QUEUE: &str = "DEMO.IN";
/// Its backout queue.
pub const DEMO_BACKOUT_QUEUE: &str = "DEMO.BACKOUT";
/// A second queue for queue-sink demos.
pub const DEMO_OUT_QUEUE: &str = "DEMO.OUT";
/// The demo's server-connection channel.
pub const DEMO_CHANNEL: &str = "DEV.APP.SVRCONN";
/// Messages seeded on `DEMO.IN`.
pub const DEMO_MESSAGES: usize = 1000;

/// A fake `QM1` with the demo queues, `DEMO.IN` seeded.
#[must_use]
pub fn demo_queue_manager() -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new(DEMO_CHANNEL));
    config.queues.push(
        QueueDef::new(DEMO_QUEUE)
            .backout(3, DEMO_BACKOUT_QUEUE)
            .max_depth(10_000),
    );
    config.queues.push(QueueDef::new(DEMO_BACKOUT_QUEUE).max_depth(10_000));
    config.queues.push(QueueDef::new(DEMO_OUT_QUEUE).max_depth(10_000));
    let qm = FakeQm::new(config);
    for i in 0..DEMO_MESSAGES {
        let body = format!(
            r#"{{"order":{},"item":"widget-{}","quantity":{}}}"#,
            1000 + i,
            i % 17,
            1 + i % 5
        );
        let spec = PutSpec {
            backout_count: if i % 100 == 99 { 3 } else { 0 },
            ..PutSpec::text(body)
        };
        qm.put_message(DEMO_QUEUE, spec)
            .expect("the demo queue takes 1,000 messages");
    }
    qm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_queue_is_seeded_with_ten_poison_messages() {
        let qm = demo_queue_manager();
        assert_eq!(qm.depth(DEMO_QUEUE), Some(1000));
        let poison = qm.browse(DEMO_QUEUE).iter().filter(|m| m.backout_count >= 3).count();
        assert_eq!(poison, 10);
    }
}
