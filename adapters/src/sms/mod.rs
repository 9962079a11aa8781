//! The SMS channel (CONTRACT.md sections 2, 3 and 6; issue 5): children without data or a
//! smartphone text the helpline's number.
//!
//! - One module per provider behind [`Provider`], which receives a webhook's raw body and headers
//!   (providers sign different things) and sends one text: `twilio.rs` (Twilio's format: signed
//!   form posts in, REST out) and `smpp/` (SMPP 3.4 straight to a carrier: a link the gateway
//!   keeps bound, texts in as `deliver_sm`, out as `submit_sm`).
//! - `inbound.rs` acts on a text: a number without a live conversation starts one (language from a
//!   first-word keyword), later texts join it, end keywords end it, media is withheld.
//! - `outbound.rs` is the channel's side of [`crate::sender`]: counsellor messages and the sparing
//!   notices the routing scripts put in the `sms` outbox.
//!
//! It must never store, log or show a phone number or a provider id in the clear: the number
//! becomes a pseudonym in the router and is kept only sealed with the conversation's key.

mod inbound;
mod outbound;
pub mod segments;
pub mod smpp;
pub mod twilio;

/// The header map a [`Webhook`] carries (the HTTP crate's, as the gateway receives it).
pub use reqwest::header::{HeaderMap, HeaderValue};

use std::future::Future;
use std::sync::Arc;

use helpline_config::SmsProvider;
use helpline_router::{Router, RouterError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::sender::Delivery;
use smpp::Smpp;
use twilio::Twilio;

/// The channel's name in the router (conversations, pseudonyms, metrics).
pub const CHANNEL: &str = "sms";

/// Webhook calls taken at once; past it the provider is told 503 (it may retry or fail over).
const WEBHOOK_QUEUE: usize = 256;

/// A webhook call as it arrived, before anything in it is believed. (No `Debug`: it holds a
/// phone number, which must never reach a log.)
#[derive(Clone, Copy)]
pub struct Webhook<'a> {
    /// The path the provider called (`/webhooks/sms/twilio`), without the public URL's base.
    pub path: &'a str,
    /// The query string, if any, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// One text from a contact, read from a webhook whose origin was checked. (No `Debug`: it holds
/// the contact's number and text.)
#[derive(Clone, Default)]
pub struct Incoming {
    /// The provider's id of the message (Twilio's `MessageSid`), for de-duplication only.
    pub id: String,
    /// The contact's number: in memory only.
    pub from: String,
    pub text: String,
    /// The provider's ids of attached media; never fetched, only deleted where configured.
    pub media: Vec<String>,
    /// The provider says the contact opted out (Twilio's `OptOutType=STOP`).
    pub opted_out: bool,
}

/// Why a webhook call was refused before any of it was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No signature header: 403.
    MissingSignature,
    /// The signature does not match: 403.
    BadSignature,
    /// Signed, but not a message this channel can read: 400.
    BadBody,
}

impl Rejected {
    /// The `reason` label of `helpline_webhook_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Rejected::MissingSignature => "missing_signature",
            Rejected::BadSignature => "bad_signature",
            Rejected::BadBody => "bad_body",
        }
    }
}

/// One SMS provider: the small seam between the channel and a provider's protocol.
pub trait Provider: Send + Sync + 'static {
    /// Checks that the call comes from the provider (before reading anything else in it), then
    /// reads the message.
    fn inbound(&self, call: &Webhook<'_>) -> Result<Incoming, Rejected>;
    /// Sends one text to `to`.
    fn send(&self, to: &str, text: &str) -> impl Future<Output = Delivery> + Send;
    /// Deletes a received message's media at the provider (never having fetched it).
    fn delete_media(
        &self,
        message: &str,
        media: &str,
    ) -> impl Future<Output = Result<(), &'static str>> + Send;
}

/// Why a webhook call was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    Rejected(Rejected),
    /// Too many calls at once: answer 503.
    Overloaded,
    /// It could not be stored now (Redis): answer 503.
    Unavailable,
}

/// The SMS channel of one node; cheap to clone.
#[derive(Clone)]
pub struct Sms {
    inner: Arc<Inner>,
}

struct Inner {
    router: Router,
    provider: Active,
    /// Webhook calls being handled, bounded so a flood cannot exhaust the node.
    admitted: Semaphore,
}

impl Sms {
    /// The channel when `channels.sms.provider` is set, else `None` (the channel is off).
    pub fn from_router(router: &Router) -> Result<Option<Sms>, RouterError> {
        let config = router.config();
        let sms = &config.channels.sms;
        let provider = match sms.provider {
            None => return Ok(None),
            Some(SmsProvider::Twilio) => Active::Twilio(
                Twilio::new(&config.server.public_url, sms).map_err(RouterError::Setup)?,
            ),
            Some(SmsProvider::Smpp) => Active::Smpp(Smpp::new(sms).map_err(RouterError::Setup)?),
        };
        Ok(Some(Sms {
            inner: Arc::new(Inner {
                router: router.clone(),
                provider,
                admitted: Semaphore::new(WEBHOOK_QUEUE),
            }),
        }))
    }

    /// Runs this node's sender until `shutdown`; with SMPP also the link inbound texts come on
    /// (with Twilio they come by webhook).
    pub async fn run(&self, shutdown: CancellationToken) {
        match &self.inner.provider {
            Active::Twilio(_) => {
                tracing::info!("SMS channel ready (Twilio format)");
                self.send_outbox(shutdown).await;
            }
            Active::Smpp(smpp) => {
                tracing::info!("SMS channel ready (SMPP)");
                tokio::join!(self.send_outbox(shutdown.clone()), smpp.run(self, shutdown));
            }
        }
    }

    /// Takes one webhook call: checked, then handled and stored before the caller answers 2xx.
    pub async fn take(&self, call: &Webhook<'_>) -> Result<(), WebhookError> {
        let incoming = self
            .inner
            .provider
            .inbound(call)
            .map_err(WebhookError::Rejected)?;
        let _admitted = self
            .inner
            .admitted
            .try_acquire()
            .map_err(|_| WebhookError::Overloaded)?;
        self.handle(incoming).await.map_err(|e| {
            tracing::warn!(error = %e, "an SMS could not be stored; the provider may retry");
            WebhookError::Unavailable
        })
    }
}

/// The configured provider.
enum Active {
    Twilio(Twilio),
    Smpp(Smpp),
}

impl Provider for Active {
    fn inbound(&self, call: &Webhook<'_>) -> Result<Incoming, Rejected> {
        match self {
            Active::Twilio(twilio) => twilio.inbound(call),
            // SMPP texts come on the link, never by webhook: a call here is not the carrier.
            Active::Smpp(_) => Err(Rejected::MissingSignature),
        }
    }

    async fn send(&self, to: &str, text: &str) -> Delivery {
        match self {
            Active::Twilio(twilio) => twilio.send(to, text).await,
            Active::Smpp(smpp) => smpp.send(to, text).await,
        }
    }

    async fn delete_media(&self, message: &str, media: &str) -> Result<(), &'static str> {
        match self {
            Active::Twilio(twilio) => twilio.delete_media(message, media).await,
            // SMPP carries no media.
            Active::Smpp(_) => Ok(()),
        }
    }
}
