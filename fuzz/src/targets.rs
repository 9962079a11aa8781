//! One entry function per fuzz target. Each feeds arbitrary bytes to code a peer can reach, the way
//! the gateway calls it, and may fail only by returning an error: a panic, a hang or a crash here is
//! a bug. The fuzz targets in `fuzz_targets/` call these, and `tests/tests/fuzz_corpus.rs` includes
//! this file to replay the saved corpus on stable Rust in CI.

use std::sync::OnceLock;

use helpline_adapters::sms::twilio::{signature, Twilio, SIGNATURE_HEADER};
use helpline_adapters::sms::{HeaderMap, HeaderValue, Provider, Webhook};
use helpline_router::vault::{DataKey, MasterKeys, Purpose, Vault};

/// The gateway's default `limits.json_depth`.
const DEPTH: usize = 16;

/// The contact's `/ws/chat` frame parser. A WebSocket text frame is valid UTF-8 by the time it
/// reaches the parser (the transport refuses anything else), so other bytes are skipped.
pub fn contact_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = helpline_adapters::webchat::frames::parse(text, DEPTH);
    }
}

/// The staff `/ws/agent` frame parser.
pub fn staff_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = helpline_gateway::parse_staff_frame(text, DEPTH);
    }
}

/// A Telegram webhook body, as `POST /webhooks/telegram` reads it once the secret matched: the
/// depth check, the update parser, and the update id of anything it cannot read.
pub fn telegram_update(data: &[u8]) {
    if helpline_adapters::nesting::check(data, DEPTH).is_err() {
        return;
    }
    if helpline_adapters::telegram::updates::parse(data).is_none() {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            let _ = helpline_adapters::telegram::updates::update_id(&value);
        }
    }
}

const PUBLIC_URL: &str = "https://chat.example.org";
const TWILIO_PATH: &str = "/webhooks/sms/twilio";
const AUTH_TOKEN: &str = "fuzz-auth-token";

fn twilio() -> &'static Twilio {
    static TWILIO: OnceLock<Twilio> = OnceLock::new();
    TWILIO.get_or_init(|| {
        let config = helpline_config::Sms {
            provider: Some(helpline_config::SmsProvider::Twilio),
            account_sid: Some("AC00000000000000000000000000000000".into()),
            auth_token: Some(helpline_config::Secret::new(AUTH_TOKEN)),
            from: Some("+37360000000".into()),
            ..helpline_config::Sms::default()
        };
        Twilio::new(PUBLIC_URL, &config).unwrap_or_else(|e| panic!("the fuzz Twilio: {e}"))
    })
}

/// A Twilio webhook: the signature check and the form. The first byte chooses the signature: even,
/// the body's true signature (so the form reader behind the check is reached); odd, the next
/// bytes up to the first `&` as the header (a forgery). The rest is the form body.
pub fn twilio_webhook(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let given = if mode % 2 == 0 {
        let params: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let url = format!("{PUBLIC_URL}{TWILIO_PATH}");
        HeaderValue::from_str(&signature(AUTH_TOKEN, &url, &params)).ok()
    } else {
        let end = body.iter().position(|&b| b == b'&').unwrap_or(body.len());
        HeaderValue::from_bytes(&body[..end]).ok()
    };
    if let Some(value) = given {
        headers.insert(SIGNATURE_HEADER, value);
    }
    let call = Webhook {
        path: TWILIO_PATH,
        query: (mode & 2 == 2).then_some("x=1"),
        headers: &headers,
        body,
    };
    let _ = twilio().inbound(&call);
}

/// The conversation every vault input is for.
const CONVERSATION: &str = "0123456789abcdef0123456789abcdef";

fn vault() -> &'static Vault {
    static VAULT: OnceLock<Vault> = OnceLock::new();
    VAULT.get_or_init(|| Vault::new(MasterKeys::new(1, [7; 32])))
}

/// The vault's decryption: the first byte is the length `n` of a wrapped data key, the next `n`
/// bytes the key as stored (unwrapped under a fixed master key), the rest a sealed text opened
/// with it (as message 1), or with a fixed key when the wrapped one does not open.
pub fn vault_open(data: &[u8]) {
    static FIXED: OnceLock<DataKey> = OnceLock::new();
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (wrapped, sealed) = rest.split_at(usize::from(n).min(rest.len()));
    let _ = Vault::wrapped_version(wrapped);
    let opened = vault().unwrap_key(CONVERSATION, wrapped);
    let fixed = FIXED.get_or_init(|| {
        let (key, _) = vault()
            .new_data_key(CONVERSATION)
            .unwrap_or_else(|e| panic!("a data key: {e}"));
        key
    });
    let key = opened.as_ref().unwrap_or(fixed);
    let _ = key.open(CONVERSATION, Purpose::Message, 1, sealed);
    let _ = key.open(CONVERSATION, Purpose::Address, 0, sealed);
}
