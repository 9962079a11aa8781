//! The words of the domain: a conversation's states, channels and urgency classes, and the ids that
//! name conversations and messages. Plain values, no I/O.

use serde::{Deserialize, Serialize};

/// How urgently a conversation needs a counsellor. Ordered: `Low < Normal < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    Normal,
    High,
    Critical,
}

impl Urgency {
    pub const ALL: [Urgency; 4] = [
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Urgency> {
        Urgency::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// 0 for critical … 3 for low: the queue serves the smallest rank first.
    pub fn rank(self) -> u8 {
        3 - self as u8
    }
}

/// A conversation as staff see it: no address, no text, only what routing shows.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub conversation: String,
    pub alias: String,
    pub channel: String,
    pub lang: String,
    pub urgency: Urgency,
    pub skills: Vec<String>,
    pub state: String,
    pub waited_s: u64,
    /// Requirements dropped after a long wait: `topic`, then `language`; staff are told.
    pub relaxed: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counsellor: Option<String>,
}

impl ConversationView {
    pub(crate) fn from_record(
        id: &str,
        rec: &crate::store::ConversationRecord,
        now_ms: i64,
    ) -> ConversationView {
        let queued_at = rec.int("queued_at").unwrap_or(now_ms);
        let waited_until = match rec.state() {
            "queued" | "offered" => now_ms,
            _ => rec.int("assigned_at").unwrap_or(now_ms),
        };
        let relaxed = match rec.get("relaxed") {
            Some("1") => vec!["topic"],
            Some("2") => vec!["topic", "language"],
            _ => vec![],
        };
        ConversationView {
            conversation: id.to_owned(),
            alias: rec.get("alias").unwrap_or("").to_owned(),
            channel: rec.get("channel").unwrap_or("").to_owned(),
            lang: rec.get("lang").unwrap_or("").to_owned(),
            urgency: rec
                .get("urgency")
                .and_then(Urgency::parse)
                .unwrap_or(Urgency::Normal),
            skills: split_list(rec.get("skills").unwrap_or("")),
            state: rec.state().to_owned(),
            waited_s: u64::try_from((waited_until - queued_at) / 1000).unwrap_or(0),
            relaxed,
            counsellor: rec.get("counsellor").map(String::from),
        }
    }
}

/// A decrypted message, in memory only.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    /// `contact`, `counsellor`, `supervisor` or `system`.
    pub from: String,
    pub text: String,
    #[serde(skip)]
    pub ts_ms: i64,
    /// A supervisor's note for the counsellor only.
    #[serde(skip)]
    pub whisper: bool,
}

impl Message {
    /// The time as RFC 3339, as every frame carries it.
    pub fn ts(&self) -> String {
        rfc3339(self.ts_ms)
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Milliseconds since the epoch, from this node's clock.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A comma list as stored in Redis, as a vector.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// A fresh random id of 128 bits in lowercase hex: not derived from anything.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random token of 256 bits, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token in hex: what Redis keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A client message id: 1–64 characters of letters, digits, `-` and `_` (a UUID fits).
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
