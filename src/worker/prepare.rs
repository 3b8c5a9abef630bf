//! From configuration to running pollers: check each queue on the queue manager, resolve its
//! backout threshold and queue, and build its sink.
//!
//! Everything that can be checked before messages move is checked here, so a run either
//! starts whole or not at all: an unknown queue (2085), a sink that cannot be built, a header
//! secret or an http sink's `ca_file` that cannot be read.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::{QueueConfig, Receive};
use super::poller::{PollPlan, SinkTarget};
use super::run::QueueRun;
use super::sink::{ExecSink, HttpSink, SinkConfig, StdoutSink, resolve_headers, resolve_url};
use crate::Error;
use crate::mq::session::{QueueAttrs, is_connection_lost};
use crate::pool::Pool;

/// Builds the sink a queue's batches go to. An exec sink's command does not inherit the
/// variables named in `secret_env` (the header secrets of http sinks).
///
/// # Errors
/// [`Error::Options`] or [`Error::SettingFile`] when the sink's settings cannot be used.
pub fn build_sink(config: &SinkConfig, secret_env: &[String]) -> Result<SinkTarget, Error> {
    Ok(match config {
        SinkConfig::Stdout {} => SinkTarget::External(Arc::new(StdoutSink::new()?)),
        SinkConfig::Exec {
            command,
            per,
            timeout_ms,
        } => SinkTarget::External(Arc::new(
            ExecSink::new(command.clone(), *per, Duration::from_millis(*timeout_ms))?
                .hiding_env(secret_env.iter().cloned()),
        )),
        SinkConfig::Http {
            url,
            url_env,
            url_file,
            body,
            per,
            headers,
            ca_file,
            timeout_ms,
        } => SinkTarget::External(Arc::new(HttpSink::new(
            resolve_url(url.as_deref(), url_env.as_deref(), url_file.as_deref())?,
            *body,
            *per,
            resolve_headers(headers)?,
            Duration::from_millis(*timeout_ms),
            ca_file.as_deref(),
        )?)),
        SinkConfig::Queue { queue } => SinkTarget::Queue(queue.clone()),
    })
}

/// What a queue's check found: its attributes, its backout threshold and the backout queue
/// poison messages go to.
struct Checked {
    attrs: QueueAttrs,
    /// BOTHRESH, or `backout_threshold`; 0 = no message is ever poison.
    threshold: u32,
    /// `None` also when the threshold is 0: it would never be used.
    backout_queue: Option<String>,
    /// MAXUMSGS of the queue manager.
    max_uncommitted: usize,
}

/// Opens and inquires `q` (and a queue sink's target) on a pooled connection, and opens the
/// backout queue its poison messages would go to (BOQNAME, or `backout_queue`) for output, so
/// that a missing or forbidden one stops the run before it starts rather than at the first
/// poison message; an error on the sink's target or the backout queue says which it is. With
/// a threshold of 0 no message is ever poison, so BOQNAME is neither checked nor used, and a
/// `backout_queue` in the file is refused rather than ignored.
async fn check(pool: &Pool, q: &QueueConfig, sink: &SinkTarget, cancel: &CancellationToken) -> Result<Checked, Error> {
    let mut lease = pool.checkout(cancel).await?;
    let name = q.name.clone();
    let attrs = lease.run(move |c| c.queue_attrs(&name)).await?;
    if let SinkTarget::Queue(target) = sink {
        let target = target.clone();
        lease
            .run(move |c| c.queue_attrs(&target).map(|_| ()))
            .await
            .map_err(naming(format!(
                "the queue sink's target for {}, from --to or sink.queue",
                q.name
            )))?;
    }
    let threshold = q
        .backout_threshold
        .unwrap_or_else(|| u32::try_from(attrs.backout_threshold).unwrap_or(0));
    if threshold == 0
        && q.receive.syncpoint()
        && let Some(configured) = &q.backout_queue
    {
        return Err(Error::Options {
            source_name: format!("queue {}", q.name),
            message: format!(
                "backout_queue is {configured}, but the backout threshold is 0 (BOTHRESH 0 and no \
                 backout_threshold), so no message would ever go to it: set backout_threshold in the \
                 configuration file (or BOTHRESH on the queue), or drop backout_queue"
            ),
        });
    }
    let (backout_queue, from) = match &q.backout_queue {
        Some(configured) => (Some(configured.clone()), "backout_queue"),
        None => (
            (!attrs.backout_queue.is_empty()).then(|| attrs.backout_queue.clone()),
            "BOQNAME",
        ),
    };
    let backout_queue = backout_queue.filter(|_| threshold > 0);
    if let Some(boq) = backout_queue.clone().filter(|_| q.receive != Receive::NoSyncpoint) {
        refuse_itself(&q.name, &boq)?;
        lease
            .run(move |c| c.check_output(&boq))
            .await
            .map_err(naming(format!("the backout queue of {}, from {from}", q.name)))?;
    }
    let max_uncommitted = lease.run(|c| Ok(c.max_uncommitted())).await?;
    Ok(Checked {
        attrs,
        threshold,
        backout_queue,
        max_uncommitted,
    })
}

/// Says which queue an MQ error is about (`the backout queue of IN, from BOQNAME`), where the
/// queue's name alone would not: an error that already says more is left as it is.
fn naming(what: String) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Mq { detail: None, .. } => e.with_detail(what),
        other => other,
    }
}

