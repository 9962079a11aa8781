//! `/ws/agent`: the staff WebSocket (CONTRACT.md section 5). A session starts with `hello` (the
//! counsellor's live conversations with their history, so a reload loses nothing), then relays
//! staff frames to the router and the router's events back, with a queue summary every 5 s.

pub(crate) mod frames;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use helpline_adapters::throttle::{pause, Admission, Throttle};
use helpline_adapters::{Close, FrameSocket, Inbound};
use helpline_router::conversation::valid_client_id;
use helpline_router::hub::Subscription;
use helpline_router::{
    Account, Delivery, Event, Role, Router, RouterError, TransferTarget, Urgency,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::{self, Staff};
use crate::chat::{tuned, AxumSocket};
use crate::errors::ApiError;
use crate::server::App;
use frames::StaffFrame;

/// How often the queue summary is sent while anyone waits.
const QUEUE_EVERY: Duration = Duration::from_secs(5);

pub async fn upgrade(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    staff: Result<Staff, ApiError>,
    ws: WebSocketUpgrade,
) -> Response {
    if !auth::origin_allowed(&app, &headers, true) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "open the console from the helpline's own address",
        )
        .into_response();
    }
    let account = match staff {
        Ok(Staff(a)) if a.role.answers() => a,
        Ok(_) => return ApiError::forbidden().into_response(),
        Err(e) => return e.into_response(),
    };
    let permit = match crate::chat::admit(&app, peer, &headers) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let ping_s = app.router.config().server.ws_ping_s;
    let (router, shutdown, tracker) = (
        app.router.clone(),
        app.shutdown.clone(),
        app.tracker.clone(),
    );
    // The session keeps the upgrade request's span, so all its lines share one log id.
    let span = tracing::Span::current();
    tuned(ws, &app).on_upgrade(move |socket| {
        tracker.track_future(
            async move {
                let mut session = Session {
                    sub: router.hub().join_staff(&account.username),
                    router,
                    account,
                };
                let mut socket = AxumSocket::new(socket, ping_s);
                if let Some(close) = session.run(&mut socket, &shutdown).await {
                    socket.close(close).await;
                }
                drop(permit);
            }
            .instrument(span),
        )
    })
}

struct Session {
    router: Router,
    account: Account,
    sub: Subscription,
}

type Step = Result<(), Close>;

/// A refusal to tell the staff member about.
struct Refusal {
    code: String,
    message: String,
}

impl From<RouterError> for Refusal {
    fn from(e: RouterError) -> Self {
        let code = e.code().to_owned();
        let message = match e {
            RouterError::Store(_) => "storage is unavailable; try again in a moment".into(),
            RouterError::Vault(_) | RouterError::Setup(_) => "internal error".into(),
            other => other.to_string(),
        };
        Refusal { code, message }
    }
}

fn refuse(code: &str, message: &str) -> Refusal {
    Refusal {
        code: code.into(),
        message: message.into(),
    }
}

impl Session {
    /// Runs until the socket closes; returns the close code when the server is the one closing.
    async fn run(
        &mut self,
        socket: &mut AxumSocket,
        shutdown: &CancellationToken,
    ) -> Option<Close> {
        if let Err(close) = self.hello(socket).await {
            return closing(close);
        }
        let mut queue_tick = tokio::time::interval(QUEUE_EVERY);
        // Staff frames are paced like contacts' (a stuck key or a script cannot starve the node);
        // a console sends far fewer, so in practice this never bites a person.
        let mut throttle = Throttle::new(&self.router.config().limits);
        loop {
            // What the last turn queued (or the hello) goes out in one write.
            if socket.flush().await.is_err() {
                return None;
            }
            let step: Step = tokio::select! {
                _ = shutdown.cancelled() => Err(Close::RESTART),
                // Past its frame budget the socket is not read for a while; events still flow.
                inbound = socket.recv(), if throttle.paused_until().is_none() => {
                    if let Admission::Over { .. } = throttle.take() {
                        self.router.telemetry().frames_slowed("staff");
                    }
                    match inbound {
                        None | Some(Inbound::Broken(_)) => return None,
                        Some(Inbound::Binary) => self.say(socket, frames::error("bad_frame", "send text frames", None)).await,
                        Some(Inbound::Text(text)) => self.on_text(socket, &text).await,
                    }
                }
                _ = pause(throttle.paused_until()) => Ok(()),
                delivery = self.sub.receiver.recv() => self.on_delivery(socket, delivery).await,
                _ = queue_tick.tick() => self.queue_summary(socket).await,
            };
            let step = match step {
                Ok(()) => self.on_waiting(socket).await,
                close => close,
            };
            if let Err(close) = step {
                return closing(close);
            }
        }
    }

