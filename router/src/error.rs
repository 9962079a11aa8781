//! The router's errors. Each says who failed (Redis, the caller, the vault) and whether a retry
//! can help; none carries message text, an address or a key.

/// Redis failed or answered unexpectedly.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis at {0} is unreachable ({1}); is redis-server running and is redis.url right?")]
    Unreachable(String, String),
    #[error(
        "Redis at {0} is older than 6.0 (it does not know HELLO); the gateway speaks RESP3 and \
         needs Redis 6 or newer: upgrade it"
    )]
    TooOld(String),
    #[error("Redis refused the request: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    pub(crate) fn connect(url: &str, err: &redis::RedisError) -> StoreError {
        let shown = helpline_config::redact_url(url);
        let why = err.to_string();
        if why.contains("unknown command 'HELLO'") {
            return StoreError::TooOld(shown);
        }
        StoreError::Unreachable(shown, why)
    }

    /// Whether trying again later may succeed (a lost connection, not a refused request).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unreachable(..) => true,
            StoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
            }
            StoreError::TooOld(_) | StoreError::Internal(_) => false,
        }
    }
}

/// Why the router refused or failed an operation. `code()` is the machine-readable code that
/// reaches clients in `error` frames and JSON errors.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the vault failed: {0}")]
    Vault(#[from] crate::vault::VaultError),
    #[error("no such conversation")]
    UnknownConversation,
    #[error("the conversation is over")]
    Ended,
    /// A refusal: its code (for clients) and a message that names the problem and the fix (what
    /// an operator reads on the command line).
    #[error("{1}")]
    Refused(&'static str, String),
    #[error("setup: {0}")]
    Setup(String),
}

impl RouterError {
    pub fn code(&self) -> &str {
        match self {
            RouterError::Store(_) => "unavailable",
            RouterError::Vault(_) => "internal",
            RouterError::UnknownConversation => "unknown_conversation",
            RouterError::Ended => "ended",
            RouterError::Refused(code, _) => code,
            RouterError::Setup(_) => "internal",
        }
    }

    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> RouterError {
        RouterError::Refused(code, message.into())
    }
}
