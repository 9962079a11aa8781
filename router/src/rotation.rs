//! Master key versions over time: loading them from the configuration, a running node following a
//! rotation (it reloads its keys when it meets an unknown version or learns that a newer one is
//! active), and the rotation itself — re-wrapping every conversation's data key under the active
//! version in batches — plus the count of data keys per version (`helpline keys status`).
//!
//! Messages are never re-encrypted: only the 65-byte wrapped data keys change. This module never
//! logs or prints key bytes; it counts keys and names versions.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use helpline_config::Config;

use crate::error::{RouterError, StoreError};
use crate::store::Store;
use crate::vault::{MasterKeys, Vault, VaultError};
use crate::Router;

/// How many conversations a rotation reads from Redis at a time, unless told otherwise.
pub const DEFAULT_BATCH: usize = 100;
/// Passes over all conversations before a rotation gives up on ones that keep appearing under an
/// old version (a node that cannot see the new key file keeps wrapping new ones under the old).
const MAX_PASSES: u32 = 5;

/// The configured master keys, every version, the highest active.
pub fn load_master_keys(config: &Config) -> Result<MasterKeys, RouterError> {
    let versions = config
        .security
        .master_keys()
        .map_err(|e| RouterError::Setup(e.to_string()))?;
    MasterKeys::from_versions(versions.iter().map(|(v, k)| (*v, **k)))?.ok_or_else(|| {
        RouterError::Setup(
            "no master key: set security.master_key_file (or HELPLINE_SECURITY__MASTER_KEY_FILE) \
             to a file holding 32 random bytes in base64, e.g. from `head -c32 /dev/urandom | base64`, \
             or security.master_keys_dir to a directory of such files named v1.key, v2.key, …"
                .into(),
        )
    })
}

/// The master key pseudonyms are derived from when no `pseudonym_key` is set: always version 1,
/// so that pseudonyms (and with them a returning contact's live conversation) survive rotation.
pub fn pseudonym_master(config: &Config) -> Result<zeroize::Zeroizing<[u8; 32]>, RouterError> {
    let versions = config
        .security
        .master_keys()
        .map_err(|e| RouterError::Setup(e.to_string()))?;
    versions
        .into_iter()
        .find(|(v, _)| *v == 1)
        .map(|(_, k)| k)
        .ok_or_else(|| {
            RouterError::Setup(
                "pseudonyms are derived from master key version 1 when security.pseudonym_key is \
                 not set, and v1.key is not in security.master_keys_dir; put v1.key back, or set \
                 security.pseudonym_key (returning contacts then look new)"
                    .into(),
            )
        })
}

/// How many data keys each master key version wraps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCounts {
    /// Version -> number of conversations whose data key it wraps.
    pub per_version: BTreeMap<u32, u64>,
    /// Conversations whose stored data key is not a wrapped key this gateway knows.
    pub unreadable: u64,
}

/// Progress of a rotation, reported after every batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Which pass over all conversations (1 for the first).
    pub pass: u32,
    /// Conversations looked at in this pass.
    pub scanned: u64,
    /// Data keys re-wrapped in this pass.
    pub rewrapped: u64,
    /// Conversations found under the active version already in this pass.
    pub current: u64,
    /// Conversations without a data key (erased meanwhile) in this pass.
    pub gone: u64,
}

/// What one conversation's data key needed.
enum Step {
    Rewrapped,
    Current,
    Gone,
}

/// Key rotation and key counts, for the CLI: the store and the vault, without a running node.
pub struct Rotation {
    store: Store,
    vault: Vault,
}

