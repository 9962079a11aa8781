//! Break-glass requests as stored: a hash per request and a zset of the open ones, changed only
//! by `lua/break_glass.lua` after creation, so each step happens once across all nodes. The
//! address a request reveals is never stored here: it stays sealed in the conversation.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

/// One break-glass request as stored.
#[derive(Debug, Clone)]
pub struct BreakGlassRecord {
    pub id: String,
    pub conversation: String,
    pub channel: String,
    pub requester: String,
    pub reason: String,
    /// `pending`, `approved`, `denied`, `revealed` or `expired`.
    pub state: String,
    pub approver: String,
    pub created_ms: i64,
    /// Until when a pending request may be approved, or an approved one revealed.
    pub deadline_ms: i64,
}

/// What a step did: the script's status, and the request's conversation and requester.
#[derive(Debug, Clone)]
pub struct BreakGlassStep {
    pub status: String,
    pub conversation: String,
    pub requester: String,
}

impl Store {
    /// Stores a new pending request, kept for `keep_s` seconds.
    pub async fn put_break_glass(
        &self,
        r: &BreakGlassRecord,
        keep_s: u64,
    ) -> Result<(), StoreError> {
        let key = self.keys.break_glass(&r.id);
        let created = r.created_ms.to_string();
        let deadline = r.deadline_ms.to_string();
        let fields = [
            ("conv", r.conversation.as_str()),
            ("channel", r.channel.as_str()),
            ("requester", r.requester.as_str()),
            ("reason", r.reason.as_str()),
            ("state", r.state.as_str()),
            ("approver", r.approver.as_str()),
            ("created", created.as_str()),
            ("deadline", deadline.as_str()),
        ];
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(&key, &fields)
            .expire(&key, i64::try_from(keep_s).unwrap_or(i64::MAX))
            .zadd(self.keys.break_glass_open(), &r.id, r.deadline_ms)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// One step of request `id` (see `lua/break_glass.lua`).
    #[allow(clippy::too_many_arguments)] // The script's arguments, named at the one call site.
    pub async fn break_glass_step(
        &self,
        id: &str,
        step: &str,
        who: &str,
        now_ms: i64,
        window_ms: u64,
        keep_s: u64,
    ) -> Result<BreakGlassStep, StoreError> {
        let (status, conversation, requester): (String, String, String) = self
            .scripts
            .break_glass
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.break_glass(id))
            .arg(self.keys.break_glass(id))
            .arg(self.keys.break_glass_open())
            .arg(id)
            .arg(step)
            .arg(who)
            .arg(now_ms)
            .arg(window_ms)
            .arg(keep_s)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(BreakGlassStep {
            status,
            conversation,
            requester,
        })
    }

    /// The ids of open requests whose deadline is at or before `now_ms`.
    pub async fn break_glass_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()
            .zrangebyscore(self.keys.break_glass_open(), "-inf", now_ms)
            .await?)
    }

    /// Every open (pending or approved) request, oldest deadline first.
    pub async fn open_break_glass(&self) -> Result<Vec<BreakGlassRecord>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrange(self.keys.break_glass_open(), 0, -1)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let f: HashMap<String, String> =
                self.conn().hgetall(self.keys.break_glass(&id)).await?;
            if f.is_empty() {
                continue;
            }
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            let ms = |k: &str| get(k).parse().unwrap_or(0);
            out.push(BreakGlassRecord {
                conversation: get("conv"),
                channel: get("channel"),
                requester: get("requester"),
                reason: get("reason"),
                state: get("state"),
                approver: get("approver"),
                created_ms: ms("created"),
                deadline_ms: ms("deadline"),
                id,
            });
        }
        Ok(out)
    }
}
