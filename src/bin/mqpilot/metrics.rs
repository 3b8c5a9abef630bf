//! `--metrics-listen`: Prometheus metrics at `/metrics`, and 404 at any other path.
//!
//! The recorder is installed globally once. Its histograms are kept up to date by an upkeep
//! task every 5 s, as the exporter's own listener would do; that listener is not used because
//! it answers every path with the metrics.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics_exporter_prometheus::Matcher;

/// Serves the metrics on `addr` until the process ends: histograms with buckets (they add up
/// across replicas, where summaries would not), every series described, the pool's counters
/// from 0.
///
/// # Errors
/// When `addr` cannot be bound or a recorder is installed already.
pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    let mut builder = metrics_exporter_prometheus::PrometheusBuilder::new();
    for (name, buckets) in mqpilot::worker::HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .context("histogram buckets")?;
    }
    let handle = builder
        .install_recorder()
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    mqpilot::pool::register_metrics();
    mqpilot::worker::describe_metrics();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let page = move || {
        let text = handle.render();
        async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
    };
    let app = axum::Router::new().route("/metrics", get(page));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
