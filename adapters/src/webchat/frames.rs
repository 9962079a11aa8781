//! The frames of `/ws/chat` (CONTRACT.md section 4): parsing what a contact sends, with an error
//! code for everything refused, and building what the gateway sends.

pub use helpline_router::conversation::valid_client_id;
use helpline_router::Message;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A frame from the contact.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContactFrame {
    Start {
        lang: String,
        #[serde(default)]
        topic: Option<String>,
    },
    Resume {
        token: String,
        #[serde(default)]
        last_seen: Option<String>,
    },
    Message {
        text: String,
        client_msg_id: String,
    },
    Typing {},
    End {},
    /// Erase the conversation now (answered with `forgotten`, then the socket closes): this
    /// socket's conversation, or, as the first frame, the one of `token` (also after it ended).
    Forget {
        #[serde(default)]
        token: Option<String>,
    },
}

const TYPES: [&str; 6] = ["start", "resume", "message", "typing", "end", "forget"];

/// Why a frame was refused: the `code` and `message` of an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Parses one text frame, nesting at most `max_depth` levels (`limits.json_depth`); the refusal
/// says what was wrong and how to send it right. The fuzz target `contact_frame` calls this.
pub fn parse(text: &str, max_depth: usize) -> Result<ContactFrame, Refusal> {
    crate::nesting::check(text.as_bytes(), max_depth)
        .map_err(|e| Refusal::new("too_deep", e.to_string()))?;
    let value: Value = serde_json::from_str(text).map_err(|_| {
        Refusal::new(
            "bad_frame",
            "a frame must be one JSON object with a \"type\"",
        )
    })?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Refusal::new(
                "bad_frame",
                "a frame must be one JSON object with a \"type\"",
            )
        })?;
    let kind = kind.as_str();
    if !TYPES.contains(&kind) {
        return Err(Refusal::new(
            "unknown_type",
            format!("unknown frame type; use one of {}", TYPES.join(", ")),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        // serde's message names the missing or mistyped field, never the frame's content.
        let why = e.to_string();
        let field = why.split('`').nth(1).unwrap_or("a field");
        Refusal::new("bad_frame", format!("{kind} frame: check {field}"))
    })
}

pub fn started(conversation: &str, token: &str) -> String {
    json!({"type": "started", "conversation": conversation, "token": token}).to_string()
}

pub fn resumed(conversation: &str) -> String {
    json!({"type": "resumed", "conversation": conversation}).to_string()
}

pub fn queued(position: Option<u64>, estimated_wait_s: Option<u64>) -> String {
    json!({"type": "queued", "position": position, "estimated_wait_s": estimated_wait_s})
        .to_string()
}

pub fn assigned(counsellor: &str) -> String {
    json!({"type": "assigned", "counsellor": counsellor}).to_string()
}

/// The two frames of every relayed message are written from borrowed fields, without building a
/// `Value` first: these are the hot path of the relay.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Relayed<'a> {
    Ack {
        client_msg_id: &'a str,
        id: &'a str,
    },
    Message {
        id: &'a str,
        from: &'a str,
        text: &'a str,
        ts: String,
    },
}

impl Relayed<'_> {
    fn to_frame(&self) -> String {
        // Serializing plain strings into a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Confirms that the message `client_msg_id` is stored, as `id`; staff acks are the same frame.
pub fn ack(client_msg_id: &str, id: &str) -> String {
    Relayed::Ack { client_msg_id, id }.to_frame()
}

pub fn message(m: &Message) -> String {
    Relayed::Message {
        id: &m.id,
        from: &m.from,
        text: &m.text,
        ts: m.ts(),
    }
    .to_frame()
}

pub fn notice(code: &str, text: &str) -> String {
    json!({"type": "notice", "code": code, "text": text}).to_string()
}

pub fn typing() -> String {
    json!({"type": "typing"}).to_string()
}

pub fn ended(reason: &str) -> String {
    json!({"type": "ended", "reason": reason}).to_string()
}

/// The conversation is erased: nothing of it is left to read.
pub fn forgotten() -> String {
    json!({"type": "forgotten"}).to_string()
}

pub fn error(r: &Refusal, client_msg_id: Option<&str>) -> String {
    let mut v = json!({"type": "error", "code": r.code, "message": r.message});
    if let Some(id) = client_msg_id {
        v["client_msg_id"] = json!(id);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_frames_carry_the_contract_fields() {
        let ack: Value = serde_json::from_str(&ack("c-1", "17-0")).unwrap();
        assert_eq!(
            ack,
            json!({"type": "ack", "client_msg_id": "c-1", "id": "17-0"})
        );
        let m = Message {
            id: "18-0".into(),
            from: "counsellor".into(),
            text: "are you \"safe\"?".into(),
            ts_ms: 1_764_400_000_123,
            whisper: false,
        };
        let frame: Value = serde_json::from_str(&message(&m)).unwrap();
        assert_eq!(
            frame,
            json!({"type": "message", "id": "18-0", "from": "counsellor",
                   "text": "are you \"safe\"?", "ts": m.ts()})
        );
    }

    #[test]
    fn parses_every_contact_frame() {
        assert!(matches!(
            parse(r#"{"type":"start","lang":"ro"}"#, 16),
            Ok(ContactFrame::Start { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"resume","token":"t","last_seen":"1-0"}"#, 16),
            Ok(ContactFrame::Resume { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"message","text":"hi","client_msg_id":"a"}"#, 16),
            Ok(ContactFrame::Message { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"typing"}"#, 16),
            Ok(ContactFrame::Typing {})
        ));
        assert!(matches!(
            parse(r#"{"type":"end"}"#, 16),
            Ok(ContactFrame::End {})
        ));
        assert!(matches!(
            parse(r#"{"type":"forget"}"#, 16),
            Ok(ContactFrame::Forget { token: None })
        ));
        assert!(matches!(
            parse(r#"{"type":"forget","token":"t"}"#, 16),
            Ok(ContactFrame::Forget { token: Some(_) })
        ));
    }

    #[test]
    fn refusals_have_codes_and_never_echo_content() {
        assert_eq!(parse("not json", 16).unwrap_err().code, "bad_frame");
        assert_eq!(parse("[1,2]", 16).unwrap_err().code, "bad_frame");
        assert_eq!(
            parse(r#"{"type":"photo"}"#, 16).unwrap_err().code,
            "unknown_type"
        );
        let r = parse(
            r#"{"type":"message","text":42,"client_msg_id":"CANARY"}"#,
            16,
        )
        .unwrap_err();
        assert_eq!(r.code, "bad_frame");
        assert!(!r.message.contains("CANARY"));
        let r = parse(r#"{"type":"message","text":"CANARY-TEXT"}"#, 16).unwrap_err();
        assert!(r.message.contains("client_msg_id"), "{}", r.message);
        assert!(!r.message.contains("CANARY"));
    }

    #[test]
    fn client_ids() {
        assert!(valid_client_id("3f2b8c1e-0d5a-4e7b-9c3a-1b2c3d4e5f60"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a b"));
        assert!(!valid_client_id(&"x".repeat(65)));
    }
}
