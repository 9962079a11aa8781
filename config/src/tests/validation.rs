//! Every validation rule, each with a bad value, gives a message naming the key.

use crate::{Config, ConfigError, Secret, SmsProvider, TelegramMode};

/// A valid 32-byte key.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn problems_of(config: &Config) -> Vec<(String, String)> {
    match config.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems
            .into_iter()
            .map(|p| (p.key.clone(), p.to_string()))
            .collect(),
        Err(other) => panic!("not an Invalid error: {other}"),
    }
}

#[test]
fn the_defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn a_full_valid_config_passes() {
    let mut c = Config::default();
    c.server.listen = "[::]:443".into();
    c.server.public_url = "https://chat.example.org/".into();
    c.server.allowed_origins = vec![
        "https://www.example.org:8443".into(),
        "http://[::1]:3000".into(),
    ];
    c.redis.url = Secret::new("rediss://gateway:pw@redis.example.org:6380/0");
    c.security.master_key = Some(Secret::new(KEY));
    c.security.pseudonym_key = Some(Secret::new(KEY.trim_end_matches('=')));
    c.routing.routed_topics = vec!["abuse".into()];
    c.channels.telegram.mode = TelegramMode::Webhook;
    c.channels.telegram.token = Some(Secret::new("123:abc"));
    c.channels.telegram.webhook_secret = Some(Secret::new("a-Z_9"));
    c.channels.sms.provider = Some(SmsProvider::Twilio);
    c.channels.sms.account_sid = Some("AC1".into());
    c.channels.sms.auth_token = Some(Secret::new("tok"));
    c.channels.sms.from = Some("+37360000000".into());
    c.validate().unwrap();
}

type Breaker = fn(&mut Config);

