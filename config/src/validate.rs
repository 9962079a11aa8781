//! The rules a loaded configuration must meet before the gateway starts, checked all at once so an
//! operator fixes everything in one round.
//!
//! Each message names the key (the `Problem`'s `Display` adds the environment variable), quotes the
//! bad value only when the key is not a secret, and says what to write instead.

use std::net::SocketAddr;

use crate::error::{ConfigError, Problem};
use crate::keys::decode_key;
use crate::{
    Config, Limits, Pages, Redis, Retention, Routing, Security, Server, SmsProvider, TelegramMode,
    Webchat,
};

/// The most conversations a counsellor can follow well at once.
const CAPACITY_LIMIT: u32 = 10;

/// The most worker threads a node may ask for: far beyond any machine's cores it would only cost
/// memory.
const MAX_THREADS: usize = 256;

const KEY_FIX: &str =
    "must be 32 random bytes in base64, e.g. from `head -c32 /dev/urandom | base64`";

/// Accumulates problems; the rules below never stop at the first.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    /// Seconds that must be above 0; `zero_means` says what 0 would do.
    fn positive(&mut self, key: &str, value: u64, zero_means: &str) {
        if value == 0 {
            self.add(
                key,
                format!("is 0, which would {zero_means}; use a number of seconds above 0"),
            );
        }
    }
}

impl Config {
    /// Checks every rule and reports every broken one, one line each. `load` calls it; call it
    /// again after changing a loaded config by hand.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        server(&self.server, &mut problems);
        redis(&self.redis, &mut problems);
        security(&self.security, &mut problems);
        routing(&self.routing, &mut problems);
        webchat(&self.webchat, &mut problems);
        limits(&self.limits, &mut problems);
        telegram(self, &mut problems);
        sms(self, &mut problems);
        pages(self, &mut problems);
        retention(&self.retention, &mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.0))
        }
    }
}

fn server(server: &Server, p: &mut Problems) {
    if server.listen.parse::<SocketAddr>().is_err() {
        p.add(
            "server.listen",
            format!(
                "`{}` is not an IP address and port; write e.g. `127.0.0.1:8080`, or \
                 `0.0.0.0:8080` to listen on every interface",
                server.listen
            ),
        );
    }
    if let Err(why) = origin_url(&server.public_url) {
        p.add(
            "server.public_url",
            format!(
                "`{}` {why}; write the address children's browsers use, \
                 e.g. `https://chat.example.org`",
                server.public_url
            ),
        );
    }
    for origin in &server.allowed_origins {
        if let Err(why) = origin_url(origin) {
            p.add(
                "server.allowed_origins",
                format!("`{origin}` {why}; write a site's origin, e.g. `https://www.example.org`"),
            );
        }
    }
    if !(1..=300).contains(&server.ws_ping_s) {
        p.add(
            "server.ws_ping_s",
            format!(
                "{} is out of range; write 1 to 300 seconds (15 suits most networks)",
                server.ws_ping_s
            ),
        );
    }
    if server.threads > MAX_THREADS {
        p.add(
            "server.threads",
            format!(
                "{} is too many; write 0 for one per core, or 1 to {MAX_THREADS}",
                server.threads
            ),
        );
    }
}

/// An origin-like URL: `http(s)://host[:port]` with at most a trailing `/`. The `Err` completes a
/// sentence that starts with the URL.
fn origin_url(url: &str) -> Result<(), &'static str> {
    let authority = base_url(url)?;
    match authority.split_once('/') {
        Some((_, path)) if !path.is_empty() => Err("has a path (give only scheme, host and port)"),
        _ => Ok(()),
    }
}

/// An `http(s)://host…` URL; returns what follows the scheme.
fn base_url(url: &str) -> Result<&str, &'static str> {
    let lower = url.to_ascii_lowercase();
    let scheme_len = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return Err("does not start with http:// or https://");
    };
    let rest = url.get(scheme_len..).unwrap_or_default();
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host");
    }
    if url.chars().any(char::is_whitespace) {
        return Err("contains a space");
    }
    if url.contains(['?', '#']) {
        return Err("has a query or fragment");
    }
    if host.contains('@') {
        return Err("contains a user name or password");
    }
    let port = match host.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .and_then(|(_, after)| after.strip_prefix(':')),
        None => host.rsplit_once(':').map(|(_, port)| port),
    };
    if port.is_some_and(|port| port.parse::<u16>().is_err()) {
        return Err("has a port that is not a number from 0 to 65535");
    }
    Ok(rest)
}

