//! Staff accounts (Argon2id password hashes), their second factor (TOTP, the secret sealed with
//! the vault), lock-out after repeated failures, and staff sessions (random tokens; Redis keeps
//! only their SHA-256, with an idle and an absolute expiry). Every login, failed login and account
//! change is written to the audit log, never with a password, a code or a source address.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use helpline_config::Config;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{AuditAction, AuditLog, CLI_ACTOR, UNKNOWN_ACTOR};
use crate::conversation::{now_ms, random_token, token_hash};
use crate::error::RouterError;
use crate::store::{Store, UserRecord};
use crate::totp;
use crate::vault::{Purpose, Vault, VaultError};

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

/// What a login attempt came to. Only `Session` logs in; the gateway turns the others into 401 or
/// 423 answers that say what is missing.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in: the new session's token and the account.
    Session(String, Account),
    /// Unknown user, wrong password or disabled account: all look the same to the caller.
    BadCredentials,
    /// The password was right, but the account needs a one-time code and none came.
    TotpRequired,
    /// The one-time code was wrong, or was accepted before (`replayed`).
    BadTotp { replayed: bool },
    /// The account's role needs a one-time code and none is enrolled yet.
    TotpNotEnrolled,
    /// Locked after `security.lockout_after` failed logins in a row, until unlocked.
    Locked,
}

