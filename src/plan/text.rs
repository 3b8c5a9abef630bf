//! The plain-text report: what `mqplan check` prints on a terminal.
//!
//! It reads only [`Report`], so it says exactly what the JSON says. Colour (ANSI) marks the
//! status words and nothing else, and only when asked for: tests and pipes get plain text.

use std::fmt::Write as _;

use super::check::Status;
use super::report::{AppReport, Report, count, instances};

/// Renders `report`; `colour` adds ANSI colours to status words.
#[must_use]
pub fn render_text(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let qm = &report.queue_manager;
    let _ = writeln!(
        out,
        "mqplan: {} ({}): {}",
        qm.name,
        report.origin,
        paint(report.status, colour, true)
    );
    let _ = writeln!(
        out,
        "queue manager {}: MAXHANDS {}, MaxChannels {}, MaxActiveChannels {}, MAXUMSGS {}, connection limit {}",
        qm.name,
        qm.max_handles,
        qm.max_channels,
        qm.max_active_channels,
        qm.max_uncommitted,
        qm.max_connections.map_or_else(|| "none".to_owned(), |n| n.to_string())
    );
    if qm.other_channels > 0 {
        let _ = writeln!(
            out,
            "  other channels: {} channel instances the apps below do not start, counted against MaxChannels",
            qm.other_channels
        );
    }
    for c in &qm.channels {
        let _ = writeln!(
            out,
            "  channel {}: MAXINST {}, MAXINSTC {}, SHARECNV {}",
            c.name, c.max_inst, c.max_instc, c.sharecnv
        );
    }
    for app in &report.apps {
        out.push('\n');
        app_text(&mut out, app);
    }
    let _ = writeln!(out, "\nchecks (headroom asked: {}%):", report.headroom_pct);
    let rows: Vec<[String; 7]> = report
        .checks
        .iter()
        .map(|c| {
            [
                c.status.name().to_owned(),
                c.limit.name().to_owned(),
                c.scope.clone(),
                count(c.required),
                c.configured.to_string(),
                format!("{:.1}%", c.headroom_pct),
                c.reason_code.to_string(),
            ]
        })
        .collect();
    let header = [
        "status",
        "limit",
        "scope",
        "required",
        "configured",
        "headroom",
        "reason",
    ]
    .map(str::to_owned);
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, row) in std::iter::once(&header).chain(&rows).enumerate() {
        out.push_str("  ");
        for (i, cell) in row.iter().enumerate() {
            let padded = if (3..=6).contains(&i) {
                format!("{cell:>w$}", w = widths[i])
            } else {
                format!("{cell:<w$}", w = widths[i])
            };
            if i == 0 && n > 0 {
                out.push_str(&padded.replace(cell, &paint(report.checks[n - 1].status, colour, false)));
            } else {
                out.push_str(&padded);
            }
            out.push_str(if i < 6 { "  " } else { "" });
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "total open handles over all connections: {} (information only: MQ limits handles per connection)",
        count(report.total_open_handles)
    );
    if !report.recommendations.is_empty() {
        out.push_str("\nrecommendations:\n");
        for r in &report.recommendations {
            // A setting's text names its scope; design advice does not.
            match r.limit {
                Some(_) => {
                    let _ = writeln!(out, "  - {}", r.text);
                }
                None => {
                    let _ = writeln!(out, "  - {}: {}", r.scope, r.text);
                }
            }
        }
    }
    let _ = writeln!(out, "\nstatus: {}", paint(report.status, colour, false));
    out
}

fn app_text(out: &mut String, app: &AppReport) {
    let range = app
        .instances_range
        .map(|r| format!(" (planned {}..{})", r.min, r.max))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "app {} ({}) on {}: {}{range}, client address {}",
        app.name,
        app.profile_name(),
        app.channel,
        instances(app.instances),
        app.client_address
    );
    let _ = writeln!(
        out,
        "  connections: {} per instance, {} in all; SHARECNV {}; channel instances: {} per instance, {} in all",
        count(app.connections_per_instance),
        count(app.connections),
        app.sharecnv,
        count(app.channel_instances_per_instance),
        count(app.channel_instances)
    );
    let _ = writeln!(
        out,
        "  peak handles per connection: {}; messages per unit of work: {}",
        app.peak_handles_per_connection, app.uncommitted_per_unit_of_work
    );
    match app.first_failure {
        Some(f) => {
            let _ = writeln!(
                out,
                "  first failure: {} ({}) at {}; max safe instances: {}",
                f.reason_code,
                f.limit.name(),
                instances(f.instances),
                app.max_safe_instances
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  first failure: none up to {}; max safe instances: {}",
                instances(app.max_safe_instances),
                app.max_safe_instances
            );
        }
    }
    out.push_str("  assumptions:\n");
    for a in &app.assumptions {
        let _ = writeln!(out, "    - {a}");
    }
}

impl AppReport {
    /// The profile's name.
    #[must_use]
    pub const fn profile_name(&self) -> &'static str {
        self.profile.name()
    }
}