fn redis(redis: &Redis, p: &mut Problems) {
    let url = redis.url.expose();
    let schemes = [
        "redis://",
        "rediss://",
        "redis+unix://",
        "unix://",
        "redis+sentinel://",
        "redis+cluster://",
    ];
    if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
        p.add(
            "redis.url",
            format!(
                "`{}` must start with redis://, rediss:// (TLS), redis+unix://, unix://, \
                 redis+sentinel:// or redis+cluster://, e.g. `redis://127.0.0.1:6379`",
                redis.url_redacted()
            ),
        );
    }
    // The routing scripts touch the queue, the counsellors and the conversation in one step, so
    // on a cluster every key must live in one slot: the prefix's hash tag puts them there.
    if url.starts_with("redis+cluster://") && !has_hash_tag(&redis.key_prefix) {
        p.add(
            "redis.key_prefix",
            format!(
                "`{}` has no hash tag, which a redis+cluster:// URL needs so that all keys share \
                 one slot; use e.g. `{{helpline}}:`",
                redis.key_prefix
            ),
        );
    }
    if redis.key_prefix.is_empty() {
        p.add(
            "redis.key_prefix",
            "is empty; use a short prefix such as `helpline:`",
        );
    } else if redis.key_prefix.chars().any(char::is_whitespace) {
        p.add(
            "redis.key_prefix",
            format!(
                "`{}` contains a space; use e.g. `helpline:`",
                redis.key_prefix
            ),
        );
    }
}

/// Whether `prefix` holds a Redis Cluster hash tag: a non-empty `{…}` (the first `{` counts).
fn has_hash_tag(prefix: &str) -> bool {
    prefix
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty())
}

fn security(security: &Security, p: &mut Problems) {
    if security.master_key.is_some() && security.master_key_file.is_some() {
        p.add(
            "security.master_key",
            "is set together with security.master_key_file; keep only one of them",
        );
    }
    if security
        .master_key
        .as_ref()
        .is_some_and(|key| decode_key(key.expose()).is_err())
    {
        p.add("security.master_key", KEY_FIX);
    }
    if security
        .master_key_file
        .as_deref()
        .is_some_and(str::is_empty)
    {
        p.add(
            "security.master_key_file",
            "is empty; give the path of a file holding the key, or remove the line",
        );
    }
    match security.master_keys_dir.as_deref() {
        Some("") => p.add(
            "security.master_keys_dir",
            "is empty; give the directory holding v1.key, v2.key, …, or remove the line",
        ),
        Some(_) if security.master_key.is_some() || security.master_key_file.is_some() => p.add(
            "security.master_keys_dir",
            "is set together with security.master_key or security.master_key_file; keep only \
             the directory, with the single key moved into it as v1.key",
        ),
        _ => {}
    }
    if security
        .pseudonym_key
        .as_ref()
        .is_some_and(|key| decode_key(key.expose()).is_err())
    {
        p.add("security.pseudonym_key", KEY_FIX);
    }
    p.positive(
        "security.session_idle_s",
        security.session_idle_s,
        "log staff out at once",
    );
    p.positive(
        "security.session_max_s",
        security.session_max_s,
        "log staff out at once",
    );
    p.positive(
        "security.login_window_s",
        security.login_window_s,
        "make the login limit useless",
    );
    if security.login_attempts == 0 {
        p.add(
            "security.login_attempts",
            "is 0, which would refuse every login; use e.g. 5",
        );
    }
    for role in &security.totp_roles {
        if !["counsellor", "supervisor", "admin", "auditor"].contains(&role.as_str()) {
            p.add(
                "security.totp_roles",
                format!(
                    "names {role:?}, which is not a role; use counsellor, supervisor, admin or auditor"
                ),
            );
        }
    }
    if security.lockout_after == 0 {
        p.add(
            "security.lockout_after",
            "is 0, which would lock every account at its first failed login; use e.g. 10",
        );
    }
    p.positive(
        "security.break_glass_approve_s",
        security.break_glass_approve_s,
        "expire every break-glass request before anyone could approve it",
    );
}

/// The longest span of time a routing setting may name, in seconds: ten years.
const MAX_SPAN_S: u64 = 315_360_000;

