//! Where Redis is and how to reach it: one server (`redis://`, `rediss://`, `redis+unix://`), a
//! master found through Sentinel (`redis+sentinel://`, see [`super::sentinel`]) or a Cluster
//! (`redis+cluster://`). Every connection the gateway opens is made here, so each kind of Redis
//! is handled once: the shared command connection (which also carries the routing events, see
//! [`super::pushes`]) and the outbox readers' blocking connections. Every connection speaks RESP3.
//!
//! It must never put a password in an error or a log line: URLs are shown through `redact_url`.

use std::sync::Arc;
use std::time::Duration;

use helpline_config::redact_url;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, RedisFuture,
    Value,
};
use tokio::sync::watch;

use super::pushes::PushSink;
use super::sentinel::{MasterConnection, SentinelTarget};
use crate::error::StoreError;

/// How long opening a connection may take: a node that cannot reach Redis says so at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may take on the shared connection before the caller is told to retry.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a blocking read may wait (its own BLOCK is shorter).
const BLOCKING_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Every connection to Redis turns Nagle's algorithm off. With it on (redis-rs's default), a
/// command written while an earlier one on the same connection is still unacknowledged waits for
/// the server's delayed ACK, up to 40 ms: on the shared, pipelined command connection that capped
/// the relay near 3,000 messages a second with seconds of latency (docs/benchmarks.md).
pub(crate) fn tcp() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// A client for one server's URL, with [`tcp`] settings, speaking RESP3.
pub(crate) fn client(url: &str) -> redis::RedisResult<Client> {
    let info = url.into_connection_info()?;
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(redis).set_tcp_settings(tcp()))
}

/// The kind of Redis `redis.url` names, with what is needed to open connections to it.
pub(crate) enum Topology {
    Single(Client),
    Sentinel(Arc<SentinelTarget>),
    /// The cluster client. The command connection subscribes on the node that owns the events
    /// channel's slot (a classic `PUBLISH` reaches every node of a cluster anyway).
    Cluster(Box<ClusterClient>),
}

impl Topology {
    /// Reads `url`; the error names the URL (password hidden) and what is wrong with it.
    pub(crate) fn parse(url: &str) -> Result<Topology, StoreError> {
        if url.starts_with("redis+sentinel://") {
            return Ok(Topology::Sentinel(SentinelTarget::parse(url)?));
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return cluster(url, rest);
        }
        let client = client(url).map_err(|e| StoreError::connect(url, &e))?;
        Ok(Topology::Single(client))
    }

    /// The shared command connection (multiplexed; it reconnects, follows a failover, and pushes
    /// what it hears besides replies into `pushes`).
    pub(crate) async fn connect(&self, pushes: PushSink) -> Result<Connection, redis::RedisError> {
        let kind = match self {
            Topology::Single(client) => {
                // Few quick retries: a request during a restart fails fast (the caller answers
                // "try again") instead of hanging a socket.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_push_sender(pushes)
                    .set_automatic_resubscription();
                let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
                Kind::Manager(manager)
            }
            Topology::Sentinel(target) => Kind::Master(MasterConnection::new(
                target.clone(),
                config(RESPONSE_TIMEOUT),
                Some(pushes),
            )),
            Topology::Cluster(client) => Kind::Cluster(
                client
                    .get_async_connection_with_config(
                        cluster_config(RESPONSE_TIMEOUT).set_push_sender(pushes),
                    )
                    .await?,
            ),
        };
        Ok(Connection(kind))
    }

    /// A connection of its own for blocking reads, which would hold up every other command on a
    /// shared one.
    pub(crate) async fn blocking(&self) -> Result<Connection, redis::RedisError> {
        let timeouts = config(BLOCKING_RESPONSE_TIMEOUT);
        let kind = match self {
            Topology::Single(client) => Kind::Plain(
                client
                    .get_multiplexed_async_connection_with_config(&timeouts)
                    .await?,
            ),
            Topology::Sentinel(target) => {
                Kind::Master(MasterConnection::new(target.clone(), timeouts, None))
            }
            Topology::Cluster(client) => Kind::Cluster(
                client
                    .get_async_connection_with_config(cluster_config(BLOCKING_RESPONSE_TIMEOUT))
                    .await?,
            ),
        };
        Ok(Connection(kind))
    }

    /// Changes each time the Sentinel master moves, so the listener can have the command connection
    /// move (and subscribe) at once. Never changes for one server or a cluster.
    pub(crate) fn master_changes(&self, fixed: &watch::Sender<u64>) -> watch::Receiver<u64> {
        match self {
            Topology::Sentinel(target) => target.changes(),
            Topology::Single(_) | Topology::Cluster(_) => fixed.subscribe(),
        }
    }
}

fn config(response: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response))
}

fn cluster_config(response: Duration) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(response)
}

/// `redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,…`: any reachable node tells the client
/// the rest of the cluster.
fn cluster(url: &str, rest: &str) -> Result<Topology, StoreError> {
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, rest),
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains(['/', '?']) {
        return Err(bad_url(
            url,
            "a cluster URL has no database or options: use redis+cluster://HOST:PORT,HOST:PORT",
        ));
    }
    let prefix = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let seeds: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{prefix}{h}"))
        .collect();
    if seeds.is_empty() {
        return Err(bad_url(
            url,
            "name at least one node: redis+cluster://HOST:PORT,HOST:PORT",
        ));
    }
    let client = ClusterClient::builder(seeds.iter().map(String::as_str))
        .tcp_settings(tcp())
        .use_protocol(ProtocolVersion::RESP3)
        .build()
        .map_err(|e| StoreError::connect(url, &e))?;
    Ok(Topology::Cluster(Box::new(client)))
}

pub(crate) fn bad_url(url: &str, why: &str) -> StoreError {
    StoreError::Unreachable(redact_url(url), why.to_owned())
}

/// A connection to whatever `redis.url` names; cheap to clone (all kinds multiplex).
#[derive(Clone)]
pub struct Connection(Kind);

#[derive(Clone)]
enum Kind {
    Manager(ConnectionManager),
    Plain(MultiplexedConnection),
    Master(MasterConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Subscribes the command connection to the channel `pushes` names (see [`super::pushes`]);
    /// it stays subscribed across reconnections and failovers.
    pub(crate) async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match &mut self.0 {
            Kind::Manager(c) => c.subscribe(channel).await,
            Kind::Cluster(c) => c.subscribe(channel).await,
            Kind::Master(c) => c.subscribe().await,
            Kind::Plain(_) => Err((
                redis::ErrorKind::Client,
                "a blocking connection does not subscribe",
            )
                .into()),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Kind::Manager(c) => c.req_packed_command(cmd),
            Kind::Plain(c) => c.req_packed_command(cmd),
            Kind::Master(c) => c.req_packed_command(cmd),
            Kind::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Kind::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Master(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Kind::Manager(c) => c.get_db(),
            Kind::Plain(c) => c.get_db(),
            Kind::Master(c) => c.get_db(),
            Kind::Cluster(c) => c.get_db(),
        }
    }
}
