//! The domain of the helpline: conversations and their lifecycle, the queue and the assignment rules,
//! urgency grading, pseudonyms, the transcript vault and the Redis store.
//!
//! The router knows no channel protocol and no HTTP: adapters call [`Router`] with plain values and
//! receive [`Event`]s through the node-local [`Hub`]. Clear text exists only in memory here: it is
//! graded, then sealed before it reaches Redis.

pub mod accounts;
pub mod audit;
pub mod break_glass;
pub mod conversation;
pub mod error;
pub mod events;
pub mod hub;
pub mod notices;
pub mod outbox;
pub mod privacy;
pub mod pseudonym;
pub mod retention;
pub mod rotation;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod totp;
pub mod urgency;
pub mod vault;

mod blocks;
mod channel;
mod contact;
mod counsellor;
mod sweeper;
mod transcript;

pub use accounts::{Account, Accounts, LoginOutcome, Role};
pub use audit::{AuditAction, AuditFilter, AuditLog};
pub use blocks::MAX_BLOCK_MINUTES;
pub use channel::{CONTACT_BLOCKED, MEDIA_WITHHELD};
pub use contact::{QueueStatus, Started};
pub use conversation::{ConversationView, Message, Urgency};
pub use counsellor::{CounsellorView, Desk, TransferTarget};
pub use error::{RouterError, StoreError};
pub use events::Event;
pub use hub::{Delivery, Hub};
pub use telemetry::Telemetry;

use std::sync::Arc;

use helpline_config::{Assignment, Config};

use crate::notices::Notices;
use crate::pseudonym::Pseudonyms;
use crate::store::{ScriptSettings, Store};
use crate::transcript::KeyCache;
use crate::urgency::Grader;
use crate::vault::Vault;

/// The router of one gateway node. Cheap to clone; every clone shares the node's state.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    accounts: Accounts,
    vault: Vault,
    /// Data keys of conversations this node is relaying, so a message costs no unwrap.
    keys: KeyCache,
    pseudonyms: Pseudonyms,
    grader: Grader,
    notices: Notices,
    hub: Hub,
    telemetry: Telemetry,
    config: Config,
    /// The announced master key version this node last warned it could not load, so a missing key
    /// file is reported once, not every tick.
    key_version_warned: std::sync::atomic::AtomicU32,
}

/// The channels this node serves besides web chat, so their metrics exist from the first scrape.
fn enabled_channels(config: &Config) -> Vec<&'static str> {
    let mut channels = Vec::new();
    if config.channels.telegram.token.is_some() {
        channels.push("telegram");
    }
    if config.channels.sms.provider.is_some() {
        channels.push("sms");
    }
    channels
}

/// How long `/readyz` waits for Redis to answer. Probes give up after a second or so; without
/// this a frozen Redis held each probe for the whole command time-out (5 s), and a probe that times
/// out says less than a clear 503.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Channels whose contacts are told little while they wait (see [`ScriptSettings`]): SMS.
pub const SPARING_CHANNELS: &[&str] = &["sms"];

/// Seconds as milliseconds; validation keeps every span far below where this could saturate.
fn ms(s: u64) -> u64 {
    s.saturating_mul(1000)
}

/// The routing settings every script receives, from the configuration.
pub fn script_settings(config: &Config) -> ScriptSettings {
    let r = &config.routing;
    ScriptSettings {
        assignment: match r.assignment {
            Assignment::Offer => "offer",
            Assignment::Auto => "auto",
        },
        offer_timeout_ms: ms(r.offer_timeout_s),
        lapses_before_away: r.lapses_before_away,
        // Presence is counted from the last heartbeat, up to one tick before the socket closed.
        agent_grace_ms: ms(r.agent_grace_s).saturating_add(sweeper::TICK_MS),
        aging_ms: ms(r.aging_s),
        relax_topic_ms: ms(r.relax_topic_s),
        relax_language_ms: ms(r.relax_language_s),
        abandon_ms: ms(r.abandon_after_s).saturating_add(sweeper::TICK_MS),
        sparing_channels: SPARING_CHANNELS.to_vec(),
        stats_keep_s: retention::stats_keep_s(&config.retention),
    }
}

