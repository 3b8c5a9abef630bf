//! MQSC that sets the limits a plan needs: `ALTER QMGR`, an `ALTER CHANNEL` per channel in
//! use, and the qm.ini note for what MQSC cannot set, every line saying why.
//!
//! Comment lines are wrapped at [`COMMENT_WIDTH`] characters, well within the 2,048 characters
//! IBM MQ reads on one MQSC line, however many apps a channel serves.

use std::fmt::Write as _;

use super::setting;
use crate::plan::advice::{MAX_CHANNELS_DOCUMENTED, above_documented};
use crate::plan::check::{Check, Status};
use crate::plan::math::Limit;
use crate::plan::report::{Plan, count, mqsc_name};

/// The most characters on one comment line; a longer comment goes on over `*   ` lines.
const COMMENT_WIDTH: usize = 100;

/// MQSC for the queue manager and its channels, with a comment on each line, a note for
/// qm.ini's MaxChannels/MaxActiveChannels and one for the connection limit (neither is an MQSC
/// attribute).
#[must_use]
pub fn mqsc(plan: &Plan, headroom: f64) -> String {
    let checks = plan.checks(&plan.instances, headroom);
    let qm = &plan.model.queue_manager;
    let mut out = format!(
        "* mqplan: limits for {} covering the planned maximum with {headroom}% headroom\n",
        qm.name
    );
    let hands = need(&checks, Limit::MaxHands, &|_| true);
    let umsgs = need(&checks, Limit::MaxUmsgs, &|_| true);
    let (set_hands, hands_note) = setting("MAXHANDS", qm.max_handles, hands, headroom);
    let (set_umsgs, umsgs_note) = setting("MAXUMSGS", qm.max_uncommitted, umsgs, headroom);
    let _ = writeln!(
        out,
        "ALTER QMGR MAXHANDS({set_hands}) MAXUMSGS({set_umsgs})\n\
         * MAXHANDS: {} on one connection (was {}); MAXUMSGS: {} in one unit of work (was {}){hands_note}{umsgs_note}",
        at_most(hands, "handle", "handles"),
        qm.max_handles,
        at_most(umsgs, "message", "messages"),
        qm.max_uncommitted,
    );
    for c in 0..qm.channels.len() {
        if plan.model.apps.iter().any(|a| a.channel == c) {
            out.push_str(&channel(plan, &checks, c, headroom));
        }
    }
    out.push_str(&qm_ini(plan, &checks, headroom));
    out.push_str(&connections(&checks, headroom));
    wrap_comments(&out)
}

/// "at most 2"; "more than 999999999" for a count past what a u64 holds.
fn at_most_count(n: u64) -> String {
    if n == u64::MAX {
        count(n)
    } else {
        format!("at most {n}")
    }
}

/// "at most 1 handle", "at most 2 handles", "more than 999999999 handles".
fn at_most(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", at_most_count(n), if n == 1 { one } else { many })
}