/// (what to break, the key the message must name, a fragment of the message)
const CASES: &[(Breaker, &str, &str)] = &[
    (
        |c| c.server.listen = "localhost:8080".into(),
        "server.listen",
        "`localhost:8080`",
    ),
    (
        |c| c.server.listen = "127.0.0.1".into(),
        "server.listen",
        "127.0.0.1:8080",
    ),
    (
        |c| c.server.public_url = "chat.example.org".into(),
        "server.public_url",
        "http:// or https://",
    ),
    (
        |c| c.server.public_url = "https://example.org/chat".into(),
        "server.public_url",
        "has a path",
    ),
    (
        |c| c.server.public_url = "https://".into(),
        "server.public_url",
        "no host",
    ),
    (
        |c| c.server.public_url = "https://example.org:99999".into(),
        "server.public_url",
        "port",
    ),
    (
        |c| c.server.public_url = "https://example.org/?a=b".into(),
        "server.public_url",
        "query",
    ),
    (
        |c| c.server.threads = 1000,
        "server.threads",
        "0 for one per core",
    ),
    (
        |c| c.server.allowed_origins = vec!["ftp://x.org".into()],
        "server.allowed_origins",
        "`ftp://x.org`",
    ),
    (
        |c| c.redis.url = Secret::new("http://127.0.0.1:6379"),
        "redis.url",
        "redis://",
    ),
    (
        |c| c.redis.key_prefix = String::new(),
        "redis.key_prefix",
        "is empty",
    ),
    (
        |c| c.redis.key_prefix = "help line:".into(),
        "redis.key_prefix",
        "space",
    ),
    (
        |c| c.redis.url = Secret::new("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
        "redis.key_prefix",
        "`{helpline}:`",
    ),
    (
        |c| {
            c.redis.url = Secret::new("redis+cluster://127.0.0.1:7000");
            c.redis.key_prefix = "{}helpline:".into();
        },
        "redis.key_prefix",
        "no hash tag",
    ),
    (
        |c| {
            c.security.master_key = Some(Secret::new(KEY));
            c.security.master_key_file = Some("/k".into());
        },
        "security.master_key",
        "only one",
    ),
    (
        |c| c.security.master_key = Some(Secret::new("c2hvcnQ=")),
        "security.master_key",
        "32 random bytes in base64",
    ),
    (
        |c| c.security.master_key = Some(Secret::new("not base64!")),
        "security.master_key",
        "head -c32 /dev/urandom | base64",
    ),
    (
        |c| c.security.master_key_file = Some(String::new()),
        "security.master_key_file",
        "is empty",
    ),
    (
        |c| c.security.pseudonym_key = Some(Secret::new("c2hvcnQ=")),
        "security.pseudonym_key",
        "32 random bytes",
    ),
    (
        |c| c.security.session_idle_s = 0,
        "security.session_idle_s",
        "above 0",
    ),
    (
        |c| c.security.session_max_s = 0,
        "security.session_max_s",
        "above 0",
    ),
    (
        |c| c.security.login_window_s = 0,
        "security.login_window_s",
        "above 0",
    ),
    (
        |c| c.security.login_attempts = 0,
        "security.login_attempts",
        "is 0",
    ),
    (
        |c| c.routing.offer_timeout_s = 0,
        "routing.offer_timeout_s",
        "above 0",
    ),
    (
        |c| c.routing.agent_grace_s = 0,
        "routing.agent_grace_s",
        "above 0",
    ),
    (
        |c| c.routing.abandon_after_s = 0,
        "routing.abandon_after_s",
        "above 0",
    ),
    (
        |c| c.routing.default_capacity = 0,
        "routing.default_capacity",
        "is 0",
    ),
    (
        |c| c.routing.default_capacity = 4,
        "routing.default_capacity",
        "above routing.max_capacity (3)",
    ),
    (
        |c| {
            c.routing.max_capacity = 11;
            c.routing.default_capacity = 2;
        },
        "routing.max_capacity",
        "at most 10",
    ),
    (
        |c| c.routing.languages = Vec::new(),
        "routing.languages",
        "is empty",
    ),
    (
        |c| c.routing.languages = vec!["RO".into()],
        "routing.languages",
        "`RO`",
    ),
    (
        |c| c.routing.languages = vec!["romanian".into()],
        "routing.languages",
        "`romanian`",
    ),
    (
        |c| c.routing.topics = vec!["Online Safety".into()],
        "routing.topics",
        "`Online Safety`",
    ),
    (
        |c| c.routing.topics = vec![String::new()],
        "routing.topics",
        "not a topic",
    ),
    (
        |c| c.routing.routed_topics = vec!["sport".into()],
        "routing.routed_topics",
        "`sport` is not in routing.topics",
    ),
    (
        |c| c.webchat.max_message_bytes = 63,
        "webchat.max_message_bytes",
        "is 63; use a number from 64 to 65536",
    ),
    (
        |c| c.webchat.max_message_bytes = 65537,
        "webchat.max_message_bytes",
        "65537",
    ),
    (
        |c| c.routing.abandon_after_s = 18_446_744_073_709_552,
        "routing.abandon_after_s",
        "use at most 315360000 seconds",
    ),
    (
        |c| c.routing.offer_timeout_s = u64::MAX,
        "routing.offer_timeout_s",
        "use at most 315360000 seconds",
    ),
    (
        |c| c.webchat.buffer_bytes = 1023,
        "webchat.buffer_bytes",
        "1024 to 1048576",
    ),
    (
        |c| c.webchat.buffer_bytes = 1_048_577,
        "webchat.buffer_bytes",
        "1048577",
    ),
    (
        |c| c.webchat.messages_per_minute = 0,
        "webchat.messages_per_minute",
        "is 0",
    ),
    (
        |c| c.channels.telegram.api_url = "api.telegram.org".into(),
        "channels.telegram.api_url",
        "http://",
    ),
    (
        |c| c.channels.telegram.token = Some(Secret::new("")),
        "channels.telegram.token",
        "is empty",
    ),
    (
        |c| c.channels.telegram.webhook_secret = Some(Secret::new("has space")),
        "channels.telegram.webhook_secret",
        "Telegram's rule",
    ),
    (
        |c| c.channels.telegram.webhook_secret = Some(Secret::new("a".repeat(257))),
        "channels.telegram.webhook_secret",
        "1 to 256",
    ),
    (
        |c| {
            c.channels.telegram.mode = TelegramMode::Webhook;
            c.channels.telegram.token = Some(Secret::new("1:a"));
        },
        "channels.telegram.webhook_secret",
        "required in webhook mode",
    ),
    (
        |c| {
            c.channels.telegram.mode = TelegramMode::Webhook;
            c.channels.telegram.webhook_secret = Some(Secret::new("s"));
        },
        "channels.telegram.token",
        "required in webhook mode",
    ),
    (
        |c| c.channels.sms.api_url = "twilio".into(),
        "channels.sms.api_url",
        "`twilio`",
    ),
    (
        |c| {
            c.channels.sms.provider = Some(SmsProvider::Twilio);
            c.channels.sms.auth_token = Some(Secret::new("t"));
            c.channels.sms.from = Some("+1".into());
        },
        "channels.sms.account_sid",
        "required when channels.sms.provider is `twilio`",
    ),
    (
        |c| {
            c.channels.sms.provider = Some(SmsProvider::Twilio);
            c.channels.sms.account_sid = Some("AC".into());
            c.channels.sms.from = Some("+1".into());
        },
        "channels.sms.auth_token",
        "required",
    ),
    (
        |c| {
            c.channels.sms.provider = Some(SmsProvider::Twilio);
            c.channels.sms.account_sid = Some("AC".into());
            c.channels.sms.auth_token = Some(Secret::new("t"));
            c.channels.sms.from = Some(String::new());
        },
        "channels.sms.from",
        "required",
    ),
    (
        |c| {
            c.channels.sms.provider = Some(SmsProvider::Twilio);
            c.channels.sms.account_sid = Some("AC".into());
            c.channels.sms.auth_token = Some(Secret::new("t"));
            c.channels.sms.from = Some("+1".into());
            c.channels.sms.default_language = "de".into();
        },
        "channels.sms.default_language",
        "not one of routing.languages",
    ),
    (
        |c| {
            c.channels.sms.provider = Some(SmsProvider::Twilio);
            c.channels.sms.account_sid = Some("AC".into());
            c.channels.sms.auth_token = Some(Secret::new("t"));
            c.channels.sms.from = Some("+1".into());
            c.channels.sms.end_keywords = vec![" ".into()];
        },
        "channels.sms.end_keywords",
        "empty word",
    ),
    (
        |c| {
            smpp(c);
            c.channels.sms.smpp_host = None;
        },
        "channels.sms.smpp_host",
        "required when channels.sms.provider is `smpp`",
    ),
    (
        |c| {
            smpp(c);
            c.channels.sms.smpp_password = Some(Secret::new("ninechars"));
        },
        "channels.sms.smpp_password",
        "longer than SMPP allows (8",
    ),
    (
        |c| {
            smpp(c);
            c.channels.sms.smpp_window = 0;
        },
        "channels.sms.smpp_window",
        "between 1 and 100",
    ),
    (
        |c| {
            smpp(c);
            c.channels.sms.smpp_enquire_link_s = 1;
        },
        "channels.sms.smpp_enquire_link_s",
        "between 5 and 600",
    ),
];

/// A complete SMPP setting, for the cases to break one key of.
fn smpp(c: &mut Config) {
    c.channels.sms.provider = Some(SmsProvider::Smpp);
    c.channels.sms.smpp_host = Some("smsc.example".into());
    c.channels.sms.smpp_system_id = Some("helpline".into());
    c.channels.sms.smpp_password = Some(Secret::new("secret"));
    c.channels.sms.from = Some("116111".into());
}

#[test]
fn every_rule_names_its_key_its_variable_and_the_fix() {
    for (index, (breaker, key, fragment)) in CASES.iter().enumerate() {
        let mut config = Config::default();
        breaker(&mut config);
        let problems = problems_of(&config);
        assert_eq!(problems.len(), 1, "case {index} ({key}): {problems:?}");
        let (problem_key, line) = &problems[0];
        assert_eq!(problem_key, key, "case {index}: {line}");
        let env = format!("HELPLINE_{}", key.replace('.', "__").to_uppercase());
        assert!(
            line.starts_with(&format!("{key} ({env}): ")),
            "case {index}: {line}"
        );
        assert!(
            line.contains(fragment),
            "case {index}: `{fragment}` not in: {line}"
        );
    }
}

#[test]
fn sentinel_and_cluster_urls_are_accepted() {
    let mut c = Config::default();
    c.redis.url = Secret::new("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/main?db=1");
    c.validate().unwrap();
    c.redis.url = Secret::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
    c.redis.key_prefix = "{helpline}:".into();
    c.validate().unwrap();
}

#[test]
fn all_problems_are_reported_one_per_line() {
    let mut config = Config::default();
    config.server.listen = "nowhere".into();
    config.routing.offer_timeout_s = 0;
    config.webchat.buffer_bytes = 1;
    let error = config.validate().unwrap_err();
    let text = error.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("server.listen (HELPLINE_SERVER__LISTEN): `nowhere`")));
}

