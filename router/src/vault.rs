//! The transcript vault: envelope encryption of everything a conversation must keep secret at rest.
//!
//! Master keys (key-encryption keys, KEKs) wrap one random data key (DEK) per conversation; the DEK seals
//! that conversation's message texts and the contact's raw channel address. Deleting the wrapped DEK
//! shreds the conversation, wherever its ciphertext still lies (AOF files, replicas, backups).
//!
//! This module owns the byte formats below and the key material in memory. It must never log, print or
//! return key bytes or plaintext in an error, and it does no I/O: callers store the bytes it returns.
//!
//! Wrapped DEK (65 bytes):
//! `WRAP_FORMAT (1) || KEK version (u32 BE) || random nonce (12) || AES-256-GCM(DEK) (32) || tag (16)`,
//! associated data `WRAP_FORMAT || KEK version || conversation id`.
//!
//! Sealed text (format 2): `SEAL_FORMAT (1) || random nonce (12) || AES-256-GCM(plaintext) || tag (16)`,
//! associated data `SEAL_FORMAT || purpose || conversation id || seq (u64 BE)`, so a ciphertext opens
//! only in the conversation, domain and position it was sealed for.
//!
//! Every seal draws a fresh random 96-bit nonce and stores it, instead of deriving it from the sequence
//! number: that number comes from a per-conversation counter in Redis, which a failover to a lagging
//! replica or a lost AOF tail can roll back, and a rolled-back counter would seal a different text under
//! the same key and nonce, which breaks AES-GCM outright (it leaks the XOR of the two plaintexts and lets
//! an attacker forge tags). Random nonces do not depend on any stored state. Their collision risk only
//! reaches 2^-32 after about 2^32 seals under one key; each conversation has its own key and holds
//! thousands of messages at most. Format 1 (nonce derived from purpose and seq, not stored) is refused.
//!
//! ring's expanded AES key schedules are not zeroized on drop; to keep them short-lived they are built
//! per call, on the stack, from the zeroized raw keys held here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Leads every wrapped DEK; a new layout gets a new value and old ones stay readable.
const WRAP_FORMAT: u8 = 1;
/// Leads every sealed text. Format 1 (nonce derived from purpose and seq) is no longer accepted.
const SEAL_FORMAT: u8 = 2;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const WRAP_HEADER_LEN: usize = 1 + 4;
const WRAPPED_LEN: usize = WRAP_HEADER_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Format byte and nonce before a sealed text's ciphertext.
const SEAL_HEADER_LEN: usize = 1 + NONCE_LEN;

/// What went wrong in the vault. No variant carries key bytes or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Data wrapped under a master key version that is not loaded.
    #[error(
        "master key version {0} is not loaded; add that key version to the configured master keys \
         (security) to read data wrapped under it"
    )]
    UnknownKeyVersion(u32),
    /// The same master key version was given twice.
    #[error(
        "master key version {0} is given more than once; each version must name exactly one key"
    )]
    DuplicateKeyVersion(u32),
    /// The bytes have the right shape but do not authenticate: tampered with, moved to another
    /// conversation or position, or sealed under another key.
    #[error(
        "ciphertext failed authentication (tampered with, moved, or sealed under another key); \
         refusing to use it"
    )]
    Corrupt,
    /// The bytes are not something this vault wrote (wrong length or unknown format version).
    #[error("not a vault ciphertext: {0}")]
    BadFormat(&'static str),
    /// The operating system's random generator failed; nothing was sealed or wrapped.
    #[error("the system random generator failed; cannot make a key or nonce")]
    Random,
    /// The AES-GCM implementation refused an operation that valid inputs never trigger
    /// (for example a plaintext beyond GCM's 64 GiB limit).
    #[error("AES-256-GCM refused to {0}")]
    Internal(&'static str),
}

/// The domain a sealed text belongs to. It is bound into the associated data, so a message can never
/// be opened as the address (or the reverse), even at the same sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Purpose {
    /// A message text, at the sequence number the conversation allocated for it.
    Message = 1,
    /// The contact's raw channel address, sealed once per conversation with sequence number 0.
    Address = 2,
    /// A staff account's TOTP secret, sealed with the account's own data key (its "conversation"
    /// is `totp:<username>`) at sequence number 0.
    Totp = 3,
}