fn routing(routing: &Routing, p: &mut Problems) {
    p.positive(
        "routing.offer_timeout_s",
        routing.offer_timeout_s,
        "withdraw every offer at once",
    );
    p.positive(
        "routing.agent_grace_s",
        routing.agent_grace_s,
        "re-queue on every network blip",
    );
    p.positive(
        "routing.abandon_after_s",
        routing.abandon_after_s,
        "drop a child who reloads the page",
    );
    // The scripts work in milliseconds: a longer span would overflow there.
    let spans = [
        ("routing.offer_timeout_s", routing.offer_timeout_s),
        ("routing.agent_grace_s", routing.agent_grace_s),
        ("routing.aging_s", routing.aging_s),
        ("routing.relax_topic_s", routing.relax_topic_s),
        ("routing.relax_language_s", routing.relax_language_s),
        ("routing.abandon_after_s", routing.abandon_after_s),
    ];
    for (key, value) in spans {
        if value > MAX_SPAN_S {
            p.add(
                key,
                format!("is {value}; use at most {MAX_SPAN_S} seconds (ten years)"),
            );
        }
    }
    capacity(routing, p);
    if routing.languages.is_empty() {
        p.add(
            "routing.languages",
            "is empty; list at least one language code, e.g. [\"ro\"]",
        );
    }
    for language in &routing.languages {
        let ok =
            (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
        if !ok {
            p.add(
                "routing.languages",
                format!(
                    "`{language}` is not a language code; use 2 or 3 lower-case letters, e.g. `ro`"
                ),
            );
        }
    }
    for topic in &routing.topics {
        let ok = !topic.is_empty()
            && topic
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            p.add(
                "routing.topics",
                format!(
                    "`{topic}` is not a topic name; use lower-case letters, digits and `-`, \
                     e.g. `online-safety`"
                ),
            );
        }
    }
    for topic in &routing.routed_topics {
        if !routing.topics.contains(topic) {
            p.add(
                "routing.routed_topics",
                format!("`{topic}` is not in routing.topics; add it there or remove it here"),
            );
        }
    }
}

fn capacity(routing: &Routing, p: &mut Problems) {
    if routing.default_capacity == 0 {
        p.add(
            "routing.default_capacity",
            "is 0, which would give no one any conversation; use e.g. 2",
        );
    }
    if routing.max_capacity > CAPACITY_LIMIT {
        p.add(
            "routing.max_capacity",
            format!(
                "is {}; no one can follow more than {CAPACITY_LIMIT} conversations well, \
                 use at most {CAPACITY_LIMIT}",
                routing.max_capacity
            ),
        );
    }
    if routing.default_capacity > routing.max_capacity {
        p.add(
            "routing.default_capacity",
            format!(
                "is {}, above routing.max_capacity ({}); lower it or raise max_capacity",
                routing.default_capacity, routing.max_capacity
            ),
        );
    }
}

fn webchat(webchat: &Webchat, p: &mut Problems) {
    if !(64..=65536).contains(&webchat.max_message_bytes) {
        p.add(
            "webchat.max_message_bytes",
            format!(
                "is {}; use a number from 64 to 65536, e.g. 4096",
                webchat.max_message_bytes
            ),
        );
    }
    if !(1024..=1_048_576).contains(&webchat.buffer_bytes) {
        p.add(
            "webchat.buffer_bytes",
            format!(
                "is {}; use a number from 1024 to 1048576, e.g. 8192",
                webchat.buffer_bytes
            ),
        );
    }
    if webchat.messages_per_minute == 0 {
        p.add(
            "webchat.messages_per_minute",
            "is 0, which would refuse every message; use e.g. 30",
        );
    }
}

fn retention(r: &Retention, p: &mut Problems) {
    if r.transcripts_s == 0 {
        p.add(
            "retention.transcripts_s",
            "is 0; transcripts are never kept forever: use the seconds a closed conversation's \
             messages are kept, e.g. 2592000 (30 days)",
        );
    }
    if r.metadata_s < r.transcripts_s {
        p.add(
            "retention.metadata_s",
            format!(
                "is {}, shorter than retention.transcripts_s ({}); metadata is kept at least as \
                 long as the transcript, e.g. 7776000 (90 days)",
                r.metadata_s, r.transcripts_s
            ),
        );
    }
    if r.audit_s == 0 {
        p.add(
            "retention.audit_s",
            "is 0; use the seconds an audit entry is kept, e.g. 31536000 (365 days)",
        );
    }
    if !(1..=86_400).contains(&r.sweep_every_s) {
        p.add(
            "retention.sweep_every_s",
            format!(
                "is {}; use a number of seconds from 1 to 86400, e.g. 60",
                r.sweep_every_s
            ),
        );
    }
    if !(1..=10_000).contains(&r.batch) {
        p.add(
            "retention.batch",
            format!("is {}; use a number from 1 to 10000, e.g. 100", r.batch),
        );
    }
}

