//! Routing events: what a routing script changed, published on Redis pub/sub so every node can tell
//! the sockets it holds, and returned to the node that ran the script so that node alone counts it
//! in the metrics and logs it (one event, one log line, one metric).
//!
//! Events carry ids, pseudonymous aliases and sealed text only; never clear text or an address.

use std::collections::HashMap;

use serde::Deserialize;

use crate::conversation::Urgency;

/// One change of routing state.
///
/// Parsed through [`Flat`]: serde's internally tagged enums buffer every field of an event
/// before they know its kind, then copy each one again into the variant. One flat pass takes a
/// quarter less time, and every node parses every event, the node that ran the script twice.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Flat")]
pub enum Event {
    /// A conversation joined the queue.
    Queued { conv: String, channel: String },
    /// A conversation is offered to a counsellor until `expires_ms`; `view` holds the fields of
    /// the conversation the counsellor is shown (empty when published by an older node).
    Offer {
        conv: String,
        agent: String,
        expires_ms: i64,
        view: HashMap<String, String>,
    },
    /// An offer ended: `accepted`, `declined`, `timeout` or `ended`.
    Revoked {
        conv: String,
        agent: String,
        reason: String,
    },
    /// A conversation is now the counsellor's.
    Assigned {
        conv: String,
        agent: String,
        display: String,
        wait_ms: i64,
        urgency: Urgency,
        channel: String,
        /// The first assignment of the conversation (not after a transfer).
        first: bool,
    },
    /// A counsellor handed the conversation on, or lost it (`lost`: their connection was gone).
    Transferred {
        conv: String,
        agent: String,
        lost: bool,
    },
    /// A conversation is over.
    Ended {
        conv: String,
        agent: Option<String>,
        reason: String,
        outcome: String,
        channel: String,
        answered: bool,
    },
    /// A message was stored; `c` is its sealed text, `s` its sequence number.
    Msg {
        conv: String,
        id: String,
        f: String,
        s: u64,
        c: String,
        t: i64,
        w: bool,
        agent: Option<String>,
        channel: String,
    },
    /// A counsellor's status changed (also when the router sets them away or offline).
    Status { agent: String, status: String },
    /// Someone is typing (never stored; published only).
    Typing {
        conv: String,
        f: String,
        agent: Option<String>,
    },
    /// A conversation was crypto-shredded (retention or on request): every node drops its data key
    /// from memory, so nothing of it can be opened again anywhere.
    Erased { conv: String },
    /// A conversation's urgency changed.
    Urgency {
        conv: String,
        agent: Option<String>,
        urgency: Urgency,
        category: String,
    },
}

impl Event {
    /// Parses one published event; `None` (and a warning) for anything unexpected, so a newer node
    /// publishing a new kind of event never breaks an older one.
    pub fn parse(json: &str) -> Option<Event> {
        match serde_json::from_str(json) {
            Ok(ev) => Some(ev),
            Err(err) => {
                tracing::warn!(%err, "ignoring a routing event this node does not understand");
                None
            }
        }
    }

    /// The conversation the event is about, if any.
    pub fn conversation(&self) -> Option<&str> {
        match self {
            Event::Queued { conv, .. }
            | Event::Offer { conv, .. }
            | Event::Revoked { conv, .. }
            | Event::Assigned { conv, .. }
            | Event::Transferred { conv, .. }
            | Event::Ended { conv, .. }
            | Event::Msg { conv, .. }
            | Event::Typing { conv, .. }
            | Event::Erased { conv }
            | Event::Urgency { conv, .. } => Some(conv),
            Event::Status { .. } => None,
        }
    }
}

/// Every field any event has, by the name the scripts give it; `k` says which apply.
#[derive(Deserialize)]
struct Flat {
    k: String,
    conv: Option<String>,
    agent: Option<String>,
    channel: Option<String>,
    reason: Option<String>,
    expires_ms: Option<i64>,
    #[serde(default)]
    view: HashMap<String, String>,
    display: Option<String>,
    wait_ms: Option<i64>,
    urgency: Option<Urgency>,
    #[serde(default)]
    first: bool,
    #[serde(default)]
    lost: bool,
    outcome: Option<String>,
    answered: Option<bool>,
    id: Option<String>,
    f: Option<String>,
    s: Option<u64>,
    c: Option<String>,
    t: Option<i64>,
    w: Option<bool>,
    status: Option<String>,
    #[serde(default)]
    category: String,
}

/// A field the event's kind requires.
fn needs<T>(value: Option<T>, k: &str, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("a `{k}` event without `{field}`"))
}

impl TryFrom<Flat> for Event {
    type Error = String;