    async fn on_delivery(&mut self, socket: &mut AxumSocket, delivery: Option<Delivery>) -> Step {
        match delivery {
            None => Err(Close::TRY_AGAIN),
            Some(Delivery::Resync) => self.hello(socket).await,
            Some(Delivery::Event(ev)) => self.on_event(socket, &ev).await,
            Some(Delivery::Queue(_)) => Ok(()),
        }
    }

    /// Handles the deliveries already waiting, so that their frames share this turn's write.
    async fn on_waiting(&mut self, socket: &mut AxumSocket) -> Step {
        for _ in 0..helpline_adapters::TURN_DELIVERIES {
            let Ok(delivery) = self.sub.receiver.try_recv() else {
                break;
            };
            self.on_delivery(socket, Some(delivery)).await?;
        }
        Ok(())
    }

    /// Queues a frame; the session loop flushes once a turn.
    async fn say(&self, socket: &mut AxumSocket, frame: String) -> Step {
        socket.feed(frame).await.map_err(|()| Close::NORMAL)
    }

    async fn hello(&mut self, socket: &mut AxumSocket) -> Step {
        let desk = match self.router.staff_connected(&self.account).await {
            Ok(d) => d,
            Err(e) => {
                let r = Refusal::from(e);
                self.say(socket, frames::error(&r.code, &r.message, None))
                    .await?;
                return Err(Close::TRY_AGAIN);
            }
        };
        let mut conversations = Vec::new();
        for view in &desk.active {
            let history = self
                .router
                .history(&view.conversation, None, true)
                .await
                .unwrap_or_default();
            conversations.push(frames::conversation_json(view, &history));
        }
        let hello = json!({
            "type": "hello",
            "username": self.account.username,
            "role": self.account.role,
            "display_name": self.account.display_name,
            "status": desk.status,
            "conversations": conversations,
        });
        self.say(socket, hello.to_string()).await?;
        for view in &desk.offered {
            self.say(
                socket,
                frames::offer(view, self.router.config().routing.offer_timeout_s),
            )
            .await?;
        }
        self.queue_summary(socket).await
    }

    async fn queue_summary(&self, socket: &mut AxumSocket) -> Step {
        match self.router.queue_summary().await {
            Ok((waiting, longest)) => self.say(socket, frames::queue(waiting, longest)).await,
            Err(_) => Ok(()),
        }
    }

    async fn on_text(&mut self, socket: &mut AxumSocket, text: &str) -> Step {
        let frame = match frames::parse(text, self.router.config().limits.json_depth) {
            Ok(f) => f,
            Err((code, message)) => {
                return self.say(socket, frames::error(code, &message, None)).await
            }
        };
        let conv = frame_conversation(&frame).map(str::to_owned);
        let client_msg_id = match &frame {
            StaffFrame::Message { client_msg_id, .. } => Some(client_msg_id.clone()),
            StaffFrame::Whisper { client_msg_id, .. } => client_msg_id.clone(),
            _ => None,
        };
        match self.on_frame(frame).await {
            Ok(Some(reply)) => self.say(socket, reply).await,
            Ok(None) => Ok(()),
            Err(r) => {
                let error = frames::error_about(
                    &r.code,
                    &r.message,
                    conv.as_deref(),
                    client_msg_id.as_deref(),
                );
                self.say(socket, error).await
            }
        }
    }

