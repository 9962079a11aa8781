//! The outbox of a channel without a socket (Telegram, SMS): the routing scripts write an entry for
//! everything such a contact must be sent, in the same atomic step as the change itself; each node
//! runs one sender per channel that claims entries through the stream's consumer group, opens them
//! here into an address and a text, and reports back once the provider accepted.
//!
//! Delivery guarantees, and the one window left:
//! - An entry is acknowledged (and deleted) only after the provider accepted it, so a crash before
//!   that loses nothing: the entries a stopped node held are taken over by the others once its
//!   heartbeat is [`DEAD_AFTER`] old (or at once after a graceful stop).
//! - A contact gets one conversation's entries in order: only the oldest undelivered entry of a
//!   conversation is sent, whichever node holds the next ones.
//! - Before a send the entry is marked `sending`, after the provider accepted it `sent`, then it
//!   is acknowledged. A node that takes over an entry marked `sent` only acknowledges it.
//! - The window: a node that dies (or is cut off from Redis) after the provider accepted a message
//!   but before `sent` was recorded leaves the entry marked `sending`; the node that takes it over
//!   cannot know whether it arrived (Telegram has no idempotency key), so it sends it again and
//!   counts it (`helpline_outbox_total{result="resent"}`): at least once, never lost.
//!
//! This module knows no channel protocol: it yields text and the address, and the adapter sends.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::RouterError;
use crate::store::{ConversationRecord, OutboxEntry, SendState};
use crate::vault::Purpose;
use crate::Router;

/// A sender node silent for this long is taken to be gone: its entries go to the others.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// An entry nobody has touched for this long is taken over whoever held it (a safety net for a
/// holder that never beat).
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

/// One channel's outbox as seen by this node's sender; clones are the same consumer.
#[derive(Clone)]
pub struct Outbox {
    router: Router,
    channel: String,
    /// This node's consumer name: random per process, so a restarted node is a new consumer and
    /// what the old one held is taken over through the heartbeat rule.
    me: String,
}

/// The connection an outbox's blocking reads use (never the shared one), made on first use and
/// again after a failure.
#[derive(Default)]
pub struct Reader(Option<crate::store::Connection>);

/// What an entry asks to send, opened.
#[derive(Debug, Clone)]
pub enum Body {
    /// A counsellor's message; `stored_ms` is when it was stored (for the relay-time metric).
    Message { text: String, stored_ms: i64 },
    /// A notice (a `config/notices` code) in the contact's language.
    Notice { code: String, text: String },
}

/// An entry ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub entry: String,
    pub conv: String,
    /// The contact's channel address (in memory only).
    pub address: String,
    pub lang: String,
    pub body: Body,
    /// The conversation's last entry: once it is delivered, the address is forgotten.
    pub last: bool,
    /// A node may already have handed it to the provider (it was marked `sending`).
    pub uncertain: bool,
}

/// What to do with a claimed entry.
#[derive(Debug)]
pub enum Prepared {
    Send(Box<Outgoing>),
    /// An earlier entry of the same conversation is not delivered yet: try again shortly.
    NotYet,
    /// The provider already accepted it (a node stopped before acknowledging): it was acknowledged.
    AlreadySent,
    /// It can never be sent (the conversation or its address is gone): it was removed.
    Dropped(&'static str),
}

impl Router {
    /// This node's sender view of `channel`'s outbox.
    pub fn outbox(&self, channel: &str) -> Outbox {
        let tag: [u8; 8] = rand::random();
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        Outbox {
            router: self.clone(),
            channel: channel.to_owned(),
            me: format!("node-{tag}"),
        }
    }
}

impl Outbox {
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Creates the stream and its group if needed.
    pub async fn join(&self) -> Result<(), RouterError> {
        let store = self.router.store();
        self.router
            .guarded("outbox", store.outbox_join(&self.channel))
            .await
    }

    /// New entries for this node, waiting up to `block` for some.
    pub async fn claim(
        &self,
        reader: &mut Reader,
        count: usize,
        block: Duration,
    ) -> Result<Vec<OutboxEntry>, RouterError> {
        let store = self.router.store().clone();
        let mut conn = match reader.0.take() {
            Some(c) => c,
            None => {
                self.router
                    .guarded("outbox", store.blocking_connection())
                    .await?
            }
        };
        let read = store.outbox_read_new(&mut conn, &self.channel, &self.me, count, block);
        let entries = self.router.guarded("outbox", read).await?;
        // Kept only after a successful read: a broken connection is made anew next time.
        reader.0 = Some(conn);
        Ok(entries)
    }

    /// Every entry this node holds (after it took some over).
    pub async fn held(&self, count: usize) -> Result<Vec<OutboxEntry>, RouterError> {
        let store = self.router.store();
        self.router
            .guarded(
                "outbox",
                store.outbox_read_mine(&self.channel, &self.me, count),
            )
            .await
    }

    /// The node's heartbeat; returns how many entries it took over from gone nodes.
    pub async fn beat(&self) -> Result<u64, RouterError> {
        let store = self.router.store();
        let beat = store.outbox_beat(&self.channel, &self.me, DEAD_AFTER, STUCK_AFTER);
        self.router.guarded("outbox", beat).await
    }

    /// A graceful stop: the other nodes take over what this one holds at once.
    pub async fn leave(&self) {
        let store = self.router.store();
        if let Err(e) = store.outbox_leave(&self.channel, &self.me).await {
            tracing::warn!(error = %e, "could not hand the outbox over before stopping");
        }
    }

