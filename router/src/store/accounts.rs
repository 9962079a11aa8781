//! Staff accounts and staff sessions as stored in Redis.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

/// A staff account as stored. `hash` is an Argon2id PHC string.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub username: String,
    pub role: String,
    pub hash: String,
    pub skills: Vec<String>,
    pub capacity: u32,
    pub display_name: String,
    pub disabled: bool,
    /// The TOTP secret sealed with the account's data key (base64), empty when not enrolled.
    pub totp: String,
    /// That data key wrapped under the master key (base64), empty when not enrolled.
    pub totp_key: String,
    /// Locked after too many consecutive failed logins, until unlocked.
    pub locked: bool,
}

/// A staff session: who, and when it began (ms), for the absolute expiry.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub username: String,
    pub created_ms: i64,
}

impl Store {
    /// Creates an account; false if the username is taken.
    pub async fn add_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let key = self.keys.user(&user.username);
        let mut conn = self.conn();
        let created: bool = conn.hset_nx(&key, "role", &user.role).await?;
        if !created {
            return Ok(false);
        }
        let skills = user.skills.join(",");
        let capacity = user.capacity.to_string();
        let fields = [
            ("hash", user.hash.as_str()),
            ("skills", skills.as_str()),
            ("capacity", capacity.as_str()),
            ("display_name", user.display_name.as_str()),
            ("disabled", if user.disabled { "1" } else { "0" }),
        ];
        let _: () = redis::pipe()
            .hset_multiple(&key, &fields)
            .sadd(self.keys.users(), &user.username)
            .query_async(&mut conn)
            .await?;
        Ok(true)
    }

    pub async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let f: HashMap<String, String> = self.conn().hgetall(self.keys.user(username)).await?;
        if f.is_empty() {
            return Ok(None);
        }
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        Ok(Some(UserRecord {
            username: username.to_owned(),
            role: get("role"),
            hash: get("hash"),
            skills: get("skills")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            capacity: get("capacity").parse().unwrap_or(0),
            display_name: get("display_name"),
            disabled: get("disabled") == "1",
            totp: get("totp"),
            totp_key: get("totp_key"),
            locked: get("locked") == "1",
        }))
    }

    /// Every username, sorted.
    pub async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.conn().smembers(self.keys.users()).await?;
        names.sort();
        Ok(names)
    }

    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let key = self.keys.user(username);
        let mut conn = self.conn();
        if !conn.exists::<_, bool>(&key).await? {
            return Ok(false);
        }
        let _: () = conn
            .hset(&key, "disabled", if disabled { "1" } else { "0" })
            .await?;
        Ok(true)
    }

    /// Stores a session under the hash of its token, expiring after `idle_s` without use.
    pub async fn put_session(
        &self,
        token_hash: &str,
        username: &str,
        now_ms: i64,
        idle_s: u64,
    ) -> Result<(), StoreError> {
        let key = self.keys.session(token_hash);
        let created = now_ms.to_string();
        let _: () = redis::pipe()
            .hset_multiple(
                &key,
                &[("username", username), ("created", created.as_str())],
            )
            .expire(&key, idle_s as i64)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The session behind a token hash, renewing its idle expiry.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        idle_s: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.keys.session(token_hash);
        let (f, _): (HashMap<String, String>, ()) = redis::pipe()
            .hgetall(&key)
            .expire(&key, idle_s as i64)
            .query_async(&mut self.conn())
            .await?;
        Ok(f.get("username").map(|u| SessionRecord {
            username: u.clone(),
            created_ms: f.get("created").and_then(|c| c.parse().ok()).unwrap_or(0),
        }))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let _: () = self.conn().del(self.keys.session(token_hash)).await?;
        Ok(())
    }

    /// Stores a newly enrolled TOTP secret (sealed) and its wrapped key, forgetting the last step
    /// used with any earlier secret; false when there is no such account.
    pub async fn set_user_totp(
        &self,
        username: &str,
        sealed: &str,
        wrapped_key: &str,
    ) -> Result<bool, StoreError> {
        let key = self.keys.user(username);
        let mut conn = self.conn();
        if !conn.exists::<_, bool>(&key).await? {
            return Ok(false);
        }
        let _: () = redis::pipe()
            .hset_multiple(&key, &[("totp", sealed), ("totp_key", wrapped_key)])
            .hdel(&key, "totp_step")
            .query_async(&mut conn)
            .await?;
        Ok(true)
    }

    /// Replaces an account's password hash (a re-hash under stronger parameters).
    pub async fn set_user_hash(&self, username: &str, hash: &str) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .hset(self.keys.user(username), "hash", hash)
            .await?;
        Ok(())
    }

    /// Counts a failed login against an existing account; `Some(true)` when this failure locked
    /// it (at `lock_after` in a row), `None` when there is no such account.
    pub async fn login_failed(
        &self,
        username: &str,
        lock_after: u32,
    ) -> Result<Option<bool>, StoreError> {
        let r = self
            .login_script(username, "failed", &lock_after.to_string())
            .await?;
        Ok((r != 0).then_some(r == 2))
    }

    /// Records a successful login: the failure count restarts, and the TOTP step used (if any)
    /// becomes the last one accepted. False, with nothing changed, when that step was not newer
    /// than the last one: the code was replayed.
    pub async fn login_succeeded(
        &self,
        username: &str,
        totp_step: Option<u64>,
    ) -> Result<bool, StoreError> {
        let step = totp_step.map(|s| s.to_string()).unwrap_or_default();
        let r = self.login_script(username, "succeeded", &step).await?;
        Ok(r == 1)
    }

    /// One call of `lua/login.lua`: a login's `outcome` and its argument, on the account's hash.
    async fn login_script(
        &self,
        username: &str,
        outcome: &str,
        arg: &str,
    ) -> Result<i64, StoreError> {
        Ok(self
            .scripts
            .login
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.user(username))
            .arg(self.keys.user(username))
            .arg(outcome)
            .arg(arg)
            .invoke_async(&mut self.conn())
            .await?)
    }

    /// Unlocks an account and restarts its failure count; false when there is no such account.
    pub async fn unlock_user(&self, username: &str) -> Result<bool, StoreError> {
        let key = self.keys.user(username);
        let mut conn = self.conn();
        if !conn.exists::<_, bool>(&key).await? {
            return Ok(false);
        }
        let _: () = conn
            .hset_multiple(&key, &[("locked", "0"), ("failures", "0")])
            .await?;
        Ok(true)
    }

    /// Every enrolled account's wrapped TOTP data key (base64), for key rotation and key counts.
    pub async fn totp_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for name in self.usernames().await? {
            let key: Option<String> = self.conn().hget(self.keys.user(&name), "totp_key").await?;
            if let Some(key) = key.filter(|k| !k.is_empty()) {
                out.push((name, key));
            }
        }
        Ok(out)
    }

    /// Replaces an account's wrapped TOTP data key `old` by `new` only if it is still `old`.
    pub async fn replace_totp_key(
        &self,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let replaced: i64 = self
            .scripts
            .rewrap
            .prepare_invoke()
            // Declared as a key too, only so a cluster client routes the call (see `routing_call`).
            .key(self.keys.user(username))
            .arg(self.keys.user(username))
            .arg(old)
            .arg(new)
            .arg("totp_key")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(replaced == 1)
    }
}
