//! What staff can do to conversations: status, offers, messages, urgency, transfer, close, and the
//! views of the queue and of the counsellors. The router checks ownership here; the gateway checks
//! roles before calling.

use std::collections::HashMap;

use serde::Serialize;

use crate::accounts::{Account, Role};
use crate::audit::AuditAction;
use crate::conversation::{now_ms, ConversationView, Message, Urgency};
use crate::error::RouterError;
use crate::store::{Appended, ConversationRecord};
use crate::Router;

/// Where a transfer goes.
#[derive(Debug, Clone)]
pub enum TransferTarget {
    /// Back to the queue, requiring these skills.
    Skills(Vec<String>),
    /// Straight to this counsellor.
    Counsellor(String),
}

/// A counsellor as supervisors see them.
#[derive(Debug, Clone, Serialize)]
pub struct CounsellorView {
    pub username: String,
    pub display_name: String,
    pub status: String,
    pub load: u32,
    pub capacity: u32,
    pub skills: Vec<String>,
}

/// What a staff member's `hello` restores: their live conversations and standing offers.
#[derive(Debug, Default)]
pub struct Desk {
    pub status: String,
    pub active: Vec<ConversationView>,
    pub offered: Vec<ConversationView>,
}

/// A short token (outcome, tag): lower-case letters, digits, `-` and `_`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Router {
    /// A staff member connected: their routing profile is written from their account, and what
    /// they hold is returned so a reload loses nothing.
    pub async fn staff_connected(&self, account: &Account) -> Result<Desk, RouterError> {
        let skills = account.skills.join(",");
        let store = self.store();
        let register = store.register_agent(
            &account.username,
            account.capacity,
            &skills,
            &account.display_name,
        );
        let registered = self.guarded("register", register).await?;
        self.observe(&registered.events);
        // Seen at once, so a counsellor who drops within the first second is still re-queued.
        let seen = store.heartbeat(std::slice::from_ref(&account.username), &[]);
        self.guarded("heartbeat", seen).await?;
        let mut desk = self.desk(&account.username).await?;
        desk.status = registered.status;
        Ok(desk)
    }

    /// A staff member's live conversations and standing offers.
    pub async fn desk(&self, username: &str) -> Result<Desk, RouterError> {
        let (active, offered) = self
            .guarded("desk", self.store().agent_conversations(username))
            .await?;
        let status = self
            .guarded("agent", self.store().agent(username))
            .await?
            .status;
        Ok(Desk {
            status,
            active: self.views(&active).await?,
            offered: self.views(&offered).await?,
        })
    }

    async fn views(&self, ids: &[String]) -> Result<Vec<ConversationView>, RouterError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let recs = self
            .guarded("conversations", self.store().conversations(ids))
            .await?;
        let now = now_ms();
        Ok(ids
            .iter()
            .zip(&recs)
            .filter(|(_, r)| r.is_live())
            .map(|(id, r)| ConversationView::from_record(id, r, now))
            .collect())
    }

    /// One conversation as staff see it.
    pub async fn conversation_view(&self, conv: &str) -> Result<ConversationView, RouterError> {
        let rec = self.conversation_record(conv).await?;
        Ok(ConversationView::from_record(conv, &rec, now_ms()))
    }

    /// What a counsellor is shown of a conversation offered to them: from the offer event's
    /// fields, or read when the event has none.
    pub async fn offered_view(
        &self,
        conv: &str,
        fields: &HashMap<String, String>,
    ) -> Result<ConversationView, RouterError> {
        if fields.is_empty() {
            return self.conversation_view(conv).await;
        }
        let rec = ConversationRecord {
            fields: fields.clone(),
        };
        Ok(ConversationView::from_record(conv, &rec, now_ms()))
    }

    /// A conversation's stored routing record.
    pub async fn conversation_record(&self, conv: &str) -> Result<ConversationRecord, RouterError> {
        self.guarded("conversation", self.store().conversation(conv))
            .await?
            .ok_or(RouterError::UnknownConversation)
    }

    /// Checks that `account` may read conversation `conv`: its counsellor, or a supervisor.
    pub async fn may_read(
        &self,
        conv: &str,
        account: &Account,
    ) -> Result<ConversationRecord, RouterError> {
        let rec = self.conversation_record(conv).await?;
        let own = rec.get("counsellor") == Some(account.username.as_str())
            || rec.get("offered_to") == Some(account.username.as_str());
        if own || matches!(account.role, Role::Supervisor | Role::Admin) {
            Ok(rec)
        } else {
            Err(RouterError::refused(
                "forbidden",
                "that conversation is not yours",
            ))
        }
    }

    pub async fn set_status(&self, username: &str, status: &str) -> Result<(), RouterError> {
        if !matches!(status, "available" | "away") {
            return Err(RouterError::refused(
                "bad_status",
                "status must be \"available\" or \"away\"",
            ));
        }
        self.routed("status", self.store().set_status(username, status))
            .await
            .map(|_| ())
    }

    pub async fn accept(&self, conv: &str, username: &str) -> Result<(), RouterError> {
        self.routed("accept", self.store().accept(conv, username))
            .await
            .map(|_| ())
    }

    pub async fn decline(&self, conv: &str, username: &str) -> Result<(), RouterError> {
        self.routed("decline", self.store().decline(conv, username))
            .await
            .map(|_| ())
    }

    /// A message from a counsellor to the contact, in their own active conversation.
    pub async fn counsellor_message(
        &self,
        conv: &str,
        account: &Account,
        text: &str,
        client_msg_id: &str,
    ) -> Result<Appended, RouterError> {
        self.append(
            conv,
            "counsellor",
            text,
            client_msg_id,
            false,
            &account.username,
        )
        .await
    }

    /// A supervisor's note that only the counsellor (and other supervisors) see.
    pub async fn whisper(
        &self,
        conv: &str,
        account: &Account,
        text: &str,
        client_msg_id: &str,
    ) -> Result<Appended, RouterError> {
        let stored = self
            .append(
                conv,
                "supervisor",
                text,
                client_msg_id,
                true,
                &account.username,
            )
            .await?;
        if !stored.duplicate {
            let log = AuditAction::ConversationWhisper;
            self.record(&account.username, log, conv, "whisper").await?;
        }
        Ok(stored)
    }

    /// Re-grades a conversation either way (staff; the grader only raises).
    pub async fn regrade(
        &self,
        conv: &str,
        account: &Account,
        level: Urgency,
    ) -> Result<(), RouterError> {
        self.may_act(conv, account).await?;
        let outcome = self
            .guarded(
                "urgency",
                self.store().set_urgency(conv, level.as_str(), false, ""),
            )
            .await?;
        self.observe(&outcome.events);
        match outcome.status.as_str() {
            "ok" | "unchanged" => Ok(()),
            other => Err(crate::refusal(other)),
        }
    }

    /// Hands a conversation on; a supervisor may hand on anyone's.
    pub async fn transfer(
        &self,
        conv: &str,
        account: &Account,
        target: TransferTarget,
    ) -> Result<(), RouterError> {
        let by = self.acting_as(account);
        let store = self.store();
        let joined;
        let why;
        let call = match &target {
            TransferTarget::Skills(skills) => {
                let known = &self.config().routing;
                if let Some(bad) = skills
                    .iter()
                    .find(|s| !known.languages.contains(s) && !known.topics.contains(s))
                {
                    return Err(RouterError::refused(
                        "bad_skill",
                        format!("unknown skill {bad:?}; use a configured language or topic"),
                    ));
                }
                let mut skills = skills.clone();
                skills.sort();
                skills.dedup();
                joined = skills.join(",");
                why = format!("to the queue for {joined}");
                store.transfer(conv, by, &joined, None)
            }
            TransferTarget::Counsellor(name) => {
                why = format!("to counsellor {name}");
                store.transfer(conv, by, "", Some(name))
            }
        };
        self.routed("transfer", call).await?;
        let log = AuditAction::ConversationTransfer;
        self.record(&account.username, log, conv, &why).await
    }

    /// Ends a conversation with an outcome and tags.
    pub async fn close(
        &self,
        conv: &str,
        account: &Account,
        outcome: &str,
        tags: &[String],
    ) -> Result<(), RouterError> {
        if !is_token(outcome) || tags.len() > 10 || !tags.iter().all(|t| is_token(t)) {
            return Err(RouterError::refused(
                "bad_outcome",
                "outcome and tags are short words of a-z, 0-9, - and _ (at most 10 tags)",
            ));
        }
        let by = self.acting_as(account);
        self.routed(
            "close",
            self.store().close(conv, by, outcome, &tags.join(",")),
        )
        .await
        .map(|_| ())
    }

    /// Counsellors act on their own conversations only; supervisors on any (`None`).
    fn acting_as<'a>(&self, account: &'a Account) -> Option<&'a str> {
        match account.role {
            Role::Supervisor | Role::Admin => None,
            _ => Some(account.username.as_str()),
        }
    }

    async fn may_act(&self, conv: &str, account: &Account) -> Result<(), RouterError> {
        let rec = self.may_read(conv, account).await?;
        if !rec.is_live() {
            return Err(RouterError::Ended);
        }
        Ok(())
    }

    /// The transcript for staff, written to the audit log with who asked and why.
    pub async fn transcript(
        &self,
        conv: &str,
        account: &Account,
        why: &str,
    ) -> Result<Vec<Message>, RouterError> {
        self.may_read(conv, account).await?;
        self.record(&account.username, AuditAction::TranscriptRead, conv, why)
            .await?;
        self.history(conv, None, true).await
    }

    /// Every waiting conversation, longest waiting first (no text, only routing data).
    pub async fn queue(&self) -> Result<Vec<ConversationView>, RouterError> {
        let waiting = self.guarded("queue", self.store().waiting()).await?;
        let ids: Vec<String> = waiting.into_iter().map(|(id, _)| id).collect();
        let mut views = self.views(&ids).await?;
        views.retain(|v| v.state == "queued");
        Ok(views)
    }

    /// Every enabled counsellor (and supervisor) with their live routing state.
    pub async fn counsellors(&self) -> Result<Vec<CounsellorView>, RouterError> {
        let accounts = self.accounts().list().await?;
        let staff: Vec<_> = accounts
            .into_iter()
            .filter(|(a, disabled)| {
                !disabled && matches!(a.role, Role::Counsellor | Role::Supervisor)
            })
            .map(|(a, _)| a)
            .collect();
        let names: Vec<String> = staff.iter().map(|a| a.username.clone()).collect();
        let states = self.guarded("agents", self.store().agents(&names)).await?;
        Ok(staff
            .into_iter()
            .zip(states)
            .map(|(a, s)| CounsellorView {
                status: s.status,
                load: s.load,
                capacity: a.capacity,
                skills: a.skills,
                display_name: a.display_name,
                username: a.username,
            })
            .collect())
    }

    /// How many wait and for how long the longest has (seconds), for the staff `queue` summary.
    pub async fn queue_summary(&self) -> Result<(u64, u64), RouterError> {
        let (count, oldest) = self
            .guarded("queue", self.store().waiting_summary())
            .await?;
        let longest = oldest
            .map(|t| u64::try_from((now_ms() - t) / 1000).unwrap_or(0))
            .unwrap_or(0);
        Ok((count, longest))
    }
}
