//! Keeping nothing longer than the helpline needs: the retention sweep every node runs, and erasure
//! of one conversation on request (the contact asked, or a supervisor).
//!
//! Both crypto-shred: a conversation's wrapped data key is destroyed before anything else of it, so
//! copies of its ciphertext elsewhere (AOF files, replicas, backups) are unreadable from that
//! moment. The work itself is in the store's Lua scripts (one atomic step per conversation or per
//! batch), which makes every node's sweep safe to run at once. The daily aggregates that outlive
//! the conversations are counted when a conversation ends (`stats:daily:DAY`, no id).

use helpline_config::Retention;

use crate::error::RouterError;
use crate::store::{Periods, Swept};
use crate::Router;

/// Seconds the daily aggregates are kept: the metadata period (so a report over what metadata
/// remains can always be checked against them) and never less than the dashboard's week, plus a
/// day for the day still being counted.
pub fn stats_keep_s(r: &Retention) -> u64 {
    const DAY_S: u64 = 24 * 3600;
    r.metadata_s.max(7 * DAY_S) + DAY_S
}

/// The audit action an erasure is recorded under.
pub const ERASE_ACTION: &str = "conversation.erase";

impl Router {
    /// One retention sweep: shreds the transcripts, then deletes the metadata, of conversations
    /// closed longer ago than their periods (at most `retention.batch` of each), and trims the
    /// audit log. Counted in `helpline_retention_erased_total`.
    pub async fn retention_sweep(&self) -> Result<Swept, RouterError> {
        let r = &self.config().retention;
        let ms = |s: u64| s.saturating_mul(1000);
        let periods = Periods {
            transcripts_ms: ms(r.transcripts_s),
            metadata_ms: ms(r.metadata_s),
            audit_ms: ms(r.audit_s),
            batch: r.batch,
        };
        let swept = self
            .guarded("retention", self.store().retention_sweep(&periods))
            .await?;
        let t = self.telemetry();
        t.erased("transcript", swept.transcripts);
        t.erased("metadata", swept.metadata);
        t.erased("audit", swept.audit);
        Ok(swept)
    }

    /// Erases conversation `conv` at once, live or closed: a live one ends first (reason `erased`:
    /// the counsellor's console drops it), then its data key is destroyed and everything else of
    /// it deleted. Audited as `conversation.erase` by `actor` (`contact` or a supervisor's
    /// username) with the channel and `reason`, never content. Returns the conversation's channel.
    pub async fn erase(
        &self,
        conv: &str,
        actor: &str,
        reason: &str,
    ) -> Result<String, RouterError> {
        let rec = self.conversation_record(conv).await?;
        let channel = rec.get("channel").unwrap_or("unknown").to_owned();
        let outcome = self.guarded("erase", self.store().erase(conv)).await?;
        self.observe(&outcome.events);
        self.inner.keys.forget(conv);
        if outcome.status == "not_found" {
            // Another request erased it between the read and the script.
            return Err(RouterError::UnknownConversation);
        }
        self.telemetry().erased("request", 1);
        let why = format!("channel={channel}; reason={reason}");
        self.audit(actor, ERASE_ACTION, conv, &why).await?;
        Ok(channel)
    }

    /// The contact asked to erase their conversation (web chat's `forget`, Telegram's `/forget`,
    /// the SMS keyword).
    pub async fn erase_by_contact(&self, conv: &str) -> Result<String, RouterError> {
        self.erase(conv, "contact", "contact request").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_outlive_metadata_and_the_dashboard_week() {
        let mut r = Retention::default();
        assert_eq!(stats_keep_s(&r), 91 * 24 * 3600);
        r.metadata_s = 5;
        assert_eq!(stats_keep_s(&r), 8 * 24 * 3600);
    }
}
