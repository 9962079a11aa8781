//! Unit tests across modules: loading, validation, secrets, and the example file. They never touch
//! the process environment (plain pairs or `MapEnv` stand in for it); files go to a temp dir.

mod example;
mod keys;
mod loading;
mod secrets;
mod validation;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::load::from_parts;
use crate::{Config, ConfigError};

/// Environment pairs as `Env::vars` returns them.
fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loads from file text (named `test.toml` in messages) and environment pairs, then validates, as
/// `load` does.
fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let config = from_parts(Some((Path::new("test.toml"), text)), &vars(env))?;
    config.validate()?;
    Ok(config)
}

/// A fresh file under the system temp dir holding `contents`.
fn temp_file(contents: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("helpline-config-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("file-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, contents).unwrap();
    path
}

/// The config as a TOML value (secrets as `[redacted]`), for comparisons.
fn as_value(config: &Config) -> toml::Value {
    toml::Value::try_from(config).unwrap()
}
