//! Inbound `deliver_sm`: delivery receipts are recorded and go no further; a text (once all its
//! parts are here) goes into the channel's common path (`sms/inbound.rs`) like a Twilio webhook.
//!
//! De-duplication: SMPP 3.4 gives a `deliver_sm` no message id, so a text's id is the SMSC's
//! sequence number within one bind, with the sender and the text: a PDU the SMSC sends again on
//! the same link (its answer got lost) is stored once, through the same handled-id step as
//! Twilio's `MessageSid`. A long text's parts are kept in memory until the last one arrives; the
//! parts before it are answered when they are kept, the last one only after the whole is stored.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::codec::{self, Concat};
use super::pdu::{status, ShortMessage};
use super::Smpp;
use crate::sms::{Incoming, Sms};

/// `esm_class` bits 2–5: the message type; 0 is a text, anything else (0x04 an SMSC delivery
/// receipt, 0x08/0x10 acknowledgements, 0x20 an intermediate notification) is not.
const MESSAGE_TYPE: u8 = 0x3C;
/// How long the first parts of a long text wait for the rest.
const PARTS_KEPT_FOR: Duration = Duration::from_secs(600);
/// Long texts being assembled at once, so a flood of first parts cannot fill memory.
const MAX_PARTIAL: usize = 2_000;

/// Long texts being assembled, by sender, reference and part count. (No `Debug`: it holds
/// numbers and words.)
#[derive(Default)]
pub(super) struct Reassembly {
    texts: HashMap<(String, u16, u8), Partial>,
}

struct Partial {
    data_coding: u8,
    parts: Vec<Option<Vec<u8>>>,
    since: Instant,
}

impl Reassembly {
    /// Keeps one part; returns the whole user data (and its coding) when it completes the text.
    fn add(
        &mut self,
        from: &str,
        concat: Concat,
        data_coding: u8,
        data: &[u8],
    ) -> Option<(u8, Vec<u8>)> {
        let now = Instant::now();
        self.texts
            .retain(|_, p| now.duration_since(p.since) < PARTS_KEPT_FOR);
        let key = (from.to_owned(), concat.reference, concat.total);
        if !self.texts.contains_key(&key) && self.texts.len() >= MAX_PARTIAL {
            return None;
        }
        let partial = self.texts.entry(key.clone()).or_insert_with(|| Partial {
            data_coding,
            parts: vec![None; usize::from(concat.total)],
            since: now,
        });
        partial.parts[usize::from(concat.index) - 1] = Some(data.to_vec());
        if partial.parts.iter().any(Option::is_none) {
            return None;
        }
        let done = self.texts.remove(&key)?;
        let whole = done.parts.into_iter().flatten().flatten().collect();
        Some((done.data_coding, whole))
    }
}

impl Smpp {
    /// Handles one `deliver_sm`; returns the status to answer it with.
    pub(super) async fn on_deliver(
        &self,
        sms: &Sms,
        bound_ms: i64,
        sequence: u32,
        sm: ShortMessage,
    ) -> u32 {
        if sm.esm_class & MESSAGE_TYPE != 0 {
            record_receipt(&sm);
            return status::OK;
        }
        let from = contact_number(&sm);
        let (concat, data) = codec::split_udh(sm.esm_class, &sm.short_message);
        let (data_coding, data) = match concat {
            None => (sm.data_coding, data.to_vec()),
            Some(concat) => {
                let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
                match partial.add(&from, concat, sm.data_coding, data) {
                    Some(whole) => whole,
                    None => return status::OK,
                }
            }
        };
        let text = codec::decode(data_coding, &data);
        let incoming = Incoming {
            id: format!("smpp:{bound_ms}:{sequence}:{from}:{text}"),
            from,
            text,
            ..Incoming::default()
        };
        match sms.handle(incoming).await {
            Ok(()) => status::OK,
            Err(e) => {
                tracing::warn!(error = %e, "an SMS over SMPP could not be stored; the SMSC will retry");
                status::TEMPORARY_APP_ERROR
            }
        }
    }
}

/// The sender as the channel keeps numbers: `+` and digits when the SMSC says international.
fn contact_number(sm: &ShortMessage) -> String {
    let addr = sm.source.addr.trim();
    if sm.source.ton == 1 && !addr.starts_with('+') {
        format!("+{addr}")
    } else {
        addr.to_owned()
    }
}

/// A delivery receipt: only its final state is logged (never the number or the message id).
fn record_receipt(sm: &ShortMessage) {
    let text = codec::decode(sm.data_coding, &sm.short_message);
    let state = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("stat:"))
        .filter(|s| s.len() <= 8 && s.bytes().all(|b| b.is_ascii_uppercase()))
        .unwrap_or("unknown");
    tracing::info!(state, "SMPP delivery receipt");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(reference: u16, total: u8, index: u8) -> Concat {
        Concat {
            reference,
            total,
            index,
        }
    }

    #[test]
    fn parts_in_any_order_make_one_text_per_sender_and_reference() {
        let mut r = Reassembly::default();
        assert_eq!(r.add("+1", part(7, 2, 2), 8, &[0, 0x42]), None);
        assert_eq!(r.add("+2", part(7, 2, 1), 8, &[0, 0x43]), None);
        assert_eq!(
            r.add("+1", part(7, 2, 1), 8, &[0, 0x41]),
            Some((8, vec![0, 0x41, 0, 0x42]))
        );
        assert_eq!(r.texts.len(), 1);
        // A part sent again after its text completed starts a new one (and waits).
        assert_eq!(r.add("+1", part(7, 2, 1), 8, &[0, 0x41]), None);
    }

    #[test]
    fn receipts_and_numbers() {
        let mut sm = ShortMessage::default();
        sm.source.ton = 1;
        sm.source.addr = "37369100001".into();
        assert_eq!(contact_number(&sm), "+37369100001");
        sm.source.ton = 0;
        assert_eq!(contact_number(&sm), "37369100001");
    }
}
