//! A node's sender for one channel without a socket (Telegram, SMS): claims entries of the
//! channel's outbox, sends them one at a time in order per conversation, and reports back (see
//! `helpline_router::outbox` for the guarantees). What differs per channel (the provider call, its
//! pace, how a refusal reads) sits behind [`Deliver`]; the claiming, the heartbeat, the retries
//! with backoff and the bookkeeping are here, once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helpline_router::conversation::now_ms;
use helpline_router::outbox::{Body, Outbox, Outgoing, Prepared, Reader};
use helpline_router::store::OutboxEntry;
use helpline_router::Router;
use tokio_util::sync::CancellationToken;

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

/// What the provider made of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted: recorded as sent, never sent again.
    Accepted,
    /// The provider asked to wait this long (a rate limit): tried again then.
    RetryAfter(Duration, &'static str),
    /// A failure that may pass (5xx, the network): tried again after a growing backoff.
    Transient(&'static str),
    /// The contact blocked the channel or opted out: the conversation ends.
    Blocked(&'static str),
    /// Refused for good (a request that can never succeed): dropped and counted.
    Refused(&'static str),
}

/// One channel's side of sending.
pub trait Deliver: Send + 'static {
    /// The channel's name (outbox, metrics).
    fn channel(&self) -> &'static str;
    fn router(&self) -> &Router;
    /// How long to wait before sending to this contact (the channel's own pace), if at all.
    fn wait(&mut self, _out: &Outgoing) -> Option<Duration> {
        None
    }
    /// Hands one entry to the provider.
    fn deliver(&mut self, out: &Outgoing) -> impl Future<Output = Delivery> + Send;
}

/// An entry this node holds, and when to try it next.
struct Held {
    entry: OutboxEntry,
    next_try: Instant,
    failures: u32,
    /// The provider accepted it but recording that failed: record it, never send it again.
    accepted: Option<Box<Outgoing>>,
}

/// The sender's working state.
struct Sender<D> {
    channel: D,
    outbox: Outbox,
    held: BTreeMap<(u64, u64), Held>,
}

/// Runs this node's sender of `channel` until `shutdown`; what it still holds then goes to the
/// other nodes.
pub async fn run<D: Deliver>(channel: D, shutdown: CancellationToken) {
    let name = channel.channel();
    let outbox = channel.router().outbox(name);
    let mut backoff = Backoff::default();
    while let Err(e) = outbox.join().await {
        tracing::warn!(channel = name, error = %e, "the outbox is not reachable; retrying");
        if sleep_or_stop(backoff.next(), &shutdown).await {
            return;
        }
    }
    let reload = Arc::new(AtomicBool::new(true));
    let mut sender = Sender {
        channel,
        outbox,
        held: BTreeMap::new(),
    };
    let beats = beat(sender.outbox.clone(), reload.clone(), shutdown.clone());
    let sends = sender.send_loop(reload.clone(), shutdown.clone());
    // The heartbeat runs beside the sends, so a slow send never makes this node look gone.
    tokio::join!(beats, sends);
    sender.outbox.leave().await;
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
                    channel = outbox.channel(),
                    entries = n,
                    "took over outbox entries of a stopped node"
                );
                reload.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "outbox heartbeat failed"),
        }
    }
}

impl<D: Deliver> Sender<D> {
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
                        tracing::warn!(
                            channel = self.channel.channel(),
                            error = %e,
                            "cannot read the outbox; retrying"
                        );
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
        let name = self.channel.channel();
        let router = self.channel.router().clone();
        let telemetry = router.telemetry();
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
                telemetry.outbox(name, "already_sent", "", "taken over after it was sent");
                return None;
            }
            Ok(Prepared::Dropped(why)) => {
                telemetry.outbox(name, "dropped", "", why);
                return None;
            }
            Ok(Prepared::Send(out)) => out,
        };
        if let Some(wait) = self.channel.wait(&out) {
            return Some(wait);
        }
        if self.outbox.sending(&out.entry).await.is_err() {
            return Some(fail(held));
        }
        if out.uncertain {
            telemetry.outbox(
                name,
                "resent",
                &out.conv,
                "taken over after an unconfirmed send",
            );
        }
        match self.channel.deliver(&out).await {
            Delivery::Accepted => {
                if let Body::Message { stored_ms, .. } = &out.body {
                    telemetry.relayed("out", now_ms() - stored_ms);
                }
                telemetry.outbox(name, "sent", &out.conv, "accepted by the provider");
                if self.outbox.sent(&out).await.is_err() {
                    held.accepted = Some(out);
                    return Some(fail(held));
                }
                None
            }
            Delivery::RetryAfter(wait, why) => {
                telemetry.outbox(name, "retried", &out.conv, why);
                Some(wait)
            }
            Delivery::Blocked(why) => {
                telemetry.outbox(name, "blocked", &out.conv, why);
                let _ = self.outbox.give_up(&out).await;
                if let Err(e) = router.contact_blocked(&out.conv).await {
                    tracing::warn!(conversation = %out.conv, error = %e, "could not end a blocked conversation");
                }
                None
            }
            Delivery::Refused(why) => {
                telemetry.outbox(name, "dropped", &out.conv, why);
                let _ = self.outbox.give_up(&out).await;
                None
            }
            Delivery::Transient(why) => {
                telemetry.outbox(name, "retried", &out.conv, why);
                Some(fail(held))
            }
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
pub(crate) async fn sleep_or_stop(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// A growing wait between failures of one loop.
#[derive(Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        backoff_for(self.failures)
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
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
}
