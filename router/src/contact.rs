//! What a contact can do, whatever their channel: start a conversation, resume it, write, leave;
//! and the queue feedback they see while they wait.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::conversation::{random_id, random_token, token_hash, Urgency};
use crate::error::RouterError;
use crate::events::Event;
use crate::store::{Appended, ConversationRecord};
use crate::vault::Purpose;
use crate::Router;

/// How long a resume token stays valid (a day: long enough for a phone that slept).
const RESUME_TTL_S: u64 = 24 * 3600;

/// A conversation just opened.
#[derive(Debug)]
pub struct Started {
    pub conversation: String,
    /// The contact's resume token; Redis keeps only its hash.
    pub token: String,
    pub alias: String,
    pub events: Vec<Event>,
}

/// A contact's place in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    pub state: String,
    pub position: Option<u64>,
    pub estimated_wait_s: Option<u64>,
}

impl Router {
    /// Opens a conversation. `address` is the contact's channel address (Telegram chat id, phone
    /// number), or `None` for web chat, where the socket itself is the way back.
    pub async fn start_conversation(
        &self,
        channel: &str,
        address: Option<&str>,
        lang: &str,
        topic: Option<&str>,
    ) -> Result<Started, RouterError> {
        let routing = &self.config().routing;
        if !routing.languages.iter().any(|l| l == lang) {
            return Err(RouterError::refused(
                "bad_language",
                format!("language must be one of: {}", routing.languages.join(", ")),
            ));
        }
        if let Some(t) = topic {
            if !routing.topics.iter().any(|x| x == t) {
                return Err(RouterError::refused(
                    "bad_topic",
                    format!("topic must be one of: {}", routing.topics.join(", ")),
                ));
            }
        }
        let id = random_id();
        let token = random_token();
        // Web chat has no lasting address: each conversation gets its own pseudonym.
        let pseudonym = self
            .inner
            .pseudonyms
            .pseudonym(channel, address.unwrap_or(&id));
        if address.is_some() {
            self.refuse_blocked(&pseudonym).await?;
        }
        let alias = crate::pseudonym::alias(&pseudonym);
        let (key, wrapped) = self.inner.vault.new_data_key(&id)?;
        let mut skills = vec![lang.to_owned()];
        if let Some(t) = topic.filter(|t| routing.routed_topics.iter().any(|r| r == t)) {
            skills.push(t.to_owned());
        }
        skills.sort();
        let mut fields = serde_json::json!({
            "channel": channel,
            "lang": lang,
            "topic": topic.unwrap_or(""),
            "skills": skills.join(","),
            "alias": alias,
            "pseudonym": pseudonym,
            "dek": B64.encode(wrapped),
            "urgency": Urgency::Normal.as_str(),
        });
        if let Some(addr) = address {
            let sealed = key.seal(&id, Purpose::Address, 0, addr.as_bytes())?;
            fields["addr"] = serde_json::Value::String(B64.encode(sealed));
        }
        self.inner.keys.put(&id, key);
        let events = self
            .routed(
                "create",
                self.store()
                    .create_conversation(&id, &fields, &token_hash(&token), RESUME_TTL_S),
            )
            .await
            .inspect_err(|_| self.inner.keys.forget(&id))?;
        Ok(Started {
            conversation: id,
            token,
            alias,
            events,
        })
    }

    /// The conversation behind a resume token, if the token is known.
    pub async fn resume(&self, token: &str) -> Result<(String, ConversationRecord), RouterError> {
        let target = self
            .guarded("resume", self.store().resume_target(&token_hash(token)))
            .await?;
        let conv = target.ok_or_else(|| {
            RouterError::refused(
                "unknown_token",
                "that resume token is unknown or expired; start again",
            )
        })?;
        let rec = self
            .guarded("conversation", self.store().conversation(&conv))
            .await?
            .ok_or(RouterError::UnknownConversation)?;
        Ok((conv, rec))
    }

