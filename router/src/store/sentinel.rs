//! Redis Sentinel: the master is whichever server the sentinels name, and it changes on a
//! failover. redis-rs's `SentinelClient` asks the sentinels and checks `ROLE` on the answer; what
//! it lacks is following a failover, which is this file: a connection that re-resolves the master
//! after a lost connection or a `READONLY`/`MASTERDOWN` reply, and a watcher of the sentinels'
//! `+switch-master` messages that tells every connection (commands and their subscription, outbox
//! readers) to move at once, even when the old master is still up as a replica.
//!
//! URL: `redis+sentinel://[USER:PASSWORD@]HOST:PORT,HOST:PORT,…/MASTER_NAME[?db=N]`. The
//! credentials and database are the master's; the sentinels are asked without a password.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use helpline_config::redact_url;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, ProtocolVersion,
    RedisError, RedisFuture, RedisResult, Value,
};
use tokio::sync::{watch, Mutex};

use super::pushes::PushSink;
use super::topology::bad_url;
use crate::error::StoreError;

/// How long asking the sentinels (and checking the master's `ROLE`) may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed lookup, callers get its error for this long instead of asking again, so a
/// burst of requests during a failover does not become a burst of lookups.
const RESOLVE_BACKOFF: Duration = Duration::from_millis(250);
/// Pause before the watcher subscribes again to a sentinel after losing one.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// One master name behind a set of sentinels, shared by every connection to it.
pub(crate) struct SentinelTarget {
    /// The URL with its password hidden, for errors.
    shown: String,
    master: String,
    db: i64,
    resolver: Mutex<Resolver>,
    /// Bumped on each failover seen; connections made under an older value reconnect.
    changes: watch::Sender<u64>,
}

struct Resolver {
    client: SentinelClient,
    /// When the last lookup failed and why, for [`RESOLVE_BACKOFF`].
    failed: Option<(Instant, RedisError)>,
}