#[test]
fn relax_timers_may_be_zero() {
    let mut config = Config::default();
    config.routing.relax_topic_s = 0;
    config.routing.relax_language_s = 0;
    config.validate().unwrap();
}

#[test]
fn pages_rules_name_their_key() {
    let mut c = Config::default();
    c.pages.exit_url = "javascript:alert(1)".into();
    c.pages.helpline_number = "call us".into();
    c.pages.widget_hosts = vec!["https://www.example.org/path".into()];
    c.pages.outcomes = vec!["Has Spaces".into()];
    c.pages.tags = vec![String::new()];
    c.pages.canned_responses = vec![
        "Romanian: hello".into(),
        "no language here".into(),
        "en:  ".into(),
    ];
    c.pages.target_wait_s = 0;
    let problems = problems_of(&c);
    for key in [
        "pages.exit_url",
        "pages.helpline_number",
        "pages.widget_hosts",
        "pages.outcomes",
        "pages.tags",
        "pages.canned_responses",
        "pages.target_wait_s",
    ] {
        assert!(
            problems.iter().any(|(k, _)| k == key),
            "no problem for {key}: {problems:?}"
        );
    }
    let canned = problems
        .iter()
        .filter(|(k, _)| k == "pages.canned_responses")
        .count();
    assert_eq!(canned, 3, "{problems:?}");
}

