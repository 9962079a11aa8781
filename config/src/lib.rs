//! The gateway's configuration: one typed struct per section, defaults in code (and, identically,
//! in `helpline.example.toml`), loading from a TOML file plus `HELPLINE_…__…` environment
//! overrides, and validation with messages a helpline's IT person understands.
//!
//! Where things are: the types are here; [`load`] and the file check in `load.rs`; the environment
//! and its overrides in `env.rs`; the shape of the config (every key and its kind) in `schema.rs`;
//! the rules in `validate.rs`; key bytes in `keys.rs`; what may be printed in `redact.rs`.
//!
//! This crate must never log or print a secret: secrets live in [`Secret`], whose `Debug` and
//! `Serialize` print `[redacted]`, and no error message quotes a secret key's value.

mod env;
mod error;
mod keys;
mod load;
mod redact;
mod schema;
mod secret;
mod validate;

#[cfg(test)]
mod tests;

pub use env::{Env, MapEnv, ProcessEnv, CONFIG_VAR, PREFIX};
pub use error::{ConfigError, EnvProblem, KeyProblem, Problem};
pub use keys::{master_key_file_name, write_master_key, VersionedKey};
pub use load::load;
pub use redact::redact_url;
pub use secret::Secret;

use serde::{Deserialize, Serialize};

/// The whole configuration. Every section has defaults, so an empty file is a valid start.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub redis: Redis,
    pub security: Security,
    pub routing: Routing,
    pub webchat: Webchat,
    pub limits: Limits,
    pub channels: Channels,
    pub pages: Pages,
    pub retention: Retention,
}

/// The HTTP listener and how the outside world reaches it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address the single HTTP listener binds (pages, APIs, WebSockets, webhooks, metrics).
    pub listen: String,
    /// Public base URL: used for webhook signature checks and as the allowed WebSocket `Origin`.
    pub public_url: String,
    /// Further origins allowed to open WebSockets (e.g. a helpline site embedding the widget).
    pub allowed_origins: Vec<String>,
    /// Seconds a graceful shutdown may take before remaining work is abandoned.
    pub shutdown_grace_s: u64,
    /// Seconds between WebSocket pings; a socket that answers nothing for two of them is closed,
    /// so a browser that vanished without closing (a lost network, a frozen laptop) is noticed.
    pub ws_ping_s: u64,
    /// Worker threads of the node's runtime; 0 gives one per core. One needs less CPU a message
    /// where the node shares a small machine with Redis (docs/benchmarks.md, step 8); more serve
    /// more messages a second than one core can.
    pub threads: usize,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            allowed_origins: Vec::new(),
            shutdown_grace_s: 10,
            ws_ping_s: 15,
            threads: 0,
        }
    }
}

/// Where the state lives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// `redis://` or `rediss://` URL; may carry an ACL user and password.
    pub url: Secret,
    /// Prefix of every key the gateway writes, so several helplines can share one Redis.
    pub key_prefix: String,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379"),
            key_prefix: "helpline:".into(),
        }
    }
}

/// Keys and staff sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    /// 32 random bytes, base64: the key-encryption key (version 1 unless `master_key_version`
    /// says).
    pub master_key: Option<Secret>,
    /// A file holding the master key (base64), instead of `master_key`.
    pub master_key_file: Option<String>,
    /// A directory of versioned master keys, `v<N>.key` (base64 each), instead of the single key
    /// above; the highest N is active. `helpline keys rotate` adds the next version here.
    pub master_keys_dir: Option<String>,
    /// 32 random bytes, base64: the HMAC key for pseudonyms; derived from the master key if absent
    /// (from version 1 when the keys are versioned, so pseudonyms survive rotation).
    pub pseudonym_key: Option<Secret>,
    /// A staff session ends after this many seconds without a request.
    pub session_idle_s: u64,
    /// A staff session ends this many seconds after login, whatever happens.
    pub session_max_s: u64,
    /// Failed logins allowed per username (and per source) in `login_window_s` before 429.
    pub login_attempts: u32,
    /// The window of the login rate limit, in seconds.
    pub login_window_s: u64,
    /// Roles that must give a TOTP code (RFC 6238) at login; an account of such a role can not log
    /// in until `helpline user totp` enrolled it. An account with TOTP enrolled always needs it.
    pub totp_roles: Vec<String>,
    /// Consecutive failed logins after which an account is locked until `helpline user unlock`
    /// (or `POST /api/users/{username}/unlock`). Stored in Redis: it survives restarts, all nodes.
    pub lockout_after: u32,
    /// Seconds a second supervisor has to approve a break-glass request, and then the requester
    /// has to fetch the reveal.
    pub break_glass_approve_s: u64,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            master_key: None,
            master_key_file: None,
            master_keys_dir: None,
            pseudonym_key: None,
            session_idle_s: 1800,
            session_max_s: 12 * 3600,
            login_attempts: 5,
            login_window_s: 300,
            totp_roles: ["supervisor", "admin", "auditor"]
                .map(String::from)
                .to_vec(),
            lockout_after: 10,
            break_glass_approve_s: 300,
        }
    }
}

