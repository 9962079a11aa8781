//! What a channel with its own addresses (Telegram, SMS) needs from the router besides starting and
//! relaying: the live conversation of an address, media withheld, a contact who blocked the
//! channel, the channel's own message ids (so a contact may have them deleted), provider updates
//! already handled, and the polling offset and lease.
//!
//! Addresses arrive here in the clear and leave as pseudonyms: nothing below stores one.

use std::time::Duration;

use crate::conversation::now_ms;
use crate::error::RouterError;
use crate::store::{Appended, NewMessage};
use crate::Router;

/// What the counsellor sees in place of a photo, video, sticker or file.
pub const MEDIA_WITHHELD: &str = "[media withheld]";
/// What the counsellor sees when the contact blocked the channel (the Telegram bot) or opted out
/// of it (SMS `STOP`).
pub const CONTACT_BLOCKED: &str =
    "[the contact blocked the bot or opted out of SMS; the conversation has ended]";

impl Router {
    /// The live conversation of `address` on `channel`, if there is one.
    pub async fn live_conversation(
        &self,
        channel: &str,
        address: &str,
    ) -> Result<Option<String>, RouterError> {
        let pseudonym = self.inner.pseudonyms.pseudonym(channel, address);
        let store = self.store();
        let Some(conv) = self
            .guarded("live", store.live_conversation(&pseudonym))
            .await?
        else {
            return Ok(None);
        };
        let rec = self
            .guarded("conversation", store.conversation(&conv))
            .await?;
        Ok(rec.filter(|r| r.is_live()).map(|_| conv))
    }

    /// Whether conversation `conv` is the one of `address` on `channel` (before acting on a
    /// request that names a conversation, e.g. a button press).
    pub async fn is_contact_of(
        &self,
        conv: &str,
        channel: &str,
        address: &str,
    ) -> Result<bool, RouterError> {
        let rec = self
            .guarded("conversation", self.store().conversation(conv))
            .await?;
        let pseudonym = self.inner.pseudonyms.pseudonym(channel, address);
        Ok(rec.is_some_and(|r| {
            r.get("channel") == Some(channel) && r.get("pseudonym") == Some(pseudonym.as_str())
        }))
    }

    /// The contact sent media, which is never taken: the counsellor sees [`MEDIA_WITHHELD`] and the
    /// contact is sent the `media_withheld` notice, once per `client_msg_id` (an album is one).
    /// Returns `None` when this was a duplicate.
    pub async fn withhold_media(
        &self,
        conv: &str,
        client_msg_id: &str,
    ) -> Result<Option<Appended>, RouterError> {
        let rec = self.conversation_record(conv).await?;
        let appended = self
            .append_noticed(
                conv,
                "system",
                MEDIA_WITHHELD,
                client_msg_id,
                "media_withheld",
            )
            .await?;
        if appended.duplicate {
            return Ok(None);
        }
        let channel = rec.get("channel").unwrap_or("unknown");
        self.telemetry().media_withheld(channel, conv);
        Ok(Some(appended))
    }

    /// The contact blocked the channel: the counsellor is told, the conversation ends, and the
    /// address is forgotten (nothing more can reach it).
    pub async fn contact_blocked(&self, conv: &str) -> Result<(), RouterError> {
        match self
            .append_noticed(conv, "system", CONTACT_BLOCKED, "", "")
            .await
        {
            Ok(_) | Err(RouterError::Ended) => {}
            Err(e) => return Err(e),
        }
        self.end_by_contact(conv, "contact_blocked").await?;
        self.forget_address(conv).await
    }

    /// Seals and stores a message that also sends a notice to a contact without a socket.
    async fn append_noticed(
        &self,
        conv: &str,
        from: &str,
        text: &str,
        client_msg_id: &str,
        notice: &str,
    ) -> Result<Appended, RouterError> {
        let key = self.data_key(conv).await?;
        let seq = self.next_seq(conv).await?;
        let sealed = self.seal_message(&key, conv, seq, text)?;
        let message = NewMessage {
            conv,
            from,
            seq,
            sealed_b64: &sealed,
            client_msg_id,
            whisper: false,
            staff: "",
            notice,
        };
        let appended = self
            .guarded("message", self.store().append(&message))
            .await?;
        self.settle(appended, from, false)
    }

    /// Drops a conversation's sealed address.
    pub async fn forget_address(&self, conv: &str) -> Result<(), RouterError> {
        self.guarded("forget", self.store().forget_address(conv))
            .await
    }

    /// Remembers one of the channel's message ids (either way) of a conversation for `ttl`.
    pub async fn remember_channel_message(
        &self,
        conv: &str,
        message_id: i64,
        ttl: Duration,
    ) -> Result<(), RouterError> {
        let store = self.store();
        self.guarded(
            "chanmsgs",
            store.remember_channel_message(conv, message_id, ttl),
        )
        .await
    }

    /// The channel's message ids of a conversation still remembered, then forgets them.
    pub async fn take_channel_messages(&self, conv: &str) -> Result<Vec<i64>, RouterError> {
        let store = self.store();
        let ids = self
            .guarded("chanmsgs", store.channel_messages(conv))
            .await?;
        self.guarded("chanmsgs", store.forget_channel_messages(conv))
            .await?;
        Ok(ids)
    }

    /// Whether provider update `update` (Telegram's `update_id`, a hash of Twilio's `MessageSid`) was
    /// handled already (a replay after a restart or a retry).
    pub async fn update_seen(&self, channel: &str, update: &str) -> Result<bool, RouterError> {
        self.guarded("updates", self.store().update_seen(channel, update))
            .await
    }

    /// Records provider update `update` as handled.
    pub async fn mark_update(&self, channel: &str, update: &str) -> Result<(), RouterError> {
        let store = self.store();
        self.guarded("updates", store.mark_update(channel, update, now_ms()))
            .await
    }

    /// The next provider update to ask for when polling.
    pub async fn poll_offset(&self, channel: &str) -> Result<Option<i64>, RouterError> {
        self.guarded("offset", self.store().poll_offset(channel))
            .await
    }

    pub async fn set_poll_offset(&self, channel: &str, offset: i64) -> Result<(), RouterError> {
        self.guarded("offset", self.store().set_poll_offset(channel, offset))
            .await
    }

    /// Takes or renews (for `ttl`) the lease that lets one node poll `channel`, or gives it up
    /// (`None`). True while this node holds it.
    pub async fn poll_lease(
        &self,
        channel: &str,
        node: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, RouterError> {
        self.guarded("lease", self.store().poll_lease(channel, node, ttl))
            .await
    }
}
