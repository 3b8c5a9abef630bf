//! Profiles: how each kind of MQ client spends connections, handles and units of work.
//!
//! A profile turns one app's workloads into its [`Demand`] per instance: K connections, H
//! peak handles on one connection, U messages in one unit of work, with the assumptions that
//! produced them written out for the report. The numbers follow the table in the README
//! exactly; a change here is a change to that table.

use serde::Serialize;

use super::model::{App, Workload};

/// A kind of MQ client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The Azure Logic Apps Standard IBM MQ built-in connector.
    LogicappsBuiltin,
    /// mqpilot's own polling connector.
    Mqpilot,
    /// IBM MQ classes for JMS / a Spring listener container.
    Jms,
    /// IBM App Connect Enterprise MQInput flows.
    Ace,
    /// The TIBCO BusinessWorks MQ plug-in.
    Tibco,
    /// Numbers given directly.
    Custom,
}

crate::toml_location::deserialize_one_of!(Profile {
    "logicapps-builtin" => LogicappsBuiltin,
    "mqpilot" => Mqpilot,
    "jms" => Jms,
    "ace" => Ace,
    "tibco" => Tibco,
    "custom" => Custom,
});

/// One workload's kind of operation, in its profile's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// logicapps-builtin: trigger that gets and completes each message.
    AutoCompleteTrigger,
    /// logicapps-builtin: trigger that browse-locks a batch until completed.
    BrowseLockTrigger,
    /// logicapps-builtin: receive action.
    Receive,
    /// logicapps-builtin: browse action.
    Browse,
    /// logicapps-builtin: browse-lock action.
    BrowseLock,
    /// logicapps-builtin and mqpilot: puts.
    Send,
    /// mqpilot: receive batches under syncpoint.
    Poll,
    /// mqpilot: receive and put to `to` in one unit of work.
    Forward,
    /// jms: a listener container.
    Listener,
    /// jms: a producer.
    Producer,
    /// ace: a message flow.
    Flow,
    /// tibco: a process with MQ activities.
    Process,
    /// custom: any name; the numbers are given on the app.
    Other,
}

impl Profile {
    /// The name used in model files and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LogicappsBuiltin => "logicapps-builtin",
            Self::Mqpilot => "mqpilot",
            Self::Jms => "jms",
            Self::Ace => "ace",
            Self::Tibco => "tibco",
            Self::Custom => "custom",
        }
    }

    /// The workload kinds this profile knows.
    #[must_use]
    pub const fn kinds(self) -> &'static [&'static str] {
        match self {
            Self::LogicappsBuiltin => &[
                "auto-complete-trigger",
                "browse-lock-trigger",
                "receive",
                "browse",
                "browse-lock",
                "send",
            ],
            Self::Mqpilot => &["poll", "send", "forward"],
            Self::Jms => &["listener", "producer"],
            Self::Ace => &["flow"],
            Self::Tibco => &["process"],
            Self::Custom => &["any name"],
        }
    }

    /// Default connections per instance, where the profile has one.
    #[must_use]
    pub const fn default_connections(self) -> Option<u64> {
        match self {
            Self::LogicappsBuiltin => Some(10),
            Self::Mqpilot => Some(2),
            _ => None,
        }
    }
}

impl Kind {
    /// Reads `name` in `profile`'s vocabulary.
    #[must_use]
    pub fn parse(profile: Profile, name: &str) -> Option<Self> {
        let kind = match (profile, name) {
            (Profile::Custom, n) if !n.trim().is_empty() => Self::Other,
            (Profile::LogicappsBuiltin, "auto-complete-trigger") => Self::AutoCompleteTrigger,
            (Profile::LogicappsBuiltin, "browse-lock-trigger") => Self::BrowseLockTrigger,
            (Profile::LogicappsBuiltin, "receive") => Self::Receive,
            (Profile::LogicappsBuiltin, "browse") => Self::Browse,
            (Profile::LogicappsBuiltin, "browse-lock") => Self::BrowseLock,
            (Profile::LogicappsBuiltin | Profile::Mqpilot, "send") => Self::Send,
            (Profile::Mqpilot, "poll") => Self::Poll,
            (Profile::Mqpilot, "forward") => Self::Forward,
            (Profile::Jms, "listener") => Self::Listener,
            (Profile::Jms, "producer") => Self::Producer,
            (Profile::Ace, "flow") => Self::Flow,
            (Profile::Tibco, "process") => Self::Process,
            _ => return None,
        };
        Some(kind)
    }