fn limits(limits: &Limits, p: &mut Problems) {
    let counts = [
        (
            "limits.sockets_per_source",
            limits.sockets_per_source,
            "e.g. 50",
        ),
        ("limits.max_sockets", limits.max_sockets, "e.g. 10000"),
        (
            "limits.frames_per_second",
            limits.frames_per_second,
            "e.g. 10",
        ),
        ("limits.frame_burst", limits.frame_burst, "e.g. 20"),
    ];
    for (key, value, example) in counts {
        if value == 0 {
            p.add(
                key,
                format!("is 0, which would refuse everyone; use {example}"),
            );
        }
    }
    if limits.sockets_per_source > limits.max_sockets {
        p.add(
            "limits.sockets_per_source",
            format!(
                "is {}, above limits.max_sockets ({}); lower it or raise max_sockets",
                limits.sockets_per_source, limits.max_sockets
            ),
        );
    }
    for proxy in &limits.trusted_proxies {
        if proxy.parse::<std::net::IpAddr>().is_err() {
            p.add(
                "limits.trusted_proxies",
                format!("`{proxy}` is not an IP address; write e.g. `10.0.0.2` or `::1`"),
            );
        }
    }
    p.positive(
        "limits.opening_timeout_s",
        limits.opening_timeout_s,
        "close every chat before it starts",
    );
    p.positive(
        "limits.header_timeout_s",
        limits.header_timeout_s,
        "refuse every request",
    );
    p.positive(
        "limits.body_timeout_s",
        limits.body_timeout_s,
        "refuse every webhook",
    );
    // hyper cannot read a request head in a buffer smaller than 8 KiB.
    if !(8192..=1_048_576).contains(&limits.header_bytes) {
        p.add(
            "limits.header_bytes",
            format!(
                "is {}; use a number from 8192 to 1048576, e.g. 16384",
                limits.header_bytes
            ),
        );
    }
    if !(4096..=16_777_216).contains(&limits.body_bytes) {
        p.add(
            "limits.body_bytes",
            format!(
                "is {}; use a number from 4096 to 16777216, e.g. 262144 (Telegram updates \
                 and SMS webhooks are far smaller)",
                limits.body_bytes
            ),
        );
    }
    if !(4..=128).contains(&limits.json_depth) {
        p.add(
            "limits.json_depth",
            format!(
                "is {}; use a number from 4 to 128, e.g. 16 (frames nest 3 deep)",
                limits.json_depth
            ),
        );
    }
}

fn telegram(config: &Config, p: &mut Problems) {
    let telegram = &config.channels.telegram;
    if let Err(why) = base_url(&telegram.api_url) {
        p.add(
            "channels.telegram.api_url",
            format!(
                "`{}` {why}; the default is `https://api.telegram.org`",
                telegram.api_url
            ),
        );
    }
    if telegram
        .token
        .as_ref()
        .is_some_and(|t| t.expose().is_empty())
    {
        p.add(
            "channels.telegram.token",
            "is empty; set the token from @BotFather, or remove it to turn Telegram off",
        );
    }
    if let Some(secret) = &telegram.webhook_secret {
        let secret = secret.expose();
        let ok = (1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            p.add(
                "channels.telegram.webhook_secret",
                "must be 1 to 256 characters of A-Z, a-z, 0-9, `_` and `-` (Telegram's rule), \
                 e.g. from `head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='`",
            );
        }
    }
    if telegram.mode == TelegramMode::Webhook {
        if telegram.token.is_none() {
            p.add(
                "channels.telegram.token",
                "is required in webhook mode; set the bot token from @BotFather",
            );
        }
        if telegram.webhook_secret.is_none() {
            p.add(
                "channels.telegram.webhook_secret",
                "is required in webhook mode; set one, e.g. from \
                 `head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='`",
            );
        }
    }
}

