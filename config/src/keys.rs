//! The master key and the pseudonym key as bytes, from the config or from a key file.
//!
//! The bytes live only in `Zeroizing` buffers, wiped when dropped; nothing here may put a key, or a
//! key file's contents, in an error.

use std::path::Path;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{ConfigError, KeyProblem};
use crate::Security;

/// Standard base64, with or without the trailing `=`, as `base64` and most tools write it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Security {
    /// The master key (the key-encryption key) from `master_key` or from the file
    /// `master_key_file`; `None` when neither is set (`serve` refuses to start then).
    pub fn master_key_bytes(&self) -> Result<Option<Zeroizing<[u8; 32]>>, ConfigError> {
        const KEY: &str = "security.master_key";
        match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::Key {
                key: KEY,
                file: None,
                problem: KeyProblem::Conflict,
            }),
            (Some(key), None) => {
                decode_key(key.expose())
                    .map(Some)
                    .map_err(|problem| ConfigError::Key {
                        key: KEY,
                        file: None,
                        problem,
                    })
            }
            (None, Some(file)) => {
                read_key_file(Path::new(file))
                    .map(Some)
                    .map_err(|problem| ConfigError::Key {
                        key: "security.master_key_file",
                        file: Some(file.into()),
                        problem,
                    })
            }
            (None, None) => Ok(None),
        }
    }

    /// The pseudonym HMAC key; `None` when absent (the router then derives one from the master
    /// key).
    pub fn pseudonym_key_bytes(&self) -> Result<Option<Zeroizing<[u8; 32]>>, ConfigError> {
        self.pseudonym_key
            .as_ref()
            .map(|key| decode_key(key.expose()))
            .transpose()
            .map_err(|problem| ConfigError::Key {
                key: "security.pseudonym_key",
                file: None,
                problem,
            })
    }
}

/// 32 bytes from base64 text (surrounding whitespace, such as a file's final newline, ignored).
pub(crate) fn decode_key(text: &str) -> Result<Zeroizing<[u8; 32]>, KeyProblem> {
    let bytes = Zeroizing::new(
        BASE64
            .decode(text.trim())
            .map_err(|_| KeyProblem::NotBase64)?,
    );
    if bytes.len() != 32 {
        return Err(KeyProblem::WrongLength(bytes.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyProblem> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KeyProblem::Missing,
        _ => KeyProblem::Unreadable(e),
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyProblem::NotBase64)?;
    decode_key(text)
}
