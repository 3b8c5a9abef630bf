//! The capacity planner: a fleet model in, which queue manager limit breaks first out.
//!
//! `model` reads and checks the TOML (or JSON) model; `profile` turns each app into K
//! connections, H handles per connection and U messages per unit of work; `math` (pure)
//! builds the linear requirements and solves first failures; `check` grades them; `advice`
//! recommends settings and design changes; `report` assembles the JSON contract that `text`
//! and `markdown` render; `sweep` and `chart` scale one app; `emit` writes MQSC and a KEDA
//! ScaledObject; `validate` runs a model on the fake queue manager and compares what it
//! observes with the prediction.

mod advice;
pub mod chart;
pub mod check;
pub mod emit;
pub mod markdown;
pub mod math;
pub mod model;
pub mod profile;
pub mod report;
pub mod sweep;
pub mod text;
pub mod validate;

use std::path::Path;

pub use check::{Check, Status};
pub use model::Model;
pub use report::{Plan, Report};

use crate::Error;

/// Default headroom, in percent, below which a check is `at-risk`.
pub const DEFAULT_HEADROOM_PCT: f64 = 20.0;

/// Checks a TOML model; `origin` names it in errors and the report.
///
/// # Errors
/// [`Error::Config`] with file:line:column and the field path when the model is invalid;
/// [`Error::Options`] when `headroom_pct` is not in 0..100.
pub fn check_text(model_toml: &str, origin: &str, headroom_pct: f64) -> Result<Report, Error> {
    headroom(headroom_pct)?;
    let model = Model::from_toml(model_toml, Path::new(origin))?;
    Ok(Plan::new(model).report(origin, headroom_pct))
}

/// Checks a model given as a JSON object with the TOML file's structure.
///
/// # Errors
/// As [`check_text`]; line and column are 0.
pub fn check_value(model: &serde_json::Value, origin: &str, headroom_pct: f64) -> Result<Report, Error> {
    headroom(headroom_pct)?;
    let model = Model::from_json(model, Path::new(origin))?;
    Ok(Plan::new(model).report(origin, headroom_pct))
}

/// Checks that a headroom percentage is usable.
///
/// # Errors
/// [`Error::Options`] unless `0 <= pct < 100`.
pub fn headroom(pct: f64) -> Result<f64, Error> {
    if (0.0..100.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(Error::Options {
            source_name: "--headroom".into(),
            message: format!("must be at least 0 and below 100, not {pct}"),
        })
    }
}
