//! The node's background work: listening for routing events from every node, saying which sockets
//! this node holds (heartbeats), the periodic sweep (offer timeouts, lost counsellors, aging,
//! relaxation, abandoned waits, break-glass requests out of time) and the retention sweep every
//! `retention.sweep_every_s`. Every node runs all of it; the scripts make that safe.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::conversation::now_ms;
use crate::events::Event;
use crate::store::Heard;
use crate::Router;

/// How often a node heartbeats and sweeps, in ms.
pub(crate) const TICK_MS: u64 = 1000;
const TICK: Duration = Duration::from_millis(TICK_MS);
/// How often the queue and counsellor gauges are refreshed.
const GAUGES_EVERY: u32 = 5;
/// How often, in ticks, a waiting web chat contact hears their place in the queue (the contract's
/// "at most every 5 s"): each tick asks for a fifth of this node's contacts.
const QUEUE_EVERY: u32 = 5;
/// Conversations asked about in one script call, so that none holds Redis for long.
const QUEUE_BATCH: usize = 500;

impl Router {
    /// Runs the background work until `shutdown` fires.
    pub async fn run_background(&self, shutdown: CancellationToken) {
        tokio::join!(self.listen(shutdown.clone()), self.tick(shutdown));
    }

    /// Relays the routing events every node publishes to this node's sockets. They arrive on the
    /// command connection (`store/pushes.rs`) and are handed on from its task. After the
    /// subscription was lost and made again (Redis restarted, or a Sentinel failover moved the
    /// master), every socket is told to re-read its state, since live events may have been missed.
    async fn listen(&self, shutdown: CancellationToken) {
        let (tx, mut heard) = mpsc::unbounded_channel::<Heard<'static>>();
        let node = Arc::downgrade(&self.inner);
        let listener = move |h: Heard<'_>| match h {
            Heard::Event(json) => {
                if let Some(inner) = node.upgrade() {
                    inner.relay(json);
                }
            }
            Heard::Resubscribed => drop(tx.send(Heard::Resubscribed)),
            Heard::Lost => drop(tx.send(Heard::Lost)),
        };
        let channel = self.store().keys().events();
        let subscribed = until_ok(&shutdown, || async {
            let result = self.store().listen(&channel, listener.clone()).await;
            if let Err(e) = &result {
                self.telemetry().redis_failed("subscribe", e);
            }
            result
        });
        if !subscribed.await {
            return;
        }
        let mut master_changes = self.store().master_changes();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Ok(()) = master_changes.changed() => {
                    tracing::warn!("the Redis master moved; subscribing on the new one");
                    self.reconnect(&shutdown).await;
                }
                Some(heard) = heard.recv() => match heard {
                    Heard::Resubscribed => {
                        // Redis may have restarted or failed over: its script cache may be empty.
                        if let Err(e) = self.store().load_scripts().await {
                            tracing::debug!(error = %e, "scripts not loaded; each loads on its first call");
                        }
                        self.hub().resync_all();
                    }
                    _ => {
                        tracing::warn!("lost a Redis connection; reconnecting");
                        self.reconnect(&shutdown).await;
                    }
                }
            }
        }
    }

    /// Pings Redis until it answers, so the command connection is made again (and subscribes)
    /// without waiting for the next command.
    async fn reconnect(&self, shutdown: &CancellationToken) {
        until_ok(shutdown, || self.store().ping()).await;
    }

    async fn tick(&self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u32 = 0;
        loop {
            tokio::select! { _ = shutdown.cancelled() => return, _ = interval.tick() => {} }
            self.sweep_once().await;
            self.tell_queue_positions(n % QUEUE_EVERY).await;
            self.follow_key_version().await;
            self.expire_break_glass().await;
            n = n.wrapping_add(1);
            let every = self.config().retention.sweep_every_s.max(1);
            if u64::from(n) % every == 0 {
                if let Err(e) = self.retention_sweep().await {
                    tracing::debug!(error = %e, "retention sweep failed; the next one retries");
                }
            }
            if n % GAUGES_EVERY == 1 {
                if let Err(e) = self.refresh_gauges().await {
                    tracing::debug!(error = %e, "gauges not refreshed");
                }
            }
        }
    }

    /// One heartbeat and one sweep (public so tests and shutdown can force one).
    pub async fn sweep_once(&self) {
        let (agents, contacts) = self.hub().presence();
        if let Err(e) = self
            .guarded("heartbeat", self.store().heartbeat(&agents, &contacts))
            .await
        {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        match self.guarded("sweep", self.store().sweep()).await {
            Ok(outcome) => self.observe(&outcome.events),
            Err(e) => tracing::debug!(error = %e, "sweep failed"),
        }
    }

    /// Tells this node's contact sockets in `share` (of `QUEUE_EVERY`) their place in the queue: a
    /// few script calls for all of them, rather than one call per waiting contact.
    async fn tell_queue_positions(&self, share: u32) {
        let convs = self.hub().contact_conversations(|c| share_of(c) == share);
        for batch in convs.chunks(QUEUE_BATCH) {
            let Ok(statuses) = self.queue_status(batch).await else {
                return;
            };
            for (conv, status) in batch.iter().zip(statuses) {
                if matches!(status.state.as_str(), "queued" | "offered") {
                    self.hub().tell_queue(conv, status);
                }
            }
        }
    }

    /// The gauges are the same on every node (they read Redis), so any node's value is right.
    /// The queue is read by class (urgency and channel), a size and a head each, never whole.
    async fn refresh_gauges(&self) -> Result<(), crate::RouterError> {
        let t = self.telemetry();
        let classes = t.queue_classes();
        let read = self.store().queue_classes(&classes);
        let now = now_ms();
        let counts: Vec<(u64, u64)> = self
            .guarded("queue", read)
            .await?
            .into_iter()
            .map(|(waiting, oldest)| {
                let waited_ms = oldest.map_or(0, |t| now.saturating_sub(t));
                (waiting, u64::try_from(waited_ms / 1000).unwrap_or(0))
            })
            .collect();
        t.set_queue(&classes, &counts);
        let counsellors = self.counsellors().await?;
        for status in ["available", "away", "offline"] {
            let n = counsellors.iter().filter(|c| c.status == status).count();
            t.counsellors
                .with_label_values(&[status])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(())
    }
}

impl crate::Inner {
    /// Hands a routing event to this node's sockets.
    fn relay(&self, json: &str) {
        if let Some(ev) = Event::parse(json) {
            if let Event::Erased { conv } = &ev {
                self.keys.forget(conv);
            }
            self.hub.deliver(ev);
        }
    }
}

/// Calls `attempt` until it succeeds, waiting 0.1 s, then twice as long each time up to 5 s;
/// `false` when `shutdown` fired first.
async fn until_ok<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> F,
) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(_) => return true,
            Err(e) => tracing::debug!(error = %e, "Redis not reachable yet; trying again"),
        }
        tokio::select! { _ = shutdown.cancelled() => return false, _ = tokio::time::sleep(backoff) => {} }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Which of the `QUEUE_EVERY` ticks tells the contact of conversation `conv` (ids are random, so
/// the shares are even).
fn share_of(conv: &str) -> u32 {
    conv.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % QUEUE_EVERY
}
