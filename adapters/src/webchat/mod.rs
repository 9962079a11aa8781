//! The web chat channel: one contact's `/ws/chat` socket (CONTRACT.md section 4).
//!
//! A session opens with `start` or `resume`, then relays: the contact's messages go to the router
//! (acknowledged only once stored in Redis), and the router's events for this conversation come
//! back through the node's hub. The conversation's stream is the truth: on `resume`, or when live
//! events may have been missed, the session replays from the last message id the contact received
//! (the contact's own messages included), so a flaky phone loses nothing, and a page that keeps
//! messages by id shows nothing twice.

pub mod frames;

use std::time::{Duration, Instant};

use helpline_router::hub::Subscription;
use helpline_router::store::ConversationRecord;
use helpline_router::{Delivery, Event, QueueStatus, Router, RouterError};
use tokio_util::sync::CancellationToken;

use crate::throttle::{pause, Admission, Throttle};
use crate::{Close, FrameSocket, Inbound};
use frames::{ContactFrame, Refusal};

/// Typing signals forwarded at most this often.
const TYPING_EVERY: Duration = Duration::from_secs(2);

/// The web chat adapter of one node.
#[derive(Clone)]
pub struct Webchat {
    router: Router,
}

/// Why a session loop stopped.
enum Stop {
    /// The peer is gone; nothing more to send.
    Gone,
    /// Close the socket with this code.
    Close(Close),
}

impl Webchat {
    pub fn new(router: Router) -> Webchat {
        Webchat { router }
    }

    /// Serves one contact socket until it closes, the conversation ends or the node shuts down.
    pub async fn serve<S: FrameSocket>(&self, mut socket: S, shutdown: CancellationToken) {
        let limits = &self.router.config().limits;
        // A socket that never says `start` or `resume` (slowloris over WebSocket) is cut in time.
        let opening = Duration::from_secs(limits.opening_timeout_s);
        let mut throttle = Throttle::new(limits);
        let opened = tokio::select! {
            _ = shutdown.cancelled() => Err(Stop::Close(Close::RESTART)),
            r = tokio::time::timeout(opening, Box::pin(self.open(&mut socket, &mut throttle))) => {
                r.unwrap_or(Err(Stop::Close(Close { code: 1008, reason: "say start or resume first" })))
            }
        };
        let stop = match opened {
            Ok(mut session) => session.run(&mut socket, &shutdown, &mut throttle).await,
            Err(stop) => stop,
        };
        if let Stop::Close(close) = stop {
            socket.close(close).await;
        }
    }

    /// Reads frames until a valid `start` or `resume`.
    async fn open<S: FrameSocket>(
        &self,
        socket: &mut S,
        throttle: &mut Throttle,
    ) -> Result<Session, Stop> {
        let config = self.router.config();
        let mut bad = Strikes::new(config.webchat.max_bad_frames);
        loop {
            socket.flush().await.map_err(|()| Stop::Gone)?;
            if let Some(until) = throttle.paused_until() {
                tokio::time::sleep_until(until).await;
            }
            let inbound = socket.recv().await;
            if let Admission::Over { .. } = throttle.take() {
                self.router.telemetry().frames_slowed("contact");
            }
            let refusal = match inbound {
                None => return Err(Stop::Gone),
                Some(Inbound::Broken(_)) => return Err(Stop::Gone),
                Some(Inbound::Binary) => binary_refusal(),
                Some(Inbound::Text(text)) => match frames::parse(&text, config.limits.json_depth) {
                    Ok(ContactFrame::Start { lang, topic }) => {
                        match self.start(socket, &lang, topic.as_deref()).await {
                            Ok(session) => return Ok(session),
                            Err(r) => r,
                        }
                    }
                    Ok(ContactFrame::Resume { token, last_seen }) => {
                        match self.resume(socket, &token, last_seen).await {
                            Ok(session) => return Ok(session),
                            Err(r) => r,
                        }
                    }
                    Ok(ContactFrame::Forget { token: Some(token) }) => {
                        match self.forget(&token).await {
                            Ok(()) => {
                                send(socket, frames::forgotten()).await?;
                                return Err(Stop::Close(Close::NORMAL));
                            }
                            Err(r) => r,
                        }
                    }
                    Ok(_) => Refusal::new(
                        "not_started",
                        "send start (or resume, or forget with a token) first",
                    ),
                    Err(r) => r,
                },
            };
            send(socket, frames::error(&refusal, None)).await?;
            if bad.strike() {
                return Err(Stop::Close(Close::POLICY));
            }
        }
    }

