//! How deeply a peer's JSON nests, measured before any parser builds a value from it.
//!
//! serde_json stops at 128 levels, but every level on the way costs a recursive call and an
//! allocation, and no frame or webhook this gateway reads nests more than a few levels. This one
//! linear pass over the bytes (strings and their escapes skipped) refuses a deep document cheaply,
//! with an error that says what was wrong; it never reads the text itself into anything.

/// The document nests deeper than allowed (`limits.json_depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JSON nests arrays or objects more than {max} levels deep; send a flat frame")]
pub struct TooDeep {
    pub max: usize,
}

/// Checks that arrays and objects in `json` nest at most `max` levels deep. Malformed JSON passes
/// when it is shallow: the parser that comes next names that problem.
pub fn check(json: &[u8], max: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_structure_outside_strings() {
        assert_eq!(check(br#"{"a":[{"b":1}]}"#, 3), Ok(()));
        assert_eq!(check(br#"{"a":[{"b":1}]}"#, 2), Err(TooDeep { max: 2 }));
        assert_eq!(check(br#"{"t":"[[[[[[\"[[[["}"#, 1), Ok(()));
        assert_eq!(check(br#"{"t":"\\"}"#, 1), Ok(()));
        assert_eq!(check(br#"[[[]]] [[[]]]"#, 3), Ok(()));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(check(deep.as_bytes(), 16), Err(TooDeep { max: 16 }));
    }
}
