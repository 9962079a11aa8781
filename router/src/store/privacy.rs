//! What the helpline holds in Redis right now, read for `helpline privacy report`: one SCAN over
//! the prefix (never KEYS, so a large keyspace never blocks Redis), each key sorted into a category
//! by its name (the layout of `keys.rs`), then counted. Read-only; no value is ever returned, only
//! counts, times and master key versions.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::Store;
use crate::error::StoreError;
use crate::vault::Vault;

/// Keys read per SCAN step and per pipelined batch.
const STEP: usize = 500;

/// Counts of one kind of thing, with its oldest time (ms since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub oldest_ms: Option<i64>,
}

impl Tally {
    fn add(&mut self, n: u64, at_ms: Option<i64>) {
        self.count += n;
        if let Some(at) = at_ms {
            self.oldest_ms = Some(self.oldest_ms.map_or(at, |o| o.min(at)));
        }
    }
}

/// One closed conversation as the report needs it: when it closed and what of it remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub closed_ms: i64,
    /// It still has a data key or a message stream (a transcript).
    pub transcript: bool,
}

/// Everything the report counts.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    /// Live conversations (queued, offered, active), oldest by creation.
    pub live: Tally,
    /// Closed (or abandoned) conversations with metadata, oldest by closing.
    pub closed: Tally,
    /// Every closed conversation, for the retention checks.
    pub closed_list: Vec<Closed>,
    /// Wrapped data keys by master key version (`None`: not a key this gateway can read).
    pub data_keys: BTreeMap<Option<u32>, u64>,
    /// Message streams (one per conversation), oldest by creation.
    pub message_streams: Tally,
    /// Entries in all message streams, oldest by id.
    pub message_entries: Tally,
    /// Message streams whose conversation's metadata is gone (should never be).
    pub orphan_streams: u64,
    pub audit_entries: Tally,
    pub sessions: Tally,
    pub resume_tokens: Tally,
    pub outbox_entries: Tally,
    /// Keys channels keep besides routing: live-conversation pointers, Telegram message ids,
    /// handled provider updates, polling offset and lease.
    pub channel_state: Tally,
    /// Days of aggregates (`stats:*`), no ids.
    pub aggregate_days: Tally,
    /// Staff accounts.
    pub accounts: Tally,
    /// Every other key (routing state: queues, counsellors' state, presence).
    pub routing_keys: Tally,
}

