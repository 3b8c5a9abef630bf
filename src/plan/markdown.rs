//! The markdown report: for a pull request, a wiki page or an issue.
//!
//! Same content as the text report, as headings, lists and tables. Reads only [`Report`].

use std::fmt::Write as _;

use super::report::{Report, count};

/// Renders `report` as GitHub-flavoured markdown.
#[must_use]
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let qm = &report.queue_manager;
    let _ = writeln!(out, "# Capacity plan for {}: {}\n", qm.name, report.status.name());
    let _ = writeln!(
        out,
        "Model: `{}`. Headroom asked: {}%.\n",
        report.origin, report.headroom_pct
    );
    out.push_str("## Queue manager\n\n");
    out.push_str(
        "| MAXHANDS | MaxChannels | MaxActiveChannels | MAXUMSGS | connection limit |\n|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        qm.max_handles,
        qm.max_channels,
        qm.max_active_channels,
        qm.max_uncommitted,
        qm.max_connections.map_or_else(|| "none".to_owned(), |n| n.to_string())
    );
    if qm.other_channels > 0 {
        let _ = writeln!(
            out,
            "Other channels: {} channel instances the apps below do not start, counted against MaxChannels.\n",
            qm.other_channels
        );
    }
    out.push_str("| channel | MAXINST | MAXINSTC | SHARECNV |\n|---|---|---|---|\n");
    for c in &qm.channels {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&c.name),
            c.max_inst,
            c.max_instc,
            c.sharecnv
        );
    }
    out.push_str("\n## Apps\n\n");
    out.push_str(
        "| app | profile | channel | address | instances | connections (per instance) | channel instances \
         (per instance) | handles per connection | messages per unit of work | first failure | max safe |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in &report.apps {
        let first = a.first_failure.map_or_else(
            || "none".to_owned(),
            |f| format!("{} ({}) at {}", f.reason_code, f.limit.name(), f.instances),
        );
        let range = a
            .instances_range
            .map(|r| format!(" ({}..{})", r.min, r.max))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{range} | {} ({}) | {} ({}) | {} | {} | {first} | {} |",
            cell(&a.name),
            a.profile_name(),
            cell(&a.channel),
            cell(&a.client_address),
            a.instances,
            count(a.connections),
            count(a.connections_per_instance),
            count(a.channel_instances),
            count(a.channel_instances_per_instance),
            a.peak_handles_per_connection,
            a.uncommitted_per_unit_of_work,
            a.max_safe_instances
        );
    }
    out.push_str("\n### Assumptions\n");
    for a in &report.apps {
        let _ = writeln!(out, "\n**{}** ({}):\n", a.name, a.profile_name());
        for line in &a.assumptions {
            let _ = writeln!(out, "- {line}");
        }
    }
    out.push_str("\n## Checks\n\n| status | limit | scope | required | configured | headroom | reason |\n|---|---|---|---|---|---|---|\n");
    for c in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1}% | {} |",
            c.status.name(),
            c.limit.name(),
            cell(&c.scope),
            count(c.required),
            c.configured,
            c.headroom_pct,
            c.reason_code
        );
    }
    let _ = writeln!(
        out,
        "\nTotal open handles over all connections: {} (information only: MQ limits handles per connection).",
        count(report.total_open_handles)
    );
    if !report.recommendations.is_empty() {
        out.push_str("\n## Recommendations\n\n");
        for r in &report.recommendations {
            // A setting's text names its scope; design advice does not.
            match r.limit {
                Some(_) => {
                    let _ = writeln!(out, "- {}", r.text);
                }
                None => {
                    let _ = writeln!(out, "- {}: {}", r.scope, r.text);
                }
            }
        }
    }
    out
}

/// `text` as a table cell: a `|` would end the cell, so it is escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_advice_names_its_app() {
        let report = crate::plan::check_text(crate::plan::text::tests::TWO_SHARECNV, "t.toml", 20.0).unwrap();
        let markdown = render_markdown(&report);
        assert!(markdown.contains("\n- app a: SHARECNV 2 (the lower of"), "{markdown}");
        assert!(markdown.contains("\n- app b: SHARECNV 1 (the lower of"), "{markdown}");
    }

    #[test]
    fn a_bar_in_a_name_does_not_split_a_table_cell() {
        let model = crate::plan::text::tests::TWO_SHARECNV
            .replace("name = \"a\"", "name = \"a|b\"\nclient_address = \"nat|x\"");
        let report = crate::plan::check_text(&model, "t.toml", 20.0).unwrap();
        let markdown = render_markdown(&report);
        let rows: Vec<&str> = markdown.lines().filter(|l| l.starts_with('|')).collect();
        assert!(
            rows.iter()
                .any(|l| l.starts_with("| a\\|b | tibco | C | nat\\|x | 1 |")),
            "{markdown}"
        );
        assert!(
            rows.iter().any(|l| l.contains("| channel C, address group nat\\|x |")),
            "{markdown}"
        );
        // Every row of a table has as many unescaped bars as its header.
        for table in markdown.split("\n\n").filter(|t| t.starts_with('|')) {
            let bars = |l: &str| l.replace("\\|", "").matches('|').count();
            let header = bars(table.lines().next().unwrap());
            assert!(table.lines().all(|l| bars(l) == header), "{table}");
        }
    }
}
