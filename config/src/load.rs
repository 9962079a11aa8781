//! Loading: the file (from `--config`, else `HELPLINE_CONFIG`, else none), then the environment
//! overrides, then the typed structs, then validation.
//!
//! The file is checked against the schema before serde sees it, so an unknown key or a value of the
//! wrong type is reported by its full dotted path and without its value (it may be a secret); serde
//! is left only with errors that cannot involve a secret (enum names, numbers out of range).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::{apply_overrides, remove_path, Env, CONFIG_VAR};
use crate::error::{ConfigError, Problem};
use crate::schema::{Kind, Schema};
use crate::Config;

/// Loads and validates the configuration.
///
/// The file is `path` if given, else the one `HELPLINE_CONFIG` names, else there is none and the
/// defaults apply. Every `HELPLINE_<SECTION>__<KEY>` variable of `env` then overrides the file.
pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigError> {
    let vars = env.vars()?;
    let from_env = vars
        .iter()
        .find(|(name, value)| name == CONFIG_VAR && !value.is_empty());
    let path: Option<PathBuf> = match path {
        Some(path) => Some(path.to_owned()),
        None => from_env.map(|(_, value)| PathBuf::from(value)),
    };
    let text = match &path {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let file = path.as_deref().zip(text.as_deref());
    let config = from_parts(file, &vars)?;
    config.validate()?;
    Ok(config)
}

/// The configuration from a file's text (and its path, for messages) and the environment, before
/// validation.
pub(crate) fn from_parts(
    file: Option<(&Path, &str)>,
    vars: &[(String, String)],
) -> Result<Config, ConfigError> {
    let schema = Schema::new();
    let mut table = match file {
        Some((path, text)) => parse_file(path, text, &schema)?,
        None => toml::Table::new(),
    };
    apply_overrides(&mut table, vars, &schema)?;
    deserialize(table)
}

/// The typed config from the merged table. serde stops at its first error (an unknown enum name, a
/// number out of range), so each offending key is dropped and the rest tried again, and the
/// validation problems of what remains are added: the operator sees everything in one round.
fn deserialize(mut table: toml::Table) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    // Each round removes one key, so the loop ends; the bound is only a guard.
    for _ in 0..64 {
        match Config::deserialize(toml::Value::Table(table.clone())) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(config) => {
                if let Err(ConfigError::Invalid(more)) = config.validate() {
                    problems.extend(more);
                }
                break;
            }
            Err(error) => {
                let problem = serde_problem(&error);
                let key = problem.key.clone();
                problems.push(problem);
                if key.is_empty() {
                    break;
                }
                remove_path(&mut table, &key);
            }
        }
    }
    Err(ConfigError::Invalid(problems))
}

/// Parses the file and checks every key against the schema, collecting all problems.
fn parse_file(path: &Path, text: &str, schema: &Schema) -> Result<toml::Table, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            problems: vec![syntax_problem(text, &e)],
        })?;
    let mut problems = Vec::new();
    check_table(&table, "", schema, &mut problems);
    if problems.is_empty() {
        Ok(table)
    } else {
        Err(ConfigError::Parse {
            path: path.to_owned(),
            problems,
        })
    }
}

/// A syntax error as "line L, column C: message". Not toml's own `Display`: that quotes the
/// offending line, which may hold a secret.
fn syntax_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().lines().collect::<Vec<_>>().join("; ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn check_table(table: &toml::Table, prefix: &str, schema: &Schema, problems: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if schema.is_section(&path) {
            match value {
                toml::Value::Table(inner) => check_table(inner, &path, schema, problems),
                _ => problems.push(format!(
                    "`{path}` is a section; write it as a `[{path}]` header with keys under it"
                )),
            }
        } else if let Some(kind) = schema.keys.get(&path) {
            if !fits(*kind, value) {
                problems.push(format!(
                    "`{path}` must be {}, not {}",
                    toml_expected(*kind),
                    value.type_str()
                ));
            }
        } else {
            let hint = match schema.nearest(&path) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => String::from("; remove it"),
            };
            problems.push(format!(
                "unknown key `{path}`{hint} (every key is listed in helpline.example.toml)"
            ));
        }
    }
}

fn fits(kind: Kind, value: &toml::Value) -> bool {
    match (kind, value) {
        (Kind::Text | Kind::OptionalText, toml::Value::String(_)) => true,
        (Kind::Integer, toml::Value::Integer(_)) => true,
        (Kind::Float, toml::Value::Integer(_) | toml::Value::Float(_)) => true,
        (Kind::Bool, toml::Value::Boolean(_)) => true,
        (Kind::List, toml::Value::Array(items)) => items.iter().all(toml::Value::is_str),
        _ => false,
    }
}

fn toml_expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::OptionalText => "a string in quotes",
        Kind::List => "a list of strings, e.g. [\"a\", \"b\"]",
        other => other.expected(),
    }
}

/// serde's error for the merged table, which toml words as "message\nin `key`".
fn serde_problem(error: &toml::de::Error) -> Problem {
    let text = error.to_string();
    let text = text.trim_end();
    match text.rsplit_once("\nin `") {
        Some((message, key)) => Problem::new(
            key.trim_end_matches('`'),
            message.lines().collect::<Vec<_>>().join("; "),
        ),
        None => Problem::new("", text.lines().collect::<Vec<_>>().join("; ")),
    }
}