/// The ms part of a stream id (`1700000000000-0`).
fn stream_ms(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

impl Store {
    /// Scans every key under the prefix and counts what it holds.
    pub async fn holdings(&self) -> Result<Holdings, StoreError> {
        let mut h = Holdings::default();
        let pattern = format!("{}*", glob_escape(self.keys.prefix()));
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(STEP)
                .query_async(&mut self.conn())
                .await?;
            self.count_keys(&keys, &mut h).await?;
            if next == 0 {
                return Ok(h);
            }
            cursor = next;
        }
    }

    async fn count_keys(&self, keys: &[String], h: &mut Holdings) -> Result<(), StoreError> {
        let prefix = self.keys.prefix();
        let mut convs = Vec::new();
        let mut streams = Vec::new();
        for key in keys {
            let name = key.strip_prefix(prefix).unwrap_or(key);
            let parts: Vec<&str> = name.split(':').collect();
            match parts.as_slice() {
                ["conv", id] => convs.push((*id).to_owned()),
                ["msgs", id] => streams.push((key.clone(), Some((*id).to_owned()))),
                ["audit"] => streams.push((key.clone(), None)),
                ["outbox", _] => streams.push((key.clone(), None)),
                ["session", _] => h.sessions.add(1, None),
                ["resume", _] => h.resume_tokens.add(1, None),
                ["user", _] | ["users"] => h.accounts.add(1, None),
                ["stats", ..] => h.aggregate_days.add(1, None),
                ["live", _] | ["chanmsgs", _] | ["seen", "telegram" | "sms"] => {
                    h.channel_state.add(1, None)
                }
                [ch, "offset" | "poller"] if *ch == "telegram" || *ch == "sms" => {
                    h.channel_state.add(1, None)
                }
                _ => h.routing_keys.add(1, None),
            }
        }
        for chunk in convs.chunks(STEP) {
            self.count_conversations(chunk, h).await?;
        }
        for chunk in streams.chunks(STEP) {
            self.count_streams(chunk, h).await?;
        }
        Ok(())
    }

    async fn count_conversations(
        &self,
        ids: &[String],
        h: &mut Holdings,
    ) -> Result<(), StoreError> {
        let mut fields = redis::pipe();
        let mut streams = redis::pipe();
        for id in ids {
            fields
                .cmd("HMGET")
                .arg(self.keys.conv(id))
                .arg("state")
                .arg("created_at")
                .arg("closed_at")
                .arg("dek");
            streams.exists(self.keys.messages(id));
        }
        let mut conn = self.conn();
        let rows: Vec<Vec<Option<String>>> = fields.query_async(&mut conn).await?;
        let has_stream: Vec<bool> = streams.query_async(&mut conn).await?;
        for (f, has_stream) in rows.into_iter().zip(has_stream) {
            let field = |i: usize| f.get(i).cloned().flatten();
            let num = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok());
            let live = matches!(field(0).as_deref(), Some("queued" | "offered" | "active"));
            let dek = field(3);
            if let Some(dek) = &dek {
                let version = B64
                    .decode(dek)
                    .ok()
                    .and_then(|w| Vault::wrapped_version(&w));
                *h.data_keys.entry(version).or_default() += 1;
            }
            if live {
                h.live.add(1, num(1));
            } else {
                let closed_ms = num(2).unwrap_or(0);
                h.closed.add(1, Some(closed_ms));
                h.closed_list.push(Closed {
                    closed_ms,
                    transcript: dek.is_some() || has_stream,
                });
            }
        }
        Ok(())
    }

    /// Entries and the oldest entry of each stream (`conv` for a message stream, to find orphans).
    async fn count_streams(
        &self,
        streams: &[(String, Option<String>)],
        h: &mut Holdings,
    ) -> Result<(), StoreError> {
        let mut lens = redis::pipe();
        let mut firsts = redis::pipe();
        let mut owners = redis::pipe();
        for (key, conv) in streams {
            lens.xlen(key);
            firsts
                .cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1);
            // A stream that is not a conversation's is its own owner.
            match conv {
                Some(conv) => owners.exists(self.keys.conv(conv)),
                None => owners.exists(key),
            };
        }
        let mut conn = self.conn();
        let lens: Vec<u64> = lens.query_async(&mut conn).await?;
        let firsts: Vec<redis::streams::StreamRangeReply> = firsts.query_async(&mut conn).await?;
        let owned: Vec<bool> = owners.query_async(&mut conn).await?;
        let prefix = self.keys.prefix();
        for (((key, conv), len), (first, owned)) in
            streams.iter().zip(lens).zip(firsts.into_iter().zip(owned))
        {
            let oldest = first.ids.first().and_then(|e| stream_ms(&e.id));
            let name = key.strip_prefix(prefix).unwrap_or(key);
            if conv.is_some() {
                h.message_streams.add(1, oldest);
                h.message_entries.add(len, oldest);
                if !owned {
                    h.orphan_streams += 1;
                }
            } else if name == "audit" {
                h.audit_entries.add(len, oldest);
            } else {
                h.outbox_entries.add(len, oldest);
            }
        }
        Ok(())
    }
}

/// The prefix as a SCAN pattern that matches it literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_stream_ids() {
        assert_eq!(glob_escape("helpline:"), "helpline:");
        assert_eq!(glob_escape("a*b[1]"), "a\\*b\\[1\\]");
        assert_eq!(stream_ms("1700000000000-3"), Some(1_700_000_000_000));
        assert_eq!(stream_ms("x"), None);
    }
}
