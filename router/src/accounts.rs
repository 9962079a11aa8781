//! Staff accounts (Argon2id password hashes) and staff sessions (random tokens; Redis keeps only
//! their SHA-256, with an idle and an absolute expiry).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use helpline_config::Config;
use serde::Serialize;

use crate::conversation::{now_ms, random_token, token_hash};
use crate::error::RouterError;
use crate::store::{Store, UserRecord};

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Counsellor,
    Supervisor,
    Admin,
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "counsellor" => Some(Role::Counsellor),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Counsellor => "counsellor",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// Whether this role answers conversations (and so has a routing status).
    pub fn answers(self) -> bool {
        matches!(self, Role::Counsellor | Role::Supervisor)
    }
}

/// A staff account as the rest of the gateway sees it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub username: String,
    pub role: Role,
    pub display_name: String,
    pub skills: Vec<String>,
    pub capacity: u32,
}

/// A new account's details.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub role: Role,
    pub skills: Vec<String>,
    pub capacity: Option<u32>,
    pub display_name: Option<String>,
}

/// Accounts and sessions over the store.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    default_capacity: u32,
    max_capacity: u32,
    idle_s: u64,
    max_s: u64,
    languages: Vec<String>,
    topics: Vec<String>,
}

fn account_of(u: UserRecord) -> Option<Account> {
    Some(Account {
        role: Role::parse(&u.role)?,
        display_name: u.display_name,
        skills: u.skills,
        capacity: u.capacity,
        username: u.username,
    })
}

/// A username: 1–64 characters of a-z, 0-9, `.`, `_`, `-` (it appears in keys and frames).
pub fn valid_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Accounts {
    pub fn new(store: Store, config: &Config) -> Accounts {
        Accounts {
            store,
            default_capacity: config.routing.default_capacity,
            max_capacity: config.routing.max_capacity,
            idle_s: config.security.session_idle_s,
            max_s: config.security.session_max_s,
            languages: config.routing.languages.clone(),
            topics: config.routing.topics.clone(),
        }
    }

    /// Creates an account with an Argon2id hash of `password`.
    pub async fn add(&self, new: NewAccount, password: &str) -> Result<Account, RouterError> {
        if !valid_username(&new.username) {
            return Err(RouterError::refused(
                "bad_username",
                "a username is 1-64 characters of a-z, 0-9, '.', '_' and '-'",
            ));
        }
        if password.chars().count() < 10 {
            return Err(RouterError::refused(
                "weak_password",
                "a password needs at least 10 characters",
            ));
        }
        if let Some(bad) = new
            .skills
            .iter()
            .find(|s| !self.languages.contains(s) && !self.topics.contains(s))
        {
            return Err(RouterError::refused(
                "bad_skill",
                format!("unknown skill {bad:?}: skills are the configured languages ({}) and topics ({})", self.languages.join(","), self.topics.join(",")),
            ));
        }
        let capacity = new.capacity.unwrap_or(self.default_capacity);
        if capacity == 0 || capacity > self.max_capacity {
            return Err(RouterError::refused(
                "bad_capacity",
                format!(
                    "capacity must be 1 to {} (routing.max_capacity)",
                    self.max_capacity
                ),
            ));
        }
        let hash = hash_password(password.to_owned()).await?;
        let record = UserRecord {
            display_name: new
                .display_name
                .clone()
                .unwrap_or_else(|| new.username.clone()),
            username: new.username.clone(),
            role: new.role.as_str().to_owned(),
            hash,
            skills: new.skills,
            capacity,
            disabled: false,
        };
        if !self.store.add_user(&record).await? {
            return Err(RouterError::refused(
                "exists",
                format!("a user named {:?} already exists", new.username),
            ));
        }
        account_of(record).ok_or(RouterError::Setup("role".into()))
    }

    /// Every account with whether it is disabled, sorted by username.
    pub async fn list(&self) -> Result<Vec<(Account, bool)>, RouterError> {
        let mut out = Vec::new();
        for name in self.store.usernames().await? {
            if let Some(u) = self.store.user(&name).await? {
                let disabled = u.disabled;
                if let Some(a) = account_of(u) {
                    out.push((a, disabled));
                }
            }
        }
        Ok(out)
    }

    pub async fn disable(&self, username: &str) -> Result<(), RouterError> {
        if self.store.set_user_disabled(username, true).await? {
            Ok(())
        } else {
            Err(RouterError::refused(
                "unknown_user",
                format!("no user named {username:?}"),
            ))
        }
    }

    /// Checks a password; returns a new session token and the account, or `None` on bad
    /// credentials (unknown user, wrong password, disabled: all look the same to the caller).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<(String, Account)>, RouterError> {
        let user = if valid_username(username) {
            self.store.user(username).await?
        } else {
            None
        };
        // Verify against a dummy hash for unknown users too, so timing does not reveal who exists.
        let hash = user
            .as_ref()
            .map(|u| u.hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let ok = verify_password(hash, password.to_owned()).await;
        let Some(user) = user.filter(|u| ok && !u.disabled) else {
            return Ok(None);
        };
        let Some(account) = account_of(user) else {
            return Ok(None);
        };
        let token = random_token();
        self.store
            .put_session(
                &token_hash(&token),
                &account.username,
                now_ms(),
                self.idle_s,
            )
            .await?;
        Ok(Some((token, account)))
    }

    /// The account behind a session token, if the session is alive and the account enabled.
    pub async fn session(&self, token: &str) -> Result<Option<Account>, RouterError> {
        let hash = token_hash(token);
        let Some(session) = self.store.touch_session(&hash, self.idle_s).await? else {
            return Ok(None);
        };
        let max_ms = i64::try_from(self.max_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_ms() - session.created_ms > max_ms {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let user = self.store.user(&session.username).await?;
        Ok(user.filter(|u| !u.disabled).and_then(account_of))
    }

    pub async fn logout(&self, token: &str) -> Result<(), RouterError> {
        Ok(self.store.delete_session(&token_hash(token)).await?)
    }
}

/// An Argon2id hash of a random password nobody knows, for constant-time answers to unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg";

async fn hash_password(password: String) -> Result<String, RouterError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| RouterError::Setup(format!("password salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| RouterError::Setup(format!("password hash: {e}")))
    })
    .await
    .map_err(|e| RouterError::Setup(format!("password hash task: {e}")))?
}

async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}
