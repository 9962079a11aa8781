//! A fake of Twilio's Programmable Messaging REST API on a free local port, for the SMS tests:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (a form with `To`, `From`, `Body`; Basic
//! auth with the Account SID and Auth Token) answers `201` with a Message resource (`sid`,
//! `status: "queued"`, `num_segments`, …), errors have Twilio's shape (`code`, `message`,
//! `more_info`, `status`); `DELETE …/Messages/{MessageSid}/Media/{MediaSid}.json` answers `204`.
//! It also serves the media URLs it hands out (`GET /media/…`), so a test can prove the gateway
//! never fetched them: every request is recorded.
//!
//! It also signs inbound webhooks the way Twilio does (`X-Twilio-Signature`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::hmac;
use serde_json::json;

/// The account the tests configure.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";
/// The helpline's sending number.
pub const FROM: &str = "+37322000116";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, if any.
    pub auth: Option<String>,
    /// The form fields of a POST.
    pub form: Vec<(String, String)>,
    /// The status it was answered with (0: held, then dropped unanswered).
    pub status: u16,
}

impl Request {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    /// Statuses to answer the next sends with, before succeeding again.
    failures: VecDeque<u16>,
    /// A number every send to which is refused with 400 (code 21211, invalid `To`).
    invalid: Option<String>,
    next_sid: u64,
    /// Sends whose body contains this are held open, unanswered, until let go.
    hold: Option<String>,
    held: u32,
    /// The next send whose body starts with this is answered with this status, once.
    fail_prefix: Option<(String, u16)>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    release: Arc<tokio::sync::Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake.
pub struct FakeTwilio {
    pub port: u16,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTwilio {
    pub async fn start() -> Result<FakeTwilio> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Shared::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeTwilio {
            port,
            shared,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway settings that point the SMS channel at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HELPLINE_CHANNELS__SMS__PROVIDER", "twilio".to_owned()),
            (
                "HELPLINE_CHANNELS__SMS__ACCOUNT_SID",
                ACCOUNT_SID.to_owned(),
            ),
            ("HELPLINE_CHANNELS__SMS__AUTH_TOKEN", AUTH_TOKEN.to_owned()),
            ("HELPLINE_CHANNELS__SMS__FROM", FROM.to_owned()),
            ("HELPLINE_CHANNELS__SMS__API_URL", self.url()),
        ]
    }

    /// A media URL of this fake (as Twilio would hand one out); fetching it is recorded.
    pub fn media_url(&self, message: &str, media: &str) -> String {
        format!(
            "{}/media/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message}/Media/{media}",
            self.url()
        )
    }

    /// Answers the next sends with these statuses (e.g. 429, 500), then succeeds again.
    pub fn fail_next_sends(&self, statuses: &[u16]) {
        self.shared.lock().failures.extend(statuses);
    }

    /// Answers the next send whose body starts with `prefix` with `status`, once.
    pub fn fail_once_starting_with(&self, prefix: &str, status: u16) {
        self.shared.lock().fail_prefix = Some((prefix.to_owned(), status));
    }

    /// Refuses every send to `number` with 400 (code 21211).
    pub fn refuse_number(&self, number: &str) {
        self.shared.lock().invalid = Some(number.to_owned());
    }

    /// Sends whose body contains `marker` are held open (unanswered) until [`Self::drop_held`].
    pub fn hold_sends_containing(&self, marker: &str) {
        self.shared.lock().hold = Some(marker.to_owned());
    }

    /// How many sends are being held open now.
    pub fn held(&self) -> u32 {
        self.shared.lock().held
    }

    /// Lets the held sends go without accepting them (as if they never reached Twilio: answered
    /// 500, recorded with status 0), and stops holding.
    pub fn drop_held(&self) {
        self.shared.lock().hold = None;
        self.shared.release.notify_waiters();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// The sends (accepted or not) to `to`.
    pub fn sends_to(&self, to: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.field("To") == Some(to))
            .collect()
    }

    /// The accepted sends to `to` whose body contains `needle`.
    pub fn delivered(&self, to: &str, needle: &str) -> Vec<Request> {
        self.sends_to(to)
            .into_iter()
            .filter(|r| r.status == 201 && r.field("Body").is_some_and(|b| b.contains(needle)))
            .collect()
    }

