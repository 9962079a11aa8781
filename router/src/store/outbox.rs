//! The outbox streams in Redis: what channels without a socket (Telegram, SMS) must send. The
//! routing scripts write the entries (`lua/common.lua`, `outbox`); this file reads them through the
//! consumer group, keeps each node's claim alive, and removes an entry once it is delivered.

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::{StreamId, StreamReadReply};
use redis::AsyncCommands;

use super::{Connection, Keys, Store};
use crate::error::StoreError;

/// One outbox entry as stored: its stream id and its fields (ids, codes, non-secret values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub fields: HashMap<String, String>,
}

impl OutboxEntry {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn from_stream(e: StreamId) -> OutboxEntry {
        let fields = e
            .map
            .iter()
            .filter_map(|(k, v)| {
                redis::from_redis_value_ref::<String>(v)
                    .ok()
                    .map(|v| (k.clone(), v))
            })
            .collect();
        OutboxEntry { id: e.id, fields }
    }
}

/// How far a node got with an entry, kept beside it so a node that takes it over knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Handed to the provider; whether it accepted is not recorded.
    Sending,
    /// The provider accepted it.
    Sent,
}

impl SendState {
    fn as_str(self) -> &'static str {
        match self {
            SendState::Sending => "sending",
            SendState::Sent => "sent",
        }
    }
}

impl Store {
    /// A connection of its own for blocking reads, which would hold up every other command on the
    /// shared one.
    pub async fn blocking_connection(&self) -> Result<Connection, StoreError> {
        Ok(self.topology.blocking().await?)
    }

    /// Creates the channel's outbox and its consumer group if they do not exist yet (from the very
    /// first entry, so nothing written before any sender started is skipped).
    pub async fn outbox_join(&self, channel: &str) -> Result<(), StoreError> {
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.outbox(channel))
            .arg(Keys::OUTBOX_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// New entries for consumer `me`, waiting up to `block` for some (on `conn`, a connection of
    /// its own: see [`Store::blocking_connection`]).
    pub async fn outbox_read_new(
        &self,
        conn: &mut Connection,
        channel: &str,
        me: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(Keys::OUTBOX_GROUP)
            .arg(me)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(self.keys.outbox(channel))
            .arg(">")
            .query_async(conn)
            .await?;
        Ok(entries(reply))
    }

    /// Every entry consumer `me` holds (after a restart or a take-over). An entry deleted meanwhile
    /// comes back without fields.
    pub async fn outbox_read_mine(
        &self,
        channel: &str,
        me: &str,
        count: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(Keys::OUTBOX_GROUP)
            .arg(me)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(self.keys.outbox(channel))
            .arg("0")
            .query_async(&mut self.conn())
            .await?;
        Ok(entries(reply))
    }

    /// This node's heartbeat as consumer `me`; takes over the entries of nodes silent for
    /// `dead_after` and of nobody for `stuck_after`. Returns how many it took.
    pub async fn outbox_beat(
        &self,
        channel: &str,
        me: &str,
        dead_after: Duration,
        stuck_after: Duration,
    ) -> Result<u64, StoreError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let claimed: u64 = self
            .scripts
            .outbox_beat
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.outbox(channel))
            .arg(self.keys.outbox(channel))
            .arg(Keys::OUTBOX_GROUP)
            .arg(self.keys.outbox_consumers(channel))
            .arg(me)
            .arg(ms(dead_after))
            .arg(ms(stuck_after))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(claimed)
    }

    /// Consumer `me` stops (a graceful shutdown): it counts as gone at once, so the other nodes
    /// take over what it still holds at their next beat.
    pub async fn outbox_leave(&self, channel: &str, me: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .zadd(self.keys.outbox_consumers(channel), me, 0)
            .await?;
        Ok(())
    }

    /// The oldest undelivered entry of a conversation: the only one that may be sent now.
    pub async fn outbox_head(
        &self,
        channel: &str,
        conv: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .lindex(self.keys.outbox_order(channel, conv), 0)
            .await?)
    }

    /// How far delivery of an entry got, if any node recorded it.
    pub async fn outbox_state(
        &self,
        channel: &str,
        entry: &str,
    ) -> Result<Option<SendState>, StoreError> {
        let state: Option<String> = self
            .conn()
            .hget(self.keys.outbox_state(channel), entry)
            .await?;
        Ok(match state.as_deref() {
            Some("sending") => Some(SendState::Sending),
            Some("sent") => Some(SendState::Sent),
            _ => None,
        })
    }

    pub async fn outbox_mark(
        &self,
        channel: &str,
        entry: &str,
        state: SendState,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .hset(self.keys.outbox_state(channel), entry, state.as_str())
            .await?;
        Ok(())
    }

    /// An entry is delivered (or given up): acknowledged, deleted, out of its conversation's order
    /// and its state forgotten, in one transaction.
    pub async fn outbox_done(
        &self,
        channel: &str,
        conv: &str,
        entry: &str,
    ) -> Result<(), StoreError> {
        let stream = self.keys.outbox(channel);
        let _: () = redis::pipe()
            .atomic()
            .xack(&stream, Keys::OUTBOX_GROUP, &[entry])
            .ignore()
            .xdel(&stream, &[entry])
            .ignore()
            .lrem(self.keys.outbox_order(channel, conv), 1, entry)
            .ignore()
            .hdel(self.keys.outbox_state(channel), entry)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// An entry that lost its conversation (erased before delivery): acknowledged and deleted.
    pub async fn outbox_discard(&self, channel: &str, entry: &str) -> Result<(), StoreError> {
        let stream = self.keys.outbox(channel);
        let _: () = redis::pipe()
            .atomic()
            .xack(&stream, Keys::OUTBOX_GROUP, &[entry])
            .ignore()
            .xdel(&stream, &[entry])
            .ignore()
            .hdel(self.keys.outbox_state(channel), entry)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// One stored message of a conversation, still sealed.
    pub async fn message(
        &self,
        conv: &str,
        id: &str,
    ) -> Result<Option<super::StoredMessage>, StoreError> {
        let key = self.keys.messages(conv);
        let found = self.stream_range("XRANGE", &key, id, id, 1).await?;
        Ok(found.into_iter().next().map(super::records::stored_message))
    }
}

fn entries(reply: Option<StreamReadReply>) -> Vec<OutboxEntry> {
    reply
        .map(|r| {
            r.keys
                .into_iter()
                .flat_map(|k| k.ids)
                .map(OutboxEntry::from_stream)
                .collect()
        })
        .unwrap_or_default()
}