    fn supervisor(&self) -> Result<(), Refusal> {
        if matches!(self.account.role, Role::Supervisor | Role::Admin) {
            Ok(())
        } else {
            Err(refuse("forbidden", "only supervisors may do this"))
        }
    }

    /// Acts on a frame; returns the reply frame, if any.
    async fn on_frame(&mut self, frame: StaffFrame) -> Result<Option<String>, Refusal> {
        let r = &self.router;
        let me = &self.account;
        match frame {
            StaffFrame::Status { status } => {
                r.set_status(&me.username, &status).await?;
                Ok(Some(
                    json!({"type": "status", "status": status}).to_string(),
                ))
            }
            StaffFrame::Accept { conversation } => {
                Ok(r.accept(&conversation, &me.username).await.map(|()| None)?)
            }
            StaffFrame::Decline { conversation } => Ok(r
                .decline(&conversation, &me.username)
                .await
                .map(|()| None)?),
            StaffFrame::Message {
                conversation,
                text,
                client_msg_id,
            } => {
                check_text(r, &text, Some(&client_msg_id))?;
                let stored = r
                    .counsellor_message(&conversation, me, &text, &client_msg_id)
                    .await?;
                if stored.channel == helpline_adapters::sms::CHANNEL {
                    return Ok(Some(frames::ack_sms(&client_msg_id, &stored.id, &text)));
                }
                Ok(Some(frames::ack(&client_msg_id, &stored.id)))
            }
            StaffFrame::Urgency {
                conversation,
                level,
            } => {
                let level = Urgency::parse(&level).ok_or_else(|| {
                    refuse("bad_frame", "level must be low, normal, high or critical")
                })?;
                r.regrade(&conversation, me, level).await?;
                Ok(None)
            }
            StaffFrame::Transfer {
                conversation,
                skills,
                counsellor,
            } => {
                let target = match (skills, counsellor) {
                    (Some(s), None) if !s.is_empty() => TransferTarget::Skills(s),
                    (None, Some(c)) => TransferTarget::Counsellor(c),
                    _ => {
                        return Err(refuse(
                            "bad_frame",
                            "transfer needs either \"skills\" or \"counsellor\"",
                        ))
                    }
                };
                r.transfer(&conversation, me, target).await?;
                Ok(None)
            }
            StaffFrame::Close {
                conversation,
                outcome,
                tags,
            } => {
                r.close(&conversation, me, &outcome, &tags).await?;
                Ok(None)
            }
            StaffFrame::Monitor { conversation } => {
                self.supervisor()?;
                let view = r.conversation_view(&conversation).await?;
                let history = r.history(&conversation, None, true).await?;
                let log = helpline_router::AuditAction::ConversationMonitor;
                r.record(&me.username, log, &conversation, "monitor")
                    .await?;
                self.sub.watch(&conversation);
                Ok(Some(frames::with_type(
                    "monitoring",
                    frames::conversation_json(&view, &history),
                )))
            }
            StaffFrame::Whisper {
                conversation,
                text,
                client_msg_id,
            } => {
                self.supervisor()?;
                check_text(r, &text, client_msg_id.as_deref())?;
                let id = client_msg_id.unwrap_or_default();
                let stored = r.whisper(&conversation, me, &text, &id).await?;
                self.sub.watch(&conversation);
                Ok((!id.is_empty()).then(|| frames::ack(&id, &stored.id)))
            }
            StaffFrame::Typing { conversation } => {
                r.may_read(&conversation, me).await?;
                let _ = r.typing(&conversation, "counsellor").await;
                Ok(None)
            }
        }
    }

