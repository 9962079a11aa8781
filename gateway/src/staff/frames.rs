//! The frames of `/ws/agent` (CONTRACT.md section 5): what staff send, and the frames the gateway
//! builds for them. No frame carries a phone number, a Telegram id, a name or an IP address.

use helpline_router::{ConversationView, Message};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A frame from a staff member.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StaffFrame {
    Status {
        status: String,
    },
    Accept {
        conversation: String,
    },
    Decline {
        conversation: String,
    },
    Message {
        conversation: String,
        text: String,
        client_msg_id: String,
    },
    Urgency {
        conversation: String,
        level: String,
    },
    Transfer {
        conversation: String,
        #[serde(default)]
        skills: Option<Vec<String>>,
        #[serde(default)]
        counsellor: Option<String>,
    },
    Close {
        conversation: String,
        outcome: String,
        #[serde(default)]
        tags: Vec<String>,
    },
    Monitor {
        conversation: String,
    },
    Whisper {
        conversation: String,
        text: String,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    Typing {
        conversation: String,
    },
}

const TYPES: [&str; 10] = [
    "status", "accept", "decline", "message", "urgency", "transfer", "close", "monitor", "whisper",
    "typing",
];

/// Parses a staff frame, nesting at most `max_depth` levels (`limits.json_depth`), into (code,
/// message) on refusal; the message never echoes content. The fuzz target `staff_frame` calls this.
pub fn parse(text: &str, max_depth: usize) -> Result<StaffFrame, (&'static str, String)> {
    helpline_adapters::nesting::check(text.as_bytes(), max_depth)
        .map_err(|e| ("too_deep", e.to_string()))?;
    let value: Value = serde_json::from_str(text).map_err(|_| {
        (
            "bad_frame",
            "a frame must be one JSON object with a \"type\"".to_owned(),
        )
    })?;
    let kind = value.get("type").and_then(Value::as_str).map(str::to_owned);
    let Some(kind) = kind else {
        return Err((
            "bad_frame",
            "a frame must be one JSON object with a \"type\"".into(),
        ));
    };
    if !TYPES.contains(&kind.as_str()) {
        return Err((
            "unknown_type",
            format!("unknown frame type; use one of {}", TYPES.join(", ")),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        let why = e.to_string();
        let field = why.split('`').nth(1).unwrap_or("its fields");
        ("bad_frame", format!("{kind} frame: check {field}"))
    })
}

/// A message as staff see it: within a conversation's history (no `type`), or as a frame of its
/// own, written from borrowed fields without building a `Value` (the hot path of the relay).
#[derive(Serialize)]
struct StaffMessage<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    conversation: &'a str,
    id: &'a str,
    from: &'a str,
    text: &'a str,
    ts: String,
    whisper: bool,
}

impl<'a> StaffMessage<'a> {
    fn new(kind: Option<&'static str>, conv: &'a str, m: &'a Message) -> Self {
        let from = if m.whisper { "supervisor" } else { &m.from };
        StaffMessage {
            kind,
            conversation: conv,
            id: &m.id,
            from,
            text: &m.text,
            ts: m.ts(),
            whisper: m.whisper,
        }
    }
}

pub fn message_json(conv: &str, m: &Message) -> Value {
    // Plain strings and a bool always serialize.
    serde_json::to_value(StaffMessage::new(None, conv, m)).unwrap_or_default()
}

pub fn message(conv: &str, m: &Message) -> String {
    serde_json::to_string(&StaffMessage::new(Some("message"), conv, m)).unwrap_or_default()
}

/// A conversation with its history (for `hello`, `assigned` and `monitoring`).
pub fn conversation_json(view: &ConversationView, history: &[Message]) -> Value {
    let history: Vec<Value> = history
        .iter()
        .map(|m| message_json(&view.conversation, m))
        .collect();
    json!({
        "conversation": view.conversation,
        "alias": view.alias,
        "channel": view.channel,
        "lang": view.lang,
        "urgency": view.urgency,
        "skills": view.skills,
        "relaxed": view.relaxed,
        "history": history,
    })
}

pub fn with_type(kind: &str, mut v: Value) -> String {
    v["type"] = json!(kind);
    v.to_string()
}

pub fn offer(view: &ConversationView, expires_in_s: u64) -> String {
    json!({
        "type": "offer",
        "conversation": view.conversation,
        "alias": view.alias,
        "channel": view.channel,
        "lang": view.lang,
        "urgency": view.urgency,
        "skills": view.skills,
        "relaxed": view.relaxed,
        "waited_s": view.waited_s,
        "expires_in_s": expires_in_s,
    })
    .to_string()
}

pub fn offer_revoked(conv: &str, reason: &str) -> String {
    json!({"type": "offer_revoked", "conversation": conv, "reason": reason}).to_string()
}

pub fn ended(conv: &str, reason: &str) -> String {
    json!({"type": "ended", "conversation": conv, "reason": reason}).to_string()
}

pub use helpline_adapters::webchat::frames::ack;

/// The `ack` of a counsellor's message to an SMS contact, with what it costs there (`sms`:
/// characters, encoding, segments; GSM-7 160/153, UCS-2 70/67), so replies can be kept short.
pub fn ack_sms(client_msg_id: &str, id: &str, text: &str) -> String {
    let size = helpline_adapters::sms::segments::count(text);
    let encoding = match size.encoding {
        helpline_adapters::sms::segments::Encoding::Gsm7 => "gsm7",
        helpline_adapters::sms::segments::Encoding::Ucs2 => "ucs2",
    };
    json!({
        "type": "ack", "client_msg_id": client_msg_id, "id": id,
        "sms": {"chars": size.chars, "encoding": encoding, "segments": size.segments},
    })
    .to_string()
}

pub fn queue(waiting: u64, longest_wait_s: u64) -> String {
    json!({"type": "queue", "waiting": waiting, "longest_wait_s": longest_wait_s}).to_string()
}

pub fn error(code: &str, message: &str, conv: Option<&str>) -> String {
    error_about(code, message, conv, None)
}

/// An error about a frame; `client_msg_id` names the refused message, so the console can mark it.
pub fn error_about(
    code: &str,
    message: &str,
    conv: Option<&str>,
    client_msg_id: Option<&str>,
) -> String {
    let mut v = json!({"type": "error", "code": code, "message": message});
    if let Some(c) = conv {
        v["conversation"] = json!(c);
    }
    if let Some(id) = client_msg_id {
        v["client_msg_id"] = json!(id);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_the_same_in_a_history_and_as_a_frame() {
        let m = Message {
            id: "18-0".into(),
            from: "counsellor".into(),
            text: "hello".into(),
            ts_ms: 1_764_400_000_123,
            whisper: true,
        };
        let mut expected = json!({"conversation": "c", "id": "18-0", "from": "supervisor",
            "text": "hello", "ts": m.ts(), "whisper": true});
        assert_eq!(message_json("c", &m), expected);
        expected["type"] = json!("message");
        let frame: Value = serde_json::from_str(&message("c", &m)).unwrap();
        assert_eq!(frame, expected);
    }

    #[test]
    fn parses_staff_frames_and_refuses_the_rest() {
        assert!(matches!(
            parse(r#"{"type":"status","status":"available"}"#, 16),
            Ok(StaffFrame::Status { .. })
        ));
        assert!(matches!(
            parse(
                r#"{"type":"transfer","conversation":"c","skills":["ru"]}"#,
                16
            ),
            Ok(StaffFrame::Transfer { .. })
        ));
        assert_eq!(parse("{", 16).unwrap_err().0, "bad_frame");
        assert_eq!(
            parse(r#"{"type":"sudo"}"#, 16).unwrap_err().0,
            "unknown_type"
        );
        assert_eq!(
            parse(r#"{"type":"accept"}"#, 16).unwrap_err().0,
            "bad_frame"
        );
    }
}