    /// Checks an entry and opens it for sending (see [`Prepared`]).
    pub async fn prepare(&self, entry: &OutboxEntry) -> Result<Prepared, RouterError> {
        let store = self.router.store();
        let Some(conv) = entry.get("conv") else {
            self.discard(entry).await?;
            return Ok(Prepared::Dropped("an entry without a conversation"));
        };
        let head = store.outbox_head(&self.channel, conv);
        let head = self.router.guarded("outbox", head).await?;
        if head.as_deref().is_some_and(|h| h != entry.id) {
            return Ok(Prepared::NotYet);
        }
        let state = store.outbox_state(&self.channel, &entry.id);
        let state = self.router.guarded("outbox", state).await?;
        if state == Some(SendState::Sent) {
            self.done(conv, &entry.id).await?;
            return Ok(Prepared::AlreadySent);
        }
        let rec = self.router.conversation_record(conv).await;
        let rec = match rec {
            Ok(r) => r,
            Err(RouterError::UnknownConversation) => {
                self.done(conv, &entry.id).await?;
                return Ok(Prepared::Dropped("the conversation was erased"));
            }
            Err(e) => return Err(e),
        };
        match self.open(entry, conv, &rec).await? {
            Ok((address, body)) => Ok(Prepared::Send(Box::new(Outgoing {
                entry: entry.id.clone(),
                conv: conv.to_owned(),
                address,
                lang: rec.get("lang").unwrap_or("en").to_owned(),
                body,
                last: entry.get("last") == Some("1"),
                uncertain: state == Some(SendState::Sending),
            }))),
            Err(why) => {
                self.done(conv, &entry.id).await?;
                Ok(Prepared::Dropped(why))
            }
        }
    }

    /// Opens the address and the text of an entry; `Ok(Err(why))` when it can never be sent.
    async fn open(
        &self,
        entry: &OutboxEntry,
        conv: &str,
        rec: &ConversationRecord,
    ) -> Result<Result<(String, Body), &'static str>, RouterError> {
        let Some(sealed) = rec.get("addr").and_then(|a| B64.decode(a).ok()) else {
            return Ok(Err("the contact's address is no longer kept"));
        };
        let key = self.router.data_key(conv).await?;
        let Ok(address) = key.open(conv, Purpose::Address, 0, &sealed) else {
            return Ok(Err("the contact's address cannot be opened"));
        };
        let address = String::from_utf8_lossy(&address).into_owned();
        let lang = rec.get("lang").unwrap_or("en");
        let body = match entry.get("kind") {
            Some("msg") => {
                let Some(id) = entry.get("id") else {
                    return Ok(Err("a message entry without a message id"));
                };
                let found = self.router.store().message(conv, id);
                let Some(stored) = self.router.guarded("outbox", found).await? else {
                    return Ok(Err("the message is no longer stored"));
                };
                let Ok(text) = self
                    .router
                    .open_message(&key, conv, stored.seq, &stored.sealed)
                else {
                    return Ok(Err("the message cannot be opened"));
                };
                Body::Message {
                    text,
                    stored_ms: stored.ts_ms,
                }
            }
            Some("notice") => {
                let code = entry.get("code").unwrap_or("welcome");
                Body::Notice {
                    code: code.to_owned(),
                    text: self.notice_text(lang, code, entry.get("vars")),
                }
            }
            _ => return Ok(Err("an entry of an unknown kind")),
        };
        Ok(Ok((address, body)))
    }

    /// A notice's text, its placeholders filled; a queue position also says the estimated wait.
    fn notice_text(&self, lang: &str, code: &str, vars: Option<&str>) -> String {
        let vars: serde_json::Map<String, serde_json::Value> = vars
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let notices = self.router.notices();
        let mut text = notices.text(lang, code, &pairs);
        // A sparing channel's welcome carries the position too (one message instead of two).
        if code != "queued" && pairs.iter().any(|(k, _)| *k == "position") {
            text.push(' ');
            text.push_str(&notices.text(lang, "queued", &pairs));
        }
        if pairs.iter().any(|(k, _)| *k == "minutes") {
            text.push(' ');
            text.push_str(&notices.text(lang, "wait_estimate", &pairs));
        }
        text
    }

    /// Records that the entry is being handed to the provider now.
    pub async fn sending(&self, entry: &str) -> Result<(), RouterError> {
        let store = self.router.store();
        let mark = store.outbox_mark(&self.channel, entry, SendState::Sending);
        self.router.guarded("outbox", mark).await
    }

    /// The provider accepted the entry: recorded as sent, then acknowledged; after the last entry
    /// of a conversation its address is forgotten.
    pub async fn sent(&self, out: &Outgoing) -> Result<(), RouterError> {
        let store = self.router.store();
        let mark = store.outbox_mark(&self.channel, &out.entry, SendState::Sent);
        self.router.guarded("outbox", mark).await?;
        self.finished(&out.conv, &out.entry, out.last).await
    }

    /// The entry will never be sent (the contact blocked the bot, the provider refused it for good).
    pub async fn give_up(&self, out: &Outgoing) -> Result<(), RouterError> {
        self.finished(&out.conv, &out.entry, out.last).await
    }

    async fn finished(&self, conv: &str, entry: &str, last: bool) -> Result<(), RouterError> {
        self.done(conv, entry).await?;
        if last {
            self.router.forget_address(conv).await?;
        }
        Ok(())
    }

    async fn done(&self, conv: &str, entry: &str) -> Result<(), RouterError> {
        let store = self.router.store();
        self.router
            .guarded("outbox", store.outbox_done(&self.channel, conv, entry))
            .await
    }

    async fn discard(&self, entry: &OutboxEntry) -> Result<(), RouterError> {
        let store = self.router.store();
        self.router
            .guarded("outbox", store.outbox_discard(&self.channel, &entry.id))
            .await
    }
}