    async fn start<S: FrameSocket>(
        &self,
        socket: &mut S,
        lang: &str,
        topic: Option<&str>,
    ) -> Result<Session, Refusal> {
        let started = self
            .router
            .start_conversation("webchat", None, lang, topic)
            .await
            .map_err(refusal_of)?;
        let sub = self.router.hub().join_contact(&started.conversation);
        let session = Session::new(self.router.clone(), started.conversation, lang.into(), sub);
        let first = frames::started(&session.conv, &started.token);
        if socket.send(first).await.is_err() {
            return Err(Refusal::new("gone", "socket closed"));
        }
        let welcome = session.notice("welcome", &[]);
        let _ = socket.send(welcome).await;
        Ok(session)
    }

    /// Erases the conversation of a resume token (live or ended) at the contact's request.
    async fn forget(&self, token: &str) -> Result<(), Refusal> {
        let (conv, _) = self.router.resume(token).await.map_err(refusal_of)?;
        match self.router.erase_by_contact(&conv).await {
            Ok(_) | Err(RouterError::UnknownConversation) => Ok(()),
            Err(e) => Err(refusal_of(e)),
        }
    }

    async fn resume<S: FrameSocket>(
        &self,
        socket: &mut S,
        token: &str,
        last_seen: Option<String>,
    ) -> Result<Session, Refusal> {
        if let Some(id) = &last_seen {
            if !is_stream_id(id) {
                return Err(Refusal::new(
                    "bad_frame",
                    "last_seen must be a message id you received",
                ));
            }
        }
        let (conv, rec) = self.router.resume(token).await.map_err(refusal_of)?;
        let lang = rec.get("lang").unwrap_or("en").to_owned();
        let sub = self.router.hub().join_contact(&conv);
        let mut session = Session::new(self.router.clone(), conv, lang, sub);
        session.last_id = last_seen;
        if socket.send(frames::resumed(&session.conv)).await.is_err() {
            return Err(Refusal::new("gone", "socket closed"));
        }
        Ok(session)
    }
}

/// One contact's live session.
struct Session {
    router: Router,
    conv: String,
    lang: String,
    sub: Subscription,
    /// The newest message id sent to the contact (replayed or live): replay, and live delivery,
    /// continue after it. An acknowledgement does not move it: a counsellor's message stored just
    /// before the contact's may still be on its way here, and would be skipped.
    last_id: Option<String>,
    /// Whether the conversation waits in the queue (so position updates are due).
    waiting: bool,
    last_queue: Option<(Option<u64>, Option<u64>)>,
    sent_in_window: u32,
    window_start: Instant,
    last_typing: Option<Instant>,
}

impl Session {
    fn new(router: Router, conv: String, lang: String, sub: Subscription) -> Session {
        Session {
            router,
            conv,
            lang,
            sub,
            last_id: None,
            waiting: false,
            last_queue: None,
            sent_in_window: 0,
            window_start: Instant::now(),
            last_typing: None,
        }
    }

    fn notice(&self, code: &str, vars: &[(&str, &str)]) -> String {
        frames::notice(code, &self.router.notices().text(&self.lang, code, vars))
    }

