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

/// A master key and its version (the N of `v<N>.key`; 1 for the single key).
pub type VersionedKey = (u32, Zeroizing<[u8; 32]>);

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

    /// Every master key version, ascending: the `v<N>.key` files of `master_keys_dir`, or the single
    /// `master_key`/`master_key_file` as version 1. Empty when none is set (`serve` refuses to
    /// start then). Reads the directory afresh on every call, so a running node can pick up a
    /// version `helpline keys rotate` added.
    pub fn master_keys(&self) -> Result<Vec<VersionedKey>, ConfigError> {
        let Some(dir) = &self.master_keys_dir else {
            return Ok(self
                .master_key_bytes()?
                .map(|k| (1, k))
                .into_iter()
                .collect());
        };
        if self.master_key.is_some() || self.master_key_file.is_some() {
            return Err(ConfigError::Key {
                key: "security.master_keys_dir",
                file: None,
                problem: KeyProblem::DirConflict,
            });
        }
        read_key_dir(Path::new(dir))
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

/// The name of master key version `version` in `security.master_keys_dir`.
pub fn master_key_file_name(version: u32) -> String {
    format!("v{version}.key")
}

/// The version a file in the key directory holds, from its name `v<N>.key` (N ≥ 1); other files
/// (editor backups, a container secret's `..data` links) are ignored.
fn version_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('v')?.strip_suffix(".key")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|v| *v >= 1)
}

/// Every `v<N>.key` in `dir`, ascending by version.
fn read_key_dir(dir: &Path) -> Result<Vec<VersionedKey>, ConfigError> {
    const KEY: &str = "security.master_keys_dir";
    let dir_error = |problem| ConfigError::Key {
        key: KEY,
        file: Some(dir.into()),
        problem,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        dir_error(match e.kind() {
            // Said as "holds no v<N>.key", whose fix (create it with v1.key) fits a missing
            // directory too.
            std::io::ErrorKind::NotFound => KeyProblem::NoVersions,
            _ => KeyProblem::Unreadable(e),
        })
    })?;
    let mut keys = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| dir_error(KeyProblem::Unreadable(e)))?;
        let Some(version) = entry.file_name().to_str().and_then(version_of) else {
            continue;
        };
        let path = entry.path();
        let key = read_key_file(&path).map_err(|problem| ConfigError::Key {
            key: KEY,
            file: Some(path),
            problem,
        })?;
        keys.push((version, key));
    }
    if keys.is_empty() {
        return Err(dir_error(KeyProblem::NoVersions));
    }
    keys.sort_by_key(|(version, _)| *version);
    Ok(keys)
}

/// Writes master key version `version` into `dir` as `v<N>.key` (base64, mode 0600), refusing to
/// overwrite an existing file. Returns the path written.
pub fn write_master_key(
    dir: &Path,
    version: u32,
    key: &[u8; 32],
) -> Result<std::path::PathBuf, ConfigError> {
    use std::io::Write;
    let path = dir.join(master_key_file_name(version));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let text = Zeroizing::new(format!("{}\n", BASE64.encode(key)));
    options
        .open(&path)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .map_err(|e| ConfigError::Key {
            key: "security.master_keys_dir",
            file: Some(path.clone()),
            problem: KeyProblem::Unreadable(e),
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const KEY_A: &str = "qVbQk0hJr9Cq0sPj3sFfXw2m3l0rS3k0bT8e4yH3u1Q=";

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "helpline-config-keys-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn with_dir(dir: &Path) -> Security {
        Security {
            master_keys_dir: Some(dir.display().to_string()),
            ..Security::default()
        }
    }

    #[test]
    fn file_names_give_versions() {
        assert_eq!(version_of("v1.key"), Some(1));
        assert_eq!(version_of("v12.key"), Some(12));
        for name in [
            "v0.key", "v.key", "v1.key~", "1.key", "v1.txt", "..data", "v-1.key",
        ] {
            assert_eq!(version_of(name), None, "{name}");
        }
        assert_eq!(master_key_file_name(3), "v3.key");
    }

    #[test]
    fn a_directory_gives_every_version_ascending_and_ignores_other_files() {
        let dir = temp_dir("ok");
        std::fs::write(dir.join("v1.key"), format!("{KEY_A}\n")).unwrap();
        std::fs::write(dir.join("README"), "not a key").unwrap();
        let key = [7u8; 32];
        let written = write_master_key(&dir, 10, &key).unwrap();
        assert_eq!(written, dir.join("v10.key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&written).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_master_key(&dir, 10, &key).is_err(),
            "never overwrites"
        );
        let keys = with_dir(&dir).master_keys().unwrap();
        assert_eq!(keys.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 10]);
        assert_eq!(*keys[1].1, key);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_single_key_is_version_one() {
        let security = Security {
            master_key: Some(crate::Secret::new(KEY_A.to_owned())),
            ..Security::default()
        };
        let keys = security.master_keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, 1);
        assert!(Security::default().master_keys().unwrap().is_empty());
    }

    #[test]
    fn problems_are_named_with_their_fix() {
        let dir = temp_dir("bad");
        let missing = with_dir(&dir.join("nope")).master_keys().unwrap_err();
        assert!(missing.to_string().contains("v1.key"), "{missing}");
        let empty = with_dir(&dir).master_keys().unwrap_err().to_string();
        assert!(
            empty.contains("security.master_keys_dir") && empty.contains("no master key file"),
            "{empty}"
        );
        std::fs::write(dir.join("v2.key"), "short").unwrap();
        let bad = with_dir(&dir).master_keys().unwrap_err().to_string();
        assert!(bad.contains("v2.key"), "{bad}");
        let both = Security {
            master_key: Some(crate::Secret::new(KEY_A.to_owned())),
            ..with_dir(&dir)
        };
        let conflict = both.master_keys().unwrap_err().to_string();
        assert!(conflict.contains("keep only the directory"), "{conflict}");
        let mut config = crate::Config {
            security: both,
            ..crate::Config::default()
        };
        let invalid = config.validate().unwrap_err().to_string();
        assert!(
            invalid.contains("security.master_keys_dir") && invalid.contains("v1.key"),
            "{invalid}"
        );
        config.security = with_dir(Path::new(""));
        let empty = config.validate().unwrap_err().to_string();
        assert!(empty.contains("security.master_keys_dir"), "{empty}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
