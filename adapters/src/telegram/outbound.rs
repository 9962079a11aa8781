//! The node's Telegram sender: the channel's side of [`crate::sender`] (which claims, orders,
//! retries and records). It keeps within Telegram's limits (about one message a second per chat,
//! with short bursts, and 30 a second overall: this node allows 25), honours `429 retry_after`,
//! remembers sent message ids (so a contact may have them deleted) and adds the delete offer to
//! the notice that the contact ended the chat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use helpline_router::outbox::{Body, Outgoing};
use helpline_router::Router;
use tokio_util::sync::CancellationToken;

use super::api::{Buttons, Failure};
use super::{buttons, Telegram, CHANNEL};
use crate::sender::{self, Deliver, Delivery};

impl Telegram {
    /// Runs this node's sender until `shutdown`; what it still holds then goes to the other nodes.
    pub(super) async fn send_outbox(&self, shutdown: CancellationToken) {
        let delivery = TelegramDelivery {
            tg: self.clone(),
            pace: Pace::default(),
        };
        sender::run(delivery, shutdown).await;
    }
}

/// Telegram's side of the sender.
struct TelegramDelivery {
    tg: Telegram,
    pace: Pace,
}

impl Deliver for TelegramDelivery {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn router(&self) -> &Router {
        &self.tg.inner.router
    }

    fn wait(&mut self, out: &Outgoing) -> Option<Duration> {
        self.pace.wait(&out.conv)
    }

    async fn deliver(&mut self, out: &Outgoing) -> Delivery {
        let Ok(chat) = out.address.parse::<i64>() else {
            return Delivery::Refused("the address is not a chat id");
        };
        let (text, rows) = self.render(out);
        let result = self
            .tg
            .inner
            .api
            .send_text(chat, &text, rows.as_ref())
            .await;
        self.pace.sent(&out.conv);
        match result {
            Ok(message) => {
                self.tg.remember(&out.conv, message).await;
                Delivery::Accepted
            }
            Err(f @ Failure::RetryAfter(wait)) => {
                self.pace.pause(&out.conv, wait);
                Delivery::RetryAfter(wait, f.why())
            }
            Err(f @ Failure::Blocked) => Delivery::Blocked(f.why()),
            Err(Failure::Refused(why)) => Delivery::Refused(why),
            Err(Failure::Transient(why)) => Delivery::Transient(why),
        }
    }
}

impl TelegramDelivery {
    /// The text to send, and buttons where the notice asks something.
    fn render(&self, out: &Outgoing) -> (String, Option<Buttons>) {
        match &out.body {
            Body::Message { text, .. } => (text.clone(), None),
            Body::Notice { code, text } if code == "ended_by_contact" => {
                let router = &self.tg.inner.router;
                let (question, rows) = buttons::delete_offer(router, &out.lang, &out.conv);
                (format!("{text}\n\n{question}"), Some(rows))
            }
            Body::Notice { text, .. } => (text.clone(), None),
        }
    }
}

/// Telegram's limits as token buckets: per chat (a burst of 3, then one a second) and for the node
/// (25 a second).
struct Pace {
    node: Bucket,
    chats: HashMap<String, Bucket>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            node: Bucket::new(25.0, 25.0),
            chats: HashMap::new(),
        }
    }
}

impl Pace {
    /// How long to wait before sending to `conv`'s chat, if at all.
    fn wait(&mut self, conv: &str) -> Option<Duration> {
        let now = Instant::now();
        let chat = self
            .chats
            .entry(conv.to_owned())
            .or_insert_with(|| Bucket::new(3.0, 1.0));
        let wait = chat.wait(now).max(self.node.wait(now));
        (!wait.is_zero()).then_some(wait)
    }

    fn sent(&mut self, conv: &str) {
        let now = Instant::now();
        self.node.take(now);
        if let Some(chat) = self.chats.get_mut(conv) {
            chat.take(now);
        }
        if self.chats.len() > 10_000 {
            self.chats.retain(|_, b| !b.is_full(now));
        }
    }

    /// Telegram said to wait: nothing more to this chat until then.
    fn pause(&mut self, conv: &str, wait: Duration) {
        if let Some(chat) = self.chats.get_mut(conv) {
            // One send (the retry) when the pause ends, then the usual pace.
            chat.tokens = 1.0;
            chat.paused_until = Some(Instant::now() + wait);
        }
    }
}

struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// Nothing goes out before this (Telegram's `retry_after`).
    paused_until: Option<Instant>,
}

impl Bucket {
    fn new(capacity: f64, per_sec: f64) -> Bucket {
        Bucket {
            tokens: capacity,
            capacity,
            per_sec,
            at: Instant::now(),
            paused_until: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let secs = now.duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + secs * self.per_sec).min(self.capacity);
            self.at = now;
        }
    }

    fn wait(&mut self, now: Instant) -> Duration {
        if let Some(until) = self.paused_until {
            if now < until {
                return until - now;
            }
            self.paused_until = None;
            self.at = now;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_gets_a_short_burst_then_one_a_second() {
        let mut pace = Pace::default();
        for _ in 0..3 {
            assert_eq!(pace.wait("c"), None);
            pace.sent("c");
        }
        let wait = pace.wait("c").unwrap();
        assert!(wait > Duration::from_millis(800) && wait <= Duration::from_secs(1));
        assert_eq!(pace.wait("other"), None);
        pace.pause("other", Duration::from_secs(5));
        assert!(pace.wait("other").unwrap() > Duration::from_secs(4));
    }
}
