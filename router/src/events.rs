//! Routing events: what a routing script changed, published on Redis pub/sub so every node can tell
//! the sockets it holds, and returned to the node that ran the script so that node alone counts it
//! in the metrics and logs it (one event, one log line, one metric).
//!
//! Events carry ids, pseudonymous aliases and sealed text only; never clear text or an address.

use std::collections::HashMap;

use serde::Deserialize;

use crate::conversation::Urgency;

/// One change of routing state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    /// A conversation joined the queue.
    Queued { conv: String, channel: String },
    /// A conversation is offered to a counsellor until `expires_ms`; `view` holds the fields of
    /// the conversation the counsellor is shown (empty when published by an older node).
    Offer {
        conv: String,
        agent: String,
        expires_ms: i64,
        #[serde(default)]
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
        #[serde(default)]
        first: bool,
    },
    /// A counsellor handed the conversation on, or lost it (`lost`: their connection was gone).
    Transferred {
        conv: String,
        agent: String,
        #[serde(default)]
        lost: bool,
    },
    /// A conversation is over.
    Ended {
        conv: String,
        #[serde(default)]
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
        #[serde(default)]
        agent: Option<String>,
        channel: String,
        #[serde(default)]
        first_response_ms: Option<i64>,
    },
    /// A counsellor's status changed (also when the router sets them away or offline).
    Status { agent: String, status: String },
    /// Someone is typing (never stored; published only).
    Typing {
        conv: String,
        f: String,
        #[serde(default)]
        agent: Option<String>,
    },
    /// A conversation was crypto-shredded (retention or on request): every node drops its data key
    /// from memory, so nothing of it can be opened again anywhere.
    Erased { conv: String },
    /// A conversation's urgency changed.
    Urgency {
        conv: String,
        #[serde(default)]
        agent: Option<String>,
        urgency: Urgency,
        #[serde(default)]
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