    /// Whether this kind takes messages off its queue (gets them, destructively or after a
    /// lock), so that the queue's depth is its backlog. A custom workload's kind is a free name:
    /// it is taken to consume.
    #[must_use]
    pub const fn consumes(self) -> bool {
        !matches!(self, Self::Browse | Self::Send | Self::Producer)
    }

    /// Whether a Logic Apps operation of this kind holds one handle per locked message.
    #[must_use]
    pub const fn browse_locks(self) -> bool {
        matches!(self, Self::BrowseLockTrigger | Self::BrowseLock)
    }
}

/// What one instance of an app needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Demand {
    /// K: MQ connections per instance.
    pub connections: u64,
    /// H: peak handles open at once on one connection.
    pub handles: u64,
    /// U: messages in one unit of work.
    pub uncommitted: u64,
    /// How K, H and U were worked out, in words, for the report.
    pub assumptions: Vec<String>,
}

/// `s` unless `n` is 1.
const fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// ceil(a / b) for b >= 1.
const fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// The sum, saturating: a model's counts are bounded, but products of several of them over
/// many workloads need not fit, and a saturated count still fails every check.
fn total(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

/// The demand of one instance of `app`.
#[must_use]
pub fn demand(app: &App) -> Demand {
    let mut demand = match app.profile {
        Profile::LogicappsBuiltin => logicapps(app),
        Profile::Mqpilot => mqpilot(app),
        Profile::Jms => jms(app),
        Profile::Ace => ace(app),
        Profile::Tibco => tibco(app),
        Profile::Custom => custom(app),
    };
    let extra = app.extra_handles;
    if extra > 0 {
        demand.handles = demand.handles.saturating_add(extra);
        demand.assumptions.push(format!(
            "`extra_handles`: {extra} more handle{} on every connection, which the profile does not count: {} in all",
            plural(extra),
            demand.handles
        ));
    }
    demand
}

fn logicapps(app: &App) -> Demand {
    let k = app.connections.unwrap_or(10);
    let on_one = |w: &&Workload| ceil_div(w.concurrency, k);
    let locks = total(
        app.workloads
            .iter()
            .filter(|w| w.kind.browse_locks())
            .map(|w| on_one(&w).saturating_mul(w.batch)),
    );
    let transient = total(
        app.workloads
            .iter()
            .filter(|w| !w.kind.browse_locks())
            .map(|w| on_one(&w)),
    );
    let mut assumptions = vec![
        format!("each instance keeps a pool of {k} connections (`connections`, default 10)"),
        "operations spread over the pool: one connection carries ceil(concurrency / connections) of them".into(),
    ];
    if app.workloads.iter().any(|w| w.kind.browse_locks()) {
        assumptions.push(format!(
            "a browse-lock batch of B messages holds B handles (one lock per handle) until complete or the pooled \
             connection's timeout (3600 s): {locks} handles at peak"
        ));
    }
    if transient > 0 {
        assumptions.push(format!(
            "other operations open the queue, get or put one message and close it, holding a handle while in \
             flight: {transient} handle{} at peak",
            plural(transient)
        ));
    }
    assumptions.push("no syncpoint: nothing counts against MAXUMSGS".into());
    Demand {
        connections: k,
        handles: locks.saturating_add(transient),
        uncommitted: 0,
        assumptions,
    }
}

fn mqpilot(app: &App) -> Demand {
    let configured = app.connections.unwrap_or(2);
    let operations = total(app.workloads.iter().map(|w| w.concurrency));
    let k = configured.min(operations.max(1));
    let (inputs, outputs) = mqpilot_queues(app);
    let queues: Vec<String> = inputs
        .iter()
        .map(|q| format!("{q} for input"))
        .chain(outputs.iter().map(|q| format!("{q} for output")))
        .collect();
    let u = app
        .workloads
        .iter()
        .map(|w| if w.kind == Kind::Forward { 2 * w.batch } else { w.batch })
        .max()
        .unwrap_or(1);
    Demand {
        connections: k,
        handles: queues.len() as u64,
        uncommitted: u,
        assumptions: vec![
            format!(
                "the pool connects lazily: min(connections {configured}, pollers {operations}) = {k} connections per \
                 instance"
            ),
            format!(
                "one cached handle per queue and use (input for polling, output for puts) per connection, and any \
                 connection may serve any queue: {} handle{} ({})",
                queues.len(),
                plural(queues.len() as u64),
                queues.join(", ")
            ),
            "a batch is received under syncpoint on that one handle; forward puts in the same unit of work".into(),
            "the pool keeps its handles within MAXHANDS minus its reserve (closing the least recently used), so \
             it reports no 2017 itself"
                .into(),
        ],
    }
}

/// The queues an mqpilot app opens for input (polled and forwarded from) and for output
/// (sent to, backout queues, forward targets), each sorted and without repeats: the worker
/// caches one handle per (queue, use), so a queue in both lists takes two.
#[must_use]
pub fn mqpilot_queues(app: &App) -> (Vec<&str>, Vec<&str>) {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for w in &app.workloads {
        match w.kind {
            Kind::Send => outputs.push(w.queue.as_str()),
            _ => inputs.push(w.queue.as_str()),
        }
        outputs.extend(w.backout_queue.as_deref());
        outputs.extend(w.to.as_deref());
    }
    for list in [&mut inputs, &mut outputs] {
        list.sort_unstable();
        list.dedup();
    }
    (inputs, outputs)
}

fn jms(app: &App) -> Demand {
    let k = total(app.workloads.iter().map(|w| w.concurrency.saturating_add(1)));
    let h = 1 + app.workloads.iter().map(|w| w.queues.len() as u64).max().unwrap_or(0);
    // A listener's extra destinations are sends while it handles a message: in a transacted
    // session they share the message's unit of work.
    let u = 1 + app
        .workloads
        .iter()
        .filter(|w| w.kind == Kind::Listener)
        .map(|w| w.queues.len() as u64)
        .max()
        .unwrap_or(0);
    Demand {
        connections: k,
        handles: h,
        uncommitted: u,
        assumptions: vec![
            format!(
                "each JMS connection and each JMS session is its own MQ connection: sum of (concurrency + 1) = {k}"
            ),
            format!(
                "a session holds its destination plus the extra `queues`: {h} handle{}",
                plural(h)
            ),
            format!(
                "a listener gets one message and puts one to each of its `queues` in the same unit of work \
                 (transacted session, as a JmsTemplate send inside the listener); a producer puts one: {u} \
                 message{} per unit of work",
                plural(u)
            ),
        ],
    }
}

fn ace(app: &App) -> Demand {
    let k = total(app.workloads.iter().map(|w| w.concurrency));
    let h = app
        .workloads
        .iter()
        .map(|w| {
            let mut q: Vec<&str> = std::iter::once(w.queue.as_str())
                .chain(w.queues.iter().map(String::as_str))
                .collect();
            q.sort_unstable();
            q.dedup();
            q.len() as u64
        })
        .max()
        .unwrap_or(1);
    Demand {
        connections: k,
        handles: h,
        uncommitted: 1,
        assumptions: vec![
            format!("one connection per flow thread (1 + additional instances): {k}"),
            format!(
                "each thread keeps every distinct queue of its flow open: {h} handle{}",
                plural(h)
            ),
            "one message per unit of work".into(),
        ],
    }
}

fn tibco(app: &App) -> Demand {
    let k = total(app.workloads.iter().map(|w| w.activities.saturating_mul(w.concurrency)));
    Demand {
        connections: k,
        handles: 1,
        uncommitted: 1,
        assumptions: vec![
            format!("MQ activities x starter instances connections: {k}"),
            "one open destination per connection".into(),
            "one message per unit of work".into(),
        ],
    }
}

fn custom(app: &App) -> Demand {
    let (k, h, u) = (
        app.connections.unwrap_or(1),
        app.handles_per_connection.unwrap_or(1),
        app.uncommitted.unwrap_or(0),
    );
    Demand {
        connections: k,
        handles: h,
        uncommitted: u,
        assumptions: vec![format!(
            "as given: {k} connections per instance, {h} handles per connection, {u} messages per unit of work"
        )],
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::model::Model;

    fn app(profile: &str, extra: &str, workloads: &str) -> App {
        let text = format!(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\nname = \"a\"\n\
             profile = \"{profile}\"\nchannel = \"C\"\ninstances = 1\n{extra}\n{workloads}"
        );
        Model::from_toml(&text, Path::new("t.toml")).unwrap().apps.remove(0)
    }

    #[test]
    fn logicapps_browse_lock_batches_hold_a_handle_per_message() {
        let a = app(
            "logicapps-builtin",
            "connections = 10",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"browse-lock-trigger\"\nbatch = 20\nconcurrency = 15\n\
             [[app.workload]]\nqueue = \"Q\"\nkind = \"send\"\n",
        );
        let d = demand(&a);
        assert_eq!((d.connections, d.handles, d.uncommitted), (10, 2 * 20 + 1, 0));
    }

    #[test]
    fn logicapps_other_operations_hold_a_handle_each_while_in_flight() {
        // 120 browse-lock operations over 10 connections: 12 x 20 locked messages on one; 200
        // auto-complete operations: 20 more handles open at once on that connection.
        let a = app(
            "logicapps-builtin",
            "connections = 10",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"browse-lock-trigger\"\nbatch = 20\nconcurrency = 120\n\
             [[app.workload]]\nqueue = \"Q\"\nkind = \"auto-complete-trigger\"\nconcurrency = 200\n\
             [[app.workload]]\nqueue = \"R\"\nkind = \"send\"\n",
        );
        assert_eq!(demand(&a).handles, 12 * 20 + 20 + 1);
    }

    #[test]
    fn products_of_large_counts_saturate_instead_of_wrapping() {
        // 20 x 999999999^2 is past u64::MAX.
        let process = "[[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\nactivities = 999999999\n\
                       concurrency = 999999999\n";
        assert_eq!(demand(&app("tibco", "", &process.repeat(20))).connections, u64::MAX);
    }

    #[test]
    fn mqpilot_counts_distinct_queues_and_doubles_forward_batches() {
        let a = app(
            "mqpilot",
            "connections = 4",
            "[[app.workload]]\nqueue = \"IN\"\nkind = \"poll\"\nbatch = 50\nbackout_queue = \"IN.BO\"\n\
             [[app.workload]]\nqueue = \"IN2\"\nkind = \"forward\"\nto = \"OUT\"\nbatch = 30\n",
        );
        let d = demand(&a);
        assert_eq!((d.connections, d.handles, d.uncommitted), (2, 4, 60));
        // A queue polled and sent to is two cached handles: input and output.
        let both = app(
            "mqpilot",
            "",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"poll\"\n[[app.workload]]\nqueue = \"Q\"\nkind = \"send\"\n",
        );
        assert_eq!(mqpilot_queues(&both), (vec!["Q"], vec!["Q"]));
        assert_eq!(demand(&both).handles, 2);
    }

    #[test]
    fn extra_handles_add_to_every_profile_that_takes_them() {
        let listener = "[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\nqueues = [\"R\"]\n";
        let jms = demand(&app("jms", "extra_handles = 3", listener));
        assert_eq!(jms.handles, 1 + 1 + 3);
        assert!(
            jms.assumptions.iter().any(|a| a.contains("3 more handles")),
            "{:?}",
            jms.assumptions
        );
        let trigger = "[[app.workload]]\nqueue = \"Q\"\nkind = \"browse-lock-trigger\"\nbatch = 5\n";
        assert_eq!(
            demand(&app("logicapps-builtin", "extra_handles = 2", trigger)).handles,
            5 + 2
        );
        let flow = "[[app.workload]]\nqueue = \"Q\"\nkind = \"flow\"\nqueues = [\"R\"]\n";
        assert_eq!(demand(&app("ace", "extra_handles = 1", flow)).handles, 2 + 1);
        let process = "[[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\n";
        assert_eq!(demand(&app("tibco", "extra_handles = 4", process)).handles, 1 + 4);
    }

    #[test]
    fn a_jms_listener_puts_to_its_queues_in_its_unit_of_work() {
        let two = "[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\nqueues = [\"R\", \"S\"]\n\
                   [[app.workload]]\nqueue = \"P\"\nkind = \"producer\"\n";
        let d = demand(&app("jms", "", two));
        assert_eq!(d.uncommitted, 1 + 2);
        assert!(
            d.assumptions.iter().any(|a| a.contains("3 messages per unit of work")),
            "{:?}",
            d.assumptions
        );
        let none = "[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\n";
        assert_eq!(demand(&app("jms", "", none)).uncommitted, 1);
    }

    #[test]
    fn jms_ace_tibco_and_custom_follow_the_table() {
        let j = app(
            "jms",
            "",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\nconcurrency = 5\nqueues = [\"R\"]\n\
             [[app.workload]]\nqueue = \"P\"\nkind = \"producer\"\n",
        );
        let d = demand(&j);
        // The listener's message and its put to R share a unit of work.
        assert_eq!((d.connections, d.handles, d.uncommitted), (6 + 2, 2, 2));
        let a = app(
            "ace",
            "",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"flow\"\nconcurrency = 3\nqueues = [\"R\", \"Q\", \"S\"]\n",
        );
        let d = demand(&a);
        assert_eq!((d.connections, d.handles), (3, 3));
        let t = app(
            "tibco",
            "",
            "[[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\nactivities = 3\nconcurrency = 4\n",
        );
        assert_eq!(demand(&t).connections, 12);
        let c = app(
            "custom",
            "connections = 7\nhandles_per_connection = 9\nuncommitted = 11",
            "",
        );
        let d = demand(&c);
        assert_eq!((d.connections, d.handles, d.uncommitted), (7, 9, 11));
    }
}
