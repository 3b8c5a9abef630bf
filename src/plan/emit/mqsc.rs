//! MQSC that sets the limits a plan needs: `ALTER QMGR`, an `ALTER CHANNEL` per channel in
//! use, and the qm.ini note for what MQSC cannot set, every line saying why.

use std::fmt::Write as _;

use super::setting;
use crate::plan::math::Limit;
use crate::plan::report::{Plan, count, mqsc_name};

/// MQSC for the queue manager and its channels, with a comment on each line, and a note for
/// qm.ini's MaxChannels/MaxActiveChannels (not an MQSC attribute).
#[must_use]
pub fn mqsc(plan: &Plan, headroom: f64) -> String {
    let checks = plan.checks(&plan.instances, headroom);
    let need = |limit: Limit, scope: &dyn Fn(&str) -> bool| {
        checks
            .iter()
            .filter(|c| c.limit == limit && scope(&c.scope))
            .map(|c| c.required)
            .max()
            .unwrap_or(0)
    };
    let qm = &plan.model.queue_manager;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "* mqplan: limits for {} covering the planned maximum with {headroom}% headroom",
        qm.name
    );
    let hands = need(Limit::MaxHands, &|_| true);
    let umsgs = need(Limit::MaxUmsgs, &|_| true);
    let (set_hands, hands_note) = setting("MAXHANDS", qm.max_handles, hands, headroom);
    let (set_umsgs, umsgs_note) = setting("MAXUMSGS", qm.max_uncommitted, umsgs, headroom);
    let (hands, umsgs) = (count(hands), count(umsgs));
    let _ = writeln!(
        out,
        "ALTER QMGR MAXHANDS({set_hands}) MAXUMSGS({set_umsgs})\n\
         * MAXHANDS: at most {hands} handles on one connection (was {}); MAXUMSGS: at most {umsgs} messages in one \
         unit of work (was {}){hands_note}{umsgs_note}",
        qm.max_handles, qm.max_uncommitted,
    );
    for (c, channel) in qm.channels.iter().enumerate() {
        if !plan.model.apps.iter().any(|a| a.channel == c) {
            continue;
        }
        let on =
            |s: &str| s == format!("channel {}", channel.name) || s.starts_with(&format!("channel {},", channel.name));
        let inst = need(Limit::MaxInst, &on);
        let instc = need(Limit::MaxInstc, &on);
        let sharecnv = plan
            .model
            .apps
            .iter()
            .zip(&plan.numbers)
            .filter(|(a, _)| a.channel == c)
            .map(|(_, n)| n.sharecnv)
            .max()
            .unwrap_or(channel.sharecnv);
        let (set_inst, inst_note) = setting("MAXINST", channel.max_inst, inst, headroom);
        let (set_instc, instc_note) = setting("MAXINSTC", channel.max_instc, instc, headroom);
        let (inst, instc) = (count(inst), count(instc));
        let _ = writeln!(
            out,
            "ALTER CHANNEL({}) CHLTYPE(SVRCONN) MAXINST({set_inst}) MAXINSTC({set_instc}) SHARECNV({})\n\
             * {}: {inst} instances from all clients (was MAXINST {}), at most {instc} from one client address \
             (was MAXINSTC {}); SHARECNV {} kept (the lower of client and server applies; clients use up to \
             {sharecnv}){}{}",
            mqsc_name(&channel.name),
            channel.sharecnv,
            channel.name,
            channel.max_inst,
            channel.max_instc,
            channel.sharecnv,
            inst_note,
            instc_note,
        );
    }
    let channels = need(Limit::MaxChannels, &|_| true);
    let (set_channels, channels_note) = setting("MaxChannels", qm.max_channels, channels, headroom);
    let (set_active, _) = setting("MaxActiveChannels", qm.max_active_channels, channels, headroom);
    let channels = count(channels);
    let _ = writeln!(
        out,
        "* qm.ini, CHANNELS stanza (not MQSC; restart the queue manager): MaxChannels={set_channels} \
         MaxActiveChannels={set_active}\n\
         * {channels} channel instances in all (was MaxChannels {}, MaxActiveChannels {}){}",
        qm.max_channels, qm.max_active_channels, channels_note,
    );
    out
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