fn sms(config: &Config, p: &mut Problems) {
    let sms = &config.channels.sms;
    if let Err(why) = base_url(&sms.api_url) {
        p.add(
            "channels.sms.api_url",
            format!(
                "`{}` {why}; the default is `https://api.twilio.com`",
                sms.api_url
            ),
        );
    }
    let Some(provider) = sms.provider else {
        return;
    };
    let languages = &config.routing.languages;
    if !languages.is_empty() && !languages.contains(&sms.default_language) {
        p.add(
            "channels.sms.default_language",
            format!(
                "`{}` is not one of routing.languages ({})",
                sms.default_language,
                config.routing.languages.join(", ")
            ),
        );
    }
    const RESERVED: [&str; 9] = [
        "STOP",
        "START",
        "HELP",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "STOPALL",
        "INFO",
    ];
    for word in &sms.forget_keywords {
        let upper = word.trim().to_uppercase();
        if upper.is_empty() || RESERVED.contains(&upper.as_str()) {
            p.add(
                "channels.sms.forget_keywords",
                format!(
                    "holds \"{}\", which is empty or a word SMS providers reserve (STOP, START, \
                     HELP, …); use words such as \"STERGE\", \"FORGET\"",
                    word.trim()
                ),
            );
        }
        if sms
            .end_keywords
            .iter()
            .any(|e| e.trim().to_uppercase() == upper)
        {
            p.add(
                "channels.sms.forget_keywords",
                format!(
                    "\"{}\" is also an end keyword; a word may do one thing",
                    word.trim()
                ),
            );
        }
    }
    if sms.end_keywords.iter().any(|k| k.trim().is_empty()) {
        p.add(
            "channels.sms.end_keywords",
            "holds an empty word; list words such as \"STOP\", \"END\"",
        );
    }
    let missing = |value: Option<&str>| value.is_none_or(str::is_empty);
    if provider == SmsProvider::Smpp {
        return smpp(sms, p);
    }
    let required = [
        (
            "channels.sms.account_sid",
            missing(sms.account_sid.as_deref()),
            "the Account SID",
        ),
        (
            "channels.sms.auth_token",
            missing(sms.auth_token.as_ref().map(|t| t.expose())),
            "the Auth Token",
        ),
        (
            "channels.sms.from",
            missing(sms.from.as_deref()),
            "the sending number (e.g. `+37360000000`)",
        ),
    ];
    for (key, is_missing, what) in required {
        if is_missing {
            let message = format!(
                "is required when channels.sms.provider is `twilio`; \
                 set {what} from the provider's console"
            );
            p.add(key, message);
        }
    }
}

/// The SMPP keys, when `channels.sms.provider` is `smpp`.
fn smpp(sms: &crate::Sms, p: &mut Problems) {
    let missing = |value: Option<&str>| value.is_none_or(|v| v.trim().is_empty());
    let required = [
        (
            "channels.sms.smpp_host",
            missing(sms.smpp_host.as_deref()),
            "the SMSC's host name or address",
        ),
        (
            "channels.sms.smpp_system_id",
            missing(sms.smpp_system_id.as_deref()),
            "the system_id",
        ),
        (
            "channels.sms.smpp_password",
            missing(sms.smpp_password.as_ref().map(|t| t.expose())),
            "the password",
        ),
        (
            "channels.sms.from",
            missing(sms.from.as_deref()),
            "the short code or number texts come to (e.g. `116111`)",
        ),
    ];
    for (key, is_missing, what) in required {
        if is_missing {
            let message = format!(
                "is required when channels.sms.provider is `smpp`; \
                 set {what} from the carrier's SMPP account details"
            );
            p.add(key, message);
        }
    }
    // SMPP 3.4 limits (section 4.1): system_id 15 octets, password 8, system_type 12, address 20.
    let limits = [
        (
            "channels.sms.smpp_system_id",
            sms.smpp_system_id.as_deref(),
            15,
        ),
        (
            "channels.sms.smpp_password",
            sms.smpp_password.as_ref().map(|t| t.expose()),
            8,
        ),
        (
            "channels.sms.smpp_system_type",
            Some(&sms.smpp_system_type),
            12,
        ),
        ("channels.sms.from", sms.from.as_deref(), 20),
    ];
    for (key, value, max) in limits {
        if value.is_some_and(|v| v.len() > max || v.contains('\0')) {
            p.add(
                key,
                format!("is longer than SMPP allows ({max} characters)"),
            );
        }
    }
    if sms.smpp_port == 0 {
        p.add("channels.sms.smpp_port", "must be a port, e.g. 2775");
    }
    if !(5..=600).contains(&sms.smpp_enquire_link_s) {
        p.add(
            "channels.sms.smpp_enquire_link_s",
            "must be between 5 and 600 seconds; 30 suits most carriers",
        );
    }
    if !(1..=100).contains(&sms.smpp_window) {
        p.add(
            "channels.sms.smpp_window",
            "must be between 1 and 100; ask the carrier, 10 is common",
        );
    }
}

