//! The routing events every node hears, on its command connection. The connection speaks RESP3,
//! so Redis pushes each published event there, between the replies: a node reads a message's
//! reply and its event in one read, and Redis writes them in one go (docs/benchmarks.md, step 9).
//!
//! This file turns the pushes into calls of the node's listener, made from redis-rs's own task for
//! the connection (no task of ours in between), and tells it when the subscription was made again
//! (events may have been missed while it was lost) and when a connection was lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use redis::aio::{AsyncPushSender, SendError};
use redis::{PushInfo, PushKind, Value};

/// What the node's listener hears.
#[derive(Debug)]
pub enum Heard<'a> {
    /// A routing event's JSON.
    Event(&'a str),
    /// The subscription was made again after it was lost: events may have been missed.
    Resubscribed,
    /// A connection to Redis was lost; the subscription returns once one is made again.
    Lost,
}

type Listener = Box<dyn Fn(Heard<'_>) + Send + Sync>;

/// Shared by the command connection (which pushes into it) and the store (which sets the listener
/// and the channel).
#[derive(Default)]
pub(crate) struct Pushes {
    channel: OnceLock<String>,
    listener: OnceLock<Listener>,
    /// Subscription confirmations seen: the first is the node's own subscribe, later ones are
    /// made after a lost connection.
    subscribed: AtomicU64,
}

impl Pushes {
    /// Sets the channel and its listener; once per store (later calls keep the first).
    pub(crate) fn listen(&self, channel: &str, listener: Listener) {
        let _ = self.channel.set(channel.to_owned());
        let _ = self.listener.set(listener);
    }

    /// The channel to subscribe to, once the node listens.
    pub(crate) fn channel(&self) -> Option<&str> {
        self.channel.get().map(String::as_str)
    }

    fn hear(&self, heard: Heard<'_>) {
        if let Some(listener) = self.listener.get() {
            listener(heard);
        }
    }

    /// A subscription to the channel was confirmed: every one after the node's first is made
    /// again after a loss.
    fn confirmed(&self) {
        if self.subscribed.fetch_add(1, Ordering::Relaxed) > 0 {
            self.hear(Heard::Resubscribed);
        }
    }

    fn is_ours(&self, channel: Option<&Value>) -> bool {
        matches!((channel, self.channel()), (Some(Value::BulkString(c)), Some(ours)) if c == ours.as_bytes())
    }
}

/// What a connection is given to push into.
#[derive(Clone)]
pub(crate) struct PushSink(pub(crate) Arc<Pushes>);

impl AsyncPushSender for PushSink {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let pushes = &self.0;
        match info.kind {
            PushKind::Message if pushes.is_ours(info.data.first()) => {
                if let Some(Value::BulkString(payload)) = info.data.get(1) {
                    if let Ok(json) = std::str::from_utf8(payload) {
                        pushes.hear(Heard::Event(json));
                    }
                }
            }
            PushKind::Subscribe if pushes.is_ours(info.data.first()) => pushes.confirmed(),
            PushKind::Disconnection => pushes.hear(Heard::Lost),
            _ => {}
        }
        Ok(())
    }
}
