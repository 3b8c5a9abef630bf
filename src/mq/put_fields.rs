//! The message descriptor (MQMD) of a new message from caller-given fields: format,
//! correlation id, reply-to queue, priority, persistence. Everything else keeps MQ's
//! defaults, so MQ assigns the message id. Checked before any MQ call.

use libmqm_sys as mq;

use super::message::Message;

/// What the caller may set on a put.
#[derive(Debug, Clone, Default)]
pub struct PutFields {
    /// MQMD Format, at most 8 characters (`MQSTR` for text).
    pub format: Option<String>,
    /// CorrelId as hex, at most 24 bytes.
    pub correl_id_hex: Option<String>,
    /// ReplyToQ, at most 48 characters.
    pub reply_to: Option<String>,
    /// Priority 0..=9.
    pub priority: Option<i32>,
    /// Persistent or not; default as the queue defines.
    pub persistent: Option<bool>,
}

fn copy_text(field: &mut [mq::MQCHAR], text: &str, name: &str) -> Result<(), String> {
    if text.len() > field.len() || !text.is_ascii() {
        return Err(format!("{name} must be at most {} ASCII characters", field.len()));
    }
    for (i, slot) in field.iter_mut().enumerate() {
        // MQCHAR is a C char; blank-padded like every MQ name field.
        *slot = text.as_bytes().get(i).copied().unwrap_or(b' ') as mq::MQCHAR;
    }
    Ok(())
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A message for `queue` with these fields; `Err` names the field that is wrong.
///
/// # Errors
/// A message naming the argument (`correl_id`, `format`, `reply_to`, `priority`).
pub fn message(queue: &str, fields: &PutFields) -> Result<Message, String> {
    let mut md = libmqm_default::MQMD_DEFAULT;
    if let Some(f) = &fields.format {
        copy_text(&mut md.Format, f, "format")?;
    }
    if let Some(r) = &fields.reply_to {
        copy_text(&mut md.ReplyToQ, r, "reply_to")?;
    }
    if let Some(hex) = &fields.correl_id_hex {
        let bytes = parse_hex(hex)
            .filter(|b| b.len() <= 24)
            .ok_or_else(|| "correl_id must be hex of at most 24 bytes (48 hex digits)".to_owned())?;
        md.CorrelId = [0; 24];
        md.CorrelId[..bytes.len()].copy_from_slice(&bytes);
    }
    if let Some(p) = fields.priority {
        if !(0..=9).contains(&p) {
            return Err("priority must be 0..=9".into());
        }
        md.Priority = p;
    }
    if let Some(p) = fields.persistent {
        md.Persistence = if p {
            mq::MQPER_PERSISTENT
        } else {
            mq::MQPER_NOT_PERSISTENT
        };
    }
    Ok(Message::new(queue, md, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_in_the_descriptor() {
        let m = message(
            "Q",
            &PutFields {
                format: Some("MQSTR".into()),
                correl_id_hex: Some("abcd".into()),
                reply_to: Some("REPLY.Q".into()),
                priority: Some(7),
                persistent: Some(true),
            },
        )
        .unwrap();
        assert_eq!(m.format(), "MQSTR");
        assert!(m.correl_id_hex().starts_with("abcd00"));
        assert_eq!(m.reply_to_queue(), "REPLY.Q");
        assert_eq!(m.priority(), 7);
        assert!(m.persistent());
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = |f: PutFields| message("Q", &f).unwrap_err();
        assert!(
            bad(PutFields {
                correl_id_hex: Some("xyz".into()),
                ..Default::default()
            })
            .contains("correl_id")
        );
        assert!(
            bad(PutFields {
                format: Some("TOOLONGFMT".into()),
                ..Default::default()
            })
            .contains("format")
        );
        assert!(
            bad(PutFields {
                priority: Some(10),
                ..Default::default()
            })
            .contains("priority")
        );
    }
}
