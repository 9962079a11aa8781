//! A fake of Telegram's Bot API (https://core.telegram.org/bots/api) on a free local port, for the
//! Telegram tests: it answers `getMe`, `getUpdates` (a real long poll with `offset` and `timeout`),
//! `sendMessage`, `deleteMessage`, `deleteMessages`, `answerCallbackQuery`, `setWebhook`,
//! `deleteWebhook` and `getFile` (which the gateway must never call) with the documented shapes
//! (`{"ok":true,"result":…}`, `Update`, `Message`, `Chat`, `User`, and errors with `error_code`,
//! `description` and `parameters.retry_after`), and records every call.
//!
//! Switches: answer the next sends with 429, block a chat (403), and hold the sends whose text
//! contains a marker open until the test lets them go (to kill the gateway mid-send).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// The bot token the tests configure.
pub const BOT_TOKEN: &str = "123456:TEST-token_for-the-fake";
/// The bot's own user id.
const BOT_ID: i64 = 123456;

/// A Telegram user writing to the bot in a private chat (their chat id is their user id).
#[derive(Debug, Clone)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub language_code: Option<String>,
}

impl TgUser {
    pub fn new(id: i64, first: &str, last: &str, username: &str, lang: Option<&str>) -> TgUser {
        TgUser {
            id,
            first_name: first.into(),
            last_name: last.into(),
            username: username.into(),
            language_code: lang.map(String::from),
        }
    }

    fn user_json(&self) -> Value {
        let mut u = json!({
            "id": self.id, "is_bot": false, "first_name": self.first_name,
            "last_name": self.last_name, "username": self.username,
        });
        if let Some(l) = &self.language_code {
            u["language_code"] = json!(l);
        }
        u
    }

    fn chat_json(&self) -> Value {
        json!({
            "id": self.id, "first_name": self.first_name, "last_name": self.last_name,
            "username": self.username, "type": "private",
        })
    }
}

/// One recorded API call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method name in lower case (Telegram's are case-insensitive; teloxide writes `SendMessage`).
    pub method: String,
    pub body: Value,
    /// `ok`, `429`, `403`, `dropped` (held, then let go unanswered), or `refused`.
    pub outcome: String,
}

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    next_update: i64,
    next_message: i64,
    calls: Vec<Call>,
    fail_429: u32,
    retry_after: u64,
    hold: Option<String>,
    held: u32,
    blocked: HashSet<i64>,
    users: Vec<TgUser>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    updates_ready: Arc<Notify>,
    release: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake.