/// The master keys (KEKs), by version; exactly one is active for new wraps. Zeroized on drop.
pub struct MasterKeys {
    /// Every version still loadable: old ones stay until no wrapped DEK uses them.
    keys: BTreeMap<u32, Zeroizing<[u8; KEY_LEN]>>,
    /// The version new DEKs are wrapped under; always a key of `keys`.
    active: u32,
}

impl MasterKeys {
    /// Master keys with one key, which is active.
    pub fn new(active_version: u32, key: [u8; KEY_LEN]) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(active_version, Zeroizing::new(key));
        Self {
            keys,
            active: active_version,
        }
    }

    /// Master keys from `(version, key)` pairs; the highest version is active. `None` when empty.
    pub fn from_versions(
        versions: impl IntoIterator<Item = (u32, [u8; KEY_LEN])>,
    ) -> Result<Option<Self>, VaultError> {
        let mut keys: Option<MasterKeys> = None;
        for (version, key) in versions {
            match keys.as_mut() {
                None => keys = Some(MasterKeys::new(version, key)),
                Some(loaded) => {
                    loaded.add(version, key)?;
                    if version > loaded.active {
                        loaded.active = version;
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Loads another version, still readable but not active until `set_active`.
    pub fn add(&mut self, version: u32, key: [u8; KEY_LEN]) -> Result<(), VaultError> {
        if self.keys.contains_key(&version) {
            return Err(VaultError::DuplicateKeyVersion(version));
        }
        self.keys.insert(version, Zeroizing::new(key));
        Ok(())
    }

    /// Makes a loaded version the one new DEKs are wrapped under.
    pub fn set_active(&mut self, version: u32) -> Result<(), VaultError> {
        if !self.keys.contains_key(&version) {
            return Err(VaultError::UnknownKeyVersion(version));
        }
        self.active = version;
        Ok(())
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// The loaded versions, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    fn key(&self, version: u32) -> Result<&[u8; KEY_LEN], VaultError> {
        self.keys
            .get(&version)
            .map(|k| &**k)
            .ok_or(VaultError::UnknownKeyVersion(version))
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("active", &self.active)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One conversation's data key (DEK). Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone)]
pub struct DataKey {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    fn new(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self { key }
    }

    /// Seals `plaintext` for `conversation` at position `seq` in the `purpose` domain.
    ///
    /// The nonce is fresh from the thread's CSPRNG (`rand`'s ChaCha12, seeded and reseeded from the
    /// operating system: no system call per message) and stored in the output; it is not
    /// derived from `seq`, because `seq` comes from a counter in Redis that a failover or a lost AOF
    /// tail can roll back, and reusing a nonce under one key is catastrophic for AES-GCM. With random
    /// 96-bit nonces the chance of any collision stays below 2^-32 until about 2^32 seals under one
    /// key, while a conversation (which has its own key) holds thousands at most. `purpose` and `seq`
    /// still go into the associated data, so the result opens only at this conversation, purpose and
    /// seq. Sealing the same text twice gives different bytes; either opens.
    pub fn seal(
        &self,
        conversation: &str,
        purpose: Purpose,
        seq: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let key = aead_key(&self.key)?;
        let mut out = Vec::with_capacity(SEAL_HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(SEAL_FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seal_aad(conversation, purpose, seq)),
                &mut out[SEAL_HEADER_LEN..],
            )
            .map_err(|_| VaultError::Internal("seal a plaintext this large"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what `seal` made with the same conversation, purpose and seq.
    pub fn open(
        &self,
        conversation: &str,
        purpose: Purpose,
        seq: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let (&format, rest) = sealed.split_first().ok_or(VaultError::BadFormat("empty"))?;
        match format {
            SEAL_FORMAT => {}
            1 => {
                return Err(VaultError::BadFormat(
                    "sealed-text format 1 (nonce derived from seq) is no longer accepted",
                ))
            }
            _ => return Err(VaultError::BadFormat("unknown sealed-text format version")),
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(VaultError::BadFormat(
                "sealed text shorter than its nonce and tag",
            ));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| VaultError::BadFormat("bad nonce length"))?;
        let key = aead_key(&self.key)?;
        let mut buf = body.to_vec();
        let len = key
            .open_in_place(
                nonce,
                Aad::from(seal_aad(conversation, purpose, seq)),
                &mut buf,
            )
            .map_err(|_| VaultError::Corrupt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    #[cfg(test)]
    fn expose(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
}

/// Wraps and unwraps data keys under the master keys. Cheap to clone: clones share the keys.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole when a node reloads its key directory (a rotation added a version); readers
    /// take the current set for one operation.
    keys: RwLock<Arc<MasterKeys>>,
    rng: SystemRandom,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("keys", &*self.keys())
            .finish()
    }
}

impl Vault {
    pub fn new(keys: MasterKeys) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(Arc::new(keys)),
                rng: SystemRandom::new(),
            }),
        }
    }

    /// The master keys in use now.
    fn keys(&self) -> Arc<MasterKeys> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts freshly loaded master keys in place (for every clone): a node that meets a version it
    /// has not loaded, or learns that a rotation made a new version active, reloads its keys.
    pub fn replace_keys(&self, keys: MasterKeys) {
        *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }

    /// The master key version new data keys are wrapped under.
    pub fn active_version(&self) -> u32 {
        self.keys().active
    }

    /// The loaded master key versions, ascending.
    pub fn loaded_versions(&self) -> Vec<u32> {
        self.keys().versions().collect()
    }

    /// 32 fresh random bytes for a new master key version (`helpline keys rotate`).
    pub fn random_master_key(&self) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        self.inner
            .rng
            .fill(&mut key[..])
            .map_err(|_| VaultError::Random)?;
        Ok(key)
    }

    /// A fresh random data key for `conversation`, and its wrapped form to store.
    pub fn new_data_key(&self, conversation: &str) -> Result<(DataKey, Vec<u8>), VaultError> {
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        self.inner
            .rng
            .fill(&mut dek[..])
            .map_err(|_| VaultError::Random)?;
        let dek = DataKey::new(dek);
        let wrapped = self.wrap(conversation, &dek)?;
        Ok((dek, wrapped))
    }

    /// The data key inside `wrapped`, if it was wrapped for `conversation` under a loaded version.
    pub fn unwrap_key(&self, conversation: &str, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        let version = Self::wrapped_version(wrapped).ok_or(VaultError::BadFormat(
            "not a wrapped data key of a known format and length",
        ))?;
        let key = aead_key(self.keys().key(version)?)?;
        // In bounds: `wrapped_version` checked the length is exactly WRAPPED_LEN.
        let (nonce, body) = wrapped[WRAP_HEADER_LEN..].split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| VaultError::BadFormat("bad nonce length"))?;
        // The buffer briefly holds the DEK in clear, so it is zeroized too.
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = key
            .open_in_place(
                nonce,
                Aad::from(wrap_aad(conversation, version)),
                &mut buf[..],
            )
            .map_err(|_| VaultError::Corrupt)?;
        if plain.len() != KEY_LEN {
            return Err(VaultError::BadFormat(
                "wrapped data key has the wrong length",
            ));
        }
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        dek.copy_from_slice(plain);
        Ok(DataKey::new(dek))
    }

    /// The same data key wrapped under the active version, or `None` when it already is
    /// (for `helpline keys rotate`). Fails, like `unwrap_key`, on anything that does not open.
    pub fn rewrap(
        &self,
        conversation: &str,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let dek = self.unwrap_key(conversation, wrapped)?;
        let keys = self.keys();
        if Self::wrapped_version(wrapped) == Some(keys.active) {
            return Ok(None);
        }
        wrap_under(&keys, &self.inner.rng, conversation, &dek).map(Some)
    }

    /// The master key version a wrapped data key names, or `None` if it is not a wrapped key.
    pub fn wrapped_version(wrapped: &[u8]) -> Option<u32> {
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != WRAP_FORMAT {
            return None;
        }
        let version: [u8; 4] = wrapped[1..WRAP_HEADER_LEN].try_into().ok()?;
        Some(u32::from_be_bytes(version))
    }

    fn wrap(&self, conversation: &str, dek: &DataKey) -> Result<Vec<u8>, VaultError> {
        wrap_under(&self.keys(), &self.inner.rng, conversation, dek)
    }
}

/// `dek` wrapped for `conversation` under the active version of `keys`.
fn wrap_under(
    keys: &MasterKeys,
    rng: &SystemRandom,
    conversation: &str,
    dek: &DataKey,
) -> Result<Vec<u8>, VaultError> {
    let version = keys.active;
    let key = aead_key(keys.key(version)?)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| VaultError::Random)?;

    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAP_FORMAT);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    let mut body = Zeroizing::new(dek.key.to_vec());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(wrap_aad(conversation, version)),
        &mut *body,
    )
    .map_err(|_| VaultError::Internal("wrap a data key"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Internal("accept a 256-bit key"))
}

fn wrap_aad(conversation: &str, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_HEADER_LEN + conversation.len());
    aad.push(WRAP_FORMAT);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(conversation.as_bytes());
    aad
}

fn seal_aad(conversation: &str, purpose: Purpose, seq: u64) -> Vec<u8> {
    // The conversation id is the only variable-length part and sits between fixed-length ones, so
    // two different (conversation, seq) pairs can never give the same bytes.
    let mut aad = Vec::with_capacity(2 + conversation.len() + 8);
    aad.push(SEAL_FORMAT);
    aad.push(purpose as u8);
    aad.extend_from_slice(conversation.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV_A: &str = "3f2a9c0d1e7b4a5f8c6d2e1f0a9b8c7d";
    const CONV_B: &str = "00112233445566778899aabbccddeeff";
    /// A key of a known pattern, so tests can look for it in printed output.
    const CANARY: [u8; 32] = [0xA5; 32];

    fn key(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    fn vault_v1() -> Vault {
        Vault::new(MasterKeys::new(1, key(1)))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn seal_and_open_round_trip() {
        let vault = vault_v1();
        let (dek, wrapped) = vault.new_data_key(CONV_A).unwrap();
        for (purpose, seq, text) in [
            (Purpose::Message, 1, &b"I need to talk to someone"[..]),
            (Purpose::Message, 2, &b""[..]),
            (Purpose::Address, 0, &b"+40712345678"[..]),
        ] {
            let sealed = dek.seal(CONV_A, purpose, seq, text).unwrap();
            assert_eq!(sealed.len(), SEAL_HEADER_LEN + text.len() + TAG_LEN);
            assert_eq!(dek.open(CONV_A, purpose, seq, &sealed).unwrap(), text);
            // The key as stored opens it too.
            let again = vault.unwrap_key(CONV_A, &wrapped).unwrap();
            assert_eq!(again.open(CONV_A, purpose, seq, &sealed).unwrap(), text);
        }
    }

    #[test]
    fn wrapped_key_has_documented_layout() {
        let vault = Vault::new(MasterKeys::new(0x0102_0304, key(1)));
        let (dek, wrapped) = vault.new_data_key(CONV_A).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(wrapped[0], WRAP_FORMAT);
        assert_eq!(&wrapped[1..5], &[1, 2, 3, 4]);
        assert_eq!(Vault::wrapped_version(&wrapped), Some(0x0102_0304));
        assert!(
            !hex(&wrapped).contains(&hex(dek.expose())),
            "DEK stored in clear"
        );
        assert_eq!(
            vault.unwrap_key(CONV_A, &wrapped).unwrap().expose(),
            dek.expose()
        );
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Pins the byte formats against vectors made by an independent AES-GCM implementation
    /// (Python `cryptography`), so a refactor cannot silently make stored data unreadable.
    #[test]
    fn formats_match_independent_vectors() {
        let dek = DataKey::new(Zeroizing::new([0x11; 32]));
        // Format 2 with the nonce a0 a1 .. ab, sealed by Python for ("conv-1", Message, 42).
        let sealed = unhex("02a0a1a2a3a4a5a6a7a8a9aaab0bd11c212f148df87a80f12285497527da48b67c5f");
        assert_eq!(
            dek.open("conv-1", Purpose::Message, 42, &sealed).unwrap(),
            b"hello"
        );
        assert_eq!(
            dek.open("conv-1", Purpose::Message, 43, &sealed),
            Err(VaultError::Corrupt)
        );
        // Nonces are random now, so a fresh seal can only be checked for layout and round trip.
        let fresh = dek.seal("conv-1", Purpose::Message, 42, b"hello").unwrap();
        assert_eq!(fresh.len(), sealed.len());
        assert_eq!(fresh[0], SEAL_FORMAT);
        assert_eq!(
            dek.open("conv-1", Purpose::Message, 42, &fresh).unwrap(),
            b"hello"
        );

        let wrapped = "0100000007333333333333333333333333328782ae3168322c4ca9df34519549d661e5\
                       2fc31cf42db54e936cb2dacb463916e3c683da185a72a28f3a63128b4be8";
        let wrapped = unhex(wrapped);
        let vault = Vault::new(MasterKeys::new(7, [0x22; 32]));
        assert_eq!(
            vault.unwrap_key("conv-1", &wrapped).unwrap().expose(),
            &[0x44; 32]
        );
    }

    #[test]
    fn format_1_and_unknown_formats_are_refused() {
        let dek = DataKey::new(Zeroizing::new([0x11; 32]));
        // A format-1 text (nonce derived from purpose and seq) of "hello" at ("conv-1", Message, 42).
        let v1 = unhex("01c7613cedaa2bb59dc8a61dac3fb67a459f1dd89241");
        assert!(matches!(
            dek.open("conv-1", Purpose::Message, 42, &v1),
            Err(VaultError::BadFormat(_))
        ));
        let sealed = dek.seal("conv-1", Purpose::Message, 42, b"hello").unwrap();
        for format in [0, 1, 3, 0xff] {
            let mut other = sealed.clone();
            other[0] = format;
            assert!(
                matches!(
                    dek.open("conv-1", Purpose::Message, 42, &other),
                    Err(VaultError::BadFormat(_))
                ),
                "format {format}"
            );
        }
    }

    #[test]
    fn data_keys_are_fresh() {
        let vault = vault_v1();
        let (a, wa) = vault.new_data_key(CONV_A).unwrap();
        let (b, wb) = vault.new_data_key(CONV_A).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(wa, wb);
    }

    #[test]
    fn tampering_with_any_sealed_byte_fails() {
        let (dek, _) = vault_v1().new_data_key(CONV_A).unwrap();
        let sealed = dek.seal(CONV_A, Purpose::Message, 7, b"hello").unwrap();
        for i in 0..sealed.len() {
            for flip in [0x01, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= flip;
                assert!(
                    dek.open(CONV_A, Purpose::Message, 7, &bad).is_err(),
                    "byte {i}"
                );
            }
        }
        assert!(dek
            .open(CONV_A, Purpose::Message, 7, &sealed[..sealed.len() - 1])
            .is_err());
        assert!(dek.open(CONV_A, Purpose::Message, 7, &[]).is_err());
        assert!(dek
            .open(CONV_A, Purpose::Message, 7, &[SEAL_FORMAT])
            .is_err());
        // Nonce and tag but not a whole tag, and the header alone.
        for len in [SEAL_HEADER_LEN, SEAL_HEADER_LEN + TAG_LEN - 1] {
            assert!(matches!(
                dek.open(CONV_A, Purpose::Message, 7, &sealed[..len]),
                Err(VaultError::BadFormat(_))
            ));
        }
        // Exactly a nonce and a tag is the shape of an empty text, and must still authenticate.
        assert_eq!(
            dek.open(
                CONV_A,
                Purpose::Message,
                7,
                &sealed[..SEAL_HEADER_LEN + TAG_LEN]
            ),
            Err(VaultError::Corrupt)
        );
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(dek.open(CONV_A, Purpose::Message, 7, &longer).is_err());
    }

    #[test]
    fn tampering_with_any_wrapped_byte_fails() {
        let vault = vault_v1();
        let (_, wrapped) = vault.new_data_key(CONV_A).unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert!(vault.unwrap_key(CONV_A, &bad).is_err(), "byte {i}");
            assert!(vault.rewrap(CONV_A, &bad).is_err(), "byte {i}");
        }
        assert!(vault
            .unwrap_key(CONV_A, &wrapped[..WRAPPED_LEN - 1])
            .is_err());
    }

    #[test]
    fn ciphertext_cannot_move_between_conversations_positions_or_purposes() {
        let (dek, _) = vault_v1().new_data_key(CONV_A).unwrap();
        let sealed = dek.seal(CONV_A, Purpose::Message, 5, b"my secret").unwrap();
        assert_eq!(
            dek.open(CONV_B, Purpose::Message, 5, &sealed),
            Err(VaultError::Corrupt)
        );
        assert_eq!(
            dek.open(CONV_A, Purpose::Message, 6, &sealed),
            Err(VaultError::Corrupt)
        );
        assert_eq!(
            dek.open(CONV_A, Purpose::Message, 4, &sealed),
            Err(VaultError::Corrupt)
        );
        assert_eq!(
            dek.open(CONV_A, Purpose::Address, 5, &sealed),
            Err(VaultError::Corrupt)
        );
        let address = dek
            .seal(CONV_A, Purpose::Address, 0, b"+40712345678")
            .unwrap();
        assert_eq!(
            dek.open(CONV_A, Purpose::Message, 0, &address),
            Err(VaultError::Corrupt)
        );
    }

    #[test]
    fn another_data_key_cannot_open() {
        let vault = vault_v1();
        let (a, _) = vault.new_data_key(CONV_A).unwrap();
        let (b, _) = vault.new_data_key(CONV_A).unwrap();
        let sealed = a.seal(CONV_A, Purpose::Message, 1, b"hi").unwrap();
        assert_eq!(
            b.open(CONV_A, Purpose::Message, 1, &sealed),
            Err(VaultError::Corrupt)
        );
    }

    #[test]
    fn wrapped_key_for_one_conversation_fails_for_another() {
        let vault = vault_v1();
        let (_, wrapped) = vault.new_data_key(CONV_A).unwrap();
        assert_eq!(
            vault.unwrap_key(CONV_B, &wrapped).unwrap_err(),
            VaultError::Corrupt
        );
        assert_eq!(
            vault.rewrap(CONV_B, &wrapped).unwrap_err(),
            VaultError::Corrupt
        );
    }

    #[test]
    fn wrong_master_key_under_same_version_fails() {
        let (_, wrapped) = vault_v1().new_data_key(CONV_A).unwrap();
        let other = Vault::new(MasterKeys::new(1, key(9)));
        assert_eq!(
            other.unwrap_key(CONV_A, &wrapped).unwrap_err(),
            VaultError::Corrupt
        );
    }

    #[test]
    fn rewrap_from_v1_to_v2() {
        let (dek, wrapped_v1) = vault_v1().new_data_key(CONV_A).unwrap();
        let sealed = dek
            .seal(CONV_A, Purpose::Message, 1, b"before rotation")
            .unwrap();

        let mut keys = MasterKeys::new(1, key(1));
        keys.add(2, key(2)).unwrap();
        keys.set_active(2).unwrap();
        let both = Vault::new(keys);
        assert_eq!(both.active_version(), 2);

        let wrapped_v2 = both.rewrap(CONV_A, &wrapped_v1).unwrap().unwrap();
        assert_eq!(Vault::wrapped_version(&wrapped_v2), Some(2));
        assert_eq!(
            both.rewrap(CONV_A, &wrapped_v2).unwrap(),
            None,
            "already active"
        );

        // With both versions loaded, both wrapped forms open to the same key.
        for wrapped in [&wrapped_v1, &wrapped_v2] {
            let dek = both.unwrap_key(CONV_A, wrapped).unwrap();
            assert_eq!(
                dek.open(CONV_A, Purpose::Message, 1, &sealed).unwrap(),
                b"before rotation"
            );
        }

        // Once v1 is retired, only the re-wrapped key opens.
        let only_v2 = Vault::new(MasterKeys::new(2, key(2)));
        let dek2 = only_v2.unwrap_key(CONV_A, &wrapped_v2).unwrap();
        assert_eq!(dek2.expose(), dek.expose());
        assert_eq!(
            dek2.open(CONV_A, Purpose::Message, 1, &sealed).unwrap(),
            b"before rotation"
        );
        assert_eq!(
            only_v2.unwrap_key(CONV_A, &wrapped_v1).unwrap_err(),
            VaultError::UnknownKeyVersion(1)
        );
    }

    #[test]
    fn versions_load_with_the_highest_active_and_reload_for_every_clone() {
        assert!(MasterKeys::from_versions([]).unwrap().is_none());
        assert_eq!(
            MasterKeys::from_versions([(1, key(1)), (1, key(2))]).unwrap_err(),
            VaultError::DuplicateKeyVersion(1)
        );
        let keys = MasterKeys::from_versions([(3, key(3)), (1, key(1)), (2, key(2))])
            .unwrap()
            .unwrap();
        assert_eq!(keys.active_version(), 3);

        let vault = vault_v1();
        let clone = vault.clone();
        let (_, wrapped_v1) = vault.new_data_key(CONV_A).unwrap();
        vault.replace_keys(keys);
        assert_eq!(clone.active_version(), 3);
        assert_eq!(clone.loaded_versions(), [1, 2, 3]);
        let (_, wrapped) = clone.new_data_key(CONV_A).unwrap();
        assert_eq!(Vault::wrapped_version(&wrapped), Some(3));
        clone.unwrap_key(CONV_A, &wrapped_v1).unwrap();
        assert_ne!(*vault.random_master_key().unwrap(), [0u8; KEY_LEN]);
    }

    #[test]
    fn unknown_version_is_named_in_the_error() {
        let (_, wrapped) = Vault::new(MasterKeys::new(3, key(3)))
            .new_data_key(CONV_A)
            .unwrap();
        let err = vault_v1().unwrap_key(CONV_A, &wrapped).unwrap_err();
        assert_eq!(err, VaultError::UnknownKeyVersion(3));
        let message = err.to_string();
        assert!(
            message.starts_with("master key version 3 is not loaded;"),
            "{message}"
        );
        assert_eq!(vault_v1().rewrap(CONV_A, &wrapped).unwrap_err(), err);
    }

    #[test]
    fn master_keys_reject_unloaded_active_and_duplicate_versions() {
        let mut keys = MasterKeys::new(1, key(1));
        assert_eq!(keys.set_active(2), Err(VaultError::UnknownKeyVersion(2)));
        assert_eq!(keys.active_version(), 1);
        assert_eq!(keys.add(1, key(7)), Err(VaultError::DuplicateKeyVersion(1)));
        keys.add(5, key(5)).unwrap();
        keys.add(2, key(2)).unwrap();
        assert_eq!(keys.versions().collect::<Vec<_>>(), [1, 2, 5]);
        assert_eq!(keys.active_version(), 1);
        // The original version-1 key is untouched by the refused duplicate.
        let (_, wrapped) = vault_v1().new_data_key(CONV_A).unwrap();
        Vault::new(keys).unwrap_key(CONV_A, &wrapped).unwrap();
    }

    #[test]
    fn wrapped_version_rejects_non_wrapped_bytes() {
        let (_, wrapped) = vault_v1().new_data_key(CONV_A).unwrap();
        assert_eq!(Vault::wrapped_version(&wrapped), Some(1));
        assert_eq!(Vault::wrapped_version(&[]), None);
        assert_eq!(Vault::wrapped_version(&wrapped[..10]), None);
        let mut other_format = wrapped.clone();
        other_format[0] = 2;
        assert_eq!(Vault::wrapped_version(&other_format), None);
        assert!(matches!(
            vault_v1().unwrap_key(CONV_A, &other_format),
            Err(VaultError::BadFormat(_))
        ));
    }

    /// The ciphertext bytes of a sealed text, between the header and the tag.
    fn body(sealed: &[u8]) -> &[u8] {
        &sealed[SEAL_HEADER_LEN..sealed.len() - TAG_LEN]
    }

    #[test]
    fn different_seqs_and_purposes_give_different_ciphertexts() {
        let (dek, _) = vault_v1().new_data_key(CONV_A).unwrap();
        let one = dek.seal(CONV_A, Purpose::Message, 1, b"same text").unwrap();
        let two = dek.seal(CONV_A, Purpose::Message, 2, b"same text").unwrap();
        let addr = dek.seal(CONV_A, Purpose::Address, 1, b"same text").unwrap();
        assert_ne!(one, two);
        assert_ne!(one, addr);
        assert_ne!(
            body(&one),
            body(&two),
            "keystreams must differ, not only tags"
        );
        assert_ne!(
            body(&one),
            body(&addr),
            "keystreams must differ, not only tags"
        );
        assert_eq!(
            dek.open(CONV_A, Purpose::Message, 2, &two).unwrap(),
            b"same text"
        );
        assert_eq!(
            dek.open(CONV_A, Purpose::Address, 1, &addr).unwrap(),
            b"same text"
        );
    }

    /// What a rolled-back sequence counter does: seal again at a position already used. The nonce,
    /// and so the keystream, must still be new.
    #[test]
    fn two_seals_of_the_same_text_at_the_same_place_differ() {
        let (dek, _) = vault_v1().new_data_key(CONV_A).unwrap();
        let first = dek.seal(CONV_A, Purpose::Message, 9, b"same text").unwrap();
        let second = dek.seal(CONV_A, Purpose::Message, 9, b"same text").unwrap();
        assert_ne!(first, second);
        assert_ne!(
            first[1..SEAL_HEADER_LEN],
            second[1..SEAL_HEADER_LEN],
            "nonce reused"
        );
        assert_ne!(body(&first), body(&second), "keystream reused");
        for sealed in [&first, &second] {
            assert_eq!(
                dek.open(CONV_A, Purpose::Message, 9, sealed).unwrap(),
                b"same text"
            );
        }
        // Many seals at one place: no nonce repeats.
        let nonces: std::collections::HashSet<Vec<u8>> = (0..1000)
            .map(|_| {
                dek.seal(CONV_A, Purpose::Message, 9, b"x").unwrap()[1..SEAL_HEADER_LEN].to_vec()
            })
            .collect();
        assert_eq!(nonces.len(), 1000);
    }

    #[test]
    fn the_stored_nonce_is_12_bytes_after_the_version_byte() {
        let (dek, _) = vault_v1().new_data_key(CONV_A).unwrap();
        let text = b"I need to talk to someone";
        let sealed = dek.seal(CONV_A, Purpose::Message, 3, text).unwrap();
        assert_eq!(NONCE_LEN, 12);
        assert_eq!(sealed[0], 2);
        assert_eq!(sealed.len(), 1 + 12 + text.len() + TAG_LEN);

        // Opening with ring directly, taking the nonce from bytes 1..13 and the documented
        // associated data, gives the text back: those bytes are the nonce and nothing else is.
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..13]).unwrap();
        let mut aad = vec![2, Purpose::Message as u8];
        aad.extend_from_slice(CONV_A.as_bytes());
        aad.extend_from_slice(&3u64.to_be_bytes());
        let mut buf = sealed[13..].to_vec();
        let plain = aead_key(dek.expose())
            .unwrap()
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .unwrap();
        assert_eq!(plain, text);

        // Another seal's nonce in its place does not open.
        let other = dek.seal(CONV_A, Purpose::Message, 3, text).unwrap();
        let mut swapped = sealed.clone();
        swapped[1..13].copy_from_slice(&other[1..13]);
        assert_eq!(
            dek.open(CONV_A, Purpose::Message, 3, &swapped),
            Err(VaultError::Corrupt)
        );
    }

    #[test]
    fn debug_output_has_no_key_bytes() {
        let mut keys = MasterKeys::new(7, CANARY);
        keys.add(8, CANARY).unwrap();
        let printed = format!("{keys:?} {keys:#?}");
        assert!(printed.contains('7') && printed.contains('8'), "{printed}");

        let vault = Vault::new(keys);
        let dek = DataKey::new(Zeroizing::new(CANARY));
        let printed = format!("{printed} {vault:?} {dek:?} {dek:#?}");
        for needle in ["a5", "A5", "165", "0xa5", "0xA5", "¥"] {
            assert!(!printed.contains(needle), "{needle} in {printed}");
        }
        assert!(format!("{dek:?}").contains("redacted"));
    }

    #[test]
    fn error_messages_have_no_key_bytes_or_plaintext() {
        let (dek, _) = Vault::new(MasterKeys::new(1, CANARY))
            .new_data_key(CONV_A)
            .unwrap();
        let sealed = dek
            .seal(CONV_A, Purpose::Message, 1, b"PLAINTEXT-CANARY")
            .unwrap();
        let err = dek.open(CONV_B, Purpose::Message, 1, &sealed).unwrap_err();
        let printed = format!("{err} {err:?}");
        assert!(!printed.contains("PLAINTEXT-CANARY"));
        assert!(!printed.to_lowercase().contains("a5a5"));
    }
}
