//! Looking for canaries: distinctive strings a test puts into conversations, then searches for in
//! everything the gateway leaves behind (every Redis key and value, its log, `/metrics`), in every
//! form a tool or an encoder might print them.

/// Every form of a secret that must not appear: as is, lower and upper case, and (for non-ASCII
/// text) the escaped forms a tool or a JSON encoder might print.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![
        secret.to_owned(),
        secret.to_lowercase(),
        secret.to_uppercase(),
    ];
    if !secret.is_ascii() {
        for s in [secret.to_owned(), secret.to_lowercase()] {
            out.push(
                s.bytes()
                    .map(|b| {
                        if b.is_ascii() {
                            (b as char).to_string()
                        } else {
                            format!("\\x{b:02x}")
                        }
                    })
                    .collect(),
            );
            let json = s
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        c.to_string()
                    } else {
                        format!("\\u{:04x}", c as u32)
                    }
                })
                .collect::<String>();
            out.push(json.to_uppercase().replace("\\U", "\\u"));
            out.push(json);
        }
    }
    out
}

/// Standard base64 (with padding), for checking that a text is not merely encoded.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that none of `needles` occurs in `haystack`, naming where.
pub fn assert_absent(place: &str, haystack: &str, needles: &[String]) {
    for n in needles {
        if let Some(at) = haystack.find(n.as_str()) {
            let start = haystack[..at]
                .char_indices()
                .rev()
                .nth(120)
                .map_or(0, |(i, _)| i);
            let end = (at + n.len() + 120).min(haystack.len());
            let end = (end..=haystack.len())
                .find(|&i| haystack.is_char_boundary(i))
                .unwrap_or(haystack.len());
            panic!(
                "{place} holds {n:?} in the clear, here: …{}…",
                &haystack[start..end]
            );
        }
    }
}

/// The Redis keys (under any prefix) whose name or value mentions `needle`, leaving out the keys
/// named in `except` (e.g. the audit log, which names the conversations it concerns).
pub fn keys_mentioning(
    redis: &crate::Redis,
    needle: &str,
    except: &[&str],
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for key in redis.cli(&["--scan"])?.lines() {
        if except.contains(&key) {
            continue;
        }
        if key.contains(needle) || crate::Redis::value_text(redis, key)?.contains(needle) {
            found.push(key.to_owned());
        }
    }
    Ok(found)
}
