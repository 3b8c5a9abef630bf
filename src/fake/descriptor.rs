//! Message descriptor fields the queue manager fills in at MQPUT: MsgId, PutDate, PutTime.
//!
//! These run on every put, so they write into the MQMD's fixed-size fields in place, do not
//! allocate, and format the date and time of day once per second per thread. MsgIds count up
//! from a base taken from the clock when the queue manager is created, so that a restarted
//! fake does not hand out the ids of its previous run again.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use libmqm_sys as mq;

/// A 24-byte message id as MQ builds one: `AMQ `, the queue manager name (12 bytes), and 8
/// bytes that count up from a time-based start (`unique`: [`message_id_base`] plus the put's
/// sequence number).
pub(super) fn message_id(qmgr: &str, unique: u64) -> [u8; 24] {
    let mut id = [b' '; 24];
    id[..4].copy_from_slice(b"AMQ ");
    let name = qmgr.as_bytes();
    let n = name.len().min(12);
    id[4..4 + n].copy_from_slice(&name[..n]);
    id[16..].copy_from_slice(&unique.to_be_bytes());
    id
}

/// The highest base handed out in this process.
static LAST_BASE: AtomicU64 = AtomicU64::new(0);

/// Where a new queue manager's MsgIds start counting: the time in nanoseconds since the
/// epoch, and above every base handed out before in this process. Its ids are then unique
/// across restarts as MQ's are, which count from the time the queue manager started: an
/// earlier run could only reach this one's first id by putting more than one message a
/// nanosecond.
pub(super) fn message_id_base() -> u64 {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let previous = LAST_BASE
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last + 1)))
        .unwrap_or_else(|last| last);
    now.max(previous + 1)
}

/// Copies `text` into a blank-padded MQCHAR field.
pub(crate) fn copy_padded(field: &mut [mq::MQCHAR], text: &str) {
    for (i, slot) in field.iter_mut().enumerate() {
        // MQCHAR is a C char: the byte is reinterpreted, not converted.
        *slot = text.as_bytes().get(i).copied().unwrap_or(b' ') as mq::MQCHAR;
    }
}

/// A second since the epoch with its PutDate and the HHMMSS part of its PutTime.
type Second = (u64, [mq::MQCHAR; 8], [mq::MQCHAR; 6]);

thread_local! {
    /// The second this thread last stamped: puts within one second only write the hundredths.
    static LAST_SECOND: Cell<Option<Second>> = const { Cell::new(None) };
}

/// Sets PutDate (`YYYYMMDD`) and PutTime (`HHMMSSTH`) in UTC, as MQ does.
pub(super) fn stamp_put_time(md: &mut mq::MQMD, now: SystemTime) {
    let since_epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (date, hhmmss) = match LAST_SECOND.get() {
        Some((second, date, hhmmss)) if second == secs => (date, hhmmss),
        _ => {
            let (date, hhmmss) = format_second(secs);
            LAST_SECOND.set(Some((secs, date, hhmmss)));
            (date, hhmmss)
        }
    };
    md.PutDate = date;
    md.PutTime[..6].copy_from_slice(&hhmmss);
    write_digits(&mut md.PutTime[6..8], u64::from(since_epoch.subsec_millis() / 10));
}

/// PutDate and the HHMMSS part of PutTime for a second since the epoch.
fn format_second(secs: u64) -> ([mq::MQCHAR; 8], [mq::MQCHAR; 6]) {
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let s = secs % 86_400;
    let mut date = [0; 8];
    write_digits(&mut date[..4], u64::try_from(y).unwrap_or(0));
    write_digits(&mut date[4..6], u64::try_from(m).unwrap_or(0));
    write_digits(&mut date[6..8], u64::try_from(d).unwrap_or(0));
    let mut hhmmss = [0; 6];
    write_digits(&mut hhmmss[..2], s / 3600);
    write_digits(&mut hhmmss[2..4], s / 60 % 60);
    write_digits(&mut hhmmss[4..6], s % 60);
    (date, hhmmss)
}

/// Writes `value` as zero-padded decimal digits filling `field` (this runs on every put, so
/// it does not allocate).
fn write_digits(field: &mut [mq::MQCHAR], mut value: u64) {
    for slot in field.iter_mut().rev() {
        // A decimal digit is ASCII, so the cast to a C char keeps it.
        *slot = (b'0' + (value % 10) as u8) as mq::MQCHAR;
        value /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn put_date_and_time_are_mq_formatted() {
        let mut md = crate::fake::default_md();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_160_496_789);
        stamp_put_time(&mut md, t);
        let text = |f: &[mq::MQCHAR]| f.iter().map(|&c| c as u8 as char).collect::<String>();
        assert_eq!(text(&md.PutDate), "20251126");
        assert_eq!(text(&md.PutTime), "12345678");
    }

    #[test]
    fn put_times_in_one_second_and_the_next_are_right() {
        let mut md = crate::fake::default_md();
        let text = |f: &[mq::MQCHAR]| f.iter().map(|&c| c as u8 as char).collect::<String>();
        let at = |ms: u64| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        stamp_put_time(&mut md, at(1_764_201_599_120));
        assert_eq!(
            (text(&md.PutDate), text(&md.PutTime)),
            ("20251126".into(), "23595912".into())
        );
        stamp_put_time(&mut md, at(1_764_201_599_990));
        assert_eq!(
            (text(&md.PutDate), text(&md.PutTime)),
            ("20251126".into(), "23595999".into())
        );
        stamp_put_time(&mut md, at(1_764_201_600_010));
        assert_eq!(
            (text(&md.PutDate), text(&md.PutTime)),
            ("20251127".into(), "00000001".into())
        );
    }

    #[test]
    fn message_ids_are_unique_and_24_bytes() {
        assert_ne!(message_id("QM1", 1), message_id("QM1", 2));
        assert_eq!(&message_id("QM1", 1)[..7], b"AMQ QM1");
    }

    #[test]
    fn each_base_is_above_the_last_and_not_behind_the_clock() {
        let clock = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let first = message_id_base();
        let second = message_id_base();
        assert!(second > first);
        assert!(u128::from(first) >= clock);
    }
}
