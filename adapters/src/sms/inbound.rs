//! Acting on one text: a number without a live conversation starts one, later texts join it, an
//! end keyword (or the provider's opt-out) ends it, a forget keyword erases it, media is withheld.
//!
//! A text is handled at most once in effect: it is stored under its provider id in the same atomic
//! step as storing it (the conversation's client-id rule), a number has at most one live
//! conversation, and a text already handled is skipped (so a retried `END` never starts a new
//! conversation). Provider ids are kept only as short hashes.

use helpline_router::RouterError;
use ring::digest;

use super::{Incoming, Provider, Sms, CHANNEL};
use crate::sender::Delivery;

/// First-word keywords that choose a new conversation's language.
const LANGUAGE_KEYWORDS: &[(&str, &str)] = &[
    ("RO", "ro"),
    ("RU", "ru"),
    ("UA", "uk"),
    ("UK", "uk"),
    ("EN", "en"),
];

impl Sms {
    /// Handles one text. An error means it was not stored (Redis) and should come again.
    pub(super) async fn handle(&self, msg: Incoming) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let key = short_hash(&msg.id);
        if router.update_seen(CHANNEL, &key).await? {
            return Ok(());
        }
        if !msg.media.is_empty() {
            self.delete_media(&msg);
        }
        let live = router.live_conversation(CHANNEL, &msg.from).await?;
        let sms = &router.config().channels.sms;
        let handled = if msg.opted_out || is_keyword(&sms.end_keywords, &msg.text) {
            self.end(live.as_deref(), msg.opted_out).await
        } else if is_keyword(&sms.forget_keywords, &msg.text) {
            self.forget(live.as_deref(), &msg.from).await
        } else {
            self.relay(live, &msg, &key).await
        };
        match handled {
            Err(RouterError::Store(e)) => return Err(RouterError::Store(e)),
            Err(e) => tracing::info!(code = e.code(), "an SMS was refused"),
            Ok(()) => {}
        }
        router.mark_update(CHANNEL, &key).await
    }

    /// Ends the number's live conversation, if any. After an opt-out nothing more can be sent, so
    /// the number is forgotten first (the end notice then has nowhere to go and is dropped).
    async fn end(&self, live: Option<&str>, opted_out: bool) -> Result<(), RouterError> {
        let Some(conv) = live else {
            return Ok(());
        };
        let router = &self.inner.router;
        if opted_out {
            router.forget_address(conv).await?;
        }
        router.end_by_contact(conv, "contact_ended").await
    }

    /// Erases the number's live conversation at once (its data key first) and sends one
    /// confirmation, straight to the number: the conversation, and with it its outbox, is gone.
    async fn forget(&self, live: Option<&str>, from: &str) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let (lang, code) = match live {
            Some(conv) => {
                let rec = router.conversation_record(conv).await?;
                let lang = rec.get("lang").unwrap_or("en").to_owned();
                match router.erase_by_contact(conv).await {
                    Ok(_) | Err(RouterError::UnknownConversation) => {}
                    Err(e) => return Err(e),
                }
                (lang, "forgotten")
            }
            None => (
                router.config().channels.sms.default_language.clone(),
                "forget_nothing",
            ),
        };
        let text = router.notices().text(&lang, code, &[]);
        match self.inner.provider.send(from, &text).await {
            Delivery::Accepted => {}
            Delivery::RetryAfter(_, why)
            | Delivery::Transient(why)
            | Delivery::Blocked(why)
            | Delivery::Refused(why) => {
                tracing::info!(why, "could not confirm an erasure by SMS");
            }
        }
        Ok(())
    }

    /// Stores the text (and withholds its media) in the live conversation, or a new one.
    async fn relay(
        &self,
        live: Option<String>,
        msg: &Incoming,
        key: &str,
    ) -> Result<(), RouterError> {
        let router = &self.inner.router;
        let (conv, text) = match live {
            Some(conv) => (conv, msg.text.trim()),
            None => {
                let (lang, rest) = self.language_of(msg.text.trim());
                let conv = match router
                    .start_conversation(CHANNEL, Some(&msg.from), &lang, None)
                    .await
                {
                    Ok(started) => started.conversation,
                    Err(RouterError::Refused("already_started", _)) => {
                        match router.live_conversation(CHANNEL, &msg.from).await? {
                            Some(conv) => conv,
                            None => return Ok(()),
                        }
                    }
                    Err(e) => return Err(e),
                };
                (conv, rest)
            }
        };
        if !text.is_empty() {
            match router
                .contact_message(&conv, text, &format!("sms-{key}"))
                .await
            {
                Ok(_) | Err(RouterError::Ended) => {}
                Err(e) => return Err(e),
            }
        }
        if !msg.media.is_empty() {
            match router.withhold_media(&conv, &format!("smsm-{key}")).await {
                Ok(_) | Err(RouterError::Ended) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The language a first text asks for with its first word (`RU mi-e frică` → `ru`), and the
    /// text without it; else the configured default and the whole text.
    fn language_of<'t>(&self, text: &'t str) -> (String, &'t str) {
        let config = self.inner.router.config();
        let default = config.channels.sms.default_language.clone();
        let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let first = first.trim_end_matches(['.', ',', '!', ':']);
        let chosen = LANGUAGE_KEYWORDS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(first))
            .map(|(_, lang)| *lang)
            .filter(|lang| config.routing.languages.iter().any(|l| l == lang));
        match chosen {
            Some(lang) => (lang.to_owned(), rest.trim()),
            None => (default, text),
        }
    }

    /// Deletes the message's media at the provider when configured, in the background (the
    /// webhook's answer does not wait for it). The media is never fetched.
    fn delete_media(&self, msg: &Incoming) {
        if !self.inner.router.config().channels.sms.delete_media {
            return;
        }
        let sms = self.clone();
        let message = msg.id.clone();
        let media: Vec<String> = msg
            .media
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect();
        tokio::spawn(async move {
            for item in media {
                if let Err(why) = sms.inner.provider.delete_media(&message, &item).await {
                    tracing::info!(why, "could not delete withheld media at the SMS provider");
                }
            }
        });
    }
}

/// Whether `text`, alone, is one of `keywords` (any case, a final `.` or `!` ignored).
fn is_keyword(keywords: &[String], text: &str) -> bool {
    let text = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    keywords.iter().any(|k| k.trim().to_lowercase() == text)
}

/// A short one-way hash (hex) of a provider id that need not be kept as it is.
fn short_hash(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}
