//! A message as mqpilot hands it around: payload plus the MQMD fields users act on.
//!
//! It keeps the whole MQMD it was received with, so forwarding it (backout queue, queue sink)
//! puts the same ids, format, priority and persistence; the readable fields are views of it.

use std::cell::RefCell;

use libmqm_sys as mq;

/// One message received from a queue.
#[derive(Clone)]
pub struct Message {
    /// The queue it came from (shared by every message of a batch).
    pub queue: std::sync::Arc<str>,
    /// The payload (cheap to clone: messages of a batch share their allocations).
    pub data: bytes::Bytes,
    /// On the heap: batches move messages around, and an MQMD is 364 bytes.
    md: Descriptor,
}

/// Most freed descriptors a thread keeps for its next MQGETs (about 93 KiB).
const SPARE_DESCRIPTORS: usize = 256;

thread_local! {
    /// Descriptors freed on this thread, ready for the next messages it creates.
    #[allow(clippy::vec_box, reason = "the boxes are what is kept, to be handed out again")]
    static SPARE: RefCell<Vec<Box<mq::MQMD>>> = const { RefCell::new(Vec::new()) };
}

/// A message's MQMD on the heap, recycled per thread.
///
/// A round drops its whole batch at once on the connection's thread, and glibc's per-thread
/// cache keeps only 7 free blocks of a size: without recycling, 43 of a batch of 50 frees,
/// and as many of the next batch's allocations, take the allocator's slow path (about 300
/// instructions a message, a tenth of a drain's cost on the fake). A descriptor dropped on a
/// thread is kept, up to [`SPARE_DESCRIPTORS`], for the next message made on that thread.
pub(crate) struct Descriptor(Option<Box<mq::MQMD>>);

impl Descriptor {
    /// A copy of `md` (an MQGET's parameters, left where they are).
    pub(crate) fn new(md: &mq::MQMD) -> Self {
        let spare = SPARE
            .try_with(|spare| spare.try_borrow_mut().ok().and_then(|mut spare| spare.pop()))
            .ok()
            .flatten();
        Self(Some(spare.map_or_else(
            || Box::new(*md),
            |mut boxed| {
                *boxed = *md;
                boxed
            },
        )))
    }
}

impl std::ops::Deref for Descriptor {
    type Target = mq::MQMD;

    fn deref(&self) -> &mq::MQMD {
        self.0
            .as_deref()
            .expect("a descriptor is only empty while it is dropped")
    }
}

