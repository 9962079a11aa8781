//! Plain reads (and the few plain writes that need no script) of conversations, counsellors and
//! message streams.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

/// A conversation's routing hash as stored (sealed fields stay sealed).
#[derive(Debug, Clone, Default)]
pub struct ConversationRecord {
    pub fields: HashMap<String, String>,
}

impl ConversationRecord {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn state(&self) -> &str {
        self.get("state").unwrap_or("unknown")
    }

    pub fn int(&self, field: &str) -> Option<i64> {
        self.get(field).and_then(|v| v.parse().ok())
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state(), "queued" | "offered" | "active")
    }
}

/// A counsellor's routing state.
#[derive(Debug, Clone, Default)]
pub struct AgentRecord {
    pub status: String,
    pub load: u32,
    pub offers: u32,
    pub capacity: u32,
}

/// One entry of a conversation's stream, still sealed.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub from: String,
    pub seq: u64,
    pub sealed: String,
    pub ts_ms: i64,
    pub whisper: bool,
}

/// A stream entry of a conversation's messages, as a (still sealed) message.
pub(super) fn stored_message(e: redis::streams::StreamId) -> StoredMessage {
    let text = |k: &str| e.get::<String>(k).unwrap_or_default();
    StoredMessage {
        seq: text("s").parse().unwrap_or(0),
        from: text("f"),
        sealed: text("c"),
        ts_ms: text("t").parse().unwrap_or(0),
        whisper: text("w") == "1",
        id: e.id,
    }
}

impl Store {
    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let fields: HashMap<String, String> = self.conn().hgetall(self.keys.conv(id)).await?;
        Ok((!fields.is_empty()).then_some(ConversationRecord { fields }))
    }

    /// Stores sealed fields on a conversation (e.g. the contact's channel address).
    pub async fn set_conversation_fields(
        &self,
        id: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .hset_multiple(self.keys.conv(id), fields)
            .await?;
        Ok(())
    }

    /// The conversation a resume token points to.
    pub async fn resume_target(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(self.keys.resume(token_hash)).await?)
    }

    /// Messages after `after` (exclusive), or all; at most `limit`.
    pub async fn messages(
        &self,
        conv: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let start = match after {
            Some(id) => format!("({id}"),
            None => "-".to_owned(),
        };
        let key = self.keys.messages(conv);
        let entries = self
            .stream_range("XRANGE", &key, &start, "+", limit)
            .await?;
        Ok(entries.into_iter().map(stored_message).collect())
    }

    pub async fn agent(&self, username: &str) -> Result<AgentRecord, StoreError> {
        let (status, load, offers, capacity): (
            Option<String>,
            Option<u32>,
            Option<u32>,
            Option<u32>,
        ) = redis::cmd("HMGET")
            .arg(self.keys.agent(username))
            .arg(&["status", "load", "offers", "capacity"])
            .query_async(&mut self.conn())
            .await?;
        Ok(AgentRecord {
            status: status.unwrap_or_else(|| "offline".into()),
            load: load.unwrap_or(0),
            offers: offers.unwrap_or(0),
            capacity: capacity.unwrap_or(0),
        })
    }

    /// Active conversations of a counsellor, and those standing offered to them.
    pub async fn agent_conversations(
        &self,
        username: &str,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut conn = self.conn();
        let (active, offered): (Vec<String>, Vec<String>) = redis::pipe()
            .smembers(self.keys.agent_convs(username))
            .smembers(self.keys.agent_offered(username))
            .query_async(&mut conn)
            .await?;
        Ok((active, offered))
    }

    /// Every queued conversation id with its first queue time (ms), oldest first.
    pub async fn waiting(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .conn()
            .zrange_withscores(self.keys.waiting(), 0, -1)
            .await?)
    }

    /// How many wait, and the oldest queue time (ms), in two cheap commands.
    pub async fn waiting_summary(&self) -> Result<(u64, Option<i64>), StoreError> {
        let mut conn = self.conn();
        let (count, oldest): (u64, Vec<(String, i64)>) = redis::pipe()
            .zcard(self.keys.waiting())
            .zrange_withscores(self.keys.waiting(), 0, 0)
            .query_async(&mut conn)
            .await?;
        Ok((count, oldest.first().map(|(_, t)| *t)))
    }

    /// For each (urgency, channel) class, how many wait and the first queue time (ms) of the
    /// oldest: two cheap commands a class in one round trip, however long the queue.
    pub async fn queue_classes(
        &self,
        classes: &[(&str, &str)],
    ) -> Result<Vec<(u64, Option<i64>)>, StoreError> {
        let mut pipe = redis::pipe();
        for (urgency, channel) in classes {
            let key = self.keys.waiting_class(urgency, channel);
            pipe.zcard(&key).zrange_withscores(&key, 0, 0);
        }
        let replies: Vec<(u64, Vec<(String, i64)>)> = pipe.query_async(&mut self.conn()).await?;
        Ok(replies
            .into_iter()
            .map(|(count, oldest)| (count, oldest.first().map(|(_, t)| *t)))
            .collect())
    }

    /// Many conversations' records in one round trip.
    pub async fn conversations(
        &self,
        ids: &[String],
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.keys.conv(id));
        }
        let rows: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        Ok(rows
            .into_iter()
            .map(|fields| ConversationRecord { fields })
            .collect())
    }

    /// Many counsellors' routing state in one round trip.
    pub async fn agents(&self, usernames: &[String]) -> Result<Vec<AgentRecord>, StoreError> {
        // Redis refuses an empty pipeline ("empty command"): no accounts yet is not an error.
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in usernames {
            pipe.cmd("HMGET")
                .arg(self.keys.agent(u))
                .arg(&["status", "load", "offers", "capacity"]);
        }
        type Row = (Option<String>, Option<u32>, Option<u32>, Option<u32>);
        let rows: Vec<Row> = pipe.query_async(&mut self.conn()).await?;
        Ok(rows
            .into_iter()
            .map(|(status, load, offers, capacity)| AgentRecord {
                status: status.unwrap_or_else(|| "offline".into()),
                load: load.unwrap_or(0),
                offers: offers.unwrap_or(0),
                capacity: capacity.unwrap_or(0),
            })
            .collect())
    }
}