pub struct FakeTelegram {
    pub port: u16,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTelegram {
    pub async fn start() -> Result<FakeTelegram> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Shared::default();
        {
            let mut s = shared.lock();
            s.next_update = 1000;
            s.next_message = 500;
        }
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(handle))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeTelegram {
            port,
            shared,
            server,
        })
    }

    /// The base URL for `channels.telegram.api_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway settings that point the Telegram channel at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HELPLINE_CHANNELS__TELEGRAM__TOKEN", BOT_TOKEN.to_owned()),
            ("HELPLINE_CHANNELS__TELEGRAM__API_URL", self.url()),
        ]
    }

    fn next_update_id(&self) -> i64 {
        let mut s = self.shared.lock();
        s.next_update += 1;
        s.next_update
    }

    fn next_message_id(&self) -> i64 {
        let mut s = self.shared.lock();
        s.next_message += 1;
        s.next_message
    }

    /// A message `Update` from `user` (fields merged into the message), not yet queued.
    pub fn message_update(&self, user: &TgUser, fields: Value) -> Value {
        {
            let mut s = self.shared.lock();
            if !s.users.iter().any(|u| u.id == user.id) {
                s.users.push(user.clone());
            }
        }
        let mut message = json!({
            "message_id": self.next_message_id(),
            "from": user.user_json(),
            "chat": user.chat_json(),
            "date": unix_now(),
        });
        if let (Some(m), Some(extra)) = (message.as_object_mut(), fields.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        json!({"update_id": self.next_update_id(), "message": message})
    }

    /// A text message (commands included, with their `bot_command` entity).
    pub fn text_update(&self, user: &TgUser, text: &str) -> Value {
        let mut fields = json!({"text": text});
        if text.starts_with('/') {
            let len = text
                .split_whitespace()
                .next()
                .map_or(0, |c| c.chars().count());
            fields["entities"] = json!([{"offset": 0, "length": len, "type": "bot_command"}]);
        }
        self.message_update(user, fields)
    }

    /// A photo with a caption; `file` marks its file ids.
    pub fn photo_update(
        &self,
        user: &TgUser,
        file: &str,
        caption: &str,
        album: Option<&str>,
    ) -> Value {
        let mut fields = json!({
            "photo": [
                {"file_id": format!("{file}-small"), "file_unique_id": format!("{file}-u1"), "file_size": 1200, "width": 90, "height": 67},
                {"file_id": format!("{file}-large"), "file_unique_id": format!("{file}-u2"), "file_size": 54321, "width": 1280, "height": 960}
            ],
            "caption": caption,
        });
        if let Some(group) = album {
            fields["media_group_id"] = json!(group);
        }
        self.message_update(user, fields)
    }

    /// A button press under the bot's message `message_id`.
    pub fn button_update(&self, user: &TgUser, message_id: i64, data: &str) -> Value {
        json!({
            "update_id": self.next_update_id(),
            "callback_query": {
                "id": format!("cbq-{}", self.next_message_id()),
                "from": user.user_json(),
                "chat_instance": "-4242",
                "message": {
                    "message_id": message_id,
                    "from": {"id": BOT_ID, "is_bot": true, "first_name": "Helpline", "username": "helpline_test_bot"},
                    "chat": user.chat_json(),
                    "date": unix_now(),
                    "text": "…",
                },
                "data": data,
            }
        })
    }

    /// Queues an update for `getUpdates`; returns its id.
    pub fn push(&self, update: Value) -> i64 {
        let id = update["update_id"].as_i64().unwrap_or(0);
        self.shared.lock().updates.push(update);
        self.shared.updates_ready.notify_waiters();
        id
    }

    /// Every recorded call of `method` (case-insensitive).
    pub fn calls(&self, method: &str) -> Vec<Call> {
        let m = method.to_ascii_lowercase();
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == m)
            .cloned()
            .collect()
    }

    /// The messages Telegram accepted for `chat`, in order.
    pub fn sent_to(&self, chat: i64) -> Vec<Value> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| c.outcome == "ok" && c.body["chat_id"].as_i64() == Some(chat))
            .map(|c| c.body)
            .collect()
    }

    /// How many accepted messages to `chat` contain `needle`.
    pub fn sent_count(&self, chat: i64, needle: &str) -> usize {
        self.sent_to(chat)
            .iter()
            .filter(|b| b["text"].as_str().unwrap_or("").contains(needle))
            .count()
    }

    /// Waits until an accepted message to `chat` contains `needle`; returns it.
    pub async fn wait_sent(&self, chat: i64, needle: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .sent_to(chat)
                .into_iter()
                .find(|b| b["text"].as_str().unwrap_or("").contains(needle))
            {
                return Ok(found);
            }
            if Instant::now() > deadline {
                let texts: Vec<String> = self
                    .sent_to(chat)
                    .iter()
                    .map(|b| b["text"].as_str().unwrap_or("").to_owned())
                    .collect();
                bail!("no message containing {needle:?} sent to the chat within {timeout:?}; sent: {texts:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at least `n` calls of `method` were made.
    pub async fn wait_calls(&self, method: &str, n: usize, timeout: Duration) -> Result<Vec<Call>> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls(method);
            if calls.len() >= n {
                return Ok(calls);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} {method} calls within {timeout:?}, wanted {n}",
                    calls.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next `n` sends are answered 429 with `retry_after` seconds.
    pub fn fail_sends_with_429(&self, n: u32, retry_after: u64) {
        let mut s = self.shared.lock();
        s.fail_429 = n;
        s.retry_after = retry_after;
    }

    /// Sends whose text contains `marker` are held open (unanswered) until [`Self::drop_held`].
    pub fn hold_sends_containing(&self, marker: &str) {
        self.shared.lock().hold = Some(marker.to_owned());
    }

    /// How many sends are being held open now.
    pub fn held(&self) -> u32 {
        self.shared.lock().held
    }

    /// Lets the held sends go without accepting them (as if they never reached Telegram), and stops
    /// holding.
    pub fn drop_held(&self) {
        self.shared.lock().hold = None;
        self.shared.release.notify_waiters();
    }

    /// The chat's user has blocked the bot: sends to it are answered 403.
    pub fn block(&self, chat: i64) {
        self.shared.lock().blocked.insert(chat);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn error(code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let method = method.to_ascii_lowercase();
    let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    if bot != format!("bot{BOT_TOKEN}") {
        return error(401, "Unauthorized", None);
    }
    match method.as_str() {
        "getupdates" => get_updates(shared, body).await,
        "sendmessage" => send_message(shared, body).await,
        "getme" => {
            record(&shared, &method, body, "ok");
            ok(json!({
                "id": BOT_ID, "is_bot": true, "first_name": "Helpline", "username": "helpline_test_bot",
                "can_join_groups": false, "can_read_all_group_messages": false,
                "supports_inline_queries": false, "can_connect_to_business": false, "has_main_web_app": false,
            }))
        }
        "deletemessage"
        | "deletemessages"
        | "answercallbackquery"
        | "setwebhook"
        | "deletewebhook" => {
            record(&shared, &method, body, "ok");
            ok(json!(true))
        }
        "getfile" => {
            record(&shared, &method, body, "refused");
            error(
                400,
                "Bad Request: the helpline must never call getFile",
                None,
            )
        }
        _ => {
            record(&shared, &method, body, "refused");
            error(404, "Not Found", None)
        }
    }
}

fn record(shared: &Shared, method: &str, body: Value, outcome: &str) {
    shared.lock().calls.push(Call {
        method: method.to_owned(),
        body,
        outcome: outcome.to_owned(),
    });
}

async fn get_updates(shared: Shared, body: Value) -> Response {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(50));
    record(&shared, "getupdates", body, "ok");
    let deadline = Instant::now() + timeout;
    loop {
        let ready = shared.updates_ready.notified();
        {
            let mut s = shared.lock();
            // Asking from an offset confirms every update before it: Telegram forgets them.
            s.updates
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            if !s.updates.is_empty() {
                let batch: Vec<Value> = s.updates.iter().take(100).cloned().collect();
                return ok(Value::Array(batch));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ok(json!([]));
        }
        let _ = tokio::time::timeout(left, ready).await;
    }
}

async fn send_message(shared: Shared, body: Value) -> Response {
    let chat = body["chat_id"].as_i64().unwrap_or(0);
    let text = body["text"].as_str().unwrap_or("").to_owned();
    let hold = {
        let mut s = shared.lock();
        if s.fail_429 > 0 {
            s.fail_429 -= 1;
            let wait = s.retry_after;
            drop(s);
            record(&shared, "sendmessage", body, "429");
            return error(
                429,
                &format!("Too Many Requests: retry after {wait}"),
                Some(json!({"retry_after": wait})),
            );
        }
        if s.blocked.contains(&chat) {
            drop(s);
            record(&shared, "sendmessage", body, "403");
            return error(403, "Forbidden: bot was blocked by the user", None);
        }
        let hold = s.hold.as_ref().is_some_and(|m| text.contains(m.as_str()));
        if hold {
            s.held += 1;
        }
        hold
    };
    if hold {
        shared.release.notified().await;
        shared.lock().held -= 1;
        record(&shared, "sendmessage", body, "dropped");
        return error(500, "Internal Server Error", None);
    }
    let (message_id, chat_json) = {
        let mut s = shared.lock();
        s.next_message += 1;
        let chat_json = s
            .users
            .iter()
            .find(|u| u.id == chat)
            .map(TgUser::chat_json)
            .unwrap_or(json!({"id": chat, "type": "private", "first_name": "?"}));
        (s.next_message, chat_json)
    };
    let mut message = json!({
        "message_id": message_id,
        "from": {"id": BOT_ID, "is_bot": true, "first_name": "Helpline", "username": "helpline_test_bot"},
        "chat": chat_json,
        "date": unix_now(),
        "text": text,
    });
    if let Some(markup) = body.get("reply_markup") {
        message["reply_markup"] = markup.clone();
    }
    let mut body = body;
    body["message_id"] = json!(message_id);
    record(&shared, "sendmessage", body, "ok");
    ok(message)
}
