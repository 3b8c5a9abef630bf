//! The fake queue manager a model needs: the model's limits, channels and every queue its
//! apps name, as a [`FakeConfig`] and as the fake's definition file (for `mqpilot fake-qm
//! --config`). Queues get MAXDEPTH 2^31 - 1 so seeding never fills one.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{clamp_i32, clamp_u32, custom_queue};
use crate::fake::{ChannelDef, FakeConfig, QueueDef};
use crate::plan::report::Plan;

/// The model's queue manager as the fake defines it.
pub(crate) fn fake_config(plan: &Plan) -> FakeConfig {
    let m = &plan.model.queue_manager;
    let mut config = FakeConfig::default();
    config.queue_manager.name.clone_from(&m.name);
    config.queue_manager.max_handles = clamp_i32(m.max_handles);
    config.queue_manager.max_uncommitted = clamp_i32(m.max_uncommitted);
    // The fake starts none of the other channels: the fleet gets what they leave.
    config.queue_manager.max_channels = clamp_u32(m.max_channels.saturating_sub(m.other_channels));
    config.queue_manager.max_active_channels = Some(clamp_u32(m.max_active_channels.saturating_sub(m.other_channels)));
    config.queue_manager.max_connections = m.max_connections.map(clamp_u32);
    for c in &m.channels {
        config.channels.push(
            ChannelDef::new(c.name.clone())
                .max_inst(clamp_u32(c.max_inst))
                .max_instc(clamp_u32(c.max_instc))
                .sharecnv(clamp_u32(c.sharecnv)),
        );
    }
    let mut queues = BTreeSet::new();
    for app in &plan.model.apps {
        queues.insert(custom_queue(app));
        for w in &app.workloads {
            queues.insert(w.queue.clone());
            queues.extend(w.queues.iter().cloned());
            queues.extend(w.to.iter().cloned());
            queues.extend(w.backout_queue.iter().cloned());
        }
    }
    for q in queues {
        let mut def = QueueDef::new(q);
        def.max_depth = i32::MAX;
        config.queues.push(def);
    }
    config
}

/// The model's queue manager as the fake's definition file (TOML).
#[must_use]
pub fn fake_config_toml(plan: &Plan) -> String {
    let config = fake_config(plan);
    let q = &config.queue_manager;
    let text = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = String::from("# The fake queue manager for this model: mqpilot fake-qm --config FILE\n");
    let other = plan.model.queue_manager.other_channels;
    if other > 0 {
        let _ = writeln!(
            out,
            "# max_channels and max_active_channels less the model's other_channels ({other}), which the fake \
             does not start"
        );
    }
    let _ = writeln!(out, "[queue_manager]\nname = {}", text(&q.name));
    let _ = writeln!(out, "max_handles = {}", q.max_handles);
    let _ = writeln!(out, "max_uncommitted = {}", q.max_uncommitted);
    let _ = writeln!(out, "max_channels = {}", q.max_channels);
    if let Some(n) = q.max_active_channels {
        let _ = writeln!(out, "max_active_channels = {n}");
    }
    if let Some(n) = q.max_connections {
        let _ = writeln!(out, "max_connections = {n}");
    }
    for c in &config.channels {
        let _ = writeln!(
            out,
            "\n[[channel]]\nname = {}\nmax_inst = {}\nmax_instc = {}\nsharecnv = {}",
            text(&c.name),
            c.max_inst,
            c.max_instc,
            c.sharecnv
        );
    }
    for queue in &config.queues {
        let _ = writeln!(
            out,
            "\n[[queue]]\nname = {}\nmax_depth = {}",
            text(&queue.name),
            queue.max_depth
        );
    }
    out
}