/// How conversations reach counsellors.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    /// `offer` (the counsellor accepts) or `auto` (assigned at once).
    pub assignment: Assignment,
    /// Seconds an offer stands before it goes to the next counsellor.
    pub offer_timeout_s: u64,
    /// Offers a counsellor may let lapse in a row before being set `away`.
    pub lapses_before_away: u32,
    /// Seconds a counsellor's connection may be gone before their conversations are re-queued.
    pub agent_grace_s: u64,
    /// Concurrent conversations of a counsellor whose account sets none.
    pub default_capacity: u32,
    /// The most concurrent conversations any account may be given.
    pub max_capacity: u32,
    /// A conversation waiting this long rises one urgency class (once, and never to `critical`).
    pub aging_s: u64,
    /// After this many seconds waiting, the topic requirement is dropped. 0 = never.
    pub relax_topic_s: u64,
    /// After this many seconds waiting, the language requirement is dropped. 0 = never.
    pub relax_language_s: u64,
    /// Languages contacts may choose; each is also a counsellor skill.
    pub languages: Vec<String>,
    /// Topics contacts may choose; routed as skills (`topic:NAME`) where a counsellor lists them.
    pub topics: Vec<String>,
    /// Topics that are routing requirements (others are only recorded).
    pub routed_topics: Vec<String>,
    /// Seconds a waiting conversation may have no contact connected before it is `abandoned`.
    pub abandon_after_s: u64,
}

impl Default for Routing {
    fn default() -> Self {
        Self {
            assignment: Assignment::Offer,
            offer_timeout_s: 30,
            lapses_before_away: 2,
            agent_grace_s: 20,
            default_capacity: 2,
            max_capacity: 3,
            aging_s: 300,
            relax_topic_s: 120,
            relax_language_s: 600,
            languages: ["ro", "ru", "uk", "en"].map(String::from).to_vec(),
            topics: [
                "online-safety",
                "abuse",
                "family",
                "school",
                "feelings",
                "other",
            ]
            .map(String::from)
            .to_vec(),
            routed_topics: Vec::new(),
            abandon_after_s: 120,
        }
    }
}

/// `offer` or `auto` assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    Offer,
    Auto,
}

/// Limits of the contact's WebSocket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webchat {
    /// Most bytes of text in one contact message.
    pub max_message_bytes: usize,
    /// Refused frames in a row before the connection is closed.
    pub max_bad_frames: u32,
    /// Bytes of the per-connection read and write buffers (small: thousands of children sit idle).
    pub buffer_bytes: usize,
    /// Messages a contact may send per minute before `rate_limited`.
    pub messages_per_minute: u32,
}

impl Default for Webchat {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            max_bad_frames: 5,
            buffer_bytes: 1024,
            messages_per_minute: 30,
        }
    }
}

/// How long the helpline keeps what it holds, in seconds, and how often each node sweeps what is
/// past it. A closed conversation's transcript goes first (its data key is destroyed, then its
/// messages), its routing metadata later, audit entries last; the daily aggregates keep counts
/// and waits without any id.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Seconds a closed conversation's transcript (messages, data key, channel state) is kept.
    pub transcripts_s: u64,
    /// Seconds a closed conversation's metadata (state, times, urgency, outcome) is kept; at least
    /// `transcripts_s`.
    pub metadata_s: u64,
    /// Seconds an audit log entry is kept.
    pub audit_s: u64,
    /// Seconds between two retention sweeps of a node.
    pub sweep_every_s: u64,
    /// Conversations one sweep erases at most (the rest wait for the next), so a sweep is short.
    pub batch: u32,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY_S: u64 = 24 * 3600;
        Self {
            transcripts_s: 30 * DAY_S,
            metadata_s: 90 * DAY_S,
            audit_s: 365 * DAY_S,
            sweep_every_s: 60,
            batch: 100,
        }
    }
}

