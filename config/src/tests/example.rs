//! `helpline.example.toml` and `Config::default()` can never drift: the file parses to exactly the
//! defaults, and documents every key (optional ones commented out) with its environment variable.

use std::collections::BTreeSet;
use std::path::Path;

use super::as_value;
use crate::load::from_parts;
use crate::schema::Schema;
use crate::Config;

const EXAMPLE: &str = include_str!("../../helpline.example.toml");

/// Every `(section, key)` the file mentions, set (`key = …`) or commented out (`# key = …`).
fn mentioned_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim().to_owned();
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        if let Some((key, _)) = line.split_once(" = ") {
            if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                keys.insert(format!("{section}.{key}"));
            }
        }
    }
    keys
}

/// The example with every commented-out key switched on.
fn uncommented(text: &str) -> String {
    let schema = Schema::new();
    let mut section = String::new();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
        }
        let candidate = line.strip_prefix("# ").filter(|l| {
            l.split_once(" = ")
                .is_some_and(|(k, _)| schema.keys.contains_key(&format!("{section}.{k}")))
        });
        out.push_str(candidate.unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn the_example_file_is_exactly_the_defaults() {
    let parsed = from_parts(Some((Path::new("helpline.example.toml"), EXAMPLE)), &[]).unwrap();
    let defaults = Config::default();
    // Secrets serialize as `[redacted]`, so compare the one secret that has a default by hand;
    // the optional secrets are `None` in both, which the serialized comparison already checks.
    assert_eq!(as_value(&parsed), as_value(&defaults));
    assert_eq!(parsed.redis.url.expose(), defaults.redis.url.expose());
    parsed.validate().unwrap();
}

#[test]
fn the_example_file_mentions_every_key_and_its_variable() {
    let schema = Schema::new();
    let mentioned = mentioned_keys(EXAMPLE);
    for key in schema.keys.keys() {
        assert!(
            mentioned.contains(key),
            "helpline.example.toml does not mention `{key}`"
        );
        let var = crate::env::env_var_name(key);
        assert!(
            EXAMPLE.contains(&format!("Environment: {var}")),
            "helpline.example.toml lacks {var}"
        );
    }
    for key in &mentioned {
        assert!(
            schema.keys.contains_key(key),
            "helpline.example.toml mentions unknown `{key}`"
        );
    }
}

#[test]
fn the_commented_out_examples_are_valid_values() {
    let text = uncommented(EXAMPLE);
    let parsed = from_parts(Some((Path::new("uncommented.toml"), &text)), &[]).unwrap();
    let schema = Schema::new();
    let set = toml::Table::try_from(&parsed).unwrap();
    for key in schema.keys.keys() {
        let (section, leaf) = key.rsplit_once('.').unwrap();
        let table = section
            .split('.')
            .try_fold(&set, |t, part| t.get(part)?.as_table());
        let found = table.and_then(|t| t.get(leaf));
        assert!(
            found.is_some(),
            "`{key}` not set in the uncommented example"
        );
    }
}
