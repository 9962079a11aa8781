//! What may be shown of the configuration: the whole of it with every secret as `[redacted]`, and
//! the Redis URL with only its password hidden, so an operator still sees which server is meant.

use crate::{Config, Redis};

const REDACTED: &str = "[redacted]";

impl Redis {
    /// The URL for logs and messages: `redis://gateway:[redacted]@10.0.0.5:6379`. Everything
    /// before the last `@` but the user name is hidden, and a `pass`/`password` query parameter; a
    /// URL that cannot be read at all is hidden entirely.
    pub fn url_redacted(&self) -> String {
        redact_url(self.url.expose())
    }
}

impl Config {
    /// The effective configuration as TOML, safe to print (`helpline config check`). Keys that are
    /// not set (`None`) are left out.
    pub fn redacted_toml(&self) -> String {
        // Cannot fail: every field is a string, number, bool, list or struct of those.
        let mut table = toml::Table::try_from(self).unwrap_or_default();
        if let Some(redis) = table.get_mut("redis").and_then(toml::Value::as_table_mut) {
            redis.insert("url".into(), toml::Value::String(self.redis.url_redacted()));
        }
        toml::to_string(&table)
            .unwrap_or_else(|e| format!("# the configuration cannot be shown as TOML: {e}\n"))
    }
}

/// A Redis URL with its password hidden (see [`Redis::url_redacted`]).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    // The last `@`, not the first after the host: a password may hold `/`, `?` or `@` unescaped.
    let (userinfo, location) = match rest.rsplit_once('@') {
        Some((userinfo, location)) => (Some(userinfo), location),
        None => (None, rest),
    };
    let userinfo = userinfo.map(|info| match info.split_once(':') {
        Some((user, _password)) => format!("{user}:{REDACTED}@"),
        // `redis://secret@host`: a lone user part is often the password.
        None => format!("{REDACTED}@"),
    });
    let location = match location.split_once('?') {
        Some((path, query)) => format!("{path}?{}", redact_query(query)),
        None => location.to_owned(),
    };
    format!("{scheme}://{}{location}", userinfo.unwrap_or_default())
}

/// `db=0&pass=x` → `db=0&pass=[redacted]` (redis-rs reads unix-socket passwords from the query).
fn redact_query(query: &str) -> String {
    let pairs = query.split('&').map(|pair| match pair.split_once('=') {
        Some((name, _)) if ["pass", "password"].contains(&name.to_ascii_lowercase().as_str()) => {
            format!("{name}={REDACTED}")
        }
        _ => pair.to_owned(),
    });
    pairs.collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_and_keeps_the_host() {
        let cases = [
            (
                "redis://gateway:s3cret@10.0.0.5:6379",
                "redis://gateway:[redacted]@10.0.0.5:6379",
            ),
            (
                "redis://:s3cret@host:6379/0",
                "redis://:[redacted]@host:6379/0",
            ),
            ("rediss://s3cret@host", "rediss://[redacted]@host"),
            (
                "redis://u:s3/c?r@t@host:1/2",
                "redis://u:[redacted]@host:1/2",
            ),
            (
                "redis+unix:///run/r.sock?db=0&pass=s3cret",
                "redis+unix:///run/r.sock?db=0&pass=[redacted]",
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("s3cret", "[redacted]"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown);
        }
    }
}
