//! Twilio's format (and that of providers that copy it): inbound messages are form posts signed
//! with `X-Twilio-Signature`, outbound ones are `POST …/Messages.json` with Basic auth.
//!
//! The signature (https://www.twilio.com/docs/usage/security#validating-requests): HMAC-SHA1 with
//! the auth token over the full URL Twilio called, followed by every POST parameter's name and
//! value, sorted by name (and by value within a name), base64. The URL is this gateway's public
//! URL plus the path; Twilio may or may not have written the default port, so both are accepted.
//! The comparison is constant-time, and nothing of the body is used before it matched.
//!
//! Never logged: numbers, message or media ids, the auth token.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use helpline_config::{Secret, Sms as SmsConfig};
use ring::hmac;
use subtle::ConstantTimeEq;

use super::{Incoming, Provider, Rejected, Webhook};
use crate::sender::Delivery;

/// The header Twilio signs its webhook calls in.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// Twilio's error code for a number that opted out (sent STOP): nothing reaches it until START.
const OPTED_OUT: i64 = 21610;
/// How long a send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// The wait after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The most a 429's `Retry-After` is followed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A Twilio-format account.
pub struct Twilio {
    http: reqwest::Client,
    /// The public base URL (no trailing `/`), which Twilio's signature covers.
    public_url: String,
    api_url: String,
    account_sid: String,
    auth_token: Secret,
    from: String,
}

impl Twilio {
    pub fn new(public_url: &str, config: &SmsConfig) -> Result<Twilio, String> {
        let need = |v: Option<&String>, key: &str| {
            v.filter(|s| !s.is_empty())
                .cloned()
                .ok_or_else(|| format!("channels.sms.{key} is required with a provider"))
        };
        let auth_token = config
            .auth_token
            .clone()
            .ok_or("channels.sms.auth_token is required with a provider")?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(SEND_TIMEOUT)
            // Never follow a redirect with the account's credentials.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| "cannot build the HTTPS client for the SMS provider".to_owned())?;
        Ok(Twilio {
            http,
            public_url: public_url.trim_end_matches('/').to_owned(),
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            account_sid: need(config.account_sid.as_ref(), "account_sid")?,
            auth_token,
            from: need(config.from.as_ref(), "from")?,
        })
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages",
            self.api_url, self.account_sid
        )
    }
}

impl Provider for Twilio {
    fn inbound(&self, call: &Webhook<'_>) -> Result<Incoming, Rejected> {
        let given = call
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(Rejected::MissingSignature)?
            .as_bytes();
        let params: Vec<(String, String)> = form_urlencoded::parse(call.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut url = format!("{}{}", self.public_url, call.path);
        if let Some(q) = call.query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        let token = self.auth_token.expose();
        let matches = url_variants(&url)
            .iter()
            .any(|u| signature_matches(token, u, &params, given));
        if !matches {
            return Err(Rejected::BadSignature);
        }
        read_message(&params)
    }

    async fn send(&self, to: &str, text: &str) -> Delivery {
        let url = format!("{}.json", self.messages_url());
        let form = [("To", to), ("From", self.from.as_str()), ("Body", text)];
        let sent = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(_) => return Delivery::Transient("the SMS provider could not be reached"),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = match response.json::<serde_json::Value>().await {
            Ok(body) => body.get("code").and_then(serde_json::Value::as_i64),
            Err(_) => None,
        };
        classify(status, code, retry_after)
    }

    async fn delete_media(&self, message: &str, media: &str) -> Result<(), &'static str> {
        if !is_sid(message) || !is_sid(media) {
            return Err("not a provider id");
        }
        let url = format!("{}/{message}/Media/{media}.json", self.messages_url());
        let response = self
            .http
            .delete(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|_| "the SMS provider could not be reached")?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err("the SMS provider refused to delete the media"),
        }
    }
}

/// What a send's answer means (Twilio's REST errors: https://www.twilio.com/docs/usage/twilios-response).
fn classify(status: u16, code: Option<i64>, retry_after: Option<Duration>) -> Delivery {
    match status {
        200..=299 => Delivery::Accepted,
        429 => Delivery::RetryAfter(
            retry_after
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .min(MAX_RETRY_AFTER),
            "the SMS provider asked to slow down (429)",
        ),
        _ if code == Some(OPTED_OUT) => Delivery::Blocked("the number opted out (STOP)"),
        // Credentials or account trouble: nothing to do with this message; fixable by an operator,
        // so kept and retried rather than lost.
        401 | 403 => Delivery::Transient("the SMS provider refused the account's credentials"),
        408 => Delivery::Transient("the SMS provider timed out"),
        400..=499 => Delivery::Refused("the SMS provider refused the message for good (4xx)"),
        _ => Delivery::Transient("the SMS provider failed (5xx)"),
    }
}

