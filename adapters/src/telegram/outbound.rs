//! The node's Telegram sender: claims entries of the `telegram` outbox, sends them one at a time in
//! order per conversation, and reports back (see `helpline_router::outbox` for the guarantees).
//!
//! It keeps within Telegram's limits (about one message a second per chat, with short bursts, and
//! 30 a second overall: this node allows 25), honours `429 retry_after`, backs off on failures
//! (Telegram's 5xx, the network, Redis) and ends a conversation whose contact blocked the bot.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helpline_router::conversation::now_ms;
use helpline_router::outbox::{Body, Outbox, Outgoing, Prepared, Reader};
use helpline_router::store::OutboxEntry;
use tokio_util::sync::CancellationToken;

use super::api::{Buttons, Failure};
use super::{buttons, Telegram, CHANNEL};

/// How often the node says it is alive and takes over the entries of gone nodes.
const BEAT_EVERY: Duration = Duration::from_secs(1);
/// How often the node re-reads what it holds (entries taken over, or kept across a hiccup).
const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How long a claim waits for new entries when nothing is due.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// The wait before an entry whose conversation has an earlier one undelivered is tried again.
const NOT_YET_WAIT: Duration = Duration::from_millis(200);
/// The longest backoff after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// An entry this node holds, and when to try it next.
struct Held {
    entry: OutboxEntry,
    next_try: Instant,
    failures: u32,
    /// Telegram accepted it but recording that failed: record it, never send it again.
    accepted: Option<Box<Outgoing>>,
}

/// The sender's working state.
struct Sender {
    tg: Telegram,
    outbox: Outbox,
    held: BTreeMap<(u64, u64), Held>,
    pace: Pace,
}

impl Telegram {
    /// Runs this node's sender until `shutdown`; what it still holds then goes to the other nodes.
    pub(super) async fn send_outbox(&self, shutdown: CancellationToken) {
        let outbox = self.inner.router.outbox(CHANNEL);
        let mut backoff = Backoff::default();
        while let Err(e) = outbox.join().await {
            tracing::warn!(error = %e, "the Telegram outbox is not reachable; retrying");
            if sleep_or_stop(backoff.next(), &shutdown).await {
                return;
            }
        }
        let reload = Arc::new(AtomicBool::new(true));
        let mut sender = Sender {
            tg: self.clone(),
            outbox,
            held: BTreeMap::new(),
            pace: Pace::default(),
        };
        let beats = beat(sender.outbox.clone(), reload.clone(), shutdown.clone());
        let sends = sender.send_loop(reload.clone(), shutdown.clone());
        // The heartbeat runs beside the sends, so a slow send never makes this node look gone.
        tokio::join!(beats, sends);
        sender.outbox.leave().await;
    }
}

/// Says the node is alive every second and takes over the entries of stopped nodes (then the
/// sender re-reads what it holds).
async fn beat(outbox: Outbox, reload: Arc<AtomicBool>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = tick.tick() => {} }
        match outbox.beat().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    entries = n,
                    "took over Telegram outbox entries of a stopped node"
                );
                reload.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "outbox heartbeat failed"),
        }
    }
}

