//! What can go wrong with the configuration, worded for the helpline's IT person who reads it in a
//! terminal: one line per problem, naming the key both as the TOML path and as the environment
//! variable, and saying what to do.
//!
//! No message here may ever contain a secret value. Values are only quoted for keys that are not
//! secrets (numbers, booleans, lists, addresses); secret keys are named, never shown.

use std::fmt;
use std::path::PathBuf;

use crate::env::env_var_name;

/// Why the configuration could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read at all.
    #[error(
        "cannot read the config file {}: {source}; \
         check the path given by --config or HELPLINE_CONFIG",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or has unknown keys or values of the wrong type.
    #[error("{}", file_lines(path, problems))]
    Parse {
        path: PathBuf,
        problems: Vec<String>,
    },
    /// `HELPLINE_…` variables that name no key, or hold text the key's type cannot take.
    #[error("{}", lines(.0))]
    Env(Vec<EnvProblem>),
    /// Values that parse but break a rule (see `validate.rs`), all of them, not just the first.
    #[error("{}", lines(.0))]
    Invalid(Vec<Problem>),
    /// The master key or pseudonym key could not be read or decoded.
    #[error("{}", key_line(key, file.as_ref(), problem))]
    Key {
        key: &'static str,
        file: Option<PathBuf>,
        problem: KeyProblem,
    },
}

/// One broken rule: the key (dotted TOML path) and what is wrong with it and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted TOML path, e.g. `routing.offer_timeout_s`; empty when no single key is to blame.
    pub key: String,
    /// What is wrong and what to do; contains the bad value only when the key is not a secret.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "{} ({}): {}",
                self.key,
                env_var_name(&self.key),
                self.message
            )
        }
    }
}

/// A `HELPLINE_…` environment variable that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvProblem {
    /// The variable names no key; `suggestion` is the nearest valid variable, if one is close.
    Unknown {
        var: String,
        suggestion: Option<String>,
    },
    /// The variable names a whole section (`HELPLINE_CHANNELS__TELEGRAM`) rather than a key.
    Section { var: String },
    /// The text is not of the key's type. `value` is only kept for non-secret kinds.
    BadValue {
        var: String,
        key: String,
        expected: &'static str,
        value: String,
    },
    /// The variable's name or value is not UTF-8; the value is never shown.
    NotUtf8 { var: String },
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvProblem::Unknown {
                var,
                suggestion: Some(s),
            } => write!(
                f,
                "environment variable {var} names no config key; did you mean {s}? \
                 (every key is listed in helpline.example.toml)"
            ),
            EnvProblem::Unknown {
                var,
                suggestion: None,
            } => write!(
                f,
                "environment variable {var} names no config key; unset it or fix its name \
                 (every key is listed in helpline.example.toml)"
            ),
            EnvProblem::Section { var } => write!(
                f,
                "environment variable {var} names a section, not a key; set one of its keys, \
                 e.g. {var}__<KEY>"
            ),
            EnvProblem::BadValue {
                var,
                key,
                expected,
                value,
            } => write!(
                f,
                "environment variable {var} ({key}) must be {expected}, not `{value}`"
            ),
            EnvProblem::NotUtf8 { var } => {
                write!(
                    f,
                    "environment variable {var} is not valid UTF-8; set it to plain text"
                )
            }
        }
    }
}

/// Why a key could not be turned into 32 bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("does not exist")]
    Missing,
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("is not valid base64")]
    NotBase64,
    #[error("decodes to {0} bytes, not 32")]
    WrongLength(usize),
    #[error("both security.master_key and security.master_key_file are set; keep only one")]
    Conflict,
    #[error(
        "security.master_keys_dir is set together with security.master_key or \
         security.master_key_file; keep only the directory, with the single key moved to v1.key in it"
    )]
    DirConflict,
    #[error("holds no master key file named v<N>.key")]
    NoVersions,
}

fn lines<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn file_lines(path: &std::path::Path, problems: &[String]) -> String {
    let path = path.display();
    problems
        .iter()
        .map(|p| format!("config file {path}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const KEY_FIX: &str =
    "must be 32 random bytes in base64, e.g. from `head -c32 /dev/urandom | base64`";

fn key_line(key: &str, file: Option<&PathBuf>, problem: &KeyProblem) -> String {
    match (file, problem) {
        (_, KeyProblem::Conflict | KeyProblem::DirConflict) => format!("{key}: {problem}"),
        (Some(dir), KeyProblem::NoVersions) => format!(
            "{key} ({}): the directory {} {problem}; put the current master key there as v1.key \
             (32 random bytes in base64, e.g. from `head -c32 /dev/urandom | base64`)",
            env_var_name(key),
            dir.display()
        ),
        (Some(file), KeyProblem::Missing) => format!(
            "{key} ({}): the file {} does not exist; create it with \
             `head -c32 /dev/urandom | base64 > {}` (and back it up: without it no stored \
             conversation can be read)",
            env_var_name(key),
            file.display(),
            file.display()
        ),
        (Some(file), problem) => format!(
            "{key} ({}): the file {} {problem}; it must hold 32 random bytes in base64, \
             e.g. from `head -c32 /dev/urandom | base64 > {}`",
            env_var_name(key),
            file.display(),
            file.display()
        ),
        (None, problem) => format!("{key} ({}) {KEY_FIX} (it {problem})", env_var_name(key)),
    }
}
