//! `POST /webhooks/telegram`: Telegram's calls in webhook mode. The secret header is compared in
//! constant time before a byte of the body is parsed (401 otherwise, counted); the update is handed
//! to the Telegram channel, which answers only once it is stored, and which bounds how many calls
//! it takes at once (503 past that, so Telegram retries later).
//!
//! `POST /webhooks/sms/twilio`: Twilio-format SMS. The SMS channel checks `X-Twilio-Signature`
//! against the public URL before anything in the body is used (403 otherwise, counted); the answer,
//! an empty TwiML `<Response/>`, goes out only once the text is stored.
//!
//! Both bodies are read under `limits.body_bytes` and `limits.body_timeout_s` (413 and 408
//! otherwise, counted as `too_large` and `too_slow`), and a Telegram update may nest at most
//! `limits.json_depth` levels (400 `too_deep`), so a provider's broken or hostile call costs little.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use helpline_adapters::nesting;
use helpline_adapters::sms::{self, Rejected, Webhook};
use helpline_adapters::telegram::{WebhookError, CHANNEL};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;
use crate::server::App;

/// The header Telegram sends the webhook's `secret_token` back in.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Reads a webhook's body within the caps, or answers why not (and counts it for `channel`).
async fn read_body(
    app: &App,
    channel: &'static str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    let limits = &app.router.config().limits;
    let telemetry = app.router.telemetry();
    let too_large = || {
        telemetry.webhook_rejected(channel, "too_large");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than {} bytes (limits.body_bytes)",
                limits.body_bytes
            ),
        )
        .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.body_bytes) {
        return Err(too_large());
    }
    let wait = Duration::from_secs(limits.body_timeout_s);
    match tokio::time::timeout(wait, axum::body::to_bytes(body, limits.body_bytes)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        // Past the limit without a Content-Length, or the client broke the body off.
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            telemetry.webhook_rejected(channel, "too_slow");
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "too_slow",
                format!(
                    "the body took longer than {} s to arrive (limits.body_timeout_s)",
                    limits.body_timeout_s
                ),
            )
            .into_response())
        }
    }
}

pub async fn telegram(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let telegram = app.telegram.as_ref().filter(|t| t.webhook_mode());
    let secret = app
        .router
        .config()
        .channels
        .telegram
        .webhook_secret
        .as_ref();
    let (Some(telegram), Some(secret)) = (telegram, secret) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the Telegram webhook is off (channels.telegram.mode is not webhook)",
        )
        .into_response();
    };
    let telemetry = app.router.telemetry();
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
    let refused = match given {
        None => Some("missing_secret"),
        Some(given) if !bool::from(given.ct_eq(secret.expose().as_bytes())) => Some("bad_secret"),
        Some(_) => None,
    };
    if let Some(reason) = refused {
        telemetry.webhook_rejected(CHANNEL, reason);
        return ApiError::unauthorized().into_response();
    }
    let body = match read_body(&app, CHANNEL, &headers, body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    if let Err(e) = nesting::check(&body, app.router.config().limits.json_depth) {
        telemetry.webhook_rejected(CHANNEL, "too_deep");
        return ApiError::new(StatusCode::BAD_REQUEST, "too_deep", e.to_string()).into_response();
    }
    match telegram.take_update(&body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(WebhookError::Overloaded) => {
            telemetry.webhook_rejected(CHANNEL, "overloaded");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many updates at once; retry",
            )
            .into_response()
        }
        Err(WebhookError::BadBody) => {
            telemetry.webhook_rejected(CHANNEL, "bad_body");
            ApiError::bad_request("the body is not a Telegram update").into_response()
        }
        Err(WebhookError::Unavailable) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the update could not be stored now; retry",
        )
        .into_response(),
    }
}

/// The path Twilio is pointed at; its signature covers the public URL plus this path.
pub const TWILIO_PATH: &str = "/webhooks/sms/twilio";

/// An empty TwiML answer: the text is taken, Twilio sends nothing back by itself.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

pub async fn sms_twilio(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(channel) = app.sms.as_ref() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the SMS channel is off (channels.sms.provider is not set)",
        )
        .into_response();
    };
    let body = match read_body(&app, sms::CHANNEL, &headers, body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let call = Webhook {
        path: TWILIO_PATH,
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let telemetry = app.router.telemetry();
    match channel.take(&call).await {
        Ok(()) => ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response(),
        Err(sms::WebhookError::Rejected(why)) => {
            telemetry.webhook_rejected(sms::CHANNEL, why.reason());
            match why {
                Rejected::BadBody => {
                    ApiError::bad_request("the body is not an SMS webhook").into_response()
                }
                Rejected::MissingSignature | Rejected::BadSignature => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the request signature does not match",
                )
                .into_response(),
            }
        }
        Err(sms::WebhookError::Overloaded) => {
            telemetry.webhook_rejected(sms::CHANNEL, "overloaded");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many messages at once; retry",
            )
            .into_response()
        }
        Err(sms::WebhookError::Unavailable) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the message could not be stored now; retry",
        )
        .into_response(),
    }
}
