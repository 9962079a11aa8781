//! Every Redis key the gateway writes, built in one place. The layout of the routing keys is
//! documented in `lua/common.lua`, which the scripts share; the rest is documented here.

/// Builds key names under the configured prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }

    /// Hash of one conversation's routing state and its wrapped data key (never message text).
    pub fn conv(&self, id: &str) -> String {
        self.key(&["conv", id])
    }

    /// Stream of one conversation's sealed messages: the source of truth for delivery and replay.
    pub fn messages(&self, id: &str) -> String {
        self.key(&["msgs", id])
    }

    /// Hash of `sender:client_msg_id` -> stream id, so a resent message is stored once.
    pub fn client_ids(&self, id: &str) -> String {
        self.key(&["cmid", id])
    }

    /// Hash of counsellors who passed on an offer of the conversation.
    pub fn passed(&self, id: &str) -> String {
        self.key(&["passed", id])
    }

    /// String: SHA-256 of a contact's resume token -> conversation id (expires).
    pub fn resume(&self, token_hash: &str) -> String {
        self.key(&["resume", token_hash])
    }

    /// Hash of a counsellor's routing state (status, load, skills, capacity).
    pub fn agent(&self, username: &str) -> String {
        self.key(&["agent", username])
    }

    /// Set of a counsellor's active conversations.
    pub fn agent_convs(&self, username: &str) -> String {
        self.key(&["agent", username, "convs"])
    }

    /// Set of conversations standing offered to a counsellor.
    pub fn agent_offered(&self, username: &str) -> String {
        self.key(&["agent", username, "offered"])
    }

    /// Zset of every queued conversation by first queue time.
    pub fn waiting(&self) -> String {
        self.key(&["waiting"])
    }

    /// Zset of the queued conversations of one urgency and channel, by first queue time.
    pub fn waiting_class(&self, urgency: &str, channel: &str) -> String {
        self.key(&["waiting", urgency, channel])
    }

    /// Zset: counsellor -> last time a node holding their socket said so.
    pub fn seen_agents(&self) -> String {
        self.key(&["seen", "agents"])
    }

    /// Zset: conversation -> last time a node holding the contact's socket said so.
    pub fn seen_contacts(&self) -> String {
        self.key(&["seen", "contacts"])
    }

    /// Set of counsellors whose status is available.
    pub fn available(&self) -> String {
        self.key(&["available"])
    }

    /// Hash of a staff account: role, Argon2id hash, skills, capacity, display name, disabled;
    /// `failures` and `locked` (lock-out), `totp` (the TOTP secret sealed with the account's
    /// data key), `totp_key` (that key wrapped) and `totp_step` (the last step accepted).
    pub fn user(&self, username: &str) -> String {
        self.key(&["user", username])
    }

    /// Set of every staff username.
    pub fn users(&self) -> String {
        self.key(&["users"])
    }

    /// Hash of a staff session, keyed by the SHA-256 of its cookie (expires when idle).
    pub fn session(&self, token_hash: &str) -> String {
        self.key(&["session", token_hash])
    }

    /// Stream of the audit log: who, what, when, why; never message text.
    pub fn audit(&self) -> String {
        self.key(&["audit"])
    }

    /// The pub/sub channel routing events are published on.
    pub fn events(&self) -> String {
        self.key(&["events"])
    }

    /// Set of every conversation id ever created and not yet erased (retention sweeps, key rotation).
    pub fn conversations(&self) -> String {
        self.key(&["conversations"])
    }

    /// String: the master key version `helpline keys rotate` last made active. Nodes that have an
    /// older one active reload their key directory (no key material is ever stored in Redis).
    pub fn key_version(&self) -> String {
        self.key(&["keys", "active"])
    }

    /// Zset of the first answers of one UTC day (`YYYY-MM-DD`): member `AT:WAIT:NONCE` (ms, ms,
    /// random), score `AT`. No id, no text: only when and how long. Expires after a week.
    pub fn stats_answered(&self, day: &str) -> String {
        self.key(&["stats", "answered", day])
    }

    /// Zset of the conversations abandoned on one UTC day: member `AT:NONCE`, score `AT` (ms).
    pub fn stats_abandoned(&self, day: &str) -> String {
        self.key(&["stats", "abandoned", day])
    }

    /// Zset of closed conversations that still hold a transcript, by when they closed (ms): what
    /// the retention sweep shreds once `retention.transcripts_s` has passed.
    pub fn expiry_transcripts(&self) -> String {
        self.key(&["expiry", "transcripts"])
    }

    /// Zset of closed conversations that still hold metadata, by when they closed (ms): what the
    /// retention sweep deletes once `retention.metadata_s` has passed.
    pub fn expiry_metadata(&self) -> String {
        self.key(&["expiry", "metadata"])
    }

    /// Hash of the conversations that ended on one UTC day (`YYYY-MM-DD`), counted by
    /// `CHANNEL:URGENCY:OUTCOME:` `count`, `answered` and `wait_ms` (sum of first waits). No id, no
    /// pseudonym: it outlives the conversations (written by `lua/common.lua`).
    pub fn stats_daily(&self, day: &str) -> String {
        self.key(&["stats", "daily", day])
    }

    /// The live conversation of a contact on a channel with addresses, by pseudonym (the routing
    /// scripts write and clear it; documented in `lua/common.lua`).
    pub fn live(&self, pseudonym: &str) -> String {
        self.key(&["live", pseudonym])
    }

    /// String with expiry: a supervisor blocked this contact pseudonym from starting conversations
    /// until it expires (`Router::block`); the value means nothing.
    pub fn block(&self, pseudonym: &str) -> String {
        self.key(&["block", pseudonym])
    }

    /// Stream of a channel's outbound work (written by the routing scripts, see `lua/common.lua`);
    /// read by every node's sender through the consumer group [`Keys::OUTBOX_GROUP`].
    pub fn outbox(&self, channel: &str) -> String {
        self.key(&["outbox", channel])
    }

    /// List of one conversation's undelivered outbox entry ids, oldest first: only the head is sent,
    /// so a contact gets their messages in order however many nodes send.
    pub fn outbox_order(&self, channel: &str, conv: &str) -> String {
        self.key(&["outbox", channel, "order", conv])
    }

    /// Hash of outbox entry id -> `sending` (handed to the provider, answer not yet recorded) or
    /// `sent` (the provider accepted it): what a node that reclaims an entry checks first.
    pub fn outbox_state(&self, channel: &str) -> String {
        self.key(&["outbox", channel, "state"])
    }

    /// Zset of a channel's sender nodes -> last heartbeat (ms): entries held by a node that stopped
    /// beating are reclaimed by the others.
    pub fn outbox_consumers(&self, channel: &str) -> String {
        self.key(&["outbox", channel, "consumers"])
    }

    /// List of the channel message ids (Telegram `message_id`s, both ways) of a conversation, so the
    /// contact may have them deleted from their device; expires when the channel no longer allows it.
    pub fn channel_messages(&self, conv: &str) -> String {
        self.key(&["chanmsgs", conv])
    }

    /// Zset of a channel's provider update ids already handled -> when (ms); trimmed to two days.
    pub fn seen_updates(&self, channel: &str) -> String {
        self.key(&["seen", channel])
    }

    /// String: the next provider update to ask for when polling (Telegram's `offset`).
    pub fn poll_offset(&self, channel: &str) -> String {
        self.key(&[channel, "offset"])
    }

    /// String with expiry: the node that polls the channel now (only one may).
    pub fn poll_lease(&self, channel: &str) -> String {
        self.key(&[channel, "poller"])
    }

    /// Hash of one break-glass request (layout in `lua/break_glass.lua`; never the address it
    /// reveals), kept a while after its last change.
    pub fn break_glass(&self, id: &str) -> String {
        self.key(&["break_glass", id])
    }

    /// Zset of the break-glass requests still pending or approved -> their deadline (ms).
    pub fn break_glass_open(&self) -> String {
        self.key(&["break_glass", "open"])
    }
}

impl Keys {
    /// The consumer group of every outbox stream.
    pub const OUTBOX_GROUP: &'static str = "senders";
}