/// Accounts and sessions over the store.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    audit: AuditLog,
    /// Seals TOTP secrets; only the commands that need no TOTP run without it.
    vault: Option<Vault>,
    totp_roles: Vec<Role>,
    lockout_after: u32,
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
            audit: AuditLog::new(store.clone()),
            store,
            vault: None,
            totp_roles: config
                .security
                .totp_roles
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
            lockout_after: config.security.lockout_after,
            default_capacity: config.routing.default_capacity,
            max_capacity: config.routing.max_capacity,
            idle_s: config.security.session_idle_s,
            max_s: config.security.session_max_s,
            languages: config.routing.languages.clone(),
            topics: config.routing.topics.clone(),
        }
    }

    /// The same accounts with the vault that seals and opens TOTP secrets.
    pub fn with_vault(mut self, vault: Vault) -> Accounts {
        self.vault = Some(vault);
        self
    }

    /// Whether accounts of `role` must give a one-time code (`security.totp_roles`).
    pub fn totp_required(&self, role: Role) -> bool {
        self.totp_roles.contains(&role)
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
            totp: String::new(),
            totp_key: String::new(),
            locked: false,
        };
        if !self.store.add_user(&record).await? {
            return Err(RouterError::refused(
                "exists",
                format!("a user named {:?} already exists", new.username),
            ));
        }
        let account = account_of(record).ok_or(RouterError::Setup("role".into()))?;
        let why = format!("role {}", account.role.as_str());
        self.record(CLI_ACTOR, AuditAction::UserAdd, &why, &account.username)
            .await?;
        Ok(account)
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

    /// Disables an account (its sessions end at their next request); `actor` is who asked.
    pub async fn disable(&self, username: &str, actor: &str) -> Result<(), RouterError> {
        if !self.store.set_user_disabled(username, true).await? {
            return Err(unknown_user(username));
        }
        self.record(actor, AuditAction::UserDisable, "disabled", username)
            .await
    }

    /// Unlocks an account locked by failed logins; `actor` is who asked.
    pub async fn unlock(&self, username: &str, actor: &str) -> Result<(), RouterError> {
        if !self.store.unlock_user(username).await? {
            return Err(unknown_user(username));
        }
        self.record(actor, AuditAction::UserUnlock, "unlocked", username)
            .await
    }

    /// Enrols (or replaces) an account's TOTP secret and returns it, for the one time it is
    /// shown; `actor` is who asked. The secret is stored only sealed with a data key of its own,
    /// wrapped under the master key.
    pub async fn enrol_totp(
        &self,
        username: &str,
        actor: &str,
    ) -> Result<Zeroizing<Vec<u8>>, RouterError> {
        let vault = self.vault()?;
        if self.store.user(username).await?.is_none() {
            return Err(unknown_user(username));
        }
        let secret = Zeroizing::new(rand::random::<[u8; totp::SECRET_LEN]>().to_vec());
        let context = totp_context(username);
        let (key, wrapped) = vault.new_data_key(&context)?;
        let sealed = key.seal(&context, Purpose::Totp, 0, &secret)?;
        let stored = self
            .store
            .set_user_totp(username, &B64.encode(sealed), &B64.encode(wrapped))
            .await?;
        if !stored {
            return Err(unknown_user(username));
        }
        self.record(actor, AuditAction::UserTotpEnrol, "enrolled", username)
            .await?;
        Ok(secret)
    }

    /// Checks a password and, where needed, a one-time code; on success starts a session. A
    /// failure counts towards the account's lock-out; every attempt is audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<LoginOutcome, RouterError> {
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
        let ok = verify_password(hash.clone(), password.to_owned()).await;
        let Some(user) = user else {
            // Whatever was typed as the username is not kept: it may be a password.
            let log = AuditAction::LoginFailed;
            self.record(UNKNOWN_ACTOR, log, "no such account", "")
                .await?;
            return Ok(LoginOutcome::BadCredentials);
        };
        let name = user.username.clone();
        if user.locked {
            let log = AuditAction::LoginFailed;
            self.record(&name, log, "account locked", "").await?;
            return Ok(LoginOutcome::Locked);
        }
        if !ok || user.disabled {
            let why = if ok {
                "account disabled"
            } else {
                "wrong password"
            };
            self.failed(&name, why).await?;
            return Ok(LoginOutcome::BadCredentials);
        }
        let Some(account) = account_of(user.clone()) else {
            return Ok(LoginOutcome::BadCredentials);
        };
        let step = match self.second_factor(&user, account.role, code).await? {
            Ok(step) => step,
            Err(refused) => return Ok(refused),
        };
        if !self.store.login_succeeded(&name, step).await? {
            self.failed(&name, "one-time code used before").await?;
            return Ok(LoginOutcome::BadTotp { replayed: true });
        }
        if needs_rehash(&hash) {
            let stronger = hash_password(password.to_owned()).await?;
            self.store.set_user_hash(&name, &stronger).await?;
        }
        let token = random_token();
        self.store
            .put_session(&token_hash(&token), &name, now_ms(), self.idle_s)
            .await?;
        self.record(&name, AuditAction::Login, "", "").await?;
        Ok(LoginOutcome::Session(token, account))
    }

    /// The TOTP time step a login proves (`None`: the account needs no code), or the outcome that
    /// refuses it. Refusals of a wrong code count as failures; a missing one does not (the page
    /// asks for it after the password).
    async fn second_factor(
        &self,
        user: &UserRecord,
        role: Role,
        code: Option<&str>,
    ) -> Result<Result<Option<u64>, LoginOutcome>, RouterError> {
        let name = user.username.as_str();
        if user.totp.is_empty() {
            if !self.totp_required(role) {
                return Ok(Ok(None));
            }
            let log = AuditAction::LoginFailed;
            self.record(name, log, "no one-time code enrolled", "")
                .await?;
            return Ok(Err(LoginOutcome::TotpNotEnrolled));
        }
        let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
            return Ok(Err(LoginOutcome::TotpRequired));
        };
        let secret = self.totp_secret(user)?;
        match totp::matching_step(&secret, code, now_ms() / 1000) {
            Some(step) => Ok(Ok(Some(step))),
            None => {
                self.failed(name, "wrong one-time code").await?;
                Ok(Err(LoginOutcome::BadTotp { replayed: false }))
            }
        }
    }

    /// Counts a failed login of an existing account, locking it at the limit; both audited.
    async fn failed(&self, username: &str, why: &str) -> Result<(), RouterError> {
        let locked = self
            .store
            .login_failed(username, self.lockout_after)
            .await?;
        self.record(username, AuditAction::LoginFailed, why, "")
            .await?;
        if locked == Some(true) {
            let why = format!("{} failed logins in a row", self.lockout_after);
            self.record(username, AuditAction::UserLock, &why, username)
                .await?;
        }
        Ok(())
    }

    /// An enrolled account's TOTP secret, opened with its data key.
    fn totp_secret(&self, user: &UserRecord) -> Result<Zeroizing<Vec<u8>>, RouterError> {
        let vault = self.vault()?;
        let decode = |s: &str| B64.decode(s).map_err(|_| VaultError::Corrupt);
        let context = totp_context(&user.username);
        let key = vault.unwrap_key(&context, &decode(&user.totp_key)?)?;
        let secret = key.open(&context, Purpose::Totp, 0, &decode(&user.totp)?)?;
        Ok(Zeroizing::new(secret))
    }

    fn vault(&self) -> Result<&Vault, RouterError> {
        self.vault.as_ref().ok_or_else(|| {
            RouterError::Setup(
                "one-time codes need the master key: set security.master_key, \
                 master_key_file or master_keys_dir"
                    .into(),
            )
        })
    }

    /// Writes an account event to the audit log. `target` is the account concerned (kept in the
    /// reason, since the conversation field holds conversation ids only).
    async fn record(
        &self,
        actor: &str,
        action: AuditAction,
        why: &str,
        target: &str,
    ) -> Result<(), RouterError> {
        let why = match (target.is_empty(), why.is_empty()) {
            (true, _) => why.to_owned(),
            (false, true) => format!("user {target}"),
            (false, false) => format!("user {target}: {why}"),
        };
        Ok(self.audit.record(actor, action, "", &why).await?)
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

    /// Ends a session; audited under the account it belonged to.
    pub async fn logout(&self, token: &str) -> Result<(), RouterError> {
        let hash = token_hash(token);
        let session = self.store.touch_session(&hash, 1).await?;
        self.store.delete_session(&hash).await?;
        if let Some(session) = session {
            let log = AuditAction::Logout;
            self.record(&session.username, log, "", "").await?;
        }
        Ok(())
    }
}

