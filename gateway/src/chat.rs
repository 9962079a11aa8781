//! `/ws/chat`: the contact's WebSocket. The gateway checks the `Origin`, upgrades with small
//! buffers, and hands the socket to the web chat adapter as a [`FrameSocket`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use helpline_adapters::{Close, FrameSocket, Inbound};
use tracing::Instrument;

use crate::auth;
use crate::errors::ApiError;
use crate::server::App;
use crate::sources::{Permit, Refused};

/// An axum WebSocket as a socket of text frames. It pings the peer every `ping_every` and gives
/// up on a peer that answered nothing (no frame, no pong) for two of them: a browser that vanished
/// without closing, whose TCP connection may stay open for hours, would otherwise keep a counsellor
/// present (and their conversations held) or a contact counted as waiting.
pub struct AxumSocket {
    ws: WebSocket,
    ping_every: Duration,
    /// When the peer last sent anything.
    heard: Instant,
    next_ping: Instant,
}

impl AxumSocket {
    /// Wraps an upgraded socket; `ping_s` is `server.ws_ping_s`.
    pub fn new(ws: WebSocket, ping_s: u64) -> AxumSocket {
        let ping_every = Duration::from_secs(ping_s);
        AxumSocket {
            ws,
            ping_every,
            heard: Instant::now(),
            next_ping: Instant::now() + ping_every,
        }
    }
}

impl FrameSocket for AxumSocket {
    /// Cancel-safe: the ping schedule lives in the struct, and a ping cut short by a cancelled
    /// call stays buffered and goes out with the next write.
    async fn recv(&mut self) -> Option<Inbound> {
        loop {
            let msg = tokio::select! {
                msg = self.ws.recv() => msg?,
                _ = tokio::time::sleep_until(self.next_ping.into()) => {
                    if self.heard.elapsed() >= self.ping_every * 2 {
                        tracing::info!("a socket answered no ping; closing it as gone");
                        return None;
                    }
                    self.next_ping = Instant::now() + self.ping_every;
                    self.ws.send(Message::Ping(Default::default())).await.ok()?;
                    continue;
                }
            };
            self.heard = Instant::now();
            return match msg {
                Ok(Message::Text(text)) => Some(Inbound::Text(text.to_string())),
                Ok(Message::Binary(_)) => Some(Inbound::Binary),
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
                Ok(Message::Close(_)) => None,
                Err(e) => Some(Inbound::Broken(e.to_string())),
            };
        }
    }

    async fn feed(&mut self, text: String) -> Result<(), ()> {
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .map_err(|_| ())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        SinkExt::flush(&mut self.ws).await.map_err(|_| ())
    }

    async fn close(&mut self, close: Close) {
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        };
        let _ = self.ws.send(Message::Close(Some(frame))).await;
    }
}

/// Applies the node's small buffers and the message size limit to an upgrade. Tungstenite's
/// defaults (128 KiB read buffer per connection) are far too much for thousands of idle children;
/// a frame longer than the read buffer grows it while it is read. The write buffer is left
/// uncapped: every send waits until its frame is written out, so it never holds more than the
/// frame being sent, which for a console's `hello` with its conversations' histories can be large.
pub fn tuned(ws: WebSocketUpgrade, app: &App) -> WebSocketUpgrade {
    let chat = &app.router.config().webchat;
    // JSON escaping can grow text up to six times (\uXXXX); anything bigger is not a chat message.
    let max = chat.max_message_bytes * 6 + 1024;
    ws.read_buffer_size(chat.buffer_bytes)
        .write_buffer_size(chat.buffer_bytes)
        .max_message_size(max)
        .max_frame_size(max)
}

/// Takes a place for one more socket from `peer` (the socket caps), before the upgrade: a full
/// node answers 503 so the load balancer tries another, a full source 429.
pub fn admit(app: &App, peer: SocketAddr, headers: &HeaderMap) -> Result<Permit, ApiError> {
    let source = app.sockets.source(peer, headers);
    app.sockets
        .admit(source, app.router.telemetry())
        .map_err(|why| match why {
            Refused::NodeFull => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_full",
                "this node holds all the connections it may (limits.max_sockets); try again",
            ),
            Refused::SourceFull => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                "too many connections from your network (limits.sockets_per_source); close one",
            ),
        })
}

pub async fn upgrade(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !auth::origin_allowed(&app, &headers, true) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "open the chat from the helpline's own page",
        )
        .into_response();
    }
    let permit = match admit(&app, peer, &headers) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let shutdown = app.shutdown.clone();
    let tracker = app.tracker.clone();
    let webchat = app.webchat.clone();
    let ping_s = app.router.config().server.ws_ping_s;
    // The session keeps the upgrade request's span, so all its lines share one log id.
    let span = tracing::Span::current();
    tuned(ws, &app).on_upgrade(move |socket| {
        tracker.track_future(
            async move {
                webchat
                    .serve(AxumSocket::new(socket, ping_s), shutdown)
                    .await;
                drop(permit);
            }
            .instrument(span),
        )
    })
}
