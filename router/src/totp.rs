//! Time-based one-time passwords, the staff's second factor: RFC 6238 over RFC 4226 with the
//! parameters every authenticator app uses (HMAC-SHA-1, 6 digits, 30 s steps), accepting one step
//! of clock drift either way. This module only computes and compares codes; the secret's sealing
//! and the "never twice" rule live with the accounts.

use ring::hmac;
use subtle::ConstantTimeEq;

/// Seconds one code stands.
pub const STEP_S: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret: 160 bits, the length RFC 4226 recommends for HMAC-SHA-1.
pub const SECRET_LEN: usize = 20;
/// The issuer authenticator apps show beside the account.
pub const ISSUER: &str = "Helpline";

/// The time step a moment (seconds since the epoch) falls in.
pub fn step_of(unix_s: i64) -> u64 {
    u64::try_from(unix_s.max(0) / STEP_S).unwrap_or(0)
}

/// The code of `secret` at time step `step` (RFC 4226 HOTP with the step as the counter).
pub fn code_at(secret: &[u8], step: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    // A SHA-1 MAC is 20 bytes, so the offset (at most 15) and the 4 bytes after it are in bounds.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

/// The step (now, or one either side) whose code `code` is, if any. Every candidate is compared
/// in constant time, so the answer's timing says nothing about how close a guess was.
pub fn matching_step(secret: &[u8], code: &str, now_s: i64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(now_s);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        if bool::from(code_at(secret, step).as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The secret as authenticator apps take it (RFC 4648 base32, no padding).
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI a QR code or an authenticator app takes. Usernames are a-z, 0-9, `.`,
/// `_` and `-` only, so the label needs no escaping.
pub fn otpauth_uri(username: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{username}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows, cut to 6 digits (HOTP truncation keeps the low digits).
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(secret, step_of(time)), code, "at {time}");
        }
    }

    #[test]
    fn accepts_one_step_of_drift_and_no_more() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let step = step_of(now);
        assert_eq!(
            matching_step(secret, &code_at(secret, step), now),
            Some(step)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, step + 1), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, &code_at(secret, step + 2), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn the_uri_carries_the_base32_secret() {
        let uri = otpauth_uri("maria", b"12345678901234567890");
        assert!(uri
            .starts_with("otpauth://totp/Helpline:maria?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"));
    }
}