impl Sender {
    async fn send_loop(&mut self, reload: Arc<AtomicBool>, shutdown: CancellationToken) {
        let mut reader = Reader::default();
        let mut last_reload = Instant::now();
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            if reload.swap(false, Ordering::Relaxed) || last_reload.elapsed() >= RELOAD_EVERY {
                last_reload = Instant::now();
                match self.outbox.held(1000).await {
                    Ok(entries) => self.hold(entries),
                    Err(e) => {
                        tracing::debug!(error = %e, "could not re-read the held outbox entries");
                        reload.store(true, Ordering::Relaxed);
                    }
                }
            }
            self.send_due(&shutdown).await;
            let wait = self
                .until_next_due()
                .min(IDLE_WAIT)
                .max(Duration::from_millis(5));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                claimed = self.outbox.claim(&mut reader, 50, wait) => match claimed {
                    Ok(entries) => {
                        backoff.reset();
                        self.hold(entries);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the Telegram outbox; retrying");
                        if sleep_or_stop(backoff.next(), &shutdown).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn hold(&mut self, entries: Vec<OutboxEntry>) {
        let now = Instant::now();
        for entry in entries {
            self.held.entry(order_key(&entry.id)).or_insert(Held {
                entry,
                next_try: now,
                failures: 0,
                accepted: None,
            });
        }
    }

    fn until_next_due(&self) -> Duration {
        let now = Instant::now();
        self.held
            .values()
            .map(|h| h.next_try.saturating_duration_since(now))
            .min()
            .unwrap_or(IDLE_WAIT)
    }

    /// Tries every entry that is due, oldest first.
    async fn send_due(&mut self, shutdown: &CancellationToken) {
        let now = Instant::now();
        let due: Vec<(u64, u64)> = self
            .held
            .iter()
            .filter(|(_, h)| h.next_try <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if shutdown.is_cancelled() {
                return;
            }
            let Some(mut held) = self.held.remove(&key) else {
                continue;
            };
            if let Some(next) = self.attempt(&mut held).await {
                held.next_try = Instant::now() + next;
                self.held.insert(key, held);
            }
        }
    }

    /// One try of an entry; `Some(wait)` to try again after `wait`, `None` when it is finished.
    async fn attempt(&mut self, held: &mut Held) -> Option<Duration> {
        let telemetry = self.tg.inner.router.telemetry();
        if let Some(out) = held.accepted.take() {
            return match self.outbox.sent(&out).await {
                Ok(()) => None,
                Err(_) => {
                    held.accepted = Some(out);
                    Some(fail(held))
                }
            };
        }
        let out = match self.outbox.prepare(&held.entry).await {
            Err(e) => {
                tracing::debug!(error = %e, "an outbox entry could not be prepared");
                return Some(fail(held));
            }
            Ok(Prepared::NotYet) => return Some(NOT_YET_WAIT),
            Ok(Prepared::AlreadySent) => {
                telemetry.outbox(CHANNEL, "already_sent", "", "taken over after it was sent");
                return None;
            }
            Ok(Prepared::Dropped(why)) => {
                telemetry.outbox(CHANNEL, "dropped", "", why);
                return None;
            }
            Ok(Prepared::Send(out)) => out,
        };
        let Ok(chat) = out.address.parse::<i64>() else {
            telemetry.outbox(
                CHANNEL,
                "dropped",
                &out.conv,
                "the address is not a chat id",
            );
            let _ = self.outbox.give_up(&out).await;
            return None;
        };
        if let Some(wait) = self.pace.wait(&out.conv) {
            return Some(wait);
        }
        if self.outbox.sending(&out.entry).await.is_err() {
            return Some(fail(held));
        }
        if out.uncertain {
            telemetry.outbox(
                CHANNEL,
                "resent",
                &out.conv,
                "taken over after an unconfirmed send",
            );
        }
        let (text, rows) = self.render(&out);
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
                if let Body::Message { stored_ms, .. } = &out.body {
                    telemetry.relayed("out", now_ms() - stored_ms);
                }
                telemetry.outbox(CHANNEL, "sent", &out.conv, "accepted by Telegram");
                if self.outbox.sent(&out).await.is_err() {
                    held.accepted = Some(out);
                    return Some(fail(held));
                }
                None
            }
            Err(Failure::RetryAfter(wait)) => {
                telemetry.outbox(
                    CHANNEL,
                    "retried",
                    &out.conv,
                    Failure::RetryAfter(wait).why(),
                );
                self.pace.pause(&out.conv, wait);
                Some(wait)
            }
            Err(Failure::Blocked) => {
                telemetry.outbox(CHANNEL, "blocked", &out.conv, Failure::Blocked.why());
                let _ = self.outbox.give_up(&out).await;
                if let Err(e) = self.tg.inner.router.contact_blocked(&out.conv).await {
                    tracing::warn!(conversation = %out.conv, error = %e, "could not end a blocked conversation");
                }
                None
            }
            Err(Failure::Refused(why)) => {
                telemetry.outbox(CHANNEL, "dropped", &out.conv, why);
                let _ = self.outbox.give_up(&out).await;
                None
            }
            Err(Failure::Transient(why)) => {
                telemetry.outbox(CHANNEL, "retried", &out.conv, why);
                Some(fail(held))
            }
        }
    }

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

/// Counts a failure of an entry; returns the backoff before its next try.
fn fail(held: &mut Held) -> Duration {
    held.failures = held.failures.saturating_add(1);
    backoff_for(held.failures)
}

/// 1 s, 2 s, 4 s… up to a minute.
fn backoff_for(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(6);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// A stream id `ms-seq` as a sortable key (stream ids do not sort as text).
fn order_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Sleeps, or returns true at once when `shutdown` fires.
async fn sleep_or_stop(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// A growing wait between failures of one loop.
#[derive(Default)]
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(super) fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        backoff_for(self.failures)
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
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
    fn stream_ids_sort_numerically() {
        assert!(order_key("1700000000000-10") > order_key("1700000000000-9"));
        assert!(order_key("1700000000001-0") > order_key("1700000000000-99"));
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(3), Duration::from_secs(4));
        assert_eq!(backoff_for(30), MAX_BACKOFF);
    }

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
