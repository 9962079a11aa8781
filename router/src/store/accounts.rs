//! Staff accounts, staff sessions and the audit log as stored in Redis.

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
}

/// A staff session: who, and when it began (ms), for the absolute expiry.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub username: String,
    pub created_ms: i64,
}

/// One line of the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub conversation: String,
    pub reason: String,
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

    /// Appends to the audit log. Never pass message text here.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        conversation: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _: String = redis::cmd("XADD")
            .arg(self.keys.audit())
            .arg("*")
            .arg(&[
                ("actor", actor),
                ("action", action),
                ("conv", conversation),
                ("reason", reason),
            ])
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let entries = self
            .stream_range("XREVRANGE", &self.keys.audit(), "+", "-", limit)
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let text = |k: &str| e.get::<String>(k).unwrap_or_default();
                AuditEntry {
                    ts_ms: e
                        .id
                        .split('-')
                        .next()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0),
                    actor: text("actor"),
                    action: text("action"),
                    conversation: text("conv"),
                    reason: text("reason"),
                    id: e.id,
                }
            })
            .collect())
    }
}
