//! Breaking things on purpose, for the fault tests (docs/guarantees.md): a gateway node killed with
//! SIGKILL and started again on the same port, a Redis with AOF killed and restarted on the same
//! port and data folder, a Redis frozen with SIGSTOP, and what a process holds (memory, sockets).
//!
//! Everything started here is killed when its handle drops, so a failing test leaves nothing
//! running.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{binary, free_port, wait_for_port, Gateway, Redis};

impl Gateway {
    /// Kills the node (SIGKILL, as a crash) if it still runs and starts it again on the same port
    /// with the same settings; the new process appends to the same log.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let filter = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "HELPLINE_LOG")
            .map_or_else(|| "info".to_owned(), |(_, v)| v.clone());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        self.child = Command::new(binary())
            .arg("serve")
            .envs(self.env.iter().cloned())
            .env("HELPLINE_LOG", filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} again", binary().display()))?;
        self.wait_ready()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Redis {
    /// The redis-server's process id (to freeze it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`) to process `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed: {status}");
    }
    Ok(())
}

/// The resident memory of process `pid` in KiB (VmRSS in /proc), if it runs.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How many file descriptors (sockets included) process `pid` holds open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A redis-server with AOF persistence (`appendfsync` as given) on a fixed port and data folder,
/// which a test can kill with SIGKILL and start again on the same port and folder, as a crashed
/// and restarted server.
pub struct DurableRedis {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    appendfsync: &'static str,
}

impl DurableRedis {
    /// Starts one with `appendfsync` `everysec` or `always`.
    pub fn start(appendfsync: &'static str) -> Result<DurableRedis> {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("helpline-test-aof-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut redis = DurableRedis {
            child: None,
            port,
            dir,
            appendfsync,
        };
        redis.spawn()?;
        Ok(redis)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", self.appendfsync])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is not installed (apt-get install redis-server)")?;
        self.child = Some(child);
        wait_for_port(self.port)?;
        self.wait_loaded()
    }

    /// Waits until the server answers PING (not `LOADING` while it replays its AOF).
    fn wait_loaded(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["ping"])?.trim() == "PONG" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "redis-server on port {} is still loading after 10 s",
            self.port
        )
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL: whatever it had not written to its AOF is gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder; it replays its AOF first.
    pub fn restart(&mut self) -> Result<()> {
        self.crash();
        self.spawn()
    }

    /// Runs redis-cli against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        crate::redis_cli(self.port, args)
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A WebSocket over a TCP stream the test controls, to vanish without a close frame.
pub type RawWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens `path` on `port` over a plain TCP stream (with the node's `Origin` and an optional
/// cookie), so the test can later drop the connection abruptly or simply stop answering.
pub async fn raw_socket(port: u16, path: &str, cookie: Option<&str>) -> Result<RawWs> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}{path}").into_client_request()?;
    req.headers_mut()
        .insert("Origin", format!("http://127.0.0.1:{port}").parse()?);
    if let Some(c) = cookie {
        req.headers_mut().insert("Cookie", c.parse()?);
    }
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
    Ok(ws)
}

/// Drops the connection with a TCP reset: no WebSocket close frame, no FIN handshake, as when a
/// laptop's network vanishes and its operating system gives up on the connection.
pub fn reset(ws: RawWs) -> Result<()> {
    ws.get_ref().set_zero_linger()?;
    drop(ws);
    Ok(())
}