impl Clone for Descriptor {
    fn clone(&self) -> Self {
        Self::new(self)
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        let Some(boxed) = self.0.take() else { return };
        // On a thread that is ending, or with the list full, the box is simply freed.
        let _ = SPARE.try_with(move |spare| {
            if let Ok(mut spare) = spare.try_borrow_mut()
                && spare.len() < SPARE_DESCRIPTORS
            {
                spare.push(boxed);
            }
        });
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("queue", &self.queue)
            .field("msg_id", &self.msg_id_hex())
            .field("backout_count", &self.backout_count())
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// MQCHAR field as trimmed text.
fn text(field: &[mq::MQCHAR]) -> String {
    // MQCHAR is a C char: reinterpret each byte.
    let bytes: Vec<u8> = field.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

/// Lower-case hex of a byte string.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

impl Message {
    /// A message from what MQGET returned.
    #[must_use]
    pub fn new(queue: impl Into<std::sync::Arc<str>>, md: mq::MQMD, data: impl Into<bytes::Bytes>) -> Self {
        Self::with_descriptor(queue, Descriptor::new(&md), data)
    }

    /// A message whose MQMD is already on the heap.
    pub(crate) fn with_descriptor(
        queue: impl Into<std::sync::Arc<str>>,
        md: Descriptor,
        data: impl Into<bytes::Bytes>,
    ) -> Self {
        Self {
            queue: queue.into(),
            data: data.into(),
            md,
        }
    }

    /// The full MQMD, for putting the message on elsewhere.
    #[must_use]
    pub fn md(&self) -> &mq::MQMD {
        &self.md
    }

    /// MsgId.
    #[must_use]
    pub fn msg_id(&self) -> [u8; 24] {
        self.md.MsgId
    }

    /// MsgId in hex.
    #[must_use]
    pub fn msg_id_hex(&self) -> String {
        hex(&self.md.MsgId)
    }

    /// CorrelId in hex.
    #[must_use]
    pub fn correl_id_hex(&self) -> String {
        hex(&self.md.CorrelId)
    }

    /// BackoutCount: how often this message was backed out.
    #[must_use]
    pub fn backout_count(&self) -> i32 {
        self.md.BackoutCount
    }

    /// Priority 0..=9.
    #[must_use]
    pub fn priority(&self) -> i32 {
        self.md.Priority
    }

    /// Whether it is persistent.
    #[must_use]
    pub fn persistent(&self) -> bool {
        self.md.Persistence == mq::MQPER_PERSISTENT
    }

    /// Format, e.g. `MQSTR`.
    #[must_use]
    pub fn format(&self) -> String {
        text(&self.md.Format)
    }

    /// ReplyToQ.
    #[must_use]
    pub fn reply_to_queue(&self) -> String {
        text(&self.md.ReplyToQ)
    }

    /// Put time as ISO 8601 UTC (`2026-11-26T10:44:30.12Z`), from PutDate and PutTime.
    #[must_use]
    pub fn put_time(&self) -> String {
        let d = text(&self.md.PutDate);
        let t = text(&self.md.PutTime);
        // The putter may set these fields (MQPMO_SET_ALL_CONTEXT): anything but 8 digits each
        // is shown as it is, never sliced.
        let digits = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(&d) && digits(&t)) {
            return format!("{d} {t}").trim().to_owned();
        }
        format!(
            "{}-{}-{}T{}:{}:{}.{}Z",
            &d[..4],
            &d[4..6],
            &d[6..],
            &t[..2],
            &t[2..4],
            &t[4..6],
            &t[6..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn fields_read_from_the_descriptor() {
        let mut md = libmqm_default::MQMD_DEFAULT;
        md.MsgId[0] = 0xab;
        md.BackoutCount = 2;
        for (i, b) in b"20261126".iter().enumerate() {
            md.PutDate[i] = *b as mq::MQCHAR;
        }
        for (i, b) in b"10443012".iter().enumerate() {
            md.PutTime[i] = *b as mq::MQCHAR;
        }
        let m = Message::new("Q", md, b"x".to_vec());
        assert!(m.msg_id_hex().starts_with("ab00"));
        assert_eq!(m.msg_id_hex().len(), 48);
        assert_eq!(m.backout_count(), 2);
        assert_eq!(m.put_time(), "2026-11-26T10:44:30.12Z");
        assert!(!format!("{m:?}").contains("data"));
    }

    #[test]
    fn a_put_time_set_by_the_putter_is_shown_as_it_is_not_sliced() {
        let with = |date: &[u8], time: &[u8]| {
            let mut md = libmqm_default::MQMD_DEFAULT;
            for (i, b) in date.iter().enumerate() {
                md.PutDate[i] = *b as mq::MQCHAR;
            }
            for (i, b) in time.iter().enumerate() {
                md.PutTime[i] = *b as mq::MQCHAR;
            }
            Message::new("Q", md, Vec::new()).put_time()
        };
        // "202é126": 8 bytes, but byte 4 is inside the é.
        assert_eq!(with(b"202\xC3\xA9126", b"10443012"), "202\u{e9}126 10443012");
        assert_eq!(with(b"2026AB26", b"10443012"), "2026AB26 10443012");
        assert_eq!(with(b"20261126", b"10443012"), "2026-11-26T10:44:30.12Z");
    }

    #[test]
    fn a_dropped_descriptor_is_reused_with_the_new_fields_on_the_same_thread() {
        let mut first = libmqm_default::MQMD_DEFAULT;
        first.MsgId[0] = 1;
        first.BackoutCount = 4;
        let m = Message::new("Q", first, b"x".to_vec());
        let copy = m.clone();
        assert!(!std::ptr::eq(m.md(), copy.md()), "a clone has its own descriptor");
        let used: *const mq::MQMD = m.md();
        drop(m);
        assert_eq!(copy.backout_count(), 4, "the clone is not touched by the drop");

        let mut second = libmqm_default::MQMD_DEFAULT;
        second.MsgId[0] = 2;
        let n = Message::new("Q", second, b"y".to_vec());
        assert!(std::ptr::eq(n.md(), used), "the freed descriptor was taken again");
        assert_eq!(n.msg_id()[0], 2);
        assert_eq!(n.backout_count(), 0, "nothing of the old message is left");
    }

    #[test]
    fn a_thread_keeps_at_most_its_share_of_spare_descriptors() {
        std::thread::spawn(|| {
            let batch: Vec<_> = (0..SPARE_DESCRIPTORS + 10)
                .map(|_| Message::new("Q", libmqm_default::MQMD_DEFAULT, Vec::new()))
                .collect();
            drop(batch);
            assert_eq!(SPARE.with(|spare| spare.borrow().len()), SPARE_DESCRIPTORS);
            let again: Vec<_> = (0..SPARE_DESCRIPTORS)
                .map(|_| Message::new("Q", libmqm_default::MQMD_DEFAULT, Vec::new()))
                .collect();
            assert_eq!(SPARE.with(|spare| spare.borrow().len()), 0, "all of them were reused");
            drop(again);
        })
        .join()
        .expect("thread");
    }
}
