//! The Redis store: the only place that talks to Redis and builds key names. Routing changes go
//! through the Lua scripts in `lua/` (one atomic step each); plain reads and account records are
//! ordinary commands here.
//!
//! It must never receive clear message text or a raw channel address: callers seal them first.

mod accounts;
mod audit;
mod blocks;
mod break_glass;
mod channel;
mod deks;
mod keys;
mod outbox;
pub mod privacy;
mod pushes;
mod records;
mod retention;
mod scripts;
mod sentinel;
mod stats;
mod topology;

pub use accounts::{SessionRecord, UserRecord};
pub use audit::AuditEntry;
pub use break_glass::{BreakGlassRecord, BreakGlassStep};
pub use deks::DekBatch;
pub use keys::Keys;
pub use outbox::{OutboxEntry, SendState};
pub use privacy::Holdings;
pub use pushes::Heard;
pub use records::{AgentRecord, ConversationRecord, StoredMessage};
pub use retention::{Periods, Swept};
pub use topology::Connection;

use helpline_config::redact_url;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::events::Event;
use pushes::{PushSink, Pushes};
use scripts::Scripts;
use topology::Topology;

/// Routing settings the scripts need, sent with every call so all nodes apply the same rules.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptSettings {
    pub assignment: &'static str,
    pub offer_timeout_ms: u64,
    pub lapses_before_away: u32,
    pub agent_grace_ms: u64,
    pub aging_ms: u64,
    pub relax_topic_ms: u64,
    pub relax_language_ms: u64,
    pub abandon_ms: u64,
    /// Channels whose contacts get sparing queue feedback: one acknowledgement with their position
    /// and estimated wait, then only `assigned` and `ended` (no repeated positions, no transfer
    /// notices). Each message costs money there and shows on whatever phone the contact holds.
    pub sparing_channels: Vec<&'static str>,
    /// Seconds the daily aggregates (`stats:daily:DAY`) are kept: at least the metadata period.
    pub stats_keep_s: u64,
}

/// What a routing script did: its status (`ok` or a refusal such as `not_offered`) and its events.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: String,
    pub events: Vec<Event>,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// A message stored by `append_message`.
#[derive(Debug)]
pub struct Appended {
    /// The stream id, or a refusal (`ended`, `not_yours`, `not_active`) when nothing was stored.
    pub id: String,
    pub duplicate: bool,
    /// The conversation's channel; empty when nothing new was stored.
    pub channel: String,
    /// On a counsellor's first answer: the time since the assignment (ms).
    pub first_response_ms: Option<i64>,
}

/// A message to store (its text already sealed).
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub conv: &'a str,
    /// `contact`, `counsellor`, `supervisor` or `system`.
    pub from: &'a str,
    pub seq: u64,
    pub sealed_b64: &'a str,
    /// The sender's id for the message, so a resent one is stored once (or '').
    pub client_msg_id: &'a str,
    pub whisper: bool,
    /// The staff member sending, checked against the conversation (or '').
    pub staff: &'a str,
    /// A notice code a contact without a socket is sent with it (or '').
    pub notice: &'a str,
}

/// A handle on Redis; cheap to clone (the connection multiplexes, reconnects and, behind Sentinel,
/// follows the master).
#[derive(Clone)]
pub struct Store {
    conn: Connection,
    topology: Arc<Topology>,
    /// What the command connection hears besides replies: the routing events.
    pushes: Arc<Pushes>,
    /// Never changes: what [`Store::master_changes`] hands out when there is no Sentinel.
    fixed: Arc<watch::Sender<u64>>,
    keys: Keys,
    settings: Arc<str>,
    scripts: Arc<Scripts>,
}

