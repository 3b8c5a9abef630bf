//! The sweep chart: channel instances and handles per connection against instances, with the
//! limits drawn as lines and the first failure marked. The only file that uses plotters.
//!
//! Every limit the chart shows is in its legend with its value; one far above the data (more
//! than about twice their peak, such as an unlimited MAXINST) is not drawn, so that the data
//! are not flattened against the axis, and its legend entry says it is above the chart.
//!
//! The font (DejaVu Sans) is compiled in and registered with plotters once, so charts render
//! the same on a machine without fontconfig or any system font.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordu64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::math::Limit;
use super::sweep::{Limiting, Sweep};
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

/// Draws `sweep` to `path`: PNG for `.png`, SVG for `.svg`. The chart is drawn to a new
/// file beside `path` and renamed over it, so `path` is either the whole new chart or as it
/// was before: never half-written. The temporary file is removed on failure.
///
/// # Errors
/// [`Error::Options`] for another extension; [`Error::Write`] naming `path` when drawing or
/// writing fails.
pub fn write_chart(sweep: &Sweep, path: &Path) -> Result<(), Error> {
    let Some(format) = Format::of(path) else {
        return Err(Error::Options {
            source_name: "--chart".into(),
            message: format!("{} must end in .png or .svg", path.display()),
        });
    };
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    // Rendered before any file is made: a drawing error leaves nothing behind.
    let svg = match format {
        Format::Svg => Some(svg_text(sweep, path)?),
        Format::Png => None,
    };
    let (temp, file) = temporary_beside(path).map_err(write_error)?;
    let written = match svg {
        Some(svg) => write_svg(file, &svg).map_err(write_error),
        None => {
            drop(file);
            write_png(sweep, &temp, path)
        }
    };
    let renamed = written.and_then(|()| std::fs::rename(&temp, path).map_err(write_error));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

fn write_svg(mut file: std::fs::File, svg: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    file.write_all(svg.as_bytes())?;
    file.sync_all()
}

/// Draws the PNG into `temp`; errors name `path`, the file the user asked for.
fn write_png(sweep: &Sweep, temp: &Path, path: &Path) -> Result<(), Error> {
    register();
    let root = BitMapBackend::new(temp, SIZE).into_drawing_area();
    draw(&root, sweep).map_err(|e| drawing_error(path, &e))?;
    root.present().map_err(|e| drawing_error(path, &e))
}

/// A new, empty file in `path`'s directory, named after it and ending in the same extension
/// (the PNG encoder picks its format by the extension).
fn temporary_beside(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(|| "chart".into(), |n| n.to_string_lossy());
    let ext = path.extension().map_or_else(|| "tmp".into(), |e| e.to_string_lossy());
    let mut attempt = 0;
    loop {
        let temp = dir.join(format!(".{name}.{}-{attempt}.tmp.{ext}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The chart as SVG text.
///
/// # Errors
/// [`Error::Write`] when drawing fails.
pub fn render_svg(sweep: &Sweep) -> Result<String, Error> {
    svg_text(sweep, Path::new("the SVG chart"))
}

/// The chart as SVG text; a drawing error names `path`.
fn svg_text(sweep: &Sweep, path: &Path) -> Result<String, Error> {
    register();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, sweep).map_err(|e| drawing_error(path, &e))?;
        root.present().map_err(|e| drawing_error(path, &e))?;
    }
    Ok(svg)
}

fn drawing_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Write {
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

/// The limit series drawn in a colour of their own: the one that fails first when it is none
/// of MAXINST, MaxChannels (MaxActiveChannels) and MAXHANDS, which are always shown (drawn,
/// or named as above the chart).
const LIMITING: RGBColor = RGBColor(230, 120, 0);
const LIMITING_LINE: RGBColor = RGBColor(140, 60, 0);

/// A data series: its points, colour and legend label.
type Series = (Vec<(u64, u64)>, RGBColor, String);

/// What the limit that fails first requires at each row, as a series of its own.
fn limiting_series(s: &Sweep, l: &Limiting) -> Series {
    let points = s
        .rows
        .iter()
        .map(|r| r.instances)
        .zip(l.required.iter().copied())
        .collect();
    (points, LIMITING, format!("{}: {}", l.limit.name(), l.scope))
}

/// The x axis: the sweep's counts, or one count either side of a one-row sweep's.
fn x_axis(s: &Sweep) -> (u64, u64) {
    let first = s.rows.first().map_or(1, |r| r.instances);
    let last = s.rows.last().map_or(1, |r| r.instances);
    if last > first {
        (first, last)
    } else {
        (first.saturating_sub(1), first.saturating_add(1))
    }
}

/// The top of a y axis over `values`: 10% above their peak, or above the highest limit in
/// `limits` that is at most twice the peak (and its 10%). A limit higher than that would
/// flatten the values: it is left above the axis (and [`draw_limits`] names it in the legend),
/// and does not lift the axis either.
fn y_top(values: impl Iterator<Item = u64>, limits: &[u64]) -> u64 {
    let peak = values.max().unwrap_or(1);
    let reach = with_margin(peak.saturating_mul(2));
    let shown = limits.iter().copied().filter(|&l| l <= reach).max().unwrap_or(0);
    with_margin(peak.max(shown).max(1))
}

/// A chart of counts against instances.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordu64, RangedCoordu64>>;

/// Draws each limit of `lines` (value, colour, label) across the x range `(from, to)`; one
/// above the y axis' `top` is not drawn, and its legend entry says it is above the chart.
fn draw_limits<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    lines: Vec<(u64, RGBColor, String)>,
    (from, to): (u64, u64),
    top: u64,
) -> DrawResult<DB> {
    for (value, colour, label) in lines {
        let (points, label) = if value <= top {
            (vec![(from, value), (to, value)], label)
        } else {
            (Vec::new(), format!("{label} (above the chart)"))
        };
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    Ok(())
}

/// Draws both charts: channel instances above, per-connection numbers below.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Sweep) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 3 / 5);
    draw_channels(&top, s)?;
    draw_per_connection(&bottom, s)
}

/// The upper chart: channel instances on the channel and the queue manager against MAXINST
/// and MaxChannels, the limit that fails first if it is MAXINSTC or the connection limit, and
/// the first failure. Long because each series takes a few lines of plotters calls.
fn draw_channels<DB: DrawingBackend>(top: &DrawingArea<DB, Shift>, s: &Sweep) -> DrawResult<DB> {
    let (x_from, x_to) = x_axis(s);
    let first_row = s.rows.first().map_or(1, |r| r.instances);
    let one_row = s.rows.len() == 1;
    // The limit that fails first, when the chart does not draw it already.
    let upper_extra = s
        .limiting
        .as_ref()
        .filter(|l| matches!(l.limit, Limit::MaxInstc | Limit::MaxConnections));
    let mut limits = vec![s.max_channels, s.max_inst];
    limits.extend(upper_extra.map(|l| l.configured));
    let y_max = y_top(
        s.rows
            .iter()
            .map(|r| r.qmgr_channel_instances.max(r.channel_total))
            .chain(upper_extra.iter().flat_map(|l| l.required.iter().copied())),
        &limits,
    );
    let y_desc = if upper_extra.is_some_and(|l| l.limit == Limit::MaxConnections) {
        "channel instances, connections"
    } else {
        "channel instances"
    };
    let mut chart = ChartBuilder::on(top)
        .caption(format!("mqplan sweep: {}", s.app), (FONT, 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_from..x_to, 0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("instances")
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .draw()?;
    let mut series: Vec<Series> = vec![
        (
            s.rows.iter().map(|r| (r.instances, r.channel_total)).collect(),
            BLUE,
            "channel instances on the channel".into(),
        ),
        (
            s.rows.iter().map(|r| (r.instances, r.qmgr_channel_instances)).collect(),
            GREEN,
            "channel instances on the queue manager".into(),
        ),
    ];
    series.extend(upper_extra.map(|l| limiting_series(s, l)));
    for (points, colour, label) in series {
        if one_row {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    let mut lines = vec![
        (s.max_inst, RED, format!("MAXINST {}", s.max_inst)),
        (
            s.max_channels,
            MAGENTA,
            format!("{} {}", s.max_channels_limit.name(), s.max_channels),
        ),
    ];
    if let Some(l) = upper_extra {
        lines.push((
            l.configured,
            LIMITING_LINE,
            format!("{} {}", l.limit.name(), l.configured),
        ));
    }
    draw_limits(&mut chart, lines, (x_from, x_to), y_max)?;
    match s.first_failure {
        Some(f) if f.instances >= first_row => {
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
        // Before the range: every row fails, and a marker would sit on the axis' edge.
        Some(f) => {
            chart
                .draw_series(std::iter::empty::<PathElement<(u64, u64)>>())?
                .label(format!(
                    "first failure: {} ({}) at {}, before this range",
                    f.reason_code,
                    f.limit.name(),
                    f.instances
                ))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
        None => {}
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;

    Ok(())
}

/// The lower chart: handles per connection against MAXHANDS, and MAXUMSGS when it is the
/// limit that fails first.
fn draw_per_connection<DB: DrawingBackend>(bottom: &DrawingArea<DB, Shift>, s: &Sweep) -> DrawResult<DB> {
    let (x_from, x_to) = x_axis(s);
    let one_row = s.rows.len() == 1;
    let lower_extra = s.limiting.as_ref().filter(|l| l.limit == Limit::MaxUmsgs);
    let handles = s.rows.first().map_or(0, |r| r.handles_per_connection);
    let mut lower_limits = vec![s.max_handles];
    lower_limits.extend(lower_extra.map(|l| l.configured));
    let h_max = y_top(
        std::iter::once(handles).chain(lower_extra.iter().flat_map(|l| l.required.iter().copied())),
        &lower_limits,
    )
    .max(with_margin(s.max_handles));
    let mut lower = ChartBuilder::on(bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_from..x_to, 0..h_max)?;
    lower
        .configure_mesh()
        .x_desc("instances")
        .y_desc(if lower_extra.is_some() {
            "handles per connection, messages per unit of work"
        } else {
            "handles per connection"
        })
        .label_style((FONT, 14))
        .draw()?;
    let mut series: Vec<Series> = vec![(
        s.rows.iter().map(|r| (r.instances, r.handles_per_connection)).collect(),
        BLUE,
        "peak handles on one connection".into(),
    )];
    let mut lines = vec![(s.max_handles, RED, format!("MAXHANDS {}", s.max_handles))];
    if let Some(l) = lower_extra {
        series.push(limiting_series(s, l));
        lines.push((
            l.configured,
            LIMITING_LINE,
            format!("{} {}", l.limit.name(), l.configured),
        ));
    }
    for (points, colour, label) in series {
        if one_row {
            lower.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        lower
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    draw_limits(&mut lower, lines, (x_from, x_to), h_max)?;
    lower
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a limit far above the data lifted the axis to twice their peak, leaving
    /// the chart's top half empty although the limit was not drawn.
    #[test]
    fn regression_a_limit_left_above_the_chart_does_not_lift_its_axis() {
        assert_eq!(y_top([10].into_iter(), &[1000]), with_margin(10));
        assert_eq!(y_top([10].into_iter(), &[1000, 15]), with_margin(15));
        assert_eq!(y_top([10].into_iter(), &[20]), with_margin(20));
    }
}
