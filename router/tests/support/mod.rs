//! What the router's integration tests share: a private redis-server on a free port (killed on drop)
//! and routing settings with every timer far away, so a test controls time by its own operations.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpline_router::store::ScriptSettings;

/// A private redis-server, nothing persisted, killed when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits until it answers PING.
    pub fn start() -> Result<RedisServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("redis-server is not installed (apt-get install redis-server): {e}")
            })?;
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = TcpStream::connect(("127.0.0.1", port)).is_ok()
                && redis::Client::open(server.url())
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok();
            if ready {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not start on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Offer mode with every timer an hour away (aging and relaxation off).
pub fn settings() -> ScriptSettings {
    ScriptSettings {
        assignment: "offer",
        offer_timeout_ms: 3_600_000,
        lapses_before_away: 2,
        agent_grace_ms: 3_600_000,
        aging_ms: 0,
        relax_topic_ms: 0,
        relax_language_ms: 0,
        abandon_ms: 3_600_000,
        sparing_channels: helpline_router::SPARING_CHANNELS.to_vec(),
        stats_keep_s: 8 * 24 * 3600,
    }
}
