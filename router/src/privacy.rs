//! The disclosure drill (`helpline privacy report`): what the helpline holds right now, by category,
//! for a data-protection officer, and whether anything is older than its retention period.
//!
//! Read-only: the store scans with SCAN and returns counts and times, never a value. A lag of two
//! retention sweeps is allowed before something counts as overdue, since sweeps run on a schedule.

use serde::Serialize;

use helpline_config::Config;

use crate::conversation::rfc3339;
use crate::error::RouterError;
use crate::store::{privacy::Tally, Store};

/// One category of what is held.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Category {
    /// A stable name (`conversations.live`, `audit.entries`, …).
    pub name: &'static str,
    pub count: u64,
    /// The oldest item's time (RFC 3339), where the category has one.
    pub oldest: Option<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// When it was made (RFC 3339).
    pub at: String,
    pub categories: Vec<Category>,
    /// Data keys by master key version (`"unreadable"` for keys no version names).
    pub data_keys: Vec<(String, u64)>,
    /// One line per retention rule broken; empty when nothing is held past its period.
    pub overdue: Vec<String>,
}

impl Report {
    /// Whether everything held is within its retention period.
    pub fn compliant(&self) -> bool {
        self.overdue.is_empty()
    }
}

fn category(name: &'static str, t: Tally) -> Category {
    Category {
        name,
        count: t.count,
        oldest: t.oldest_ms.map(rfc3339),
    }
}

/// Scans Redis and builds the report as of `now_ms`.
pub async fn report(store: &Store, config: &Config, now_ms: i64) -> Result<Report, RouterError> {
    let h = store.holdings().await?;
    let r = &config.retention;
    let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let grace = ms(r.sweep_every_s.saturating_mul(2));
    let transcripts_before = now_ms - ms(r.transcripts_s) - grace;
    let metadata_before = now_ms - ms(r.metadata_s) - grace;
    let audit_before = now_ms - ms(r.audit_s) - grace;

    let mut overdue = Vec::new();
    let late_transcripts = h
        .closed_list
        .iter()
        .filter(|c| c.transcript && c.closed_ms < transcripts_before)
        .count();
    if late_transcripts > 0 {
        overdue.push(format!(
            "{late_transcripts} closed conversations still hold a transcript past \
             retention.transcripts_s ({} s)",
            r.transcripts_s
        ));
    }
    let late_metadata = h
        .closed_list
        .iter()
        .filter(|c| c.closed_ms < metadata_before)
        .count();
    if late_metadata > 0 {
        overdue.push(format!(
            "{late_metadata} closed conversations still hold metadata past retention.metadata_s \
             ({} s)",
            r.metadata_s
        ));
    }
    if h.orphan_streams > 0 {
        overdue.push(format!(
            "{} message streams belong to no conversation (left over from an interrupted erasure)",
            h.orphan_streams
        ));
    }
    if h.audit_entries.oldest_ms.is_some_and(|o| o < audit_before) {
        overdue.push(format!(
            "audit entries older than retention.audit_s ({} s) remain",
            r.audit_s
        ));
    }
    let categories = vec![
        category("conversations.live", h.live),
        category("conversations.closed", h.closed),
        category("messages.streams", h.message_streams),
        category("messages.entries", h.message_entries),
        category("audit.entries", h.audit_entries),
        category("sessions", h.sessions),
        category("resume_tokens", h.resume_tokens),
        category("outbox.entries", h.outbox_entries),
        category("channel_state.keys", h.channel_state),
        category("aggregates.days", h.aggregate_days),
        category("accounts.keys", h.accounts),
        category("routing.keys", h.routing_keys),
    ];
    let data_keys = h
        .data_keys
        .iter()
        .map(|(v, n)| {
            let name = v.map_or_else(|| "unreadable".to_owned(), |v| format!("v{v}"));
            (name, *n)
        })
        .collect();
    Ok(Report {
        at: rfc3339(now_ms),
        categories,
        data_keys,
        overdue,
    })
}