impl SentinelTarget {
    pub(crate) fn parse(url: &str) -> Result<Arc<SentinelTarget>, StoreError> {
        let usage = "use redis+sentinel://[USER:PASSWORD@]HOST:PORT,HOST:PORT/MASTER_NAME[?db=N]";
        let rest = url.strip_prefix("redis+sentinel://").unwrap_or(url);
        let (userinfo, location) = match rest.rsplit_once('@') {
            Some((userinfo, location)) => (Some(userinfo), location),
            None => (None, rest),
        };
        let (location, query) = location.split_once('?').unwrap_or((location, ""));
        let Some((hosts, master)) = location.split_once('/') else {
            return Err(bad_url(url, &format!("no master name; {usage}")));
        };
        if master.is_empty() || master.contains('/') {
            return Err(bad_url(url, &format!("no master name; {usage}")));
        }
        let db = match query.split('&').find_map(|p| p.strip_prefix("db=")) {
            Some(n) => n
                .parse::<i64>()
                .map_err(|_| bad_url(url, &format!("db is not a number; {usage}")))?,
            None => 0,
        };
        if query
            .split('&')
            .any(|p| !p.is_empty() && !p.starts_with("db="))
        {
            return Err(bad_url(url, &format!("the only option is db; {usage}")));
        }
        let sentinels: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}"))
            .collect();
        if sentinels.is_empty() {
            return Err(bad_url(url, &format!("no sentinel listed; {usage}")));
        }
        // The master's credentials and database, read by redis-rs's own URL parser.
        let credentials = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let node = format!("redis://{credentials}127.0.0.1/{db}")
            .into_connection_info()
            .map_err(|e| StoreError::connect(url, &e))?;
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(
                node.redis_settings()
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3),
            )
            .set_tcp_settings(super::topology::tcp());
        let client = SentinelClient::build(
            sentinels.iter().map(String::as_str).collect(),
            master.to_owned(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(|e| StoreError::connect(url, &e))?;
        Ok(Arc::new(SentinelTarget {
            shown: redact_url(url),
            master: master.to_owned(),
            db,
            resolver: Mutex::new(Resolver {
                client,
                failed: None,
            }),
            changes: watch::channel(0).0,
        }))
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The master moved: every connection re-resolves before its next command.
    fn moved(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A client for the current master, after the sentinels named it and its `ROLE` said master.
    async fn master(&self) -> RedisResult<Client> {
        let mut resolver = self.resolver.lock().await;
        if let Some((at, e)) = &resolver.failed {
            if at.elapsed() < RESOLVE_BACKOFF {
                return Err(e.clone());
            }
        }
        let found =
            match tokio::time::timeout(RESOLVE_TIMEOUT, resolver.client.async_get_client()).await {
                Ok(found) => found,
                Err(_) => Err(RedisError::from((ErrorKind::Io, "timed out"))),
            };
        match found {
            Ok(client) => {
                resolver.failed = None;
                Ok(client)
            }
            Err(e) => {
                let e = RedisError::from((
                    ErrorKind::MasterNameNotFoundBySentinel,
                    "no Redis master",
                    format!(
                        "the sentinels at {} name no reachable master `{}` ({e}); a failover may \
                         be in progress (retry shortly), else check redis.url and the sentinels",
                        self.shown, self.master
                    ),
                ));
                resolver.failed = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Follows the sentinels' `+switch-master` messages for this master until the process ends,
    /// moving to another sentinel when one goes away.
    pub(crate) fn watch_failovers(self: &Arc<Self>) {
        let target = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                if let Err(e) = target.watch_once(&mut first).await {
                    tracing::debug!(error = %e, "sentinel watch interrupted; trying again");
                }
                tokio::time::sleep(WATCH_RETRY).await;
            }
        });
    }

    async fn watch_once(&self, first: &mut bool) -> RedisResult<()> {
        let sentinel = self
            .resolver
            .lock()
            .await
            .client
            .async_get_sentinel_client()
            .await?;
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe("+switch-master").await?;
        if !*first {
            // A switch may have happened while no sentinel was listened to.
            self.moved();
        }
        *first = false;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            // `<master name> <old ip> <old port> <new ip> <new port>`
            let payload: String = msg.get_payload().unwrap_or_default();
            if payload.split(' ').next() == Some(self.master.as_str()) {
                tracing::warn!(master = %self.master, "Sentinel switched the Redis master; reconnecting");
                self.moved();
            }
        }
        Ok(())
    }
}

/// A command connection to the master that follows it. Clones share one underlying connection.
/// The node's command connection also carries its subscription: each connection it makes
/// subscribes again, once the node listens.
#[derive(Clone)]
pub(crate) struct MasterConnection {
    target: Arc<SentinelTarget>,
    config: AsyncConnectionConfig,
    pushes: Option<PushSink>,
    current: Arc<Mutex<Option<Current>>>,
}

#[derive(Clone)]
struct Current {
    /// The target's change count when this connection was made.
    epoch: u64,
    /// Which connection this is, so only the one that failed is dropped.
    serial: u64,
    conn: MultiplexedConnection,
    /// Whether `conn` is subscribed to the node's channel.
    subscribed: bool,
}

impl MasterConnection {
    /// A connection to the master; `pushes` is the command connection's (see
    /// [`super::pushes`]), `None` for a blocking one.
    pub(crate) fn new(
        target: Arc<SentinelTarget>,
        config: AsyncConnectionConfig,
        pushes: Option<PushSink>,
    ) -> Self {
        let config = match &pushes {
            Some(sink) => config.set_push_sender(sink.clone()),
            None => config,
        };
        Self {
            target,
            config,
            pushes,
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// Subscribes the current connection, and each one made after it, to the node's channel.
    pub(crate) async fn subscribe(&self) -> RedisResult<()> {
        self.get().await.map(drop)
    }

    /// The connection to the master, made anew when there is none or the master moved since, and
    /// subscribed once the node listens.
    async fn get(&self) -> RedisResult<Current> {
        let mut current = self.current.lock().await;
        let epoch = *self.target.changes.borrow();
        let channel = self.pushes.as_ref().and_then(|p| p.0.channel());
        if let Some(c) = current.as_mut().filter(|c| c.epoch == epoch) {
            if let (Some(channel), false) = (channel, c.subscribed) {
                c.conn.subscribe(channel).await?;
                c.subscribed = true;
            }
            return Ok(c.clone());
        }
        let client = self.target.master().await?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        if let Some(channel) = channel {
            conn.subscribe(channel).await?;
        }
        let serial = current.as_ref().map_or(0, |c| c.serial.wrapping_add(1));
        let made = Current {
            epoch,
            serial,
            conn,
            subscribed: channel.is_some(),
        };
        *current = Some(made.clone());
        Ok(made)
    }

    /// Drops connection `serial` after it failed, unless another one replaced it already.
    async fn forget(&self, serial: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.serial == serial) {
            *current = None;
        }
    }

    /// What to do after `e` on connection `serial`: `true` when the command was refused before it
    /// did anything, by a server that is no longer the master or by a master that lost its
    /// replicas (`NOREPLICAS` under `min-replicas-to-write`, as an old master is during a
    /// failover), so it may be sent again once the sentinels are asked anew.
    async fn after_error(&self, serial: u64, e: &RedisError) -> bool {
        let demoted = matches!(e.code(), Some("READONLY" | "MASTERDOWN"));
        if demoted {
            tracing::warn!("Redis answered as a replica; asking the sentinels for the master");
            self.target.moved();
        }
        let refused = demoted || e.code() == Some("NOREPLICAS");
        let lost = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal();
        if refused || lost {
            self.forget(serial).await;
        }
        refused
    }
}

impl ConnectionLike for MasterConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut current = self.get().await?;
            match current.conn.req_packed_command(cmd).await {
                Err(e) if self.after_error(current.serial, &e).await => {
                    self.get().await?.conn.req_packed_command(cmd).await
                }
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut current = self.get().await?;
            match current
                .conn
                .req_packed_commands(pipeline, offset, count)
                .await
            {
                Err(e) if self.after_error(current.serial, &e).await => {
                    let mut again = self.get().await?;
                    again
                        .conn
                        .req_packed_commands(pipeline, offset, count)
                        .await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.target.db
    }
}
