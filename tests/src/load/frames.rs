//! Pre-built message frames. A frame is laid out once per conversation; each send only overwrites
//! fixed-width digits in place, so the generator spends no time on JSON while the clock runs.
//!
//! The text of every message is exactly [`TEXT_BYTES`] long:
//! `SSSSSSSSSS AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB xxxx…`, where `S` is the sequence number within the
//! conversation, `A` the contact's send time and `B` the counsellor's send time, both in nanoseconds
//! since the run's [`Clock`] started. Counsellors echo the text with `B` filled in, so every receiver
//! can compute its leg's latency without any shared state.

use std::time::Instant;

/// Bytes of text in every message (the issue's 200 B messages).
pub const TEXT_BYTES: usize = 200;
const SEQ: usize = 10;
const TIME: usize = 16;
const ID_SEQ: usize = 12;

/// The run's monotonic clock, shared by every task of the generator.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Nanoseconds since the clock started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn origin(&self) -> Instant {
        self.0
    }
}

/// What a received text carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    /// Contact's send time (ns on the run's clock).
    pub sent_ns: u64,
    /// Counsellor's send time (ns), 0 before the counsellor echoed it.
    pub echoed_ns: u64,
}

impl Stamp {
    /// Reads the stamp at the start of a message text; `None` for texts the generator did not send.
    pub fn read(text: &str) -> Option<Stamp> {
        let b = text.as_bytes();
        if b.len() < SEQ + 2 * TIME + 3 {
            return None;
        }
        Some(Stamp {
            seq: digits(&b[..SEQ])?,
            sent_ns: digits(&b[SEQ + 1..SEQ + 1 + TIME])?,
            echoed_ns: digits(&b[SEQ + 2 + TIME..SEQ + 2 + 2 * TIME])?,
        })
    }
}

fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

fn put(b: &mut [u8], mut n: u64) {
    for c in b.iter_mut().rev() {
        *c = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// One message frame, laid out once and stamped before each send.
#[derive(Clone)]
pub struct Frame {
    bytes: Vec<u8>,
    text_at: usize,
    id_seq_at: usize,
}

impl Frame {
    /// A contact's `message` frame (also what the floor's clients send).
    pub fn contact(conv_index: usize) -> Frame {
        Self::build("", conv_index, 4)
    }

    /// A counsellor's `message` frame in `conversation`.
    pub fn staff(conversation: &str, conv_index: usize) -> Frame {
        Self::build(conversation, conv_index, 9)
    }

    fn build(conversation: &str, conv_index: usize, kind: u8) -> Frame {
        let mut text = format!("{:0SEQ$} {:0TIME$} {:0TIME$} ", 0, 0, 0);
        text.extend(std::iter::repeat_n('x', TEXT_BYTES - text.len()));
        let conv = if conversation.is_empty() {
            String::new()
        } else {
            format!(r#""conversation":"{conversation}","#)
        };
        let head = format!(r#"{{"type":"message",{conv}"text":""#);
        let id_head = format!(
            r#"","client_msg_id":"{:08}-0000-4000-{kind}000-"#,
            conv_index % 100_000_000
        );
        let s = format!(r#"{head}{text}{id_head}{:0ID_SEQ$}"}}"#, 0);
        Frame {
            text_at: head.len(),
            id_seq_at: head.len() + text.len() + id_head.len(),
            bytes: s.into_bytes(),
        }
    }

    /// Writes `stamp` into the frame and returns its text, ready to send.
    pub fn stamp(&mut self, stamp: Stamp) -> &str {
        let t = self.text_at;
        put(&mut self.bytes[t..t + SEQ], stamp.seq);
        put(
            &mut self.bytes[t + SEQ + 1..t + SEQ + 1 + TIME],
            stamp.sent_ns,
        );
        put(
            &mut self.bytes[t + SEQ + 2 + TIME..t + SEQ + 2 + 2 * TIME],
            stamp.echoed_ns,
        );
        let i = self.id_seq_at;
        put(&mut self.bytes[i..i + ID_SEQ], stamp.seq);
        // Only ASCII digits were written over ASCII digits, so the bytes stay UTF-8.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_frame_is_json_and_reads_back() {
        let mut f = Frame::staff("c-1", 7);
        let stamp = Stamp {
            seq: 42,
            sent_ns: 123_456_789,
            echoed_ns: 987,
        };
        let text = f.stamp(stamp).to_owned();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["conversation"], "c-1");
        assert_eq!(v["client_msg_id"], "00000007-0000-4000-9000-000000000042");
        let body = v["text"].as_str().unwrap();
        assert_eq!(body.len(), TEXT_BYTES);
        assert_eq!(Stamp::read(body), Some(stamp));
    }
}
