//! The floor: the least a relay over WebSockets with durable storage can cost on this machine. A
//! tokio-tungstenite server that, for every text frame, appends it to a Redis stream with one XADD
//! and then echoes it back. The gateway does this and more (sealing, routing, a Lua script); the
//! benchmark reports each gateway figure beside this one, measured in the same run.

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::conn::small_buffers;

/// Serves the floor on `listener` until the process ends.
pub async fn serve(listener: TcpListener, redis_url: &str) -> Result<()> {
    // Nagle off towards Redis too, as the gateway does: the floor is the best case.
    let info = redis::IntoConnectionInfo::into_connection_info(redis_url)
        .with_context(|| format!("{redis_url} is not a Redis URL"))?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let redis = redis::Client::open(info)?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| {
            format!("Redis at {redis_url} refused the connection; is redis-server running?")
        })?;
    let mut n = 0u64;
    loop {
        let (socket, _) = listener.accept().await?;
        n += 1;
        tokio::spawn(connection(socket, redis.clone(), format!("floor:{n}")));
    }
}

async fn connection(socket: TcpStream, mut redis: redis::aio::MultiplexedConnection, key: String) {
    let _ = socket.set_nodelay(true);
    let Ok(mut ws) =
        tokio_tungstenite::accept_async_with_config(socket, Some(small_buffers())).await
    else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let stored: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("m")
            .arg(text.as_str())
            .query_async(&mut redis)
            .await;
        if stored.is_err() || ws.send(Message::Text(text)).await.is_err() {
            break;
        }
    }
}