/// "1 instance", "2 instances", "more than 999999999 instances".
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// `mqsc` with every comment line longer than [`COMMENT_WIDTH`] broken between words, each
/// further line a comment of its own starting `*   `.
fn wrap_comments(mqsc: &str) -> String {
    let mut out = String::with_capacity(mqsc.len());
    for line in mqsc.lines() {
        let Some(text) = line.strip_prefix("* ").filter(|_| line.chars().count() > COMMENT_WIDTH) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let mut current = String::from("*");
        for word in text.split(' ') {
            let width = current.chars().count();
            if width > 4 && width + 1 + word.chars().count() > COMMENT_WIDTH {
                out.push_str(&current);
                out.push('\n');
                current = String::from("*  ");
            }
            current.push(' ');
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// The most any check of `limit` in a scope `scope` accepts requires (0 if none).
fn need(checks: &[Check], limit: Limit, scope: &dyn Fn(&str) -> bool) -> u64 {
    checks
        .iter()
        .filter(|c| c.limit == limit && scope(&c.scope))
        .map(|c| c.required)
        .max()
        .unwrap_or(0)
}

/// The ALTER CHANNEL for channel `c` and its comment.
fn channel(plan: &Plan, checks: &[Check], c: usize, headroom: f64) -> String {
    let channel = &plan.model.queue_manager.channels[c];
    let on = |s: &str| s == format!("channel {}", channel.name) || s.starts_with(&format!("channel {},", channel.name));
    let inst = need(checks, Limit::MaxInst, &on);
    let instc = need(checks, Limit::MaxInstc, &on);
    let effective: Vec<String> = plan
        .model
        .apps
        .iter()
        .zip(&plan.numbers)
        .filter(|(a, _)| a.channel == c)
        .map(|(a, n)| format!("{} {}", a.name, n.sharecnv))
        .collect();
    let (set_inst, inst_note) = setting("MAXINST", channel.max_inst, inst, headroom);
    let (set_instc, instc_note) = setting("MAXINSTC", channel.max_instc, instc, headroom);
    let (inst, instc) = (counted(inst, "instance", "instances"), at_most_count(instc));
    let blocks = |n: u64| if n == 0 { ", which blocks the channel" } else { "" };
    format!(
        "ALTER CHANNEL({}) CHLTYPE(SVRCONN) MAXINST({set_inst}) MAXINSTC({set_instc}) SHARECNV({})\n\
         * {}: {inst} from all clients (was MAXINST {}{}), {instc} from one client address \
         (was MAXINSTC {}{}); SHARECNV {} unchanged: each app gets the lower of its own and the channel's: {} \
         (0 = no sharing){inst_note}{instc_note}\n",
        mqsc_name(&channel.name),
        channel.sharecnv,
        channel.name,
        channel.max_inst,
        blocks(channel.max_inst),
        channel.max_instc,
        blocks(channel.max_instc),
        channel.sharecnv,
        effective.join(", "),
    )
}

/// The note for qm.ini's CHANNELS stanza: MaxChannels and MaxActiveChannels.
fn qm_ini(plan: &Plan, checks: &[Check], headroom: f64) -> String {
    let qm = &plan.model.queue_manager;
    let channels = need(checks, Limit::MaxChannels, &|_| true);
    let (set_channels, channels_note) = setting("MaxChannels", qm.max_channels, channels, headroom);
    let (set_active, _) = setting("MaxActiveChannels", qm.max_active_channels, channels, headroom);
    let caveat = if set_channels.max(set_active) > MAX_CHANNELS_DOCUMENTED {
        format!("\n* {}", above_documented(set_channels.max(set_active)))
    } else {
        String::new()
    };
    let other = if qm.other_channels > 0 {
        format!(", {} of them other channels'", qm.other_channels)
    } else {
        String::new()
    };
    format!(
        "* qm.ini, CHANNELS stanza (not MQSC; restart the queue manager): MaxChannels={set_channels} \
         MaxActiveChannels={set_active}\n\
         * {} in all{other} (was MaxChannels {}, MaxActiveChannels {}){channels_note}{caveat}\n",
        counted(channels, "channel instance", "channel instances"),
        qm.max_channels,
        qm.max_active_channels,
    )
}

/// The note for the connection limit, when the model has one: no MQSC sets it.
fn connections(checks: &[Check], headroom: f64) -> String {
    let Some(c) = checks.iter().find(|c| c.limit == Limit::MaxConnections) else {
        return String::new();
    };
    let how = match c.status {
        Status::Ok => format!("within the model's connection limit of {}", c.configured),
        Status::AtRisk => format!(
            "within the model's connection limit of {} but with {:.1}% headroom, less than {headroom}%",
            c.configured, c.headroom_pct
        ),
        Status::Fails => format!(
            "more than the model's connection limit of {}: connecting fails with 2025 (MQRC_MAX_CONNS_LIMIT_REACHED)",
            c.configured
        ),
    };
    let advice = if c.status == Status::Ok {
        ""
    } else {
        ": raise it where your installation sets it, or open fewer connections (fewer instances or smaller pools)"
    };
    format!(
        "* max_connections: the fleet opens {}, {how}; the connection limit is not an MQSC attribute and no command \
         above changes it{advice}\n",
        counted(c.required, "connection", "connections")
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{logicapps, plan};
    use super::*;

    #[test]
    fn mqsc_quotes_names_so_their_case_is_kept() {
        let mqsc = mqsc(&logicapps(100, "5", 1), 20.0);
        assert!(
            mqsc.contains("ALTER CHANNEL('app.svrconn') CHLTYPE(SVRCONN) MAXINST(100)"),
            "{mqsc}"
        );
    }

    #[test]
    fn mqsc_never_sets_more_than_mq_takes() {
        // 999,999,999 handles on a connection: covering it with 20% headroom needs more than MQ's
        // largest MAXHANDS.
        let mqsc = mqsc(&logicapps(100, "1", 999_999_999), 20.0);
        assert!(mqsc.contains("ALTER QMGR MAXHANDS(999999999) "), "{mqsc}");
        assert!(
            mqsc.contains("* MAXHANDS: no value covers 999999999 with 20% headroom"),
            "{mqsc}"
        );
        let report = logicapps(100, "1", 999_999_999).report("", 20.0);
        let r = report
            .recommendations
            .iter()
            .find(|r| r.limit == Some(Limit::MaxHands))
            .expect("advice");
        assert_eq!(r.recommended, None);
        assert!(r.text.contains("no value covers the plan"), "{}", r.text);
    }

    #[test]
    fn the_largest_need_of_a_limit_is_the_one_recommended() {
        let custom = |handles: &[u64]| {
            let apps: String = handles
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    format!(
                        "[[app]]\nname = \"a{i}\"\nprofile = \"custom\"\nchannel = \"C\"\ninstances = 1\n\
                         connections = 1\nhandles_per_connection = {h}\nuncommitted = 0\n"
                    )
                })
                .collect();
            let p = plan(&format!(
                "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n{apps}"
            ));
            let report = p.report("", 20.0);
            let r = report
                .recommendations
                .iter()
                .find(|r| r.limit == Some(Limit::MaxHands))
                .cloned();
            (r.expect("a MAXHANDS recommendation"), mqsc(&p, 20.0))
        };
        let (r, _) = custom(&[300, 200]);
        assert_eq!(r.recommended, Some(375));
        // Neither can be set; the text and the MQSC both give the larger need.
        let (r, mqsc) = custom(&[900_000_000, 950_000_000]);
        assert_eq!(r.recommended, None);
        assert!(r.text.contains("1187500000"), "{}", r.text);
        assert!(mqsc.contains("no value covers 950000000"), "{mqsc}");
    }
}