/// Refuses a BOQNAME that names the queue itself: a poison message would be put back on its
/// own queue, its backout count reset to 0, and go round for ever. (The configuration file's
/// `backout_queue` is refused the same way when it is read.)
fn refuse_itself(queue: &str, boq: &str) -> Result<(), Error> {
    if boq != queue {
        return Ok(());
    }
    Err(Error::Options {
        source_name: format!("queue {queue}"),
        message: format!(
            "its backout queue (BOQNAME) is {boq}, the queue itself: a poison message would be put back \
             on it with backout count 0 and loop for ever; set BOQNAME to another queue, or \
             backout_queue in the configuration file"
        ),
    })
}

/// Refuses a batch whose unit of work would pass MAXUMSGS: every batch would stop on 2024.
/// A queue sink puts each message it gets, so its unit of work holds twice the batch. (Poison
/// messages moved to the backout queue add puts too, but only now and then: a round stops
/// adding messages while the next one's get and put might not fit, so it never meets 2024.)
fn check_unit_of_work(q: &QueueConfig, batch: usize, sink: &SinkTarget, max_uncommitted: usize) -> Result<(), Error> {
    if q.receive == Receive::NoSyncpoint {
        return Ok(());
    }
    let per_message = if matches!(sink, SinkTarget::Queue(_)) { 2 } else { 1 };
    if batch * per_message <= max_uncommitted {
        return Ok(());
    }
    let how = if per_message == 2 {
        format!("{batch} gets and {batch} puts to the queue sink")
    } else {
        format!("{batch} gets")
    };
    Err(Error::Options {
        source_name: format!("batch of queue {}", q.name),
        message: format!(
            "one unit of work would hold {how}, past the queue manager's MAXUMSGS {max_uncommitted} \
             (every batch would fail with 2024): set batch to at most {} or raise MAXUMSGS",
            (max_uncommitted / per_message).max(1)
        ),
    })
}

/// Checks every queue on the queue manager and plans its pollers.
///
/// # Errors
/// The first queue that cannot be opened or inquired (2085 unknown, 2035 not authorized ...),
/// or a sink that cannot be built.
pub async fn prepare(pool: &Pool, queues: &[QueueConfig], cancel: &CancellationToken) -> Result<Vec<QueueRun>, Error> {
    let mut runs = Vec::with_capacity(queues.len());
    // Header secrets of every http sink: no exec sink's command inherits them.
    let secret_env: Vec<String> = queues
        .iter()
        .filter_map(|q| match &q.sink {
            SinkConfig::Http { headers, url_env, .. } => Some(
                headers
                    .iter()
                    .filter_map(|h| h.value_env.clone())
                    .chain(url_env.clone()),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    // Every sink first: one that cannot be built stops the run before any queue is touched.
    let sinks = queues
        .iter()
        .map(|q| {
            build_sink(&q.sink, &secret_env).map_err(|e| match e {
                Error::Options { source_name, message } => Error::Options {
                    source_name: format!("queue {}: {source_name}", q.name),
                    message,
                },
                Error::SettingFile { setting, path, source } => Error::SettingFile {
                    setting: format!("queue {}: {setting}", q.name),
                    path,
                    source,
                },
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (q, sink) in queues.iter().zip(sinks) {
        let Checked {
            attrs,
            threshold,
            backout_queue,
            max_uncommitted,
        } = loop {
            match check(pool, q, &sink, cancel).await {
                // The connection went (a queue manager restarting, a network break): the
                // pool replaces it with backoff, and the checks run again.
                Err(e) if is_connection_lost(&e) && !cancel.is_cancelled() => {
                    tracing::warn!(queue = %q.name, error = %e, "connection lost while checking the queue; reconnecting");
                }
                result => break result?,
            }
        };
        let batch = if q.receive == Receive::Single { 1 } else { q.batch };
        check_unit_of_work(q, batch, &sink, max_uncommitted)?;
        if threshold > 0 && backout_queue.is_none() {
            tracing::warn!(
                queue = %q.name,
                threshold,
                "no backout queue (BOQNAME) is set: a poison message will stop this queue's pollers"
            );
        }
        if threshold == 0 && q.receive != Receive::NoSyncpoint {
            tracing::warn!(
                queue = %q.name,
                "the backout threshold is 0 (BOTHRESH, or backout_threshold): a message the sink keeps \
                 rejecting is retried forever, and none goes to a backout queue (poison handling is \
                 off, and BOQNAME is neither checked nor used); set BOTHRESH and BOQNAME on the \
                 queue, or backout_threshold and backout_queue"
            );
        }
        if !attrs.get_enabled {
            tracing::warn!(queue = %q.name, "GET(DISABLED): pollers will retry until it is enabled");
        }
        if q.receive == Receive::NoSyncpoint {
            tracing::warn!(
                queue = %q.name,
                "receive = no-syncpoint: messages are removed before delivery; a failed delivery loses them"
            );
        }
        tracing::info!(
            queue = %q.name,
            depth = attrs.depth,
            backout_threshold = threshold,
            backout_queue = backout_queue.as_deref().unwrap_or(""),
            "queue ready"
        );
        runs.push(QueueRun {
            plan: Arc::new(PollPlan {
                queue: q.name.as_str().into(),
                syncpoint: q.receive != Receive::NoSyncpoint,
                batch,
                max_batch_bytes: q.max_batch_bytes,
                wait_ms: q.wait_ms,
                backout_threshold: threshold,
                backout_queue,
                sink,
            }),
            workers: q.workers,
        });
    }
    Ok(runs)
}
