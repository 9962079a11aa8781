//! The wrapped data keys of all conversations, for key rotation: reading them in batches without
//! blocking Redis, replacing one only if it has not changed, and the master key version the
//! helpline announced as active.

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

/// One batch of the conversations set.
#[derive(Debug, Default)]
pub struct DekBatch {
    /// Where the next batch starts; 0 when the scan is complete.
    pub cursor: u64,
    /// Conversation ids with their wrapped data key (base64), `None` when it has none any more.
    pub deks: Vec<(String, Option<String>)>,
}

impl Store {
    /// About `count` conversations from `cursor` (start at 0) with their wrapped data keys. SSCAN
    /// visits every member present for the whole scan at least once, and may repeat one.
    pub async fn dek_batch(&self, cursor: u64, count: usize) -> Result<DekBatch, StoreError> {
        let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(self.keys.conversations())
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.keys.conv(id), "dek");
        }
        let deks: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.conn()).await?
        };
        Ok(DekBatch {
            cursor: next,
            deks: ids.into_iter().zip(deks).collect(),
        })
    }

    /// Replaces a conversation's wrapped data key `old` by `new` (both base64) in one atomic step,
    /// only if it is still `old`; `false` when it changed or was erased meanwhile.
    pub async fn replace_dek(&self, conv: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let replaced: i64 = self
            .scripts
            .rewrap
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.conv(conv))
            .arg(self.keys.conv(conv))
            .arg(old)
            .arg(new)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(replaced == 1)
    }

    /// The master key version `helpline keys rotate` last made active, if any.
    pub async fn announced_key_version(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.conn().get(self.keys.key_version()).await?)
    }

    /// Tells every node that `version` is now active, so they reload their keys and wrap new data
    /// keys under it.
    pub async fn announce_key_version(&self, version: u32) -> Result<(), StoreError> {
        let _: () = self.conn().set(self.keys.key_version(), version).await?;
        Ok(())
    }
}
