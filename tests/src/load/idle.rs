//! The idle scenario: many contacts connected and started, then quiet; what each costs the server
//! in resident memory.

use std::time::Duration;

use anyhow::Result;
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::conn::{open, wait_for, Ws};
use super::rig::rss_kib;

/// What an idle run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// `gateway` or `floor`.
    pub target: String,
    pub contacts: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after − before) / contacts.
    pub kib_per_contact: f64,
    pub connect_secs: f64,
}

/// Opens `n` sockets to `port`: `/ws/chat` with `start` for the gateway, a bare socket for the
/// floor. Returns the measurement and the sockets (hold them until measured).
pub async fn run(
    target: &'static str,
    port: u16,
    pid: u32,
    n: usize,
) -> Result<(IdleResult, Vec<Ws>)> {
    let before = rss_kib(pid)?;
    let started = std::time::Instant::now();
    let mut socks = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let opened = futures_util::future::join_all(chunk.iter().map(|_| one(target, port))).await;
        for s in opened {
            socks.push(s?);
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the server finish any work the starts queued (queue positions, offers) before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let result = IdleResult {
        target: target.to_owned(),
        contacts: n,
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_contact: after.saturating_sub(before) as f64 / n.max(1) as f64,
        connect_secs,
    };
    Ok((result, socks))
}

async fn one(target: &str, port: u16) -> Result<Ws> {
    if target == "floor" {
        return open(port, "/", None).await;
    }
    let mut ws = open(port, "/ws/chat", None).await?;
    ws.send(Message::text(r#"{"type":"start","lang":"en"}"#))
        .await?;
    wait_for(&mut ws, "started").await?;
    Ok(ws)
}