#[test]
fn exit_urls_may_have_a_path_and_query_but_no_quotes() {
    let mut c = Config::default();
    c.pages.exit_url = "https://weather.example.org/today?city=chisinau".into();
    c.pages.outcomes = vec![String::new()];
    c.pages.outcomes.clear();
    c.pages.outcomes.push("done".into());
    c.validate().unwrap();
    c.pages.exit_url = "https://x.org/\"onload=".into();
    assert!(problems_of(&c).iter().any(|(k, _)| k == "pages.exit_url"));
    c.pages.exit_url = "https:///nohost".into();
    assert!(problems_of(&c).iter().any(|(k, _)| k == "pages.exit_url"));
}

#[test]
fn retention_never_keeps_transcripts_forever_and_names_its_key() {
    let mut c = Config::default();
    c.retention.transcripts_s = 0;
    c.retention.audit_s = 0;
    c.retention.sweep_every_s = 0;
    c.retention.batch = 0;
    let problems = problems_of(&c);
    for key in [
        "retention.transcripts_s",
        "retention.audit_s",
        "retention.sweep_every_s",
        "retention.batch",
    ] {
        assert!(
            problems.iter().any(|(k, _)| k == key),
            "no problem for {key}: {problems:?}"
        );
    }
    let mut c = Config::default();
    c.retention.transcripts_s = 10;
    c.retention.metadata_s = 5;
    assert!(problems_of(&c)
        .iter()
        .any(|(k, m)| k == "retention.metadata_s" && m.contains("shorter")));
    c.retention.metadata_s = 10;
    c.validate().unwrap();
}

#[test]
fn sms_forget_keywords_avoid_the_providers_reserved_words() {
    let mut c = Config::default();
    c.channels.sms.provider = Some(SmsProvider::Twilio);
    c.channels.sms.account_sid = Some("AC00000000000000000000000000000001".into());
    c.channels.sms.auth_token = Some(Secret::new("tok"));
    c.channels.sms.from = Some("+37322000116".into());
    c.validate().unwrap();
    c.channels.sms.forget_keywords = vec!["help".into(), "GATA".into()];
    let problems: Vec<_> = problems_of(&c)
        .into_iter()
        .filter(|(k, _)| k == "channels.sms.forget_keywords")
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
}
