//! Supervisors' blocks: a contact who floods or abuses the line can be kept from starting new
//! conversations for a set time, never for ever and never automatically (silent and prank contacts
//! are a large share of any helpline's traffic, and some are a cry for help).
//!
//! A block holds the contact's pseudonym, never an address, in Redis with an expiry, and every
//! block is written to the audit log with who set it and why. Web chat contacts get a fresh
//! pseudonym for every conversation (nothing lasting identifies them, by design), so they cannot
//! be blocked: the supervisor is told so rather than given a block that would not hold.

use crate::{Router, RouterError};

/// The longest block a supervisor may set: one week.
pub const MAX_BLOCK_MINUTES: u64 = 7 * 24 * 60;

/// The longest reason kept in the audit log.
const MAX_REASON_CHARS: usize = 500;

impl Router {
    /// Blocks the contact of `conv` from starting conversations for `minutes`, on behalf of
    /// `actor` (a supervisor), and audits it. The conversation itself goes on until someone
    /// closes it. Returns the seconds the block holds.
    pub async fn block(
        &self,
        actor: &str,
        conv: &str,
        minutes: u64,
        reason: &str,
    ) -> Result<u64, RouterError> {
        if !(1..=MAX_BLOCK_MINUTES).contains(&minutes) {
            return Err(RouterError::refused(
                "bad_request",
                format!("minutes must be from 1 to {MAX_BLOCK_MINUTES} (a week)"),
            ));
        }
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > MAX_REASON_CHARS
            || reason.chars().any(char::is_control)
        {
            return Err(RouterError::refused(
                "bad_request",
                format!("reason must be 1 to {MAX_REASON_CHARS} characters on one line"),
            ));
        }
        let record = self.conversation_record(conv).await?;
        let pseudonym = match (record.get("channel"), record.get("pseudonym")) {
            (Some("webchat"), _) => {
                return Err(RouterError::refused(
                    "not_blockable",
                    "web chat contacts get a new pseudonym for every conversation, so a block \
                     would not hold; close the conversation instead",
                ))
            }
            (_, Some(p)) => p.to_owned(),
            _ => return Err(RouterError::UnknownConversation),
        };
        let seconds = minutes * 60;
        self.guarded("block", self.store().block_pseudonym(&pseudonym, seconds))
            .await?;
        let why = format!("{minutes} min: {reason}");
        self.audit(actor, "contact.block", conv, &why).await?;
        tracing::info!(conversation = %conv, actor, minutes, "contact blocked");
        Ok(seconds)
    }

    /// Refuses (`blocked`) a new conversation of a contact a supervisor blocked.
    pub(crate) async fn refuse_blocked(&self, pseudonym: &str) -> Result<(), RouterError> {
        let left = self
            .guarded("block", self.store().blocked_for(pseudonym))
            .await?;
        match left {
            Some(seconds) => Err(RouterError::refused(
                "blocked",
                format!(
                    "this contact may not start a conversation for {} more minutes",
                    seconds.div_ceil(60)
                ),
            )),
            None => Ok(()),
        }
    }
}
