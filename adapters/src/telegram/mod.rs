//! The Telegram channel (CONTRACT.md sections 2 and 6): a bot a child writes to, as safe as the
//! web chat.
//!
//! - Updates arrive by long polling (`polling.rs`, the default) or by webhook (the gateway's
//!   `POST /webhooks/telegram` hands them to [`Telegram::take_update`]); `updates.rs` reads only
//!   what the channel needs and `inbound.rs` acts on it.
//! - Everything sent to a contact inside a conversation (counsellor messages, queue position,
//!   assignment, transfer and end notices) goes through the router's outbox, which the routing
//!   scripts fill atomically with each change; `outbound.rs` is this node's sender.
//! - `api.rs` makes the Bot API calls (teloxide, rustls).
//!
//! It must never store, log or show a chat id, a name or a username: the chat id becomes a
//! pseudonym in the router and is kept only sealed with the conversation's key, for replying.

mod api;
mod buttons;
mod inbound;
mod outbound;
mod polling;
pub mod updates;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use helpline_config::TelegramMode;
use helpline_router::{Router, RouterError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::sender::Backoff;
use api::Api;

/// The channel's name in the router (conversations, pseudonyms, metrics).
pub const CHANNEL: &str = "telegram";

/// Webhook calls handled at once; more wait their turn.
const WEBHOOK_WORKERS: usize = 8;
/// Webhook calls admitted at once (handled or waiting); past it Telegram is told 503 and retries.
const WEBHOOK_QUEUE: usize = 256;

/// The Telegram channel of one node; cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    inner: Arc<Inner>,
}

struct Inner {
    router: Router,
    api: Api,
    mode: TelegramMode,
    /// Webhook calls admitted and not yet answered.
    admitted: AtomicUsize,
    workers: Semaphore,
}

/// Why a webhook call was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    /// Too many calls at once: answer 503, Telegram retries.
    Overloaded,
    /// Not an update at all: answer 400.
    BadBody,
    /// It could not be stored now (Redis): answer 503, Telegram retries.
    Unavailable,
}

impl Telegram {
    /// The channel when `channels.telegram.token` is set, else `None` (the channel is off).
    pub fn from_router(router: &Router) -> Result<Option<Telegram>, RouterError> {
        let config = &router.config().channels.telegram;
        let Some(token) = &config.token else {
            return Ok(None);
        };
        let api = Api::new(&config.api_url, token).map_err(RouterError::Setup)?;
        Ok(Some(Telegram {
            inner: Arc::new(Inner {
                router: router.clone(),
                api,
                mode: config.mode,
                admitted: AtomicUsize::new(0),
                workers: Semaphore::new(WEBHOOK_WORKERS),
            }),
        }))
    }

    /// Whether updates arrive by webhook (else by polling).
    pub fn webhook_mode(&self) -> bool {
        self.inner.mode == TelegramMode::Webhook
    }

    /// Runs the channel until `shutdown`: checks the bot, sets up webhook or polling, and runs this
    /// node's sender (every node sends; one polls at a time).
    pub async fn run(&self, shutdown: CancellationToken) {
        if !self.set_up(&shutdown).await {
            return;
        }
        if self.webhook_mode() {
            self.send_outbox(shutdown).await;
        } else {
            tokio::join!(
                self.poll(shutdown.clone()),
                self.send_outbox(shutdown.clone())
            );
        }
    }

    /// Checks the token and points Telegram at this gateway (or away from a webhook, for polling),
    /// retrying until it works; false when shut down first.
    async fn set_up(&self, shutdown: &CancellationToken) -> bool {
        let mut backoff = Backoff::default();
        loop {
            match self.try_set_up().await {
                Ok(bot) => {
                    let mode = if self.webhook_mode() {
                        "webhook"
                    } else {
                        "polling"
                    };
                    tracing::info!(bot = %bot, mode, "Telegram channel ready");
                    return true;
                }
                Err(why) => tracing::warn!(why, "Telegram is not ready; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(backoff.next()) => {}
            }
        }
    }

    async fn try_set_up(&self) -> Result<String, &'static str> {
        let api = &self.inner.api;
        let bot = api.me().await.map_err(|f| f.why())?;
        if self.webhook_mode() {
            let config = self.inner.router.config();
            let url = format!(
                "{}/webhooks/telegram",
                config.server.public_url.trim_end_matches('/')
            );
            let secret = config
                .channels
                .telegram
                .webhook_secret
                .as_ref()
                .ok_or("channels.telegram.webhook_secret is required in webhook mode")?;
            api.set_webhook(&url, secret).await.map_err(|f| f.why())?;
        } else {
            api.delete_webhook().await.map_err(|f| f.why())?;
        }
        Ok(bot)
    }

    /// Takes one webhook update (its secret already checked): handled and stored before the
    /// caller answers 2xx. The number of calls at once is bounded; past it, `Overloaded`.
    pub async fn take_update(&self, body: &[u8]) -> Result<(), WebhookError> {
        let admitted = Admitted::new(&self.inner.admitted).ok_or(WebhookError::Overloaded)?;
        let Some(update) = updates::parse(body) else {
            // An update this parser cannot read is skipped (refusing it would only make Telegram
            // send it again and again); a body that is no update at all is refused.
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|_| WebhookError::BadBody)?;
            let id = updates::update_id(&value).ok_or(WebhookError::BadBody)?;
            tracing::info!(
                update = id,
                "skipped a Telegram update this gateway cannot read"
            );
            return Ok(());
        };
        let _turn = self
            .inner
            .workers
            .acquire()
            .await
            .map_err(|_| WebhookError::Unavailable)?;
        let handled = self.handle(update).await;
        drop(admitted);
        handled.map_err(|e| {
            tracing::warn!(error = %e, "a Telegram update could not be stored; Telegram will retry");
            WebhookError::Unavailable
        })
    }
}

/// One admitted webhook call; leaving on drop.
struct Admitted<'a>(&'a AtomicUsize);

impl<'a> Admitted<'a> {
    fn new(count: &'a AtomicUsize) -> Option<Admitted<'a>> {
        let before = count.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(count);
        (before < WEBHOOK_QUEUE).then_some(admitted)
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