/// Caps on everything a peer controls (sockets, frames, HTTP requests, JSON), so one hostile or
/// broken client cannot starve the others. Counts are held in memory only, never in Redis.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// WebSockets one source address may hold open at once (schools and phone carriers share
    /// addresses, so not too low).
    pub sockets_per_source: u32,
    /// WebSockets this node holds open at once, contacts and staff together.
    pub max_sockets: u32,
    /// Proxies whose `X-Forwarded-For` is believed: IP addresses. From any other peer the header is
    /// ignored and the peer address is the source.
    pub trusted_proxies: Vec<String>,
    /// Frames a socket may send per second on average before it is slowed down.
    pub frames_per_second: u32,
    /// Frames a socket may send at once above that average.
    pub frame_burst: u32,
    /// Seconds a new contact socket may take to send `start` or `resume`.
    pub opening_timeout_s: u64,
    /// Bytes of an HTTP request's head (request line and headers).
    pub header_bytes: usize,
    /// Seconds a client may take to send a request's head (slowloris).
    pub header_timeout_s: u64,
    /// Bytes of a webhook's body.
    pub body_bytes: usize,
    /// Seconds a client may take to send a webhook's body.
    pub body_timeout_s: u64,
    /// Nesting of arrays and objects allowed in a frame or a webhook's JSON.
    pub json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sockets_per_source: 50,
            max_sockets: 10_000,
            trusted_proxies: Vec::new(),
            frames_per_second: 10,
            frame_burst: 20,
            opening_timeout_s: 30,
            header_bytes: 16_384,
            header_timeout_s: 10,
            body_bytes: 262_144,
            body_timeout_s: 10,
            json_depth: 16,
        }
    }
}

/// The channels besides web chat; each is off until configured.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    pub telegram: Telegram,
    pub sms: Sms,
}

/// The Telegram bot.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telegram {
    /// Bot token from @BotFather; the channel is off when absent.
    pub token: Option<Secret>,
    /// Bot API base URL.
    pub api_url: String,
    /// `polling` or `webhook`.
    pub mode: TelegramMode,
    /// Required in webhook mode: Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Option<Secret>,
}

impl Default for Telegram {
    fn default() -> Self {
        Self {
            token: None,
            api_url: "https://api.telegram.org".into(),
            mode: TelegramMode::Polling,
            webhook_secret: None,
        }
    }
}

/// How Telegram updates arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    Polling,
    Webhook,
}

/// SMS through a Twilio-format provider.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sms {
    /// `twilio` or `smpp`; the channel is off when absent.
    pub provider: Option<SmsProvider>,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    /// The sending number (E.164) or short code.
    pub from: Option<String>,
    /// REST base URL.
    pub api_url: String,
    /// The language of a conversation whose first text names none (`RO`, `RU`, `UA`, `EN`).
    pub default_language: String,
    /// Words that, sent alone, end the contact's conversation (compared without case). `STOP` also
    /// opts the number out at Twilio, which then refuses further messages to it.
    pub end_keywords: Vec<String>,
    /// Words that, sent alone, erase the contact's conversation at once (compared without case).
    /// Not the provider's reserved words (STOP, START, HELP, …), which the provider acts on itself.
    pub forget_keywords: Vec<String>,
    /// Delete inbound media (MMS pictures) at the provider, never having fetched it.
    pub delete_media: bool,
    /// SMPP: the carrier's SMSC (host name or address); `from` is the short code sent from.
    pub smpp_host: Option<String>,
    pub smpp_port: u16,
    /// SMPP: the account the carrier gave (bind_transceiver's `system_id` and `password`).
    pub smpp_system_id: Option<String>,
    pub smpp_password: Option<Secret>,
    /// SMPP: the `system_type` the carrier asks for, often empty.
    pub smpp_system_type: String,
    /// SMPP: type of number and numbering plan of `from` (3 and 0 for a short code, 1 and 1 for
    /// an international number).
    pub smpp_source_ton: u8,
    pub smpp_source_npi: u8,
    /// SMPP: seconds between `enquire_link` keep-alives; the link is dropped and bound again
    /// when two go unanswered.
    pub smpp_enquire_link_s: u64,
    /// SMPP: `submit_sm` sent and not yet answered at once (the carrier's window).
    pub smpp_window: u32,
}