/// The close outcomes and tags: the router stores them as short tokens.
fn is_token(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn pages(config: &Config, p: &mut Problems) {
    let pages: &Pages = &config.pages;
    if let Err(why) = exit_url(&pages.exit_url) {
        p.add(
            "pages.exit_url",
            format!(
                "`{}` {why}; use a neutral site that loads fast, e.g. `https://www.google.com/`",
                pages.exit_url
            ),
        );
    }
    for (key, number) in [
        ("pages.helpline_number", &pages.helpline_number),
        ("pages.emergency_number", &pages.emergency_number),
    ] {
        let ok = (1..=20).contains(&number.len())
            && number.bytes().any(|b| b.is_ascii_digit())
            && number
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b' ' || b == b'+' || b == b'-');
        if !ok {
            p.add(
                key,
                format!(
                    "`{number}` is not a phone number; use digits, spaces, + and -, e.g. `116 111`"
                ),
            );
        }
    }
    for host in &pages.widget_hosts {
        if let Err(why) = origin_url(host) {
            p.add(
                "pages.widget_hosts",
                format!("`{host}` {why}; write a site's origin, e.g. `https://www.example.org`"),
            );
        }
    }
    if pages.outcomes.is_empty() {
        p.add(
            "pages.outcomes",
            "is empty; counsellors need at least one outcome to close a conversation, e.g. [\"listened\"]",
        );
    }
    for (key, list) in [
        ("pages.outcomes", &pages.outcomes),
        ("pages.tags", &pages.tags),
    ] {
        for item in list.iter().filter(|i| !is_token(i)) {
            p.add(
                key,
                format!(
                    "`{item}` is not a short word; use 1 to 40 lower-case letters, digits, `-` \
                     and `_`, e.g. `online-safety`"
                ),
            );
        }
    }
    canned(config, p);
    p.positive(
        "pages.target_wait_s",
        pages.target_wait_s,
        "count every answer as late",
    );
}

/// An `http(s)://host/…` address a browser can be sent to: unlike an origin it may have a path and
/// a query.
fn exit_url(url: &str) -> Result<(), &'static str> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("does not start with https:// or http://")?;
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .is_empty()
    {
        return Err("has no host");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`\\".contains(c))
    {
        return Err("contains a space, a quote or an angle bracket");
    }
    Ok(())
}

/// Canned responses: `"LANG: text"`. Those in a language not in `routing.languages` are simply
/// not offered, so narrowing the languages does not force editing this list too.
fn canned(config: &Config, p: &mut Problems) {
    let max = config.webchat.max_message_bytes;
    for item in &config.pages.canned_responses {
        let short: String = item.chars().take(30).collect();
        let Some((lang, text)) = item.split_once(':') else {
            p.add(
                "pages.canned_responses",
                format!("`{short}…` has no language; write \"LANG: text\", e.g. \"ro: Bună!\""),
            );
            continue;
        };
        let lang = lang.trim();
        if !((2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase())) {
            p.add(
                "pages.canned_responses",
                format!(
                    "`{short}…` starts with `{lang}`, which is not a language code; write \
                     \"LANG: text\" with LANG as in routing.languages, e.g. \"ro: Bună!\""
                ),
            );
        }
        // A bad max_message_bytes is reported under its own key; don't repeat it per response.
        let too_long = (64..=65536).contains(&max) && text.trim().len() > max;
        if text.trim().is_empty() || too_long {
            p.add(
                "pages.canned_responses",
                format!(
                    "`{short}…` must have 1 to {max} bytes of text (webchat.max_message_bytes)"
                ),
            );
        }
    }
}
