//! The audit log: an append-only record of who did what to which conversation, when and why
//! (transcript reads, monitoring, whispers, transfers, erasures, exports, break-glass steps,
//! logins and account changes). It must never hold message text or a raw identifier: the actor is
//! a staff username (or `cli`, or `unknown` for a failed login under a name that is no account, so
//! a password typed into the username field is never kept), the conversation is its random id, and
//! no source address is recorded at all.

use crate::error::{RouterError, StoreError};
use crate::store::{AuditEntry, Store};
use crate::Router;

/// Every kind of entry the log holds. The names are what `GET /api/audit?action=` and the export
/// show; they never change once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    TranscriptRead,
    ConversationMonitor,
    ConversationWhisper,
    ConversationTransfer,
    ConversationErase,
    ContactBlock,
    AuditExport,
    BreakGlassRequest,
    BreakGlassApprove,
    BreakGlassDeny,
    BreakGlassExpire,
    BreakGlassReveal,
    Login,
    LoginFailed,
    Logout,
    UserAdd,
    UserDisable,
    UserLock,
    UserUnlock,
    UserTotpEnrol,
}

impl AuditAction {
    /// Every action, for parsing and for documentation.
    pub const ALL: [AuditAction; 20] = [
        AuditAction::TranscriptRead,
        AuditAction::ConversationMonitor,
        AuditAction::ConversationWhisper,
        AuditAction::ConversationTransfer,
        AuditAction::ConversationErase,
        AuditAction::ContactBlock,
        AuditAction::AuditExport,
        AuditAction::BreakGlassRequest,
        AuditAction::BreakGlassApprove,
        AuditAction::BreakGlassDeny,
        AuditAction::BreakGlassExpire,
        AuditAction::BreakGlassReveal,
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::UserAdd,
        AuditAction::UserDisable,
        AuditAction::UserLock,
        AuditAction::UserUnlock,
        AuditAction::UserTotpEnrol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TranscriptRead => "transcript.read",
            AuditAction::ConversationMonitor => "conversation.monitor",
            AuditAction::ConversationWhisper => "conversation.whisper",
            AuditAction::ConversationTransfer => "conversation.transfer",
            AuditAction::ConversationErase => "conversation.erase",
            AuditAction::ContactBlock => "contact.block",
            AuditAction::AuditExport => "audit.export",
            AuditAction::BreakGlassRequest => "break_glass.request",
            AuditAction::BreakGlassApprove => "break_glass.approve",
            AuditAction::BreakGlassDeny => "break_glass.deny",
            AuditAction::BreakGlassExpire => "break_glass.expire",
            AuditAction::BreakGlassReveal => "break_glass.reveal",
            AuditAction::Login => "session.login",
            AuditAction::LoginFailed => "session.login_failed",
            AuditAction::Logout => "session.logout",
            AuditAction::UserAdd => "user.add",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserLock => "user.lock",
            AuditAction::UserUnlock => "user.unlock",
            AuditAction::UserTotpEnrol => "user.totp_enrol",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The actor of entries written by the command line (an operator on a server, not a session).
pub const CLI_ACTOR: &str = "cli";
/// The actor of a failed login under a username that is no account.
pub const UNKNOWN_ACTOR: &str = "unknown";
/// The longest reason kept; staff write these, so they are bounded and stripped of control
/// characters.
const MAX_REASON_CHARS: usize = 500;
/// The most entries one query reads from Redis while looking for matches, so a filter that
/// matches little can not make one request read an unbounded log.
const MAX_SCAN: usize = 200_000;
/// Entries read from Redis per round trip.
const PAGE: usize = 500;

/// Which entries a query keeps; every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Entries at or before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub conversation: Option<String>,
}

impl AuditFilter {
    fn keeps(&self, e: &AuditEntry) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.action, &e.action)
            && is(&self.actor, &e.actor)
            && is(&self.conversation, &e.conversation)
    }

    /// The stream bound of the lower end (`-`: the start).
    fn low(&self) -> String {
        self.since_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.max(0).to_string())
    }

    /// The stream bound of the upper end (`+`: the end); an id of ms alone includes that ms.
    fn high(&self) -> String {
        self.until_ms
            .map_or_else(|| "+".to_owned(), |ms| ms.max(0).to_string())
    }
}

/// The audit log over the store. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub fn new(store: Store) -> AuditLog {
        AuditLog { store }
    }

    /// Appends one entry; `why` is cut to a bounded, printable reason.
    pub async fn record(
        &self,
        actor: &str,
        action: AuditAction,
        conversation: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let why: String = why
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_REASON_CHARS)
            .collect();
        self.store
            .audit(actor, action.as_str(), conversation, &why)
            .await
            .map(|_| ())
    }

    /// The newest `limit` entries that `filter` keeps, newest first.
    pub async fn newest(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        let mut high = filter.high();
        let mut scanned = 0;
        while out.len() < limit && scanned < MAX_SCAN {
            let page = self
                .store
                .audit_page(true, &high, &filter.low(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            high = format!("({}", last.id);
            scanned += page.len();
            let full = page.len() == PAGE;
            out.extend(page.into_iter().filter(|e| filter.keeps(e)));
            if !full {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The next page of the export, oldest first: up to `count` entries that `filter` keeps,
    /// after the entry id `after` (from the start when `None`), and the cursor for the next call
    /// (`None` once the stream is read to the filter's end).
    pub async fn page_after(
        &self,
        filter: &AuditFilter,
        after: Option<&str>,
        count: usize,
    ) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
        let low = after.map_or_else(|| filter.low(), |id| format!("({id}"));
        let page = self
            .store
            .audit_page(false, &low, &filter.high(), count.max(1))
            .await?;
        let next = (page.len() == count.max(1))
            .then(|| page.last().map(|e| e.id.clone()))
            .flatten();
        Ok((page.into_iter().filter(|e| filter.keeps(e)).collect(), next))
    }
}

impl Router {
    /// Writes a line to the audit log. `action` is one of [`AuditAction`]'s names (for example
    /// `"conversation.erase"` or `"contact.block"`); anything else is refused, so the log holds
    /// only kinds of entries that are documented.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        conv: &str,
        why: &str,
    ) -> Result<(), RouterError> {
        let action = AuditAction::parse(action).ok_or_else(|| {
            RouterError::Setup(format!(
                "{action:?} is not an audit action; add it to router/src/audit.rs"
            ))
        })?;
        self.record(actor, action, conv, why).await
    }

    /// Writes a typed line to the audit log.
    pub async fn record(
        &self,
        actor: &str,
        action: AuditAction,
        conv: &str,
        why: &str,
    ) -> Result<(), RouterError> {
        let log = self.audit_trail();
        self.guarded("audit", log.record(actor, action, conv, why))
            .await
    }

    /// The newest `limit` entries `filter` keeps, newest first.
    pub async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, RouterError> {
        let log = self.audit_trail();
        self.guarded("audit", log.newest(filter, limit)).await
    }

    /// The audit log of this node's store.
    pub fn audit_trail(&self) -> AuditLog {
        AuditLog::new(self.store().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_and_names_are_unique() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
        assert_eq!(AuditAction::parse("erase"), None);
    }
}
