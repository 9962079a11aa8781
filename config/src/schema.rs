//! The shape of the configuration, derived from the code so it can never drift from the structs:
//! every key's dotted path (`routing.offer_timeout_s`) and the kind of value it takes.
//!
//! The file check and the environment overrides both use it, to name unknown keys with a suggestion
//! and to type an environment variable's text by the field it sets. It must never hold a value: the
//! defaults it is built from include the Redis URL, a secret.

use std::collections::BTreeMap;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::{
    Channels, Config, Limits, Pages, Redis, Retention, Routing, Security, Server, Sms, Telegram,
    Webchat,
};

/// The kind of value a key takes, as TOML sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string (also an enum such as `assignment`); an environment value is taken verbatim.
    Text,
    /// A string that is absent by default (`Option<String>`, `Option<Secret>`, an optional enum).
    OptionalText,
    Integer,
    Bool,
    Float,
    /// A list of strings.
    List,
}

impl Kind {
    /// What an operator must write, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Kind::Text | Kind::OptionalText => "a string",
            Kind::Integer => "a whole number",
            Kind::Bool => "true or false",
            Kind::Float => "a number",
            Kind::List => "a list of strings",
        }
    }
}

/// Every section and key of [`Config`].
#[derive(Debug)]
pub(crate) struct Schema {
    /// Dotted paths of the sections (`server`, `channels`, `channels.telegram`).
    pub(crate) sections: Vec<String>,
    /// Dotted path of every key, with its kind.
    pub(crate) keys: BTreeMap<String, Kind>,
}

impl Schema {
    /// Builds the schema from `Config::default()` (for the kinds) and from the field lists serde
    /// derives (for keys that are `None` by default and so absent from the serialized defaults).
    pub(crate) fn new() -> Self {
        // Serializing the defaults cannot fail: every field is a string, number, bool, list or a
        // struct of those. Were it ever to, the schema would be empty and every key "unknown",
        // which the tests (and any start-up) would show at once.
        let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
        let mut schema = Schema {
            sections: Vec::new(),
            keys: BTreeMap::new(),
        };
        for (section, fields) in struct_fields() {
            let table = lookup(&defaults, section);
            schema.sections.push(section.to_owned());
            for field in fields {
                let path = format!("{section}.{field}");
                let kind = match table.and_then(|t| t.get(*field)) {
                    None => Some(Kind::OptionalText),
                    Some(toml::Value::Table(_)) => None,
                    Some(value) => Some(kind_of(value)),
                };
                if let Some(kind) = kind {
                    schema.keys.insert(path, kind);
                }
            }
        }
        schema
    }

    pub(crate) fn is_section(&self, path: &str) -> bool {
        self.sections.iter().any(|s| s == path)
    }

    /// The known key or section nearest to `path` by edit distance, when it is close enough to be
    /// a likely typo, or else the one key with the same last name (`listen` written outside
    /// `[server]`).
    pub(crate) fn nearest(&self, path: &str) -> Option<&str> {
        let keys = || self.keys.keys().map(String::as_str);
        let by_distance = keys()
            .chain(self.sections.iter().map(String::as_str))
            .map(|c| (edit_distance(path, c), c))
            .filter(|(d, c)| *d <= (c.len() / 4).max(2))
            .min_by_key(|(d, _)| *d)
            .map(|(_, c)| c);
        let last = path.rsplit('.').next().unwrap_or(path);
        let mut same_name = keys().filter(|k| k.rsplit('.').next() == Some(last));
        by_distance.or_else(|| match (same_name.next(), same_name.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        })
    }
}

/// The sections and their fields. A new section struct must be added here; a test checks that every
/// table in the defaults is listed.
fn struct_fields() -> [(&'static str, &'static [&'static str]); 11] {
    [
        ("server", field_names::<Server>()),
        ("redis", field_names::<Redis>()),
        ("security", field_names::<Security>()),
        ("routing", field_names::<Routing>()),
        ("webchat", field_names::<Webchat>()),
        ("limits", field_names::<Limits>()),
        ("channels", field_names::<Channels>()),
        ("channels.telegram", field_names::<Telegram>()),
        ("channels.sms", field_names::<Sms>()),
        ("pages", field_names::<Pages>()),
        ("retention", field_names::<Retention>()),
    ]
}

fn lookup<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Table> {
    dotted
        .split('.')
        .try_fold(table, |t, part| t.get(part)?.as_table())
}

fn kind_of(value: &toml::Value) -> Kind {
    match value {
        toml::Value::Integer(_) => Kind::Integer,
        toml::Value::Boolean(_) => Kind::Bool,
        toml::Value::Float(_) => Kind::Float,
        toml::Value::Array(_) => Kind::List,
        _ => Kind::Text,
    }
}

/// Levenshtein distance; the keys are short, so the quadratic cost is nothing.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The field names serde derived for a struct, including those that default to `None`.
///
/// serde hands them to `Deserializer::deserialize_struct`; this deserializer only records them and
/// stops. It is the one way to list a struct's fields without keeping a second list by hand.
fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(FieldProbe) {
        Err(ProbeStop(fields)) => fields,
        Ok(_) => &[],
    }
}

struct FieldProbe;

#[derive(Debug)]
struct ProbeStop(&'static [&'static str]);

impl std::fmt::Display for ProbeStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeStop {}

impl de::Error for ProbeStop {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        ProbeStop(&[])
    }
}

impl<'de> Deserializer<'de> for FieldProbe {
    type Error = ProbeStop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_keys_that_default_to_none() {
        let schema = Schema::new();
        assert_eq!(
            schema.keys.get("channels.telegram.token"),
            Some(&Kind::OptionalText)
        );
        assert_eq!(
            schema.keys.get("security.master_key_file"),
            Some(&Kind::OptionalText)
        );
        assert_eq!(
            schema.keys.get("routing.offer_timeout_s"),
            Some(&Kind::Integer)
        );
        assert_eq!(schema.keys.get("routing.languages"), Some(&Kind::List));
        assert_eq!(schema.keys.get("redis.url"), Some(&Kind::Text));
        assert!(schema.is_section("channels.sms"));
        assert!(!schema.keys.contains_key("channels.sms"));
    }

    #[test]
    fn every_table_in_the_defaults_is_a_listed_section() {
        fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (key, value) in table {
                if let toml::Value::Table(inner) = value {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(inner, &path, out);
                    out.push(path);
                }
            }
        }
        let mut tables = Vec::new();
        walk(
            &toml::Table::try_from(Config::default()).unwrap(),
            "",
            &mut tables,
        );
        let schema = Schema::new();
        for table in tables {
            assert!(
                schema.is_section(&table),
                "section {table} missing from struct_fields()"
            );
        }
        let top: Vec<&str> = field_names::<Config>().to_vec();
        for section in top {
            assert!(
                schema.is_section(section),
                "section {section} missing from struct_fields()"
            );
        }
    }

    #[test]
    fn suggests_near_keys_only() {
        let schema = Schema::new();
        assert_eq!(schema.nearest("server.listn"), Some("server.listen"));
        assert_eq!(
            schema.nearest("channels.telegram.tokn"),
            Some("channels.telegram.token")
        );
        assert_eq!(schema.nearest("completely.different"), None);
        assert_eq!(schema.nearest("listen"), Some("server.listen"));
        // `api_url` is in two sections: no guess.
        assert_eq!(schema.nearest("api_url"), None);
    }
}