    fn try_from(e: Flat) -> Result<Event, String> {
        let k = e.k.as_str();
        Ok(match k {
            "queued" => Event::Queued {
                conv: needs(e.conv, k, "conv")?,
                channel: needs(e.channel, k, "channel")?,
            },
            "offer" => Event::Offer {
                conv: needs(e.conv, k, "conv")?,
                agent: needs(e.agent, k, "agent")?,
                expires_ms: needs(e.expires_ms, k, "expires_ms")?,
                view: e.view,
            },
            "revoked" => Event::Revoked {
                conv: needs(e.conv, k, "conv")?,
                agent: needs(e.agent, k, "agent")?,
                reason: needs(e.reason, k, "reason")?,
            },
            "assigned" => Event::Assigned {
                conv: needs(e.conv, k, "conv")?,
                agent: needs(e.agent, k, "agent")?,
                display: needs(e.display, k, "display")?,
                wait_ms: needs(e.wait_ms, k, "wait_ms")?,
                urgency: needs(e.urgency, k, "urgency")?,
                channel: needs(e.channel, k, "channel")?,
                first: e.first,
            },
            "transferred" => Event::Transferred {
                conv: needs(e.conv, k, "conv")?,
                agent: needs(e.agent, k, "agent")?,
                lost: e.lost,
            },
            "ended" => Event::Ended {
                conv: needs(e.conv, k, "conv")?,
                agent: e.agent,
                reason: needs(e.reason, k, "reason")?,
                outcome: needs(e.outcome, k, "outcome")?,
                channel: needs(e.channel, k, "channel")?,
                answered: needs(e.answered, k, "answered")?,
            },
            "msg" => Event::Msg {
                conv: needs(e.conv, k, "conv")?,
                id: needs(e.id, k, "id")?,
                f: needs(e.f, k, "f")?,
                s: needs(e.s, k, "s")?,
                c: needs(e.c, k, "c")?,
                t: needs(e.t, k, "t")?,
                w: needs(e.w, k, "w")?,
                agent: e.agent,
                channel: needs(e.channel, k, "channel")?,
            },
            "status" => Event::Status {
                agent: needs(e.agent, k, "agent")?,
                status: needs(e.status, k, "status")?,
            },
            "typing" => Event::Typing {
                conv: needs(e.conv, k, "conv")?,
                f: needs(e.f, k, "f")?,
                agent: e.agent,
            },
            "erased" => Event::Erased {
                conv: needs(e.conv, k, "conv")?,
            },
            "urgency" => Event::Urgency {
                conv: needs(e.conv, k, "conv")?,
                agent: e.agent,
                urgency: needs(e.urgency, k, "urgency")?,
                category: e.category,
            },
            other => return Err(format!("an event of unknown kind `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_parses_with_its_optional_fields_defaulted() {
        let msg = r#"{"k":"msg","conv":"c1","id":"1-0","f":"contact","s":3,"c":"AAEC","t":5,"w":false,"channel":"webchat"}"#;
        assert_eq!(
            Event::parse(msg),
            Some(Event::Msg {
                conv: "c1".into(),
                id: "1-0".into(),
                f: "contact".into(),
                s: 3,
                c: "AAEC".into(),
                t: 5,
                w: false,
                agent: None,
                channel: "webchat".into(),
            })
        );
        let offer = r#"{"k":"offer","conv":"c1","agent":"ana","expires_ms":9,"view":{"alias":"Blue Otter"}}"#;
        let Some(Event::Offer { view, .. }) = Event::parse(offer) else {
            panic!("an offer parses");
        };
        assert_eq!(view.get("alias").map(String::as_str), Some("Blue Otter"));
        let assigned = r#"{"k":"assigned","conv":"c1","agent":"ana","display":"Ana","wait_ms":1,"urgency":"high","channel":"sms"}"#;
        assert!(matches!(
            Event::parse(assigned),
            Some(Event::Assigned {
                first: false,
                urgency: Urgency::High,
                ..
            })
        ));
        let urgency = r#"{"k":"urgency","conv":"c1","urgency":"critical"}"#;
        assert!(matches!(
            Event::parse(urgency),
            Some(Event::Urgency { agent: None, category, .. }) if category.is_empty()
        ));
    }

    #[test]
    fn a_missing_field_an_unknown_kind_or_bad_json_is_ignored() {
        // `s` missing: not a message this node could place.
        let msg = r#"{"k":"msg","conv":"c1","id":"1-0","f":"contact","c":"AAEC","t":5,"w":false,"channel":"webchat"}"#;
        assert_eq!(Event::parse(msg), None);
        assert_eq!(Event::parse(r#"{"k":"later","conv":"c1"}"#), None);
        assert_eq!(Event::parse(r#"{"conv":"c1"}"#), None);
        assert_eq!(Event::parse("not json"), None);
    }

    #[test]
    fn fields_a_newer_node_adds_are_ignored() {
        let erased = r#"{"k":"erased","conv":"c1","node":"n2"}"#;
        assert_eq!(
            Event::parse(erased),
            Some(Event::Erased { conv: "c1".into() })
        );
    }
}
