//! The environment: read through the [`Env`] trait so tests never touch the process environment
//! (as linkerd2-proxy does), and the `HELPLINE_<SECTION>__<KEY>` overrides laid over the file.
//!
//! An override is typed by the key it sets, never by how its text looks: a bot token such as
//! `123:abc`, or a string field set to `true`, stays a string. This module must never put a value
//! in an error unless the key's kind (number, boolean, list) means it cannot be a secret.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::error::{ConfigError, EnvProblem};
use crate::schema::{Kind, Schema};

/// Every override variable starts with this.
pub const PREFIX: &str = "HELPLINE_";

/// Names the config file when `--config` is not given; not an override itself.
pub const CONFIG_VAR: &str = "HELPLINE_CONFIG";

/// Where environment variables come from.
pub trait Env {
    /// Every variable as `(name, value)`. Variables the gateway does not use may be left out, and
    /// must not make this fail.
    fn vars(&self) -> Result<Vec<(String, String)>, ConfigError>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    /// Skips variables that are not UTF-8 unless they are ours (`HELPLINE_…`): those are an error
    /// naming the variable, since silently ignoring an override would run with the wrong setting.
    fn vars(&self) -> Result<Vec<(String, String)>, ConfigError> {
        utf8_vars(std::env::vars_os())
    }
}

