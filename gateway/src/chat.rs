//! `/ws/chat`: the contact's WebSocket. The gateway checks the `Origin`, upgrades with small
//! buffers, and hands the socket to the web chat adapter as a [`FrameSocket`].

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use helpline_adapters::{Close, FrameSocket, Inbound};
use tracing::Instrument;

use crate::auth;
use crate::errors::ApiError;
use crate::server::App;
use crate::sources::{Permit, Refused};

/// An axum WebSocket as a socket of text frames.
pub struct AxumSocket(pub WebSocket);

impl FrameSocket for AxumSocket {
    async fn recv(&mut self) -> Option<Inbound> {
        loop {
            return match self.0.recv().await? {
                Ok(Message::Text(text)) => Some(Inbound::Text(text.to_string())),
                Ok(Message::Binary(_)) => Some(Inbound::Binary),
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
                Ok(Message::Close(_)) => None,
                Err(e) => Some(Inbound::Broken(e.to_string())),
            };
        }
    }

    async fn send(&mut self, text: String) -> Result<(), ()> {
        self.0
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| ())
    }

    async fn close(&mut self, close: Close) {
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        };
        let _ = self.0.send(Message::Close(Some(frame))).await;
    }
}

/// Applies the node's small buffers and the message size limit to an upgrade. Tungstenite's
/// defaults (128 KiB read buffer per connection) are far too much for thousands of idle children.
pub fn tuned(ws: WebSocketUpgrade, app: &App) -> WebSocketUpgrade {
    let chat = &app.router.config().webchat;
    // JSON escaping can grow text up to six times (\uXXXX); anything bigger is not a chat message.
    let max = chat.max_message_bytes * 6 + 1024;
    ws.read_buffer_size(chat.buffer_bytes)
        .write_buffer_size(chat.buffer_bytes)
        .max_write_buffer_size(chat.buffer_bytes * 64)
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
    // The session keeps the upgrade request's span, so all its lines share one log id.
    let span = tracing::Span::current();
    tuned(ws, &app).on_upgrade(move |socket| {
        tracker.track_future(
            async move {
                webchat.serve(AxumSocket(socket), shutdown).await;
                drop(permit);
            }
            .instrument(span),
        )
    })
}