/// Connects to the configured Redis (for commands that need no keys, like `user add`).
pub async fn connect_store(config: &Config) -> Result<Store, StoreError> {
    let settings = script_settings(config);
    Store::connect(
        config.redis.url.expose(),
        &config.redis.key_prefix,
        &settings,
    )
    .await
}

impl Router {
    /// Builds the router: connects to Redis, loads the master keys, the phrase lists and the notices.
    pub async fn connect(config: Config) -> Result<Router, RouterError> {
        let keys = rotation::load_master_keys(&config)?;
        let pseudonyms = match config
            .security
            .pseudonym_key_bytes()
            .map_err(|e| RouterError::Setup(e.to_string()))?
        {
            Some(key) => Pseudonyms::new(*key),
            None => Pseudonyms::derive_from_master(&*rotation::pseudonym_master(&config)?),
        };
        let vault = Vault::new(keys);
        let grader = Grader::builtin().map_err(|e| RouterError::Setup(e.to_string()))?;
        let notices = Notices::builtin().map_err(|e| RouterError::Setup(e.to_string()))?;
        let store = connect_store(&config).await?;
        let accounts = Accounts::new(store.clone(), &config).with_vault(vault.clone());
        Ok(Router {
            inner: Arc::new(Inner {
                store,
                accounts,
                vault,
                keys: KeyCache::default(),
                pseudonyms,
                grader,
                notices,
                hub: Hub::default(),
                telemetry: Telemetry::with_channels(&enabled_channels(&config)),
                config,
                key_version_warned: std::sync::atomic::AtomicU32::new(0),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    pub fn notices(&self) -> &Notices {
        &self.inner.notices
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether Redis answers within [`READY_WITHIN`] (for `/readyz`).
    pub async fn ready(&self) -> bool {
        let ping = tokio::time::timeout(READY_WITHIN, self.inner.store.ping());
        matches!(ping.await, Ok(Ok(())))
    }

    /// Counts and logs what a routing step did on this node (every node delivers the same events
    /// to its sockets, but only the node that ran the step observes them here).
    fn observe(&self, events: &[Event]) {
        for ev in events {
            self.inner.telemetry.observe(ev);
            stats::record(&self.inner.store, ev);
            if let Event::Ended { conv, .. } = ev {
                self.inner.keys.forget(conv);
            }
        }
    }

    /// Runs a store call, counting a failure by operation.
    async fn guarded<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, RouterError> {
        fut.await.map_err(|e| {
            self.inner.telemetry.redis_failed(op, &e);
            RouterError::Store(e)
        })
    }

    /// Runs a routing script and observes its events; a refusal becomes `RouterError::Refused`.
    async fn routed(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<store::Outcome, StoreError>>,
    ) -> Result<Vec<Event>, RouterError> {
        let outcome = self.guarded(op, fut).await?;
        self.observe(&outcome.events);
        if outcome.is_ok() {
            Ok(outcome.events)
        } else {
            Err(refusal(&outcome.status))
        }
    }
}

/// Turns a script's refusal status into an error with a code and a message for staff.
fn refusal(status: &str) -> RouterError {
    let (code, message) = match status {
        "not_offered" => (
            "not_offered",
            "that conversation is not offered to you (any more)",
        ),
        "not_active" => ("not_active", "that conversation is not active"),
        "not_yours" => ("forbidden", "that conversation is not yours"),
        "not_live" | "ended" => ("ended", "that conversation is over"),
        "counsellor_unavailable" => (
            "counsellor_unavailable",
            "that counsellor is not available or has no room",
        ),
        "same_counsellor" => ("bad_request", "the conversation is already yours"),
        "unchanged" => ("unchanged", "nothing to change"),
        "exists" => (
            "already_started",
            "this contact already has a live conversation",
        ),
        _ => ("internal", "the router refused the request"),
    };
    RouterError::refused(code, message)
}