fn unknown_user(username: &str) -> RouterError {
    RouterError::refused("unknown_user", format!("no user named {username:?}"))
}

/// The vault "conversation" an account's TOTP secret is sealed for, so it opens for no other.
pub(crate) fn totp_context(username: &str) -> String {
    format!("totp:{username}")
}

/// Argon2id memory cost in KiB: 19 MiB, with [`ARGON2_T`] passes and one lane, the first of the
/// equally strong settings OWASP's Password Storage Cheat Sheet lists (m=19 MiB, t=2, p=1). RFC
/// 9106's own second recommendation (64 MiB, t=3) costs over three times the memory and time per
/// login; on the small servers a helpline runs, where many staff log in at a shift change, the
/// OWASP minimum keeps logins quick while still costing an attacker 19 MiB per guess.
const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id passes (time cost).
const ARGON2_T: u32 = 2;
/// Argon2id lanes (parallelism).
const ARGON2_P: u32 = 1;

fn argon2() -> Result<Argon2<'static>, RouterError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| RouterError::Setup(format!("Argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether a stored hash is weaker than the current parameters (another algorithm, less memory or
/// fewer passes), so a successful login re-hashes the password.
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < ARGON2_M_KIB
        || params.t_cost() < ARGON2_T
}

/// An Argon2id hash of a random password nobody knows, for constant-time answers to unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg";

async fn hash_password(password: String) -> Result<String, RouterError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| RouterError::Setup(format!("password salt: {e}")))?;
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| RouterError::Setup(format!("password hash: {e}")))
    })
    .await
    .map_err(|e| RouterError::Setup(format!("password hash task: {e}")))?
}

/// Checks a password against a stored hash under the parameters the hash names (so older, weaker
/// hashes still verify until re-hashed).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weaker_hashes_are_rehashed_and_current_ones_are_not() {
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let tag = "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg";
        assert!(!needs_rehash(DUMMY_HASH));
        assert!(needs_rehash(&format!(
            "$argon2id$v=19$m=4096,t=3,p=1${salt}${tag}"
        )));
        assert!(needs_rehash(&format!(
            "$argon2id$v=19$m=19456,t=1,p=1${salt}${tag}"
        )));
        assert!(needs_rehash(&format!(
            "$argon2i$v=19$m=19456,t=2,p=1${salt}${tag}"
        )));
        assert!(!needs_rehash(&format!(
            "$argon2id$v=19$m=65536,t=3,p=4${salt}${tag}"
        )));
    }
}
