//! Redis topologies started by a test on loopback: a master with a replica watched by three
//! sentinels, and a three-master cluster. Every process is killed when its handle drops, so a
//! failing test cleans up too.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{free_port, Redis};

/// The master name the sentinels watch.
pub const MASTER_NAME: &str = "helpline-main";

/// One master, one replica and three sentinels (quorum 2), with short timers so a failover takes
/// a few seconds.
pub struct SentinelSet {
    /// `None` once the test killed it.
    pub master: Option<Redis>,
    pub replica: Redis,
    pub sentinels: Vec<Sentinel>,
}

impl SentinelSet {
    /// Starts everything and waits until the sentinels know the replica and each other (a
    /// failover needs both).
    pub fn start() -> Result<SentinelSet> {
        Self::start_with(&[])
    }

    /// The same, with extra redis-server settings for the master and the replica.
    pub fn start_with(settings: &[&str]) -> Result<SentinelSet> {
        // Redis 7 waits 5 s for more replicas before a diskless first sync: no waiting here (on
        // the replica too, which syncs the old master once it is promoted).
        let mut common = vec!["--repl-diskless-sync-delay", "0"];
        common.extend(settings);
        let master = Redis::start_with(&common)?;
        let master_port = master.port.to_string();
        let mut replica_args = vec!["--replicaof", "127.0.0.1", &master_port];
        replica_args.extend(&common);
        let replica = Redis::start_with(&replica_args)?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(Sentinel::start(master.port)?);
        }
        let set = SentinelSet {
            master: Some(master),
            replica,
            sentinels,
        };
        set.wait_until(Duration::from_secs(20), |info| {
            info.contains("num-slaves\n1\n") && info.contains("num-other-sentinels\n2\n")
        })
        .context("the sentinels did not find the replica and each other")?;
        set.wait_for_replica(Duration::from_secs(20))?;
        Ok(set)
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/helpline-main`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The port of the server the first sentinel names as master now.
    pub fn master_port(&self) -> Result<u16> {
        let out = self.sentinels[0].cli(&["sentinel", "get-master-addr-by-name", MASTER_NAME])?;
        let port = out.lines().nth(1).unwrap_or_default().trim().to_owned();
        port.parse()
            .with_context(|| format!("sentinel answered {out:?}"))
    }

    /// Waits until the replica finished its first sync and follows the master's stream.
    fn wait_for_replica(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let info = match &self.master {
                Some(master) => master.cli(&["info", "replication"])?,
                None => bail!("the master is gone"),
            };
            if info.contains("state=online") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the replica did not sync within {limit:?}")
    }

    /// Waits until `check` holds for the first sentinel's `SENTINEL MASTER` answer.
    fn wait_until(&self, limit: Duration, check: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let info = self.sentinels[0].cli(&["sentinel", "master", MASTER_NAME])?;
            if check(&info) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("waited {limit:?}")
    }
}

/// A `redis-server --sentinel` process with its own (writable) config file.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Sentinel {
    fn start(master_port: u16) -> Result<Sentinel> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "helpline-test-sentinel-{port}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir.display()
            ),
        )?;
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is not installed (apt-get install redis-server)")?;
        let sentinel = Sentinel { child, port, dir };
        crate::wait_for_port(port)?;
        Ok(sentinel)
    }

    pub fn cli(&self, args: &[&str]) -> Result<String> {
        cli(self.port, args)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters without replicas, all 16384 slots assigned.
pub struct Cluster {
    pub nodes: Vec<Redis>,
}

impl Cluster {
    pub fn start() -> Result<Cluster> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            // The bus port defaults to port + 10000, which may not be free: pick one.
            let bus = free_port().to_string();
            nodes.push(Redis::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "2000",
            ])?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .context("redis-cli is not installed")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let cluster = Cluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.nodes.iter().all(|n| {
            n.cli(&["cluster", "info"])
                .is_ok_and(|i| i.contains("cluster_state:ok"))
        }) {
            if Instant::now() > deadline {
                bail!("the cluster is not ok after 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

/// Runs redis-cli against the server on `port`.
pub fn cli(port: u16, args: &[&str]) -> Result<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
