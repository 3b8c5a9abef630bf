//! The sweep chart: channel instances and handles per connection against instances, with the
//! limits drawn as lines and the first failure marked. The only file that uses plotters.
//!
//! The font (DejaVu Sans) is compiled in and registered with plotters once, so charts render
//! the same on a machine without fontconfig or any system font.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::sweep::Sweep;
use crate::Error;

const SIZE: (u32, u32) = (960, 720);
const FONT: &str = "sans-serif";

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file; a failure here would be a packaging bug.
        if register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err() {
            tracing::error!("the embedded DejaVu Sans font could not be registered");
        }
    });
}

/// The image formats a chart is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.png`.
    Png,
    /// `.svg`.
    Svg,
}

impl Format {
    /// The format `path`'s extension names (either case), if it is one.
    #[must_use]
    pub fn of(path: &Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Some(Self::Png),
            Some("svg") => Some(Self::Svg),
            _ => None,
        }
    }
}

/// Draws `sweep` to `path`: PNG for `.png`, SVG for `.svg`.
///
/// # Errors
/// [`Error::Options`] for another extension; [`Error::Io`] when drawing or writing fails.
pub fn write_chart(sweep: &Sweep, path: &Path) -> Result<(), Error> {
    match Format::of(path) {
        Some(Format::Svg) => {
            let svg = render_svg(sweep)?;
            std::fs::write(path, svg).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })
        }
        Some(Format::Png) => {
            register();
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(&root, sweep).map_err(|e| drawing_error(path, &e))?;
            root.present().map_err(|e| drawing_error(path, &e))
        }
        None => Err(Error::Options {
            source_name: "--chart".into(),
            message: format!("{} must end in .png or .svg", path.display()),
        }),
    }
}

/// The chart as SVG text.
///
/// # Errors
/// [`Error::Io`] when drawing fails.
pub fn render_svg(sweep: &Sweep) -> Result<String, Error> {
    register();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, sweep).map_err(|e| drawing_error(Path::new("chart.svg"), &e))?;
        root.present().map_err(|e| drawing_error(Path::new("chart.svg"), &e))?;
    }
    Ok(svg)
}

fn drawing_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// An axis' top: 10% above its highest value (saturating: the values are capped in the model,
/// but a sum over many apps need not be).
fn with_margin(top: u64) -> u64 {
    top.saturating_add(top / 10).saturating_add(1)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Sweep) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 3 / 5);
    let first = s.rows.first().map_or(1, |r| r.instances);
    let last = s.rows.last().map_or(1, |r| r.instances).max(first + 1);
    let failure = s.first_failure.filter(|f| f.instances <= last);

    let peak = s.rows.iter().map(|r| r.qmgr_channel_instances).max().unwrap_or(1);
    let y_max = with_margin(
        peak.max(s.max_channels.min(peak.saturating_mul(2)))
            .max(s.max_inst.min(peak.saturating_mul(2)))
            .max(1),
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("mqplan sweep: {}", s.app), (FONT, 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(first..last, 0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("instances")
        .y_desc("channel instances")
        .label_style((FONT, 14))
        .draw()?;
    let line = |v: u64| vec![(first, v), (last, v)];
    chart
        .draw_series(LineSeries::new(
            s.rows.iter().map(|r| (r.instances, r.channel_total)),
            BLUE.stroke_width(2),
        ))?
        .label("channel instances on the channel")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            s.rows.iter().map(|r| (r.instances, r.qmgr_channel_instances)),
            GREEN.stroke_width(2),
        ))?
        .label("channel instances on the queue manager")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    if s.max_inst <= y_max {
        chart
            .draw_series(LineSeries::new(line(s.max_inst), RED.stroke_width(1)))?
            .label(format!("MAXINST {}", s.max_inst))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    if s.max_channels <= y_max {
        chart
            .draw_series(LineSeries::new(line(s.max_channels), MAGENTA.stroke_width(1)))?
            .label(format!("MaxChannels {}", s.max_channels))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
    }
    if let Some(f) = failure {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(f.instances, 0), (f.instances, y_max)],
                BLACK,
            )))?
            .label(format!(
                "first failure: {} ({}) at {}",
                f.reason_code,
                f.limit.name(),
                f.instances
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;

    let handles = s.rows.first().map_or(0, |r| r.handles_per_connection);
    let h_max = with_margin(handles.max(s.max_handles));
    let mut lower = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(first..last, 0..h_max)?;
    lower
        .configure_mesh()
        .x_desc("instances")
        .y_desc("handles per connection")
        .label_style((FONT, 14))
        .draw()?;
    lower
        .draw_series(LineSeries::new(
            s.rows.iter().map(|r| (r.instances, r.handles_per_connection)),
            BLUE.stroke_width(2),
        ))?
        .label("peak handles on one connection")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    lower
        .draw_series(LineSeries::new(line(s.max_handles), RED.stroke_width(1)))?
        .label(format!("MAXHANDS {}", s.max_handles))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    lower
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
