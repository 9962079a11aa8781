//! Opening the generator's WebSockets: small buffers and no Nagle, so a client costs little memory
//! and a frame leaves when it is sent.

use anyhow::{Context, Result};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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
