//! The Bot API calls the channel makes, and what their failures mean for the caller.
//!
//! Sending, deleting, answering buttons, `getMe` and `deleteWebhook` go through teloxide's [`Bot`]
//! (JSON requests, rustls). `getUpdates` and `setWebhook` are two plain JSON calls made here with
//! reqwest: updates are read by this channel's own minimal parser (`updates.rs`), which never even
//! reads a name or a username, and teloxide sends `setWebhook` as a multipart form where the Bot
//! API documents JSON just as well.
//!
//! Nothing here logs or returns a provider error's text: Telegram's answers can echo the contact's
//! names, and a transport error's URL holds the bot token. Failures are fixed phrases.

use std::time::Duration;

use helpline_config::Secret;
use serde_json::{json, Value};
use teloxide::payloads::{AnswerCallbackQuerySetters, DeleteWebhookSetters, SendMessageSetters};
use teloxide::requests::Requester;
use teloxide::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId,
};
use teloxide::{ApiError, Bot, RequestError};

/// Why a call failed, and so what the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429: wait this long, then try again.
    RetryAfter(Duration),
    /// 403 and kin: the contact blocked the bot or is gone; nothing will reach them.
    Blocked,
    /// The request itself was refused (4xx): sending it again cannot help.
    Refused(&'static str),
    /// The network, Telegram (5xx) or its answer failed: try again with backoff.
    Transient(&'static str),
}

impl Failure {
    pub fn why(&self) -> &'static str {
        match self {
            Failure::RetryAfter(_) => "Telegram asked to slow down (429)",
            Failure::Blocked => "the contact blocked the bot (403)",
            Failure::Refused(why) | Failure::Transient(why) => why,
        }
    }
}

/// A row of buttons: (label, callback data).
pub type Buttons = Vec<Vec<(String, String)>>;

/// The Bot API of one bot.
#[derive(Clone)]
pub struct Api {
    bot: Bot,
    http: reqwest::Client,
    base: String,
    token: Secret,
}

/// How long a call may take beyond a long poll's own timeout.
const SLACK: Duration = Duration::from_secs(10);

impl Api {
    /// The API at `base` (`https://api.telegram.org`, or a test double) for bot `token`.
    pub fn new(base: &str, token: &Secret) -> Result<Api, String> {
        let url = reqwest::Url::parse(base)
            .map_err(|e| format!("channels.telegram.api_url `{base}` is not a URL: {e}"))?;
        let client = teloxide::net::default_reqwest_settings()
            .build()
            .map_err(|_| "cannot build the HTTPS client for Telegram".to_owned())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|_| "cannot build the HTTPS client for Telegram".to_owned())?;
        Ok(Api {
            bot: Bot::with_client(token.expose(), client).set_api_url(url),
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.clone(),
        })
    }

    /// Checks the token (`getMe`); returns the bot's own username, which identifies nobody.
    pub async fn me(&self) -> Result<String, Failure> {
        let me = self.bot.get_me().await.map_err(|e| classify(&e))?;
        Ok(me.user.username.unwrap_or_default())
    }

    /// Sends plain text (never a parse mode: a counsellor's `*` or `<b>` stays as typed), with
    /// optional inline buttons. Returns the sent message's id.
    pub async fn send_text(
        &self,
        chat: i64,
        text: &str,
        buttons: Option<&Buttons>,
    ) -> Result<i64, Failure> {
        let mut request = self.bot.send_message(ChatId(chat), text);
        if let Some(rows) = buttons {
            request = request.reply_markup(keyboard(rows));
        }
        let sent = request.await.map_err(|e| classify(&e))?;
        Ok(i64::from(sent.id.0))
    }

    /// Deletes one message of a private chat (either side's, up to 48 hours old).
    pub async fn delete(&self, chat: i64, message: i64) -> Result<(), Failure> {
        let id = message_id(message)?;
        self.bot
            .delete_message(ChatId(chat), id)
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }

    /// Deletes up to 100 messages of a private chat at once.
    pub async fn delete_many(&self, chat: i64, messages: &[i64]) -> Result<(), Failure> {
        let ids: Vec<MessageId> = messages
            .iter()
            .filter_map(|m| message_id(*m).ok())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.bot
            .delete_messages(ChatId(chat), ids)
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }

    /// Answers a button press (stops the spinner), with an optional short toast.
    pub async fn answer_button(&self, query: &str, toast: Option<&str>) -> Result<(), Failure> {
        let mut request = self
            .bot
            .answer_callback_query(CallbackQueryId(query.to_owned()));
        if let Some(text) = toast {
            request = request.text(text);
        }
        request.await.map_err(|e| classify(&e))?;
        Ok(())
    }

    /// Stops webhook delivery so `getUpdates` works (pending updates are kept).
    pub async fn delete_webhook(&self) -> Result<(), Failure> {
        self.bot
            .delete_webhook()
            .drop_pending_updates(false)
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }

    /// Asks Telegram to deliver updates to `url`, with `secret` in every call's header.
    pub async fn set_webhook(&self, url: &str, secret: &Secret) -> Result<(), Failure> {
        let body = json!({
            "url": url,
            "secret_token": secret.expose(),
            "allowed_updates": ["message", "callback_query"],
            "drop_pending_updates": false,
        });
        self.raw("setWebhook", &body, SLACK).await.map(|_| ())
    }

    /// Long-polls for updates from `offset` for up to `wait`; each update as raw JSON, for the
    /// channel's own parser.
    pub async fn updates(
        &self,
        offset: Option<i64>,
        wait: Duration,
    ) -> Result<Vec<Value>, Failure> {
        let mut body = json!({
            "timeout": wait.as_secs(),
            "limit": 100,
            "allowed_updates": ["message", "callback_query"],
        });
        if let Some(o) = offset {
            body["offset"] = json!(o);
        }
        let result = self.raw("getUpdates", &body, wait + SLACK).await?;
        match result {
            Value::Array(items) => Ok(items),
            _ => Err(Failure::Transient(
                "getUpdates answered something else than a list",
            )),
        }
    }

    /// A JSON call of `method`; its `result` on success.
    async fn raw(&self, method: &str, body: &Value, timeout: Duration) -> Result<Value, Failure> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose());
        // The error is not kept: its text would carry the URL, and so the token.
        let response = self
            .http
            .post(url)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|_| Failure::Transient("Telegram could not be reached"))?;
        let status = response.status().as_u16();
        let mut answer: Value = response
            .json()
            .await
            .map_err(|_| Failure::Transient("Telegram's answer was not JSON"))?;
        if answer["ok"] == Value::Bool(true) {
            return Ok(answer["result"].take());
        }
        if let Some(secs) = answer["parameters"]["retry_after"].as_u64() {
            return Err(Failure::RetryAfter(Duration::from_secs(secs)));
        }
        let code = answer["error_code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status);
        Err(by_status(code))
    }
}