impl Store {
    /// Connects to Redis at `url` (one server, Sentinel or Cluster: see `topology.rs`); the error
    /// says where and what to check, never the password.
    pub async fn connect(
        url: &str,
        prefix: &str,
        settings: &ScriptSettings,
    ) -> Result<Store, StoreError> {
        let topology = Topology::parse(url)?;
        if let Topology::Sentinel(target) = &topology {
            target.watch_failovers();
        }
        let pushes = Arc::new(Pushes::default());
        let conn = topology
            .connect(PushSink(pushes.clone()))
            .await
            .map_err(|e| StoreError::connect(url, &e))?;
        let settings = serde_json::to_string(settings)
            .map_err(|e| StoreError::Internal(format!("routing settings: {e}")))?;
        let store = Store {
            conn,
            topology: Arc::new(topology),
            pushes,
            fixed: Arc::new(watch::channel(0).0),
            keys: Keys::new(prefix),
            settings: settings.into(),
            scripts: Arc::new(Scripts::load()),
        };
        store
            .ping()
            .await
            .map_err(|e| StoreError::Unreachable(redact_url(url), e.to_string()))?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// Puts every script in Redis's script cache. A script missing from it is loaded by its first
    /// call (EVALSHA, then SCRIPT LOAD and EVALSHA again), but every call made before that load
    /// lands finds it missing too: 500 counsellors going available at once had Redis compile the
    /// status script 500 times. So all are loaded when a node connects and again after Redis
    /// restarted or failed over (see `sweeper.rs`).
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        for script in self.scripts.all() {
            let _: String = script.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Has `listener` hear the routing events published on `channel`, and when the subscription
    /// was lost and made again, from the command connection's task: it must not block. Once per
    /// store; call again (after an error) to retry the subscription only.
    pub async fn listen(
        &self,
        channel: &str,
        listener: impl Fn(Heard<'_>) + Send + Sync + 'static,
    ) -> Result<(), StoreError> {
        self.pushes.listen(channel, Box::new(listener));
        Ok(self.conn().subscribe(channel).await?)
    }

    /// Changes when a Sentinel failover moved the master, so the command connection moves with it.
    pub fn master_changes(&self) -> watch::Receiver<u64> {
        self.topology.master_changes(&self.fixed)
    }

    pub(crate) fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// A script call with its `KEYS[1]`, the prefix and the settings. The scripts never read
    /// `KEYS[1]`: it is declared so a cluster client sends the call to the node that owns the
    /// routing keys (they share one slot through the prefix's hash tag, e.g. `{helpline}:`).
    fn routing_call<'a>(&'a self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(self.keys.waiting())
            .arg(self.keys.prefix())
            .arg(&*self.settings);
        inv
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn run(&self, script: &redis::Script, args: &[&str]) -> Result<Outcome, StoreError> {
        let mut inv = self.routing_call(script);
        for a in args {
            inv.arg(*a);
        }
        let (status, events): (String, Vec<String>) = inv.invoke_async(&mut self.conn()).await?;
        Ok(Outcome {
            status,
            events: events.iter().filter_map(|e| Event::parse(e)).collect(),
        })
    }

    /// A new conversation joins the queue; `fields` are its routing fields (already sealed where
    /// secret). Returns the events (queued, maybe offered or assigned at once).
    pub async fn create_conversation(
        &self,
        id: &str,
        fields: &serde_json::Value,
        resume_hash: &str,
        resume_ttl_s: u64,
    ) -> Result<Outcome, StoreError> {
        let fields = fields.to_string();
        let resume_key = self.keys.resume(resume_hash);
        let ttl = resume_ttl_s.to_string();
        self.run(&self.scripts.create, &[id, &fields, &resume_key, &ttl])
            .await
    }

    pub async fn accept(&self, conv: &str, agent: &str) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.accept, &[conv, agent]).await
    }

    pub async fn decline(&self, conv: &str, agent: &str) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.decline, &[conv, agent]).await
    }

    pub async fn set_status(&self, agent: &str, status: &str) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.status, &[agent, status]).await
    }

    /// Writes a counsellor's routing profile (from their account) when they connect; one seen for
    /// the first time, or lost earlier, starts `away`. The outcome's status is the counsellor's.
    pub async fn register_agent(
        &self,
        username: &str,
        capacity: u32,
        skills: &str,
        display: &str,
    ) -> Result<Outcome, StoreError> {
        let capacity = capacity.to_string();
        self.run(
            &self.scripts.register,
            &[username, &capacity, skills, display],
        )
        .await
    }

    /// Closes an active conversation; `by` is its counsellor, or `None` for a supervisor.
    pub async fn close(
        &self,
        conv: &str,
        by: Option<&str>,
        outcome: &str,
        tags: &str,
    ) -> Result<Outcome, StoreError> {
        self.run(
            &self.scripts.close,
            &[conv, by.unwrap_or(""), outcome, tags],
        )
        .await
    }

    /// The contact left (`contact_ended`) or went silent (`inactive`).
    pub async fn end_conversation(&self, conv: &str, reason: &str) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.end, &[conv, reason]).await
    }

    /// Hands an active conversation on, to a skill set (comma list) or to a named counsellor.
    pub async fn transfer(
        &self,
        conv: &str,
        by: Option<&str>,
        skills: &str,
        target: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        let args = [conv, by.unwrap_or(""), skills, target.unwrap_or("")];
        self.run(&self.scripts.transfer, &args).await
    }

    /// Sets urgency; `raise_only` for the grader, which may never lower it.
    pub async fn set_urgency(
        &self,
        conv: &str,
        level: &str,
        raise_only: bool,
        category: &str,
    ) -> Result<Outcome, StoreError> {
        let mode = if raise_only { "raise" } else { "set" };
        self.run(&self.scripts.urgency, &[conv, level, mode, category])
            .await
    }

    /// Reserves `count` message numbers of a conversation for the calling node and returns the
    /// last of them. A number is bound into its message's sealed text and never used twice.
    pub async fn reserve_seqs(&self, conv: &str, count: u64) -> Result<u64, StoreError> {
        let seq: u64 = redis::cmd("HINCRBY")
            .arg(self.keys.conv(conv))
            .arg("seq")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        Ok(seq)
    }

    /// Stores a sealed message once per `client_msg_id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn append_message(
        &self,
        conv: &str,
        from: &str,
        seq: u64,
        sealed_b64: &str,
        client_msg_id: &str,
        whisper: bool,
        staff: &str,
    ) -> Result<Appended, StoreError> {
        let message = NewMessage {
            conv,
            from,
            seq,
            sealed_b64,
            client_msg_id,
            whisper,
            staff,
            notice: "",
        };
        self.append(&message).await
    }

    /// Stores a sealed message once per `client_msg_id`; a contact without a socket is also sent
    /// the notice `message.notice` (when not empty) in the same step.
    pub async fn append(&self, message: &NewMessage<'_>) -> Result<Appended, StoreError> {
        let m = message;
        let mut inv = self.routing_call(&self.scripts.message);
        inv.arg(m.conv)
            .arg(m.from)
            .arg(m.seq)
            .arg(m.sealed_b64)
            .arg(m.client_msg_id);
        inv.arg(if m.whisper { "1" } else { "0" })
            .arg(m.staff)
            .arg(m.notice);
        let (id, dup, channel, first_response_ms): (String, i64, String, Option<i64>) =
            inv.invoke_async(&mut self.conn()).await?;
        Ok(Appended {
            id,
            duplicate: dup == 1,
            channel,
            first_response_ms,
        })
    }

    /// The periodic step: offer timeouts, lost counsellors, aging, relaxation, abandonment.
    pub async fn sweep(&self) -> Result<Outcome, StoreError> {
        self.run(&self.scripts.sweep, &[]).await
    }

    /// Tells Redis which counsellors and contacts this node holds sockets for.
    pub async fn heartbeat(
        &self,
        agents: &[String],
        contacts: &[String],
    ) -> Result<(), StoreError> {
        if agents.is_empty() && contacts.is_empty() {
            return Ok(());
        }
        let n = agents.len().to_string();
        let mut args: Vec<&str> = vec![&n];
        args.extend(agents.iter().map(String::as_str));
        args.extend(contacts.iter().map(String::as_str));
        self.run(&self.scripts.heartbeat, &args).await.map(|_| ())
    }

    /// Entries of a stream between `from` and `to`, at most `limit` (`cmd` is XRANGE or XREVRANGE).
    pub(crate) async fn stream_range(
        &self,
        cmd: &str,
        key: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<redis::streams::StreamId>, StoreError> {
        let reply: redis::streams::StreamRangeReply = redis::cmd(cmd)
            .arg(key)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        Ok(reply.ids)
    }

    /// Publishes an ephemeral event (typing) that changes no state.
    pub async fn publish(&self, event: &serde_json::Value) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(self.keys.events())
            .arg(event.to_string())
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Queue feedback for waiting conversations: (state, position, estimated wait in ms).
    pub async fn positions(
        &self,
        convs: &[String],
    ) -> Result<Vec<(String, Option<u64>, Option<u64>)>, StoreError> {
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.routing_call(&self.scripts.positions);
        for c in convs {
            inv.arg(c);
        }
        let rows: Vec<(String, i64, i64)> = inv.invoke_async(&mut self.conn()).await?;
        let opt = |v: i64| u64::try_from(v).ok();
        Ok(rows
            .into_iter()
            .map(|(s, p, e)| (s, opt(p), opt(e)))
            .collect())
    }
}
