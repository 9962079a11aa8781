//! The master key and pseudonym key as bytes.

use super::temp_file;
use crate::{Config, ConfigError, KeyProblem, Secret};

/// Base64 of the bytes 0, 1, …, 31.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const BYTES: [u8; 32] = {
    let mut bytes = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

fn security() -> crate::Security {
    Config::default().security
}

#[test]
fn no_key_is_none() {
    assert!(security().master_key_bytes().unwrap().is_none());
    assert!(security().pseudonym_key_bytes().unwrap().is_none());
}

#[test]
fn an_inline_key_decodes_with_or_without_padding() {
    let mut s = security();
    s.master_key = Some(Secret::new(KEY));
    s.pseudonym_key = Some(Secret::new(format!(" {} \n", KEY.trim_end_matches('='))));
    assert_eq!(*s.master_key_bytes().unwrap().unwrap(), BYTES);
    assert_eq!(*s.pseudonym_key_bytes().unwrap().unwrap(), BYTES);
}

#[test]
fn a_key_file_is_read_and_trimmed() {
    let mut s = security();
    s.master_key_file = Some(temp_file(&format!("{KEY}\n")).display().to_string());
    assert_eq!(*s.master_key_bytes().unwrap().unwrap(), BYTES);
}

#[test]
fn a_missing_key_file_names_the_path_and_how_to_make_one() {
    let mut s = security();
    let path = std::env::temp_dir().join("helpline-config-tests-no-key");
    s.master_key_file = Some(path.display().to_string());
    let error = s.master_key_bytes().unwrap_err();
    assert!(matches!(
        error,
        ConfigError::Key {
            problem: KeyProblem::Missing,
            ..
        }
    ));
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("does not exist") && text.contains("head -c32 /dev/urandom"),
        "{text}"
    );
    assert!(
        text.contains("HELPLINE_SECURITY__MASTER_KEY_FILE"),
        "{text}"
    );
}

#[test]
fn an_unreadable_key_file_says_so() {
    let mut s = security();
    s.master_key_file = Some(std::env::temp_dir().display().to_string()); // a directory
    let error = s.master_key_bytes().unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Key {
                problem: KeyProblem::Unreadable(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("cannot be read"), "{error}");
}

#[test]
fn bad_key_file_contents_say_what_is_wrong() {
    let mut s = security();
    s.master_key_file = Some(temp_file("not base64!").display().to_string());
    let text = s.master_key_bytes().unwrap_err().to_string();
    assert!(
        text.contains("not valid base64") && text.contains("32 random bytes"),
        "{text}"
    );
    s.master_key_file = Some(temp_file("c2hvcnQ=").display().to_string());
    let text = s.master_key_bytes().unwrap_err().to_string();
    assert!(text.contains("decodes to 5 bytes, not 32"), "{text}");
}

#[test]
fn a_bad_inline_key_gives_the_fix() {
    let mut s = security();
    s.master_key = Some(Secret::new("c2hvcnQ="));
    let text = s.master_key_bytes().unwrap_err().to_string();
    assert!(
        text.starts_with(
            "security.master_key (HELPLINE_SECURITY__MASTER_KEY) must be 32 random bytes in \
             base64, e.g. from `head -c32 /dev/urandom | base64`"
        ),
        "{text}"
    );
}

#[test]
fn both_keys_set_is_refused() {
    let mut s = security();
    s.master_key = Some(Secret::new(KEY));
    s.master_key_file = Some("/nowhere".into());
    let error = s.master_key_bytes().unwrap_err();
    assert!(matches!(
        error,
        ConfigError::Key {
            problem: KeyProblem::Conflict,
            ..
        }
    ));
}
