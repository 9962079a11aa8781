//! Opening the generator's WebSockets: small buffers and no Nagle, so a client costs little memory
//! and a frame leaves when it is sent; and reading the frames a scenario waits for.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{login, Gateway};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Buffers sized for 200 B messages rather than tungstenite's 128 KiB defaults.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
}

/// Opens `ws://127.0.0.1:{port}{path}` with the gateway's `Origin` and an optional cookie.
pub async fn open(port: u16, path: &str, cookie: Option<&str>) -> Result<Ws> {
    let mut req = format!("ws://127.0.0.1:{port}{path}").into_client_request()?;
    req.headers_mut()
        .insert("Origin", format!("http://127.0.0.1:{port}").parse()?);
    if let Some(c) = cookie {
        req.headers_mut().insert("Cookie", c.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(small_buffers()), true)
        .await
        .with_context(|| format!("WebSocket upgrade of {path} on port {port} failed"))?;
    Ok(ws)
}

/// Logs `username` in and opens `/ws/agent`, past its `hello` (the status is whatever the account
/// had: `away` for a new one).
pub async fn staff(gw: &Gateway, username: &str) -> Result<Ws> {
    let cookie = login(gw, username).await?;
    let mut ws = open(gw.port, "/ws/agent", Some(&cookie)).await?;
    wait_for(&mut ws, "hello").await?;
    Ok(ws)
}

/// Sets a staff socket's status to available and waits until the gateway confirmed it.
pub async fn available(ws: &mut Ws) -> Result<()> {
    ws.send(Message::text(AVAILABLE)).await?;
    wait_for(ws, "status").await?;
    Ok(())
}

/// The staff frame that makes a counsellor available.
pub const AVAILABLE: &str = r#"{"type":"status","status":"available"}"#;

/// The next frame of type `kind`, skipping others, within 30 s.
pub async fn wait_for(ws: &mut Ws, kind: &str) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow!("no {kind} frame within 30 s"))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                if v["type"] == kind {
                    return Ok(v);
                }
                if v["type"] == "error" {
                    bail!("waiting for {kind}, the gateway answered {v}");
                }
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => bail!("the socket closed while waiting for {kind}"),
        }
    }
}