    async fn on_event(&mut self, socket: &mut AxumSocket, event: &Event) -> Step {
        let me = self.account.username.as_str();
        match event {
            Event::Offer {
                conv,
                agent,
                expires_ms,
                view,
            } if agent == me => {
                let Ok(view) = self.router.offered_view(conv, view).await else {
                    return Ok(());
                };
                let left = (expires_ms - helpline_router::conversation::now_ms()).max(0) / 1000;
                self.say(
                    socket,
                    frames::offer(&view, u64::try_from(left).unwrap_or(0)),
                )
                .await
            }
            Event::Revoked {
                conv,
                agent,
                reason,
            } if agent == me && reason != "accepted" => {
                let reason = if reason == "declined" {
                    "declined"
                } else {
                    reason.as_str()
                };
                self.say(socket, frames::offer_revoked(conv, reason)).await
            }
            Event::Assigned { conv, agent, .. } if agent == me => {
                let Ok(view) = self.router.conversation_view(conv).await else {
                    return Ok(());
                };
                let history = self
                    .router
                    .history(conv, None, true)
                    .await
                    .unwrap_or_default();
                self.say(
                    socket,
                    frames::with_type("assigned", frames::conversation_json(&view, &history)),
                )
                .await
            }
            Event::Transferred { conv, agent, .. } if agent == me => {
                self.say(socket, frames::ended(conv, "transferred")).await
            }
            Event::Ended { conv, reason, .. } => {
                self.say(socket, frames::ended(conv, reason)).await
            }
            Event::Msg { conv, f, t, .. } => {
                let Ok(Some(m)) = self.router.open_event(event).await else {
                    return Ok(());
                };
                if f == "contact" {
                    self.router
                        .telemetry()
                        .relayed("in", helpline_router::conversation::now_ms() - t);
                }
                self.say(socket, frames::message(conv, &m)).await
            }
            Event::Urgency {
                conv,
                urgency,
                category,
                ..
            } => {
                let frame = json!({"type": "urgency", "conversation": conv, "urgency": urgency, "category": category});
                self.say(socket, frame.to_string()).await
            }
            Event::Status { agent, status } if agent == me => {
                self.say(
                    socket,
                    json!({"type": "status", "status": status}).to_string(),
                )
                .await
            }
            Event::Typing { conv, f, .. } if f == "contact" => {
                self.say(
                    socket,
                    json!({"type": "typing", "conversation": conv}).to_string(),
                )
                .await
            }
            _ => Ok(()),
        }
    }
}

/// `say` fails with `NORMAL` when the peer is gone: then there is nothing to close.
fn closing(close: Close) -> Option<Close> {
    (close != Close::NORMAL).then_some(close)
}

/// The conversation a frame concerns, for error frames.
fn frame_conversation(frame: &StaffFrame) -> Option<&str> {
    match frame {
        StaffFrame::Status { .. } => None,
        StaffFrame::Accept { conversation }
        | StaffFrame::Decline { conversation }
        | StaffFrame::Message { conversation, .. }
        | StaffFrame::Urgency { conversation, .. }
        | StaffFrame::Transfer { conversation, .. }
        | StaffFrame::Close { conversation, .. }
        | StaffFrame::Monitor { conversation }
        | StaffFrame::Whisper { conversation, .. }
        | StaffFrame::Typing { conversation } => Some(conversation),
    }
}

fn check_text(router: &Router, text: &str, client_msg_id: Option<&str>) -> Result<(), Refusal> {
    let max = router.config().webchat.max_message_bytes;
    if text.trim().is_empty() {
        return Err(refuse("empty", "the message has no text"));
    }
    if text.len() > max {
        return Err(Refusal {
            code: "too_long".into(),
            message: format!("at most {max} bytes a message"),
        });
    }
    if client_msg_id.is_some_and(|id| !valid_client_id(id)) {
        return Err(refuse(
            "bad_frame",
            "client_msg_id must be 1-64 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}