    /// Waits for an accepted send to `to` containing `needle`.
    pub async fn wait_delivered(
        &self,
        to: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.delivered(to, needle).into_iter().next() {
                return Ok(r);
            }
            if Instant::now() > deadline {
                let bodies: Vec<String> = self
                    .sends_to(to)
                    .iter()
                    .map(|r| format!("{} {:?}", r.status, r.field("Body")))
                    .collect();
                bail!("no SMS to {to} containing {needle:?}; sends: {bodies:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` requests match `pred`.
    pub async fn wait_requests(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Request) -> bool,
    ) -> Result<Vec<Request>> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Request> = self.requests().into_iter().filter(|r| pred(r)).collect();
            if found.len() >= n {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!("{} matching requests of {n} after {timeout:?}", found.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Posts an inbound SMS (`body` from `from`, message id `sid`) to the gateway's Twilio webhook as
/// Twilio would, signed; fails unless the gateway answers 200.
pub async fn text_gateway(gw: &crate::Gateway, sid: &str, from: &str, body: &str) -> Result<()> {
    let url = format!("{}/webhooks/sms/twilio", gw.base());
    let params = [
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", FROM),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ];
    let response = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", sign(&url, &params))
        .form(&params)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        bail!(
            "the SMS webhook answered {status}: {}",
            response.text().await?
        );
    }
    Ok(())
}

/// Twilio's signature of a webhook call to `url` with these form fields.
pub fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort();
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, AUTH_TOKEN.as_bytes());
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    B64.encode(hmac::sign(&key, data.as_bytes()).as_ref())
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let form: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let messages = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages");
    let expected_auth = format!(
        "Basic {}",
        B64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let response: (u16, Response) = if path.starts_with("/media/") {
        (
            200,
            (StatusCode::OK, "\u{89}PNG fake image").into_response(),
        )
    } else if auth.as_deref() != Some(expected_auth.as_str()) {
        (
            401,
            error(
                StatusCode::UNAUTHORIZED,
                20003,
                "Authentication Error - invalid username",
            ),
        )
    } else if method == Method::POST && path == format!("{messages}.json") {
        if held(&shared, &form).await {
            (
                0,
                error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Dropped"),
            )
        } else {
            send(&shared, &form)
        }
    } else if method == Method::DELETE
        && path.starts_with(&format!("{messages}/"))
        && path.contains("/Media/")
    {
        (204, StatusCode::NO_CONTENT.into_response())
    } else {
        (
            404,
            error(
                StatusCode::NOT_FOUND,
                20404,
                "The requested resource was not found",
            ),
        )
    };
    shared.lock().requests.push(Request {
        method: method.to_string(),
        path,
        auth,
        form,
        status: response.0,
    });
    response.1
}

/// Holds a send whose body has the hold marker until the test lets it go; true if it was held.
async fn held(shared: &Shared, form: &[(String, String)]) -> bool {
    let release = shared.release.notified();
    {
        let mut s = shared.lock();
        let hold = s.hold.as_ref().is_some_and(|m| {
            form.iter()
                .any(|(k, v)| k == "Body" && v.contains(m.as_str()))
        });
        if !hold {
            return false;
        }
        s.held += 1;
    }
    release.await;
    shared.lock().held -= 1;
    true
}

fn send(shared: &Shared, form: &[(String, String)]) -> (u16, Response) {
    let field = |n: &str| {
        form.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut s = shared.lock();
    let body = field("Body");
    let prefixed = s
        .fail_prefix
        .as_ref()
        .is_some_and(|(p, _)| body.starts_with(p.as_str()));
    let once = if prefixed {
        s.fail_prefix.take().map(|(_, st)| st)
    } else {
        None
    };
    if let Some(status) = once.or_else(|| s.failures.pop_front()) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = if status == StatusCode::TOO_MANY_REQUESTS {
            20429
        } else {
            20500
        };
        return (status.as_u16(), error(status, code, "Simulated failure"));
    }
    let to = field("To");
    if s.invalid.as_deref() == Some(to.as_str()) {
        return (
            400,
            error(
                StatusCode::BAD_REQUEST,
                21211,
                "The 'To' number is not a valid phone number.",
            ),
        );
    }
    s.next_sid += 1;
    let sid = format!("SM{:032x}", s.next_sid);
    let body = json!({
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": field("Body"),
        "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
        "date_sent": null,
        "date_updated": "Thu, 30 Jul 2015 20:12:33 +0000",
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": field("From"),
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": null,
        "sid": sid,
        "status": "queued",
        "subresource_uris": { "media": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json") },
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
    });
    (201, (StatusCode::CREATED, Json(body)).into_response())
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
