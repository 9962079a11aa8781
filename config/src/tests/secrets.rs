//! Secrets never appear in `Debug`, in `redacted_toml`, or in any error. Each test plants canary
//! values and searches every output for them.

use super::{load_text, temp_file};
use crate::{Config, Secret, SmsProvider, TelegramMode};

/// Base64 of the 32 bytes `CANARY-master-key-0123456789abcd`: valid, and recognisable.
const MASTER: &str = "Q0FOQVJZLW1hc3Rlci1rZXktMDEyMzQ1Njc4OWFiY2Q=";
const CANARIES: &[&str] = &[
    MASTER,
    "CANARY",
    "canary-pw",
    "canary-token",
    "canary-hook",
    "canary-auth",
    "Q0FOQVJZ",
];

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} leaks `{canary}`:\n{text}");
    }
}

fn config_full_of_secrets() -> Config {
    let mut c = Config::default();
    c.redis.url = Secret::new("redis://gateway:canary-pw@10.0.0.5:6379/0");
    c.security.master_key = Some(Secret::new(MASTER));
    c.security.pseudonym_key = Some(Secret::new(MASTER));
    c.channels.telegram.token = Some(Secret::new("123:canary-token"));
    c.channels.telegram.webhook_secret = Some(Secret::new("canary-hook"));
    c.channels.telegram.mode = TelegramMode::Webhook;
    c.channels.sms.provider = Some(SmsProvider::Twilio);
    c.channels.sms.account_sid = Some("AC1".into());
    c.channels.sms.auth_token = Some(Secret::new("canary-auth"));
    c.channels.sms.from = Some("+37360000000".into());
    c
}

#[test]
fn debug_hides_every_secret() {
    let config = config_full_of_secrets();
    config.validate().unwrap();
    assert_clean("Debug", &format!("{config:?}"));
    assert_clean("pretty Debug", &format!("{config:#?}"));
}

#[test]
fn the_redacted_view_hides_secrets_but_shows_the_redis_host() {
    let shown = config_full_of_secrets().redacted_toml();
    assert_clean("redacted_toml", &shown);
    assert!(
        shown.contains("url = \"redis://gateway:[redacted]@10.0.0.5:6379/0\""),
        "{shown}"
    );
    assert!(shown.contains("token = \"[redacted]\""), "{shown}");
    assert!(shown.contains("master_key = \"[redacted]\""), "{shown}");
    assert!(shown.contains("listen = \"127.0.0.1:8080\""), "{shown}");
    // It is valid TOML, sections in the structs' order.
    let parsed: toml::Table = shown.parse().unwrap();
    assert!(parsed.contains_key("channels"));
    assert!(
        shown.find("[server]").unwrap() < shown.find("[redis]").unwrap(),
        "{shown}"
    );
}

#[test]
fn validation_errors_name_secret_keys_without_their_values() {
    let mut c = config_full_of_secrets();
    c.redis.url = Secret::new("http://gateway:canary-pw@10.0.0.5:6379");
    c.security.master_key = Some(Secret::new("CANARY-not-base64"));
    c.security.pseudonym_key = Some(Secret::new("Q0FOQVJZ"));
    c.channels.telegram.webhook_secret = Some(Secret::new("canary-hook has spaces"));
    let text = c.validate().unwrap_err().to_string();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert_clean("validation error", &text);
    assert!(
        text.contains("`http://gateway:[redacted]@10.0.0.5:6379`"),
        "{text}"
    );
}

#[test]
fn file_errors_never_quote_a_secret() {
    let wrong_type = "[channels.telegram]\ntoken = 12345678\n";
    let text = load_text(wrong_type, &[]).unwrap_err().to_string();
    assert!(!text.contains("12345678"), "{text}");
    assert!(text.contains("channels.telegram.token"), "{text}");

    let unterminated = "[channels.telegram]\ntoken = \"123:canary-token\n";
    assert_clean(
        "syntax error",
        &load_text(unterminated, &[]).unwrap_err().to_string(),
    );

    let duplicate = "[redis]\nurl = \"redis://:canary-pw@h\"\nurl = \"redis://:canary-pw@h\"\n";
    assert_clean(
        "duplicate key",
        &load_text(duplicate, &[]).unwrap_err().to_string(),
    );
}

#[test]
fn environment_errors_never_quote_a_secret() {
    let text = load_text(
        "",
        &[("HELPLINE_CHANNELS__TELEGRAM__TOKN", "123:canary-token")],
    )
    .unwrap_err()
    .to_string();
    assert_clean("unknown variable error", &text);
    assert!(
        text.contains("HELPLINE_CHANNELS__TELEGRAM__TOKEN"),
        "{text}"
    );
    let text = load_text("", &[("HELPLINE_SECURITY__MASTER_KEY", "CANARY")])
        .unwrap_err()
        .to_string();
    assert_clean("bad key error", &text);
    assert!(text.contains("HELPLINE_SECURITY__MASTER_KEY"), "{text}");
}

#[test]
fn key_errors_never_quote_the_key() {
    let mut c = Config::default();
    c.security.master_key = Some(Secret::new("CANARY"));
    assert_clean(
        "master key error",
        &c.security.master_key_bytes().unwrap_err().to_string(),
    );
    c.security.master_key = None;
    c.security.master_key_file = Some(temp_file("canary-pw not base64").display().to_string());
    assert_clean(
        "key file error",
        &c.security.master_key_bytes().unwrap_err().to_string(),
    );
    c.security.pseudonym_key = Some(Secret::new("Q0FOQVJZ"));
    assert_clean(
        "pseudonym key error",
        &c.security.pseudonym_key_bytes().unwrap_err().to_string(),
    );
}