fn by_status(code: u16) -> Failure {
    match code {
        403 => Failure::Blocked,
        401 | 404 => {
            Failure::Transient("Telegram refused the bot token (check channels.telegram.token)")
        }
        409 => Failure::Transient("another poller or a webhook holds the updates (409)"),
        429 => Failure::RetryAfter(Duration::from_secs(1)),
        400..=499 => Failure::Refused("Telegram refused the request (4xx)"),
        _ => Failure::Transient("Telegram failed (5xx)"),
    }
}

fn message_id(m: i64) -> Result<MessageId, Failure> {
    i32::try_from(m)
        .map(MessageId)
        .map_err(|_| Failure::Refused("a message id out of range"))
}

fn keyboard(rows: &Buttons) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.iter().map(|row| {
        row.iter()
            .map(|(label, data)| InlineKeyboardButton::callback(label.clone(), data.clone()))
            .collect::<Vec<_>>()
    }))
}

/// What a teloxide failure means here. teloxide keeps Telegram's description but not its status
/// code, so 403s are known by their description.
pub fn classify(e: &RequestError) -> Failure {
    match e {
        RequestError::RetryAfter(secs) => Failure::RetryAfter(secs.duration()),
        RequestError::Api(api) => classify_api(api),
        RequestError::MigrateToChatId(_) => Failure::Refused("the chat became a supergroup"),
        RequestError::Network(_) => Failure::Transient("Telegram could not be reached"),
        RequestError::InvalidJson { .. } => {
            Failure::Transient("Telegram's answer was not understood")
        }
        RequestError::Io(_) => Failure::Transient("an I/O error talking to Telegram"),
    }
}

fn classify_api(e: &ApiError) -> Failure {
    match e {
        ApiError::BotBlocked
        | ApiError::UserDeactivated
        | ApiError::CantInitiateConversation
        | ApiError::BotKicked
        | ApiError::ChatNotFound
        | ApiError::UserNotFound => Failure::Blocked,
        ApiError::InvalidToken => {
            Failure::Transient("Telegram refused the bot token (check channels.telegram.token)")
        }
        ApiError::TerminatedByOtherGetUpdates => {
            Failure::Transient("another poller holds the updates (409)")
        }
        ApiError::Unknown(text) => {
            let prefix = |p: &str| text.starts_with(p);
            if prefix("Forbidden") {
                Failure::Blocked
            } else if prefix("Bad Request") || prefix("Conflict") || prefix("Not Found") {
                Failure::Refused("Telegram refused the request (4xx)")
            } else if prefix("Too Many Requests") {
                Failure::RetryAfter(Duration::from_secs(1))
            } else {
                Failure::Transient("Telegram failed (5xx or unknown)")
            }
        }
        // Every other described error is a 400 about the request itself.
        _ => Failure::Refused("Telegram refused the request (4xx)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_what_the_caller_must_do() {
        assert_eq!(classify_api(&ApiError::BotBlocked), Failure::Blocked);
        assert_eq!(
            classify_api(&ApiError::Unknown("Forbidden: bot was blocked".into())),
            Failure::Blocked
        );
        assert!(matches!(
            classify_api(&ApiError::Unknown("Internal Server Error".into())),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify_api(&ApiError::Unknown("Bad Request: what".into())),
            Failure::Refused(_)
        ));
        assert!(matches!(
            classify_api(&ApiError::MessageTextIsEmpty),
            Failure::Refused(_)
        ));
        assert_eq!(by_status(403), Failure::Blocked);
        assert!(matches!(by_status(502), Failure::Transient(_)));
        assert!(matches!(by_status(400), Failure::Refused(_)));
    }
}