impl Default for Sms {
    fn default() -> Self {
        Self {
            provider: None,
            account_sid: None,
            auth_token: None,
            from: None,
            api_url: "https://api.twilio.com".into(),
            default_language: "ro".into(),
            end_keywords: ["STOP", "END", "GATA", "СТОП", "КОНЕЦ", "КІНЕЦЬ"]
                .map(String::from)
                .to_vec(),
            forget_keywords: ["STERGE", "ȘTERGE", "УДАЛИТЬ", "ВИДАЛИТИ", "FORGET"]
                .map(String::from)
                .to_vec(),
            delete_media: true,
            smpp_host: None,
            smpp_port: 2775,
            smpp_system_id: None,
            smpp_password: None,
            smpp_system_type: String::new(),
            smpp_source_ton: 3,
            smpp_source_npi: 0,
            smpp_enquire_link_s: 30,
            smpp_window: 10,
        }
    }
}

/// SMS providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    Twilio,
    /// SMPP 3.4 straight to a carrier's SMSC.
    Smpp,
}

/// What the web pages show and offer: the contact page's quick exit and phone numbers, the sites
/// that may embed the chat widget, and the console's and dashboard's lists.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pages {
    /// Where the quick-exit button sends a contact: a neutral site that replaces the chat in the
    /// browser's history, so Back does not return to it.
    pub exit_url: String,
    /// The helpline's phone number, shown on the contact page (`tel:` link without spaces).
    pub helpline_number: String,
    /// The emergency number, shown on the contact page.
    pub emergency_number: String,
    /// Sites (origins) whose pages may embed the chat through `/widget.js` (CSP `frame-ancestors`).
    pub widget_hosts: Vec<String>,
    /// Outcomes a counsellor picks from when closing a conversation.
    pub outcomes: Vec<String>,
    /// Tags a counsellor may add when closing a conversation.
    pub tags: Vec<String>,
    /// Canned responses, each `"LANG: text"`; the console offers those in the conversation's
    /// language, editable before sending.
    pub canned_responses: Vec<String>,
    /// The wait the dashboard measures answers against ("answered within 60 s").
    pub target_wait_s: u64,
}

impl Default for Pages {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            exit_url: "https://www.google.com/".into(),
            helpline_number: "116 111".into(),
            emergency_number: "112".into(),
            widget_hosts: Vec::new(),
            outcomes: list(&[
                "listened",
                "advised",
                "referred",
                "emergency-services",
                "information",
                "silent",
                "inappropriate",
            ]),
            tags: list(&[
                "online-safety",
                "sextortion",
                "bullying",
                "abuse",
                "family",
                "school",
                "self-harm",
                "feelings",
                "repeat-contact",
            ]),
            canned_responses: list(&[
                "ro: Bună! Sunt aici să te ascult. Spune-mi ce s-a întâmplat.",
                "ro: Îți mulțumesc că ai avut încredere să ne scrii. Nu este vina ta.",
                "ro: Ești în siguranță chiar acum? Dacă ești în pericol, sună la 112.",
                "ro: Mai ești aici? Poți scrie oricând ești pregătit(ă).",
                "ru: Привет! Я здесь, чтобы выслушать тебя. Расскажи, что случилось.",
                "ru: Спасибо, что доверился(ась) и написал(а) нам. Ты ни в чём не виноват(а).",
                "ru: Ты сейчас в безопасности? Если тебе угрожает опасность, звони 112.",
                "ru: Ты ещё здесь? Можешь написать, когда будешь готов(а).",
                "uk: Привіт! Я тут, щоб вислухати тебе. Розкажи, що сталося.",
                "uk: Дякую, що довірився(-лася) і написав(-ла) нам. Ти ні в чому не винен(-на).",
                "uk: Ти зараз у безпеці? Якщо тобі загрожує небезпека, дзвони 112.",
                "uk: Ти ще тут? Можеш написати, коли будеш готовий(-а).",
                "en: Hi! I'm here to listen. Tell me what happened.",
                "en: Thank you for trusting us enough to write. It is not your fault.",
                "en: Are you safe right now? If you are in danger, call 112.",
                "en: Are you still there? You can write whenever you're ready.",
            ]),
            target_wait_s: 60,
        }
    }
}
