//! Sealing and opening a conversation's messages: the data-key cache, history replay and the
//! transcript. Clear text lives only in the values returned here, in memory.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::conversation::Message;
use crate::error::RouterError;
use crate::events::Event;
use crate::vault::{DataKey, Purpose, VaultError};
use crate::Router;

/// Most data keys a node keeps unwrapped; past it the cache starts afresh (keys unwrap in µs).
const CACHE_LIMIT: usize = 10_000;

/// Message numbers a node reserves at once per conversation. A message's number only has to be
/// unique in its conversation (it is bound into the sealed text), not gapless, so each node takes
/// a block with one `HINCRBY` and numbers the next messages from memory: one Redis round trip
/// per message instead of two. Numbers left when a node stops are simply never used.
const SEQ_BLOCK: u64 = 32;

/// What a node holds in memory for a conversation it relays.
struct Cached {
    key: DataKey,
    /// Message numbers reserved by this node and not used yet.
    seqs: Range<u64>,
}

/// Unwrapped data keys (and reserved message numbers) of the conversations this node relays.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, conv: &str) -> Option<DataKey> {
        self.lock().get(conv).map(|c| c.key.clone())
    }

    pub(crate) fn put(&self, conv: &str, key: DataKey) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(conv.to_owned(), Cached { key, seqs: 0..0 });
    }

    pub(crate) fn forget(&self, conv: &str) {
        self.lock().remove(conv);
    }

    /// The next reserved message number of `conv`, if this node has one left.
    fn take_seq(&self, conv: &str) -> Option<u64> {
        self.lock().get_mut(conv).and_then(|c| c.seqs.next())
    }

    /// Keeps `seqs` for the next messages of `conv` (while its key is cached).
    fn keep_seqs(&self, conv: &str, seqs: Range<u64>) {
        if let Some(c) = self.lock().get_mut(conv) {
            c.seqs = seqs;
        }
    }
}

/// Most messages replayed or shown at once.
pub const HISTORY_LIMIT: usize = 1000;

impl Router {
    /// The data key of a conversation, unwrapping it on first use.
    pub(crate) async fn data_key(&self, conv: &str) -> Result<DataKey, RouterError> {
        if let Some(key) = self.inner.keys.get(conv) {
            return Ok(key);
        }
        let rec = self
            .guarded("conversation", self.store().conversation(conv))
            .await?;
        let wrapped = rec
            .as_ref()
            .and_then(|r| r.get("dek"))
            .ok_or(RouterError::UnknownConversation)?;
        let wrapped = B64
            .decode(wrapped)
            .map_err(|_| RouterError::Setup("stored key is not base64".into()))?;
        let key = match self.inner.vault.unwrap_key(conv, &wrapped) {
            // Wrapped under a version this node has not loaded: a rotation added it after the
            // node started. Read the key directory again, once.
            Err(VaultError::UnknownKeyVersion(_)) if self.reload_keys() => {
                self.inner.vault.unwrap_key(conv, &wrapped)?
            }
            other => other?,
        };
        self.inner.keys.put(conv, key.clone());
        Ok(key)
    }

    /// The number of the next message of `conv`, unique in the conversation across all nodes:
    /// from this node's reserved block, or from a new block (see [`SEQ_BLOCK`]).
    pub(crate) async fn next_seq(&self, conv: &str) -> Result<u64, RouterError> {
        if let Some(seq) = self.inner.keys.take_seq(conv) {
            return Ok(seq);
        }
        let reserved = self.store().reserve_seqs(conv, SEQ_BLOCK);
        let last = self.guarded("seq", reserved).await?;
        let first = last.saturating_sub(SEQ_BLOCK - 1);
        self.inner.keys.keep_seqs(conv, first + 1..last + 1);
        Ok(first)
    }

    /// Seals `text` as message `seq` and returns it in base64, ready for the stream.
    pub(crate) fn seal_message(
        &self,
        key: &DataKey,
        conv: &str,
        seq: u64,
        text: &str,
    ) -> Result<String, RouterError> {
        let sealed = key.seal(conv, Purpose::Message, seq, text.as_bytes())?;
        Ok(B64.encode(sealed))
    }

    pub(crate) fn open_message(
        &self,
        key: &DataKey,
        conv: &str,
        seq: u64,
        sealed_b64: &str,
    ) -> Result<String, RouterError> {
        let sealed = B64
            .decode(sealed_b64)
            .map_err(|_| RouterError::Vault(crate::vault::VaultError::Corrupt))?;
        let clear = key.open(conv, Purpose::Message, seq, &sealed)?;
        Ok(String::from_utf8_lossy(&clear).into_owned())
    }

    /// Messages of a conversation after `after` (exclusive), opened. Whispers are included only
    /// for staff (`with_whispers`).
    pub async fn history(
        &self,
        conv: &str,
        after: Option<&str>,
        with_whispers: bool,
    ) -> Result<Vec<Message>, RouterError> {
        let key = self.data_key(conv).await?;
        let stored = self
            .guarded("history", self.store().messages(conv, after, HISTORY_LIMIT))
            .await?;
        let mut out = Vec::with_capacity(stored.len());
        for m in stored.into_iter().filter(|m| with_whispers || !m.whisper) {
            let text = self.open_message(&key, conv, m.seq, &m.sealed)?;
            out.push(Message {
                id: m.id,
                from: m.from,
                text,
                ts_ms: m.ts_ms,
                whisper: m.whisper,
            });
        }
        Ok(out)
    }

    /// Opens a live message event for delivery to a socket; `None` for other events.
    pub async fn open_event(&self, event: &Event) -> Result<Option<Message>, RouterError> {
        let Event::Msg {
            conv,
            id,
            f,
            s,
            c,
            t,
            w,
            ..
        } = event
        else {
            return Ok(None);
        };
        let key = self.data_key(conv).await?;
        let text = self.open_message(&key, conv, *s, c)?;
        Ok(Some(Message {
            id: id.clone(),
            from: f.clone(),
            text,
            ts_ms: *t,
            whisper: *w,
        }))
    }
}