/// A Twilio id (`SM…`, `MM…`, `ME…`): letters and digits only, so it is safe in a URL path.
fn is_sid(id: &str) -> bool {
    (2..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads a signed message's fields.
fn read_message(params: &[(String, String)]) -> Result<Incoming, Rejected> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let id = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .filter(|s| is_sid(s))
        .ok_or(Rejected::BadBody)?;
    let from = get("From")
        .filter(|f| !f.trim().is_empty())
        .ok_or(Rejected::BadBody)?;
    let count: usize = get("NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        .min(10);
    // Only the media's id is read from each MediaUrl (its last path segment); the URL itself is
    // never requested.
    let media = (0..count)
        .filter_map(|i| get(&format!("MediaUrl{i}")))
        .filter_map(|url| url.trim_end_matches('/').rsplit('/').next())
        .filter(|sid| is_sid(sid))
        .map(String::from)
        .collect::<Vec<_>>();
    let media = if media.len() < count {
        // A media entry without a readable id is still media: withheld all the same.
        let mut m = media;
        m.resize(count, String::new());
        m
    } else {
        media
    };
    Ok(Incoming {
        id: id.to_owned(),
        from: from.trim().to_owned(),
        text: get("Body").unwrap_or("").to_owned(),
        media,
        opted_out: get("OptOutType").is_some_and(|t| t.eq_ignore_ascii_case("STOP")),
    })
}

/// Twilio's signature of a call to `url` with these POST parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(url.as_bytes());
    for (name, value) in sorted {
        ctx.update(name.as_bytes());
        ctx.update(value.as_bytes());
    }
    B64.encode(ctx.sign().as_ref())
}

fn signature_matches(token: &str, url: &str, params: &[(String, String)], given: &[u8]) -> bool {
    let expected = signature(token, url, params);
    bool::from(expected.as_bytes().ct_eq(given))
}

/// The URL as given, and with the scheme's default port added or removed (Twilio signs whatever
/// form it was configured with).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let (scheme, port) = if let Some(rest) = url.strip_prefix("https://") {
        (("https://", rest), "443")
    } else if let Some(rest) = url.strip_prefix("http://") {
        (("http://", rest), "80")
    } else {
        return out;
    };
    let (prefix, rest) = scheme;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let explicit = authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match explicit {
        Some((host, p)) if p == port => out.push(format!("{prefix}{host}{tail}")),
        Some(_) => {}
        None => out.push(format!("{prefix}{authority}:{port}{tail}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Twilio's own test vector (issue 5).
    #[test]
    fn the_documented_test_vector_signs_as_twilio_does() {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &p), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // The order the parameters came in does not matter.
        let mut reversed = p.clone();
        reversed.reverse();
        assert!(signature_matches(
            "12345",
            url,
            &reversed,
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!signature_matches(
            "12346",
            url,
            &p,
            b"RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed with the default port written out, checked against the URL without it.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let signed = signature("12345", with_port, &p);
        assert!(url_variants(url).iter().any(|u| signature_matches(
            "12345",
            u,
            &p,
            signed.as_bytes()
        )));
    }

    #[test]
    fn urls_are_tried_with_and_without_the_default_port() {
        assert_eq!(
            url_variants("https://h.org/a?b=1"),
            ["https://h.org/a?b=1", "https://h.org:443/a?b=1"]
        );
        assert_eq!(
            url_variants("https://h.org:443/a"),
            ["https://h.org:443/a", "https://h.org/a"]
        );
        assert_eq!(url_variants("http://h:8080/a"), ["http://h:8080/a"]);
        assert_eq!(
            url_variants("http://[::1]/a"),
            ["http://[::1]/a", "http://[::1]:80/a"]
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(201, None, None), Delivery::Accepted);
        assert!(
            matches!(classify(429, Some(20429), None), Delivery::RetryAfter(d, _) if d == DEFAULT_RETRY_AFTER)
        );
        assert!(matches!(classify(503, None, None), Delivery::Transient(_)));
        assert!(matches!(
            classify(400, Some(21211), None),
            Delivery::Refused(_)
        ));
        assert!(matches!(
            classify(400, Some(21610), None),
            Delivery::Blocked(_)
        ));
        assert!(matches!(
            classify(401, Some(20003), None),
            Delivery::Transient(_)
        ));
    }

    #[test]
    fn media_ids_come_from_the_url_path_which_is_never_fetched() {
        let p = params(&[
            ("MessageSid", "MM123"),
            ("From", "+37369000000"),
            ("NumMedia", "2"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM123/Media/ME1",
            ),
            ("MediaUrl1", "https://evil.example/x/../ME2"),
        ]);
        let m = read_message(&p).unwrap();
        assert_eq!(m.media, ["ME1", "ME2"]);
        assert_eq!(m.text, "");
        assert!(read_message(&params(&[("From", "+1")])).is_err());
    }
}