impl Rotation {
    pub fn new(store: Store, vault: Vault) -> Self {
        Self { store, vault }
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Counts the data keys per master key version, scanning in batches: conversations' and staff
    /// accounts' one-time-code keys (so no version is deleted while a login still needs it).
    pub async fn counts(&self, batch: usize) -> Result<KeyCounts, RouterError> {
        let mut counts = KeyCounts::default();
        for (_, key) in self.store.totp_keys().await? {
            match B64
                .decode(key)
                .ok()
                .and_then(|w| Vault::wrapped_version(&w))
            {
                Some(v) => *counts.per_version.entry(v).or_default() += 1,
                None => counts.unreadable += 1,
            }
        }
        let mut cursor = 0;
        loop {
            let page = self.store.dek_batch(cursor, batch).await?;
            for (_, dek) in page.deks {
                let Some(dek) = dek else { continue };
                match B64
                    .decode(dek)
                    .ok()
                    .and_then(|w| Vault::wrapped_version(&w))
                {
                    Some(v) => *counts.per_version.entry(v).or_default() += 1,
                    None => counts.unreadable += 1,
                }
            }
            if page.cursor == 0 {
                return Ok(counts);
            }
            cursor = page.cursor;
        }
    }

    /// Tells every node the active version, then re-wraps every data key not under it, pass after
    /// pass until a pass finds none left (a node may create a conversation under the old version
    /// in the moment before it hears of the new one). `progress` is called after every batch.
    /// `settle` is how long to wait between the announcement and the first pass.
    pub async fn rewrap_all(
        &self,
        batch: usize,
        settle: std::time::Duration,
        mut progress: impl FnMut(&Progress),
    ) -> Result<Progress, RouterError> {
        self.store
            .announce_key_version(self.vault.active_version())
            .await?;
        tokio::time::sleep(settle).await;
        self.rewrap_totp_keys().await?;
        let mut last = Progress::default();
        for pass in 1..=MAX_PASSES {
            last = self.pass(pass, batch, &mut progress).await?;
            if last.rewrapped == 0 {
                return Ok(last);
            }
        }
        Ok(last)
    }

    async fn pass(
        &self,
        pass: u32,
        batch: usize,
        progress: &mut impl FnMut(&Progress),
    ) -> Result<Progress, RouterError> {
        let mut p = Progress {
            pass,
            ..Progress::default()
        };
        let mut cursor = 0;
        loop {
            let page = self.store.dek_batch(cursor, batch).await?;
            for (conv, dek) in page.deks {
                p.scanned += 1;
                match self.rewrap_one(&conv, dek).await? {
                    Step::Rewrapped => p.rewrapped += 1,
                    Step::Current => p.current += 1,
                    Step::Gone => p.gone += 1,
                }
            }
            progress(&p);
            if page.cursor == 0 {
                return Ok(p);
            }
            cursor = page.cursor;
        }
    }

    /// Re-wraps the staff accounts' TOTP data keys (a handful) under the active version; one
    /// enrolled again meanwhile already is, and is left alone by the compare-and-set.
    async fn rewrap_totp_keys(&self) -> Result<(), RouterError> {
        for (username, old) in self.store.totp_keys().await? {
            let wrapped = B64.decode(&old).map_err(|_| {
                RouterError::Vault(VaultError::BadFormat("stored key is not base64"))
            })?;
            let context = crate::accounts::totp_context(&username);
            if let Some(new) = self.vault.rewrap(&context, &wrapped)? {
                self.store
                    .replace_totp_key(&username, &old, &B64.encode(new))
                    .await?;
            }
        }
        Ok(())
    }

    /// Re-wraps one data key with compare-and-set; if it changed meanwhile, reads it again.
    async fn rewrap_one(&self, conv: &str, mut dek: Option<String>) -> Result<Step, RouterError> {
        // A data key changes only by rotation or erasure, so a second read settles it.
        for _ in 0..3 {
            let Some(old) = dek else {
                return Ok(Step::Gone);
            };
            let wrapped = B64.decode(&old).map_err(|_| {
                RouterError::Vault(VaultError::BadFormat("stored key is not base64"))
            })?;
            let Some(new) = self.vault.rewrap(conv, &wrapped)? else {
                return Ok(Step::Current);
            };
            if self.store.replace_dek(conv, &old, &B64.encode(new)).await? {
                return Ok(Step::Rewrapped);
            }
            dek = self
                .store
                .conversation(conv)
                .await?
                .and_then(|r| r.get("dek").map(str::to_owned));
        }
        Err(RouterError::Store(StoreError::Internal(format!(
            "the data key of a conversation kept changing during re-wrap; run `helpline keys \
             rotate` again ({conv})"
        ))))
    }
}

impl Router {
    /// Reloads the master keys from the configuration (the key directory may have a new version).
    /// Keeps the loaded keys when the reload fails, and says why.
    pub(crate) fn reload_keys(&self) -> bool {
        match load_master_keys(&self.inner.config) {
            Ok(keys) => {
                tracing::info!(
                    active = keys.active_version(),
                    versions = ?keys.versions().collect::<Vec<_>>(),
                    "master keys reloaded"
                );
                self.inner.vault.replace_keys(keys);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "master keys could not be reloaded; keeping those loaded");
                false
            }
        }
    }

    /// Called every tick: when a rotation announced a newer active version than this node's,
    /// reload the keys so new conversations get data keys wrapped under it.
    pub(crate) async fn follow_key_version(&self) {
        match self.store().announced_key_version().await {
            Ok(Some(v)) if v > self.inner.vault.active_version() => {
                self.reload_keys();
                let warned = &self.inner.key_version_warned;
                if self.inner.vault.active_version() < v && warned.swap(v, Ordering::Relaxed) != v {
                    tracing::warn!(
                        announced = v,
                        active = self.inner.vault.active_version(),
                        "a newer master key version is active, but this node's key directory \
                         does not have it; copy v{v}.key into security.master_keys_dir"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "active key version not read"),
        }
    }
}
