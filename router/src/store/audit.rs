//! The audit log as stored: one append-only Redis stream, `{prefix}audit`, whose entry ids give
//! the time. Entries are appended and read in pages here; nothing here trims or edits the stream
//! (retention owns its length).

use super::Store;
use crate::error::StoreError;

/// One line of the audit log: who did what to which conversation, when, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// The stream entry id (`<ms>-<n>`), unique and ordered.
    pub id: String,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub conversation: String,
    pub reason: String,
}

impl Store {
    /// Appends to the audit log and returns the entry's id. Never pass message text or a raw
    /// address here.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        conversation: &str,
        reason: &str,
    ) -> Result<String, StoreError> {
        let id: String = redis::cmd("XADD")
            .arg(self.keys.audit())
            .arg("*")
            .arg(&[
                ("actor", actor),
                ("action", action),
                ("conv", conversation),
                ("reason", reason),
            ])
            .query_async(&mut self.conn())
            .await?;
        Ok(id)
    }

    /// At most `count` entries between the stream ids (or range bounds such as `-`, `+` and
    /// `(<id>` for an exclusive one) `from` and `to`: oldest first with `newest_first` false
    /// (`XRANGE from to`), else newest first (`XREVRANGE from to`, so `from` is the higher bound).
    pub async fn audit_page(
        &self,
        newest_first: bool,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let cmd = if newest_first { "XREVRANGE" } else { "XRANGE" };
        let entries = self
            .stream_range(cmd, &self.keys.audit(), from, to, count)
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let text = |k: &str| e.get::<String>(k).unwrap_or_default();
                AuditEntry {
                    ts_ms: e
                        .id
                        .split('-')
                        .next()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0),
                    actor: text("actor"),
                    action: text("action"),
                    conversation: text("conv"),
                    reason: text("reason"),
                    id: e.id,
                }
            })
            .collect())
    }
}
