//! Long polling (the default mode: it works behind any NAT). One node at a time polls, under a
//! lease in Redis, and the offset lives in Redis too: it moves past an update only once that update
//! is handled (stored), so a restart, or another node taking over, neither loses nor repeats one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::Failure;
use super::{updates, Telegram, CHANNEL};
use crate::sender::Backoff;

/// How long one `getUpdates` waits for updates.
const POLL_WAIT: Duration = Duration::from_secs(10);
/// How long the polling lease lasts without renewal: past one poll, short enough that a crashed
/// poller is replaced quickly.
const LEASE: Duration = Duration::from_secs(20);
/// How often a node without the lease checks whether it is free.
const STANDBY_WAIT: Duration = Duration::from_secs(2);

impl Telegram {
    /// Polls until `shutdown`, then gives the lease up so another node (or this one, restarted)
    /// takes over at once.
    pub(super) async fn poll(&self, shutdown: CancellationToken) {
        let router = &self.inner.router;
        let tag: [u8; 8] = rand::random();
        let node: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let wait = match self.poll_once(&node, &shutdown).await {
                Ok(true) => {
                    backoff.reset();
                    continue;
                }
                Ok(false) => STANDBY_WAIT,
                Err(why) => {
                    tracing::warn!(why, "Telegram polling failed; retrying");
                    backoff.next()
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let _ = router.poll_lease(CHANNEL, &node, None).await;
    }

    /// One `getUpdates` under the lease, and its updates handled in order. `Ok(false)` when another
    /// node holds the lease.
    async fn poll_once(
        &self,
        node: &str,
        shutdown: &CancellationToken,
    ) -> Result<bool, &'static str> {
        let router = &self.inner.router;
        let unavailable = "Redis is unavailable";
        if !router
            .poll_lease(CHANNEL, node, Some(LEASE))
            .await
            .map_err(|_| unavailable)?
        {
            return Ok(false);
        }
        let offset = router.poll_offset(CHANNEL).await.map_err(|_| unavailable)?;
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(true),
            b = self.inner.api.updates(offset, POLL_WAIT) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(Failure::RetryAfter(wait)) => {
                tokio::time::sleep(wait).await;
                return Ok(true);
            }
            Err(f) => return Err(f.why()),
        };
        for raw in batch {
            let Some(id) = updates::update_id(&raw) else {
                continue;
            };
            match updates::parse_value(raw) {
                // Not handled (Redis is unavailable): stop here, the offset stays, it comes again.
                Some(update) => self.handle(update).await.map_err(|_| unavailable)?,
                None => tracing::info!(
                    update = id,
                    "skipped a Telegram update this gateway cannot read"
                ),
            }
            router
                .set_poll_offset(CHANNEL, id + 1)
                .await
                .map_err(|_| unavailable)?;
        }
        Ok(true)
    }
}