    /// The contact's channel address, opened (for replies on Telegram and SMS).
    pub async fn contact_address(&self, conv: &str) -> Result<Option<String>, RouterError> {
        let rec = self
            .guarded("conversation", self.store().conversation(conv))
            .await?;
        let Some(sealed) = rec.as_ref().and_then(|r| r.get("addr")) else {
            return Ok(None);
        };
        let sealed = B64
            .decode(sealed)
            .map_err(|_| RouterError::Vault(crate::vault::VaultError::Corrupt))?;
        let key = self.data_key(conv).await?;
        let clear = key.open(conv, Purpose::Address, 0, &sealed)?;
        Ok(Some(String::from_utf8_lossy(&clear).into_owned()))
    }

    /// A message from the contact: graded for urgency in memory, sealed, stored once per
    /// `client_msg_id`. The returned id is what the contact's `ack` carries.
    pub async fn contact_message(
        &self,
        conv: &str,
        text: &str,
        client_msg_id: &str,
    ) -> Result<Appended, RouterError> {
        let appended = self
            .append(conv, "contact", text, client_msg_id, false, "")
            .await?;
        if !appended.duplicate {
            if let Some(grade) = self.inner.grader.grade(text) {
                // Only the level and category are kept; the phrase that matched is not.
                let store = self.store();
                let raised =
                    store.set_urgency(conv, grade.level.as_str(), true, grade.category.as_str());
                let outcome = self.guarded("urgency", raised).await?;
                self.observe(&outcome.events);
            }
        }
        Ok(appended)
    }

    /// Seals and appends a message; refusals become errors.
    pub(crate) async fn append(
        &self,
        conv: &str,
        from: &str,
        text: &str,
        client_msg_id: &str,
        whisper: bool,
        staff: &str,
    ) -> Result<Appended, RouterError> {
        let key = self.data_key(conv).await?;
        let seq = self.next_seq(conv).await?;
        let sealed = self.seal_message(&key, conv, seq, text)?;
        let store = self.store();
        let appended = self
            .guarded(
                "message",
                store.append_message(conv, from, seq, &sealed, client_msg_id, whisper, staff),
            )
            .await?;
        self.settle(appended, from, whisper)
    }

    /// Counts a message just stored; a refusal becomes its error.
    pub(crate) fn settle(
        &self,
        appended: Appended,
        from: &str,
        whisper: bool,
    ) -> Result<Appended, RouterError> {
        match appended.id.as_str() {
            "ended" => return Err(RouterError::Ended),
            "not_yours" | "not_active" => return Err(crate::refusal(&appended.id)),
            _ => {}
        }
        if !appended.duplicate {
            let (channel, first) = (&appended.channel, appended.first_response_ms);
            self.telemetry()
                .message_stored(channel, from, whisper, first);
        }
        Ok(appended)
    }

    /// Tells the other side that `from` (`contact` or `counsellor`) is typing; nothing is stored.
    pub async fn typing(&self, conv: &str, from: &str) -> Result<(), RouterError> {
        let rec = self
            .guarded("conversation", self.store().conversation(conv))
            .await?;
        let agent = rec
            .as_ref()
            .and_then(|r| r.get("counsellor"))
            .map(String::from);
        let event = serde_json::json!({ "k": "typing", "conv": conv, "f": from, "agent": agent });
        self.guarded("typing", self.store().publish(&event)).await
    }

    /// The contact left (`contact_ended`: quick exit or `end`) or went silent (`inactive`).
    pub async fn end_by_contact(
        &self,
        conv: &str,
        reason: &'static str,
    ) -> Result<(), RouterError> {
        match self
            .routed("end", self.store().end_conversation(conv, reason))
            .await
        {
            Ok(_) => Ok(()),
            Err(RouterError::Refused("ended", _)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Queue feedback for many waiting conversations in one round trip.
    pub async fn queue_status(&self, convs: &[String]) -> Result<Vec<QueueStatus>, RouterError> {
        let rows = self
            .guarded("positions", self.store().positions(convs))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(state, position, est)| QueueStatus {
                state,
                position,
                estimated_wait_s: est.map(|ms| ms.div_ceil(1000)),
            })
            .collect())
    }
}
