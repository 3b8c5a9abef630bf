//! Emitters: MQSC that sets the limits a plan needs, and a KEDA ScaledObject capped where
//! an app's limits keep their headroom.
//!
//! Values never go down: each limit is set to the larger of what is configured and what
//! covers the planned maximum with the headroom, and every line says why. Names are quoted
//! (MQSC keeps their case; YAML reads them as strings), and the model only admits MQ names,
//! so nothing in a model can add a command or a key of its own.

mod keda;
mod mqsc;

pub use keda::keda;
pub use mqsc::mqsc;

use super::check::covering;
use super::model::UNLIMITED;
use super::report::count;

/// What `limit` is set to: what covers `need` with the headroom, never less than `was` and
/// never more than MQ takes; and a comment line when even that does not cover it (else "").
fn setting(limit: &str, was: u64, need: u64, headroom: f64) -> (u64, String) {
    let covers = covering(need, headroom);
    let note = if covers > UNLIMITED {
        format!(
            "\n* {limit}: no value covers {} with {headroom}% headroom (MQ takes at most {UNLIMITED}): \
             change the design (mqplan check)",
            count(need)
        )
    } else {
        String::new()
    };
    (was.max(covers).min(UNLIMITED), note)
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use crate::plan::{Model, Plan};

    pub(super) fn plan(text: &str) -> Plan {
        Plan::new(Model::from_toml(text, Path::new("m.toml")).expect("valid"))
    }

    /// A Logic Apps app on a channel with MAXINST `max_inst`, `instances` of them, a browse-lock
    /// batch of `batch`, and MAXHANDS 256.
    pub(super) fn logicapps(max_inst: u64, instances: &str, batch: u64) -> Plan {
        plan(&format!(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"app.svrconn\"\n\
             max_inst = {max_inst}\n[[app]]\nname = \"_Orders_\"\nprofile = \"logicapps-builtin\"\n\
             channel = \"app.svrconn\"\ninstances = {instances}\n[[app.workload]]\nqueue = \"ORDERS.IN\"\n\
             kind = \"browse-lock-trigger\"\nbatch = {batch}\n"
        ))
    }
}
