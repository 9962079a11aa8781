//! What channels with their own addresses (Telegram, SMS) keep in Redis besides routing: the live
//! conversation of a pseudonym, the channel message ids a contact may have deleted, the provider
//! updates already handled, and the polling offset and lease. Never an address in the clear.

use std::time::Duration;

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

/// How long a handled provider update is remembered (Telegram keeps undelivered updates a day).
const SEEN_FOR_MS: i64 = 48 * 3600 * 1000;
/// Most channel message ids kept per conversation.
const CHANNEL_MESSAGES_MAX: isize = 2000;

impl Store {
    /// The live conversation a pseudonym points to, if any (the caller checks it is live).
    pub async fn live_conversation(&self, pseudonym: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(self.keys.live(pseudonym)).await?)
    }

    /// Remembers a channel message id of a conversation for `ttl` (as long as the channel lets
    /// it be deleted), unless the conversation was erased meanwhile: a message whose delivery
    /// finished after the erasure leaves nothing behind.
    pub async fn remember_channel_message(
        &self,
        conv: &str,
        message_id: i64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let ttl_s = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let _: i64 = self
            .scripts
            .chanmsg
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.conv(conv))
            .arg(self.keys.conv(conv))
            .arg(self.keys.channel_messages(conv))
            .arg(message_id)
            .arg(ttl_s)
            .arg(CHANNEL_MESSAGES_MAX)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn channel_messages(&self, conv: &str) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .conn()
            .lrange(self.keys.channel_messages(conv), 0, -1)
            .await?)
    }

    pub async fn forget_channel_messages(&self, conv: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn().del(self.keys.channel_messages(conv)).await?;
        Ok(())
    }

    /// Whether provider update `update` of `channel` was handled already.
    pub async fn update_seen(&self, channel: &str, update: &str) -> Result<bool, StoreError> {
        let score: Option<f64> = self
            .conn()
            .zscore(self.keys.seen_updates(channel), update)
            .await?;
        Ok(score.is_some())
    }

    /// Records provider update `update` as handled at `now_ms`, and forgets old ones.
    pub async fn mark_update(
        &self,
        channel: &str,
        update: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = self.keys.seen_updates(channel);
        let _: () = redis::pipe()
            .zadd(&key, update, now_ms)
            .ignore()
            .zrembyscore(&key, "-inf", now_ms - SEEN_FOR_MS)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn poll_offset(&self, channel: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.conn().get(self.keys.poll_offset(channel)).await?)
    }

    pub async fn set_poll_offset(&self, channel: &str, offset: i64) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .set(self.keys.poll_offset(channel), offset)
            .await?;
        Ok(())
    }

    /// Takes or renews the channel's polling lease for `node` (true when held), or gives it up
    /// (`ttl` None).
    pub async fn poll_lease(
        &self,
        channel: &str,
        node: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let (op, ms) = match ttl {
            Some(t) => ("take", u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            None => ("drop", 0),
        };
        let held: i64 = self
            .scripts
            .lease
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.poll_lease(channel))
            .arg(self.keys.poll_lease(channel))
            .arg(node)
            .arg(op)
            .arg(ms)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(held == 1)
    }

    /// Drops a conversation's sealed address: nothing more will be sent to it.
    pub async fn forget_address(&self, conv: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn().hdel(self.keys.conv(conv), "addr").await?;
        Ok(())
    }
}