/// The UTF-8 variables; a non-UTF-8 one is skipped unless it is ours.
fn utf8_vars(
    vars_os: impl Iterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars_os {
        let lossy_name = name.to_string_lossy().into_owned();
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => vars.push((name, value)),
            _ if lossy_name.starts_with(PREFIX) => {
                problems.push(EnvProblem::NotUtf8 { var: lossy_name })
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(ConfigError::Env(problems))
    }
}

/// A fixed set of variables, for tests and for callers that build the environment themselves.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(BTreeMap<String, String>);

impl MapEnv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one variable.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn vars(&self) -> Result<Vec<(String, String)>, ConfigError> {
        Ok(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// The variable that overrides a dotted key: `routing.offer_timeout_s` →
/// `HELPLINE_ROUTING__OFFER_TIMEOUT_S`.
pub(crate) fn env_var_name(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// The dotted key an override variable names, or `None` when the variable is not an override
/// (`HELPLINE_CONFIG`, `HELPLINE_LOG` and anything without `__` are left to their own readers).
fn key_of(var: &str) -> Option<String> {
    let rest = var.strip_prefix(PREFIX)?;
    if var == CONFIG_VAR || !rest.contains("__") {
        return None;
    }
    Some(
        rest.split("__")
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Lays every override over `table` (the file's contents, or empty). All problems are collected.
pub(crate) fn apply_overrides(
    table: &mut toml::Table,
    vars: &[(String, String)],
    schema: &Schema,
) -> Result<(), ConfigError> {
    let mut vars: Vec<&(String, String)> = vars.iter().collect();
    vars.sort();
    let mut problems = Vec::new();
    for (var, text) in vars {
        let Some(key) = key_of(var) else { continue };
        let Some(kind) = schema.keys.get(&key) else {
            problems.push(if schema.is_section(&key) {
                EnvProblem::Section { var: var.clone() }
            } else {
                EnvProblem::Unknown {
                    var: var.clone(),
                    suggestion: schema.nearest(&key).map(env_var_name),
                }
            });
            continue;
        };
        match typed_value(*kind, text) {
            Ok(Some(value)) => set_path(table, &key, value),
            Ok(None) => remove_path(table, &key),
            Err(expected) => problems.push(EnvProblem::BadValue {
                var: var.clone(),
                key,
                expected,
                value: text.clone(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Env(problems))
    }
}

/// The TOML value for an override's text; `Ok(None)` unsets an optional key (an empty variable, as
/// container tools pass for "not set"); `Err` says what was expected. Only kinds that cannot be
/// secrets can fail, so the caller may quote the text.
fn typed_value(kind: Kind, text: &str) -> Result<Option<toml::Value>, &'static str> {
    let value = match kind {
        Kind::Text => toml::Value::String(text.to_owned()),
        Kind::OptionalText if text.is_empty() => return Ok(None),
        Kind::OptionalText => toml::Value::String(text.to_owned()),
        Kind::Integer => toml::Value::Integer(text.trim().parse().map_err(|_| kind.expected())?),
        Kind::Float => toml::Value::Float(text.trim().parse().map_err(|_| kind.expected())?),
        Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => return Err(kind.expected()),
        },
        Kind::List => list_value(text).ok_or("a list such as `ro,ru` or `[\"ro\", \"ru\"]`")?,
    };
    Ok(Some(value))
}

/// A list is either a TOML array of strings (`["ro", "ru"]`) or comma-separated (`ro, ru`); an
/// empty text is the empty list.
fn list_value(text: &str) -> Option<toml::Value> {
    let trimmed = text.trim();
    let items: Vec<String> = if trimmed.starts_with('[') {
        let table: toml::Table = format!("v = {trimmed}").parse().ok()?;
        let array = table.get("v")?.as_array()?;
        array
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()?
    } else {
        trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some(toml::Value::Array(
        items.into_iter().map(toml::Value::String).collect(),
    ))
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            // The file check has already refused a section given as a plain value.
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        current = inner;
    }
    current.insert(leaf.to_owned(), value);
}

pub(crate) fn remove_path(table: &mut toml::Table, key: &str) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else { return };
    let parent = parts
        .iter()
        .try_fold(table, |t, part| t.get_mut(*part)?.as_table_mut());
    if let Some(parent) = parent {
        parent.remove(leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn non_utf8_variables_are_skipped_unless_ours() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'x', 0xff, b'y']);
        let others = vec![
            (OsString::from("OTHER"), bad()),
            (OsString::from("PATH"), "/bin".into()),
        ];
        assert_eq!(
            utf8_vars(others.into_iter()).unwrap(),
            [("PATH".into(), "/bin".into())]
        );
        let ours = vec![(OsString::from("HELPLINE_SERVER__LISTEN"), bad())];
        let error = utf8_vars(ours.into_iter()).unwrap_err().to_string();
        assert!(
            error.contains("HELPLINE_SERVER__LISTEN is not valid UTF-8"),
            "{error}"
        );
        assert!(!error.contains("x\u{fffd}y"), "{error}");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            env_var_name("channels.telegram.token"),
            "HELPLINE_CHANNELS__TELEGRAM__TOKEN"
        );
        assert_eq!(
            key_of("HELPLINE_CHANNELS__TELEGRAM__TOKEN").as_deref(),
            Some("channels.telegram.token")
        );
        assert_eq!(key_of("HELPLINE_CONFIG"), None);
        assert_eq!(key_of("HELPLINE_LOG"), None);
        assert_eq!(key_of("PATH"), None);
    }

    #[test]
    fn lists_take_both_forms() {
        let expected = Some(toml::Value::Array(vec!["ro".into(), "ru".into()]));
        assert_eq!(list_value("ro,ru"), expected);
        assert_eq!(list_value(" ro , ru ,"), expected);
        assert_eq!(list_value(r#"["ro", "ru"]"#), expected);
        assert_eq!(list_value(""), Some(toml::Value::Array(Vec::new())));
        assert_eq!(list_value("[1, 2]"), None);
        assert_eq!(list_value("[unclosed"), None);
    }

    #[test]
    fn text_stays_verbatim() {
        let v = typed_value(Kind::OptionalText, "123:abc").unwrap();
        assert_eq!(v, Some(toml::Value::String("123:abc".into())));
        let v = typed_value(Kind::Text, "true").unwrap();
        assert_eq!(v, Some(toml::Value::String("true".into())));
        assert_eq!(typed_value(Kind::OptionalText, "").unwrap(), None);
        assert!(typed_value(Kind::Integer, "12s").is_err());
        assert!(typed_value(Kind::Bool, "yes").is_err());
    }
}