    async fn run<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        shutdown: &CancellationToken,
        throttle: &mut Throttle,
    ) -> Stop {
        if let Err(stop) = Box::pin(self.catch_up(socket)).await {
            return stop;
        }
        let mut bad = Strikes::new(self.router.config().webchat.max_bad_frames);
        // The handlers are boxed: a future is as large as the largest state it can be in, and
        // thousands of contacts sit idle in this loop. Unboxed, each would keep room for a whole
        // Redis call chain; boxed, that room is taken only while a frame or event is handled.
        loop {
            // What the last turn queued (or the catch-up) goes out in one write.
            if socket.flush().await.is_err() {
                return Stop::Gone;
            }
            let step = tokio::select! {
                _ = shutdown.cancelled() => Err(Stop::Close(Close::RESTART)),
                // Past its frame budget the socket is not read for a while; events still flow.
                inbound = socket.recv(), if throttle.paused_until().is_none() => match inbound {
                    None | Some(Inbound::Broken(_)) => Err(Stop::Gone),
                    Some(inbound) => Box::pin(self.on_inbound(socket, inbound, &mut bad, throttle)).await,
                },
                _ = pause(throttle.paused_until()) => Ok(()),
                delivery = self.sub.receiver.recv() => Box::pin(self.on_delivery(socket, delivery)).await,
            };
            let step = match step {
                Ok(()) => Box::pin(self.on_waiting(socket)).await,
                stop => stop,
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    async fn on_delivery<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        delivery: Option<Delivery>,
    ) -> Result<(), Stop> {
        match delivery {
            None => Err(Stop::Close(Close::TRY_AGAIN)),
            Some(Delivery::Resync) => self.catch_up(socket).await,
            Some(Delivery::Event(ev)) => self.on_event(socket, &ev).await,
            // The node asks for its waiting contacts' places every few seconds.
            Some(Delivery::Queue(status)) => self.show_queue(socket, *status).await,
        }
    }

    /// Handles the deliveries already waiting, so that their frames share this turn's write.
    async fn on_waiting<S: FrameSocket>(&mut self, socket: &mut S) -> Result<(), Stop> {
        for _ in 0..crate::TURN_DELIVERIES {
            let Ok(delivery) = self.sub.receiver.try_recv() else {
                break;
            };
            self.on_delivery(socket, Some(delivery)).await?;
        }
        Ok(())
    }

    /// Brings the contact up to date from the stream and the conversation's state.
    async fn catch_up<S: FrameSocket>(&mut self, socket: &mut S) -> Result<(), Stop> {
        let history = self
            .router
            .history(&self.conv, self.last_id.as_deref(), false)
            .await;
        for m in history.unwrap_or_default() {
            send(socket, frames::message(&m)).await?;
            self.last_id = Some(m.id);
        }
        let Ok((_, rec)) = self.conversation().await else {
            return Ok(());
        };
        match rec.state() {
            "queued" | "offered" => {
                self.waiting = true;
                self.last_queue = None;
                self.send_queue(socket).await?;
            }
            "active" => {
                self.waiting = false;
                let name = rec.get("counsellor_name").unwrap_or("");
                send(socket, frames::assigned(name)).await?;
            }
            _ => {
                let reason = match rec.get("outcome") {
                    Some("contact_ended") => "contact_ended",
                    Some("abandoned") | Some("inactive") => "inactive",
                    _ => "counsellor_closed",
                };
                send(socket, frames::ended(reason)).await?;
                return Err(Stop::Close(Close::NORMAL));
            }
        }
        Ok(())
    }

    async fn conversation(&self) -> Result<(String, ConversationRecord), RouterError> {
        let record = self.router.conversation_record(&self.conv).await?;
        Ok((self.conv.clone(), record))
    }

    /// Tells the contact their place in the queue now (after `start`, `resume` or a hand-over).
    async fn send_queue<S: FrameSocket>(&mut self, socket: &mut S) -> Result<(), Stop> {
        let Ok(status) = self
            .router
            .queue_status(std::slice::from_ref(&self.conv))
            .await
        else {
            return Ok(());
        };
        match status.into_iter().next() {
            Some(s) => self.show_queue(socket, s).await,
            None => Ok(()),
        }
    }

    /// Shows a waiting contact their place when it changed.
    async fn show_queue<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        s: QueueStatus,
    ) -> Result<(), Stop> {
        if !self.waiting || (s.state != "queued" && s.state != "offered") {
            return Ok(());
        }
        let now = (s.position, s.estimated_wait_s);
        // While offered, the contact keeps the last position they saw (they are next).
        if s.state == "queued" && self.last_queue != Some(now) {
            self.last_queue = Some(now);
            send(socket, frames::queued(s.position, s.estimated_wait_s)).await?;
        }
        Ok(())
    }

    async fn on_inbound<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        inbound: Inbound,
        bad: &mut Strikes,
        throttle: &mut Throttle,
    ) -> Result<(), Stop> {
        // A flood is slowed, never refused: this frame is handled, the next ones wait their turn
        // (see `run`), and the contact is told once why their messages are slow.
        if let Admission::Over { first } = throttle.take() {
            self.router.telemetry().frames_slowed("contact");
            if first {
                send(socket, self.notice("rate_limited", &[])).await?;
            }
        }
        let depth = self.router.config().limits.json_depth;
        let (refusal, client_id) = match inbound {
            Inbound::Binary => (binary_refusal(), None),
            Inbound::Broken(_) => return Err(Stop::Gone),
            Inbound::Text(text) => match frames::parse(&text, depth) {
                Err(r) => (r, None),
                Ok(frame) => match self.on_frame(socket, frame).await? {
                    None => {
                        bad.clear();
                        return Ok(());
                    }
                    Some(refused) => refused,
                },
            },
        };
        send(socket, frames::error(&refusal, client_id.as_deref())).await?;
        // Redis being away (a restart, a failover) is not the contact's fault: those refusals
        // do not count towards closing the socket, so a child who writes meanwhile stays.
        if refusal.code != "unavailable" && bad.strike() {
            return Err(Stop::Close(Close::POLICY));
        }
        Ok(())
    }

    /// Acts on a well-formed frame; returns a refusal (and the client message id it concerns).
    async fn on_frame<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        frame: ContactFrame,
    ) -> Result<Option<(Refusal, Option<String>)>, Stop> {
        match frame {
            ContactFrame::Start { .. } | ContactFrame::Resume { .. } => Ok(Some((
                Refusal::new("already_started", "this socket already has a conversation"),
                None,
            ))),
            ContactFrame::Message {
                text,
                client_msg_id,
            } => {
                let refused = self.on_message(socket, &text, &client_msg_id).await?;
                Ok(refused.map(|r| (r, Some(client_msg_id))))
            }
            ContactFrame::Typing {} => {
                let due = self.last_typing.is_none_or(|t| t.elapsed() >= TYPING_EVERY);
                if due {
                    self.last_typing = Some(Instant::now());
                    let _ = self.router.typing(&self.conv, "contact").await;
                }
                Ok(None)
            }
            ContactFrame::End {} => {
                let _ = self
                    .router
                    .end_by_contact(&self.conv, "contact_ended")
                    .await;
                send(socket, frames::ended("contact_ended")).await?;
                Err(Stop::Close(Close::NORMAL))
            }
            ContactFrame::Forget { .. } => match self.router.erase_by_contact(&self.conv).await {
                // Erased now, or already (by a supervisor, or a resent frame).
                Ok(_) | Err(RouterError::UnknownConversation) => {
                    send(socket, frames::forgotten()).await?;
                    Err(Stop::Close(Close::NORMAL))
                }
                Err(e) => Ok(Some((refusal_of(e), None))),
            },
        }
    }

    async fn on_message<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        text: &str,
        client_msg_id: &str,
    ) -> Result<Option<Refusal>, Stop> {
        let limits = &self.router.config().webchat;
        if !frames::valid_client_id(client_msg_id) {
            return Ok(Some(Refusal::new(
                "bad_frame",
                "client_msg_id must be 1-64 letters, digits, '-' or '_' (a UUID works)",
            )));
        }
        if text.len() > limits.max_message_bytes {
            let max = limits.max_message_bytes.to_string();
            send(socket, self.notice("too_long", &[("max", &max)])).await?;
            return Ok(Some(Refusal::new(
                "too_long",
                format!("a message may have at most {max} bytes; split it in two"),
            )));
        }
        if text.trim().is_empty() {
            return Ok(Some(Refusal::new("empty", "the message has no text")));
        }
        if !self.within_rate(limits.messages_per_minute) {
            send(socket, self.notice("rate_limited", &[])).await?;
            return Ok(Some(Refusal::new(
                "rate_limited",
                "too many messages; wait a little and resend",
            )));
        }
        match self
            .router
            .contact_message(&self.conv, text, client_msg_id)
            .await
        {
            Ok(stored) => {
                send(socket, frames::ack(client_msg_id, &stored.id)).await?;
                Ok(None)
            }
            Err(RouterError::Ended) => Ok(Some(Refusal::new("ended", "the conversation is over"))),
            Err(e) => Ok(Some(refusal_of(e))),
        }
    }

    fn within_rate(&mut self, per_minute: u32) -> bool {
        if self.window_start.elapsed() >= Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.sent_in_window = 0;
        }
        self.sent_in_window += 1;
        self.sent_in_window <= per_minute
    }

    async fn on_event<S: FrameSocket>(
        &mut self,
        socket: &mut S,
        event: &Event,
    ) -> Result<(), Stop> {
        match event {
            Event::Assigned { display, .. } => {
                self.waiting = false;
                send(socket, frames::assigned(display)).await
            }
            Event::Transferred { .. } => {
                self.waiting = true;
                self.last_queue = None;
                send(socket, self.notice("transferred", &[])).await?;
                self.send_queue(socket).await
            }
            Event::Ended { reason, .. } => {
                send(socket, frames::ended(reason)).await?;
                Err(Stop::Close(Close::NORMAL))
            }
            Event::Typing { .. } => send(socket, frames::typing()).await,
            Event::Msg { id, t, .. } => {
                if self
                    .last_id
                    .as_deref()
                    .is_some_and(|last| !stream_id_after(id, last))
                {
                    return Ok(());
                }
                let Ok(Some(m)) = self.router.open_event(event).await else {
                    return Ok(());
                };
                send(socket, frames::message(&m)).await?;
                self.router
                    .telemetry()
                    .relayed("out", helpline_router::conversation::now_ms() - t);
                self.last_id = Some(m.id);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Counts refused frames in a row; too many close the socket.
struct Strikes {
    count: u32,
    max: u32,
}

impl Strikes {
    fn new(max: u32) -> Self {
        Self { count: 0, max }
    }

    /// Counts one; true when the limit is passed.
    fn strike(&mut self) -> bool {
        self.count += 1;
        self.count > self.max
    }

    fn clear(&mut self) {
        self.count = 0;
    }
}

fn binary_refusal() -> Refusal {
    Refusal::new(
        "binary_not_accepted",
        "binary frames (files, photos) are never accepted here; send text frames",
    )
}

/// Queues a frame; the session loop flushes once a turn.
async fn send<S: FrameSocket>(socket: &mut S, frame: String) -> Result<(), Stop> {
    socket.feed(frame).await.map_err(|()| Stop::Gone)
}

fn refusal_of(e: RouterError) -> Refusal {
    match e {
        RouterError::Refused(code, message) => Refusal::new(code, message),
        RouterError::Store(_) => Refusal::new(
            "unavailable",
            "the helpline cannot store messages right now; resend in a moment",
        ),
        RouterError::UnknownConversation => {
            Refusal::new("unknown_token", "that conversation is unknown; start again")
        }
        RouterError::Ended => Refusal::new("ended", "the conversation is over"),
        RouterError::Vault(_) | RouterError::Setup(_) => {
            Refusal::new("internal", "something went wrong on our side")
        }
    }
}

/// A Redis stream id: `<ms>-<seq>`.
fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn is_stream_id(id: &str) -> bool {
    parse_stream_id(id).is_some()
}

/// Whether stream id `a` comes after `b`.
fn stream_id_after(a: &str, b: &str) -> bool {
    match (parse_stream_id(a), parse_stream_id(b)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert!(stream_id_after("1700000000001-0", "1700000000000-5"));
        assert!(stream_id_after("1700000000000-10", "1700000000000-9"));
        assert!(!stream_id_after("1700000000000-1", "1700000000000-1"));
        assert!(!is_stream_id("abc"));
    }

    #[test]
    fn strikes_close_after_the_limit() {
        let mut s = Strikes::new(2);
        assert!(!s.strike());
        assert!(!s.strike());
        assert!(s.strike());
        s.clear();
        assert!(!s.strike());
    }
}
