//! Erasing conversations in Redis: one at once on request, and the retention sweep over those
//! closed long enough ago. Both run the Lua scripts in `lua/erase.lua` and `lua/retention.lua`
//! (sharing `lua/erasure.lua`), which destroy a conversation's data key before anything else.

use super::{Outcome, Store};
use crate::error::StoreError;

/// What one retention sweep erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Closed conversations whose transcript was shredded.
    pub transcripts: u64,
    /// Closed conversations whose metadata was deleted.
    pub metadata: u64,
    /// Audit entries trimmed.
    pub audit: u64,
}

/// The retention periods and batch of one sweep, in ms and conversations.
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    pub transcripts_ms: u64,
    pub metadata_ms: u64,
    pub audit_ms: u64,
    pub batch: u32,
}

impl Store {
    /// Erases a conversation now (ending it first if live): status `ok`, or `not_found`.
    pub async fn erase(&self, conv: &str) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.erase, &[conv]).await
    }

    /// One retention sweep, at most `batch` conversations of each kind.
    pub async fn retention_sweep(&self, p: &Periods) -> Result<Swept, StoreError> {
        let mut inv = self.routing_call(&self.scripts.retention);
        inv.arg(p.transcripts_ms)
            .arg(p.metadata_ms)
            .arg(p.batch)
            .arg(p.audit_ms);
        let (transcripts, metadata, audit): (u64, u64, u64) =
            inv.invoke_async(&mut self.conn()).await?;
        Ok(Swept {
            transcripts,
            metadata,
            audit,
        })
    }
}