fn paint(status: Status, colour: bool, upper: bool) -> String {
    let word = if upper {
        status.name().to_uppercase()
    } else {
        status.name().to_owned()
    };
    if !colour {
        return word;
    }
    let code = match status {
        Status::Ok => "32",
        Status::AtRisk => "33",
        Status::Fails => "1;31",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two tibco apps of 5 connections: `a` with client SHARECNV 2 on channel C (10), `b` with
    /// client SHARECNV 2 on channel D (1).
    pub(crate) const TWO_SHARECNV: &str = "[queue_manager]\nname = \"QM1\"\n\
        [[queue_manager.channel]]\nname = \"C\"\n[[queue_manager.channel]]\nname = \"D\"\nsharecnv = 1\n\
        [[app]]\nname = \"a\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = 1\nsharecnv = 2\n\
        [[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\nactivities = 5\n\
        [[app]]\nname = \"b\"\nprofile = \"tibco\"\nchannel = \"D\"\ninstances = 1\nsharecnv = 2\n\
        [[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\nactivities = 5\n";

    #[test]
    fn design_advice_names_its_app_and_the_sharecnv_side_to_raise() {
        let report = crate::plan::check_text(TWO_SHARECNV, "t.toml", 20.0).unwrap();
        let text = render_text(&report, false);
        assert!(
            text.contains(
                "  - app a: SHARECNV 2 (the lower of the client's 2 and channel C's 10) allows 2 conversations per \
                 channel instance (3 per instance); raising the client's SHARECNV (the app's `sharecnv`) to 10 \
                 would start 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  - app b: SHARECNV 1 (the lower of the client's 2 and channel D's 1) allows 1 conversation per \
                 channel instance (5 per instance); raising the client's SHARECNV (the app's `sharecnv`) and \
                 channel D's SHARECNV to 10 (ALTER CHANNEL('D') CHLTYPE(SVRCONN) SHARECNV(10)) would start 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_app_left_on_the_per_instance_default_is_warned_about_it() {
        let model = |address: &str| {
            format!(
                "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\nname = \"la\"\n\
                 profile = \"logicapps-builtin\"\nchannel = \"C\"\ninstances = 4\n{address}[[app.workload]]\n\
                 queue = \"Q\"\nkind = \"receive\"\n[[app]]\nname = \"j\"\nprofile = \"jms\"\nchannel = \"C\"\n\
                 instances = 2\n{address}[[app.workload]]\nqueue = \"Q\"\nkind = \"listener\"\n"
            )
        };
        let report = crate::plan::check_text(&model(""), "t.toml", 20.0).unwrap();
        let warning = |a: usize| {
            report.apps[a]
                .assumptions
                .iter()
                .find(|s| s.starts_with("warning:"))
                .cloned()
        };
        let la = warning(0).expect("a warning for the Logic Apps app");
        assert!(la.contains("outbound") && la.contains("client_address"), "{la}");
        let jms = warning(1).expect("a warning for the jms app");
        assert!(jms.contains("SNAT") && jms.contains("client_address"), "{jms}");
        let text = render_text(&report, false);
        assert!(text.contains(&format!("    - {la}\n")), "{text}");
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("warning: no `client_address`"), "{json}");
        // Saying so, even for the same addresses, leaves the warning out.
        let report = crate::plan::check_text(&model("client_address = \"per-instance\"\n"), "t.toml", 20.0).unwrap();
        assert!(
            report
                .apps
                .iter()
                .all(|a| a.assumptions.iter().all(|s| !s.starts_with("warning:")))
        );
    }

    #[test]
    fn sharecnv_0_advice_says_raising_it_changes_how_the_channel_behaves() {
        let report = crate::plan::check_text(
            &TWO_SHARECNV.replace("sharecnv = 1\n", "sharecnv = 0\n"),
            "t.toml",
            20.0,
        )
        .unwrap();
        let text = render_text(&report, false);
        let b = text
            .lines()
            .find(|l| l.starts_with("  - app b: SHARECNV 0"))
            .expect("advice for b");
        assert!(b.contains("V6-compatible mode") && b.contains("no read-ahead"), "{b}");
        let a = text
            .lines()
            .find(|l| l.starts_with("  - app a: SHARECNV 2"))
            .expect("advice for a");
        assert!(!a.contains("V6"), "{a}");
    }

    #[test]
    fn colour_marks_status_words_only_when_asked() {
        let report = crate::plan::check_text(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\nname = \"a\"\n\
             profile = \"tibco\"\nchannel = \"C\"\ninstances = 1\n[[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\n",
            "t.toml",
            20.0,
        )
        .unwrap();
        let plain = render_text(&report, false);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("status: ok"));
        let coloured = render_text(&report, true);
        assert!(coloured.contains("\x1b[32mok\x1b[0m"));
        assert_eq!(coloured.replace("\x1b[32m", "").replace("\x1b[0m", ""), plain);
    }
}
