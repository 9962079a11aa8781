//! Acting on one update: `/start`, `/end`, `/forget`, text, media, and button presses.
//!
//! Every update is handled at most once in effect: a message is stored once per update id in the
//! same atomic step as storing it (the conversation's client-id rule), a contact has at most one
//! live conversation (so a repeated `/start` opens nothing), and an update already handled is
//! skipped. Prompts before a conversation exists (language, topic) are sent directly: there is no
//! conversation yet whose outbox could hold them, and a lost prompt only means asking again.

use std::time::Duration;

use helpline_router::RouterError;
use ring::digest;

use super::buttons::{self, Choice};
use super::updates::{Command, From, Kind, Update};
use super::{Telegram, CHANNEL};

/// How long Telegram lets a bot delete messages of a private chat, and so how long their ids are
/// kept.
pub(super) const DELETABLE_FOR: Duration = Duration::from_secs(48 * 3600);

impl Telegram {
    /// Handles one update. An error means it was not handled (Redis is unavailable) and should come
    /// again; anything else (a refusal, a failed prompt) is handled as far as it can be.
    pub async fn handle(&self, update: Update) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let update_key = update.id.to_string();
        if router.update_seen(CHANNEL, &update_key).await? {
            return Ok(());
        }
        let handled = match update.kind {
            Kind::Command(from, Command::Start) => self.start(&from).await,
            Kind::Command(from, Command::End) => self.end(&from).await,
            Kind::Command(from, Command::Forget) => self.forget(&from).await,
            Kind::Text(from, text) => self.text(&from, &text, update.id).await,
            Kind::Media(from, album) => self.media(&from, album.as_deref(), update.id).await,
            Kind::Button {
                chat,
                lang,
                query,
                message,
                data,
            } => {
                self.button(chat, lang.as_deref(), &query, message, &data)
                    .await
            }
            Kind::Other => Ok(()),
        };
        match handled {
            Err(RouterError::Store(e)) => return Err(RouterError::Store(e)),
            Err(e) => tracing::info!(
                update = update.id,
                code = e.code(),
                "a Telegram update was refused"
            ),
            Ok(()) => {}
        }
        router.mark_update(CHANNEL, &update_key).await
    }

    async fn start(&self, from: &From) -> Result<(), RouterError> {
        let address = from.chat.to_string();
        if let Some(conv) = self
            .inner
            .router
            .live_conversation(CHANNEL, &address)
            .await?
        {
            self.remember(&conv, from.message).await;
            return Ok(());
        }
        self.begin(from.chat, from.lang.as_deref(), None, false)
            .await?;
        Ok(())
    }

    async fn end(&self, from: &From) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let address = from.chat.to_string();
        if let Some(conv) = router.live_conversation(CHANNEL, &address).await? {
            self.remember(&conv, from.message).await;
            router.end_by_contact(&conv, "contact_ended").await?;
        }
        Ok(())
    }

    /// `/forget`: the live conversation's messages are deleted from the chat (as far as Telegram
    /// allows, the command too), then the conversation is erased (its data key first), and the
    /// contact is told in their language. The answer goes straight to the chat: the conversation,
    /// and with it its outbox, is gone.
    async fn forget(&self, from: &From) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let address = from.chat.to_string();
        let (lang, code) = match router.live_conversation(CHANNEL, &address).await? {
            Some(conv) => {
                self.remember(&conv, from.message).await;
                let rec = router.conversation_record(&conv).await?;
                let lang = rec.get("lang").unwrap_or("en").to_owned();
                self.delete_chat(from.chat, &conv, None).await?;
                match router.erase_by_contact(&conv).await {
                    Ok(_) | Err(RouterError::UnknownConversation) => {}
                    Err(e) => return Err(e),
                }
                (lang, "forgotten")
            }
            None => {
                let languages = &router.config().routing.languages;
                let lang = from
                    .lang
                    .as_deref()
                    .filter(|l| languages.iter().any(|x| x == l))
                    .unwrap_or("en");
                (lang.to_owned(), "forget_nothing")
            }
        };
        let text = router.notices().text(&lang, code, &[]);
        if let Err(f) = self.inner.api.send_text(from.chat, &text, None).await {
            tracing::info!(
                why = f.why(),
                "could not confirm an erasure to a Telegram contact"
            );
        }
        Ok(())
    }

    async fn text(&self, from: &From, text: &str, update: i64) -> Result<(), RouterError> {
        let Some(conv) = self.conversation_of(from).await? else {
            return Ok(());
        };
        self.remember(&conv, from.message).await;
        let client_id = format!("tg-{update}");
        match self
            .inner
            .router
            .contact_message(&conv, text, &client_id)
            .await
        {
            Ok(_) | Err(RouterError::Ended) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Media is never taken: the message is deleted from the chat (never downloaded), the
    /// counsellor sees `[media withheld]` and the contact gets the `media_withheld` notice, once
    /// per message or album.
    async fn media(
        &self,
        from: &From,
        album: Option<&str>,
        update: i64,
    ) -> Result<(), RouterError> {
        if let Err(f) = self.inner.api.delete(from.chat, from.message).await {
            tracing::info!(
                why = f.why(),
                "could not delete withheld media from the chat"
            );
        }
        let Some(conv) = self.conversation_of(from).await? else {
            return Ok(());
        };
        // An album is one withheld item; its group id is kept only as a hash.
        let client_id = match album {
            Some(group) => format!("tgg-{}", short_hash(group)),
            None => format!("tg-{update}"),
        };
        match self.inner.router.withhold_media(&conv, &client_id).await {
            Ok(_) | Err(RouterError::Ended) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn button(
        &self,
        chat: i64,
        lang: Option<&str>,
        query: &str,
        message: Option<i64>,
        data: &str,
    ) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let mut toast = None;
        match buttons::parse(data) {
            Some(Choice::Language(l)) => {
                self.begin(chat, Some(&l), None, false).await?;
            }
            Some(Choice::Topic { lang, topic }) => {
                self.begin(chat, Some(&lang), topic.as_deref(), true)
                    .await?;
            }
            Some(Choice::Delete(conv)) => {
                if router
                    .is_contact_of(&conv, CHANNEL, &chat.to_string())
                    .await?
                {
                    self.delete_chat(chat, &conv, message).await?;
                    let rec = router.conversation_record(&conv).await?;
                    let lang = rec.get("lang").or(lang).unwrap_or("en");
                    toast = Some(router.notices().text(lang, "deleted", &[]));
                }
            }
            Some(Choice::Keep(_)) | None => {}
        }
        if let Err(f) = self.inner.api.answer_button(query, toast.as_deref()).await {
            tracing::debug!(why = f.why(), "could not answer a button press");
        }
        Ok(())
    }

    /// Deletes the conversation's messages (both ways, as far as Telegram still allows) and the
    /// offer itself from the chat.
    async fn delete_chat(
        &self,
        chat: i64,
        conv: &str,
        offer: Option<i64>,
    ) -> Result<(), RouterError> {
        let mut ids = self.inner.router.take_channel_messages(conv).await?;
        ids.extend(offer);
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(100) {
            if let Err(f) = self.inner.api.delete_many(chat, chunk).await {
                tracing::info!(conversation = %conv, why = f.why(), "could not delete some messages");
            }
        }
        Ok(())
    }

    /// The contact's live conversation, or a new one when their language is known (a new message
    /// starts a new conversation); otherwise they are asked and `None` is returned.
    async fn conversation_of(&self, from: &From) -> Result<Option<String>, RouterError> {
        let address = from.chat.to_string();
        if let Some(conv) = self
            .inner
            .router
            .live_conversation(CHANNEL, &address)
            .await?
        {
            return Ok(Some(conv));
        }
        self.begin(from.chat, from.lang.as_deref(), None, false)
            .await
    }

    /// Opens a conversation in `lang` once the questions are answered: the language (when the
    /// Telegram setting is not one of ours) and, where the helpline routes by topic, the topic.
    async fn begin(
        &self,
        chat: i64,
        lang: Option<&str>,
        topic: Option<&str>,
        topic_asked: bool,
    ) -> Result<Option<String>, RouterError> {
        let router = &self.inner.router;
        let routing = &router.config().routing;
        let Some(lang) = lang.filter(|l| routing.languages.iter().any(|x| x == l)) else {
            let (text, rows) = buttons::languages(router);
            self.prompt(chat, &text, &rows).await;
            return Ok(None);
        };
        if !topic_asked && !routing.routed_topics.is_empty() {
            let (text, rows) = buttons::topics(router, lang);
            self.prompt(chat, &text, &rows).await;
            return Ok(None);
        }
        let address = chat.to_string();
        match router
            .start_conversation(CHANNEL, Some(&address), lang, topic)
            .await
        {
            Ok(started) => Ok(Some(started.conversation)),
            Err(RouterError::Refused("already_started", _)) => {
                router.live_conversation(CHANNEL, &address).await
            }
            Err(RouterError::Refused("blocked", _)) => {
                // A supervisor blocked this contact for a while: told kindly, nothing is kept.
                let text = router.notices().text(lang, "blocked", &[]);
                if let Err(f) = self.inner.api.send_text(chat, &text, None).await {
                    tracing::info!(why = f.why(), "could not tell a blocked Telegram contact");
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn prompt(&self, chat: i64, text: &str, rows: &super::api::Buttons) {
        if let Err(f) = self.inner.api.send_text(chat, text, Some(rows)).await {
            tracing::info!(why = f.why(), "could not ask a Telegram contact a question");
        }
    }

    /// Keeps a message id of the conversation so the contact may have it deleted later.
    pub(super) async fn remember(&self, conv: &str, message: i64) {
        let router = &self.inner.router;
        if let Err(e) = router
            .remember_channel_message(conv, message, DELETABLE_FOR)
            .await
        {
            tracing::debug!(error = %e, "a message id was not kept for deletion");
        }
    }
}

/// A short one-way hash (hex) of a provider id that need not be kept as it is.
fn short_hash(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}
