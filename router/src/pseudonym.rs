//! Pseudonyms for contacts and the friendly aliases staff see.
//!
//! A contact's channel address (Telegram chat id, phone number, web session) becomes a keyed pseudonym,
//! the only form of identity that may appear in Redis keys, logs, metrics, frames to staff and the audit
//! log. This module owns the pseudonym key in memory; it must never log or return the key or an address,
//! and it does no I/O.

use std::fmt;

use ring::{digest, hkdf, hmac};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
/// Bytes of the HMAC kept in a pseudonym: 128 bits, so collisions never happen in practice.
const PSEUDONYM_BYTES: usize = 16;
/// Domain of the pseudonym key derived from the master key. Changing it changes every pseudonym.
const HKDF_INFO: &[u8] = b"helpline pseudonym v1";

/// Turns channel addresses into pseudonyms with a secret HMAC key. Zeroized on drop; `Debug` prints
/// no key bytes.
#[derive(Clone)]
pub struct Pseudonyms {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonyms { key: [redacted] }")
    }
}

impl Pseudonyms {
    /// Pseudonyms under a configured key (`security.pseudonym_key`).
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self {
            key: Zeroizing::new(key),
        }
    }

    /// Pseudonyms under a key derived from a master key with HKDF-SHA256, for when no pseudonym key
    /// is configured. The same master key always gives the same pseudonyms, so pass the key that
    /// stays put across `keys rotate` (or configure a pseudonym key) to keep them stable.
    pub fn derive_from_master(master: &[u8; KEY_LEN]) -> Self {
        Self {
            key: hkdf_sha256(&[], master, HKDF_INFO),
        }
    }

    /// The pseudonym of `address` on `channel`: the first 128 bits of
    /// HMAC-SHA256(key, channel || ":" || address), lowercase hex (32 characters).
    ///
    /// `channel` is a fixed channel name (`telegram`, `sms`, `web`) and must not contain `:`, so the
    /// input splits one way only; the address may contain anything. Callers normalise the address
    /// first (one spelling per phone number), or one contact gets two pseudonyms.
    pub fn pseudonym(&self, channel: &str, address: &str) -> String {
        debug_assert!(!channel.contains(':'), "channel names must not contain ':'");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key[..]);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(channel.as_bytes());
        ctx.update(b":");
        ctx.update(address.as_bytes());
        let tag = ctx.sign();
        tag.as_ref()[..PSEUDONYM_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// HKDF-SHA256 (RFC 5869) with a 32-byte output.
fn hkdf_sha256(salt: &[u8], secret: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            KEY_LEN
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // Provably infallible: HKDF-SHA256 fails only for outputs over 255 * 32 bytes, and this is 32.
    #[allow(clippy::expect_used)]
    prk.expand(&[info], Len)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 can always produce 32 bytes");
    out
}

/// Gentle colour and nature words: 64, so one byte modulo the length picks without bias.
const ADJECTIVES: [&str; 64] = [
    "Amber", "Apricot", "Aqua", "Azure", "Blue", "Breezy", "Bright", "Calm", "Cedar", "Cherry",
    "Clover", "Coral", "Cosy", "Crystal", "Daisy", "Dewy", "Emerald", "Fern", "Gentle", "Glowing",
    "Golden", "Green", "Hazel", "Honey", "Indigo", "Ivy", "Jade", "Kind", "Lavender", "Leafy",
    "Lemon", "Lilac", "Lime", "Linen", "Maple", "Meadow", "Mellow", "Mint", "Misty", "Mossy",
    "Olive", "Opal", "Orchid", "Pearl", "Peach", "Pine", "Plum", "Quiet", "Rosy", "Sage", "Sandy",
    "Sapphire", "Silver", "Sky", "Snowy", "Soft", "Spring", "Starry", "Sunny", "Teal", "Tulip",
    "Velvet", "Violet", "Willow",
];

/// Friendly animals: 64, none a child might fear or be teased with, none with a slang meaning.
const ANIMALS: [&str; 64] = [
    "Alpaca",
    "Axolotl",
    "Badger",
    "Bumblebee",
    "Butterfly",
    "Capybara",
    "Chinchilla",
    "Chipmunk",
    "Dolphin",
    "Dove",
    "Dragonfly",
    "Duckling",
    "Fawn",
    "Finch",
    "Firefly",
    "Flamingo",
    "Foal",
    "Fox",
    "Frog",
    "Gecko",
    "Giraffe",
    "Hamster",
    "Hedgehog",
    "Heron",
    "Hummingbird",
    "Kangaroo",
    "Kingfisher",
    "Kitten",
    "Koala",
    "Ladybird",
    "Lamb",
    "Lark",
    "Lemur",
    "Llama",
    "Lynx",
    "Marmot",
    "Meerkat",
    "Moose",
    "Narwhal",
    "Newt",
    "Otter",
    "Owl",
    "Panda",
    "Parrot",
    "Pelican",
    "Penguin",
    "Platypus",
    "Pony",
    "Puffin",
    "Puppy",
    "Quokka",
    "Rabbit",
    "Robin",
    "Seahorse",
    "Seal",
    "Sparrow",
    "Squirrel",
    "Swan",
    "Toucan",
    "Tortoise",
    "Turtle",
    "Wallaby",
    "Wombat",
    "Wren",
];

/// A stable, friendly alias for staff, like "Blue Otter 7F": adjective, animal and two hex digits,
/// each picked by its own byte of SHA-256(pseudonym). Same pseudonym, same alias; about a million
/// aliases in all, so two contacts waiting at once almost never share one (the pseudonym stays the
/// identity; the alias is only a name to speak of).
pub fn alias(pseudonym: &str) -> String {
    // Hashing rather than reading the pseudonym's hex keeps every input, hex or not, evenly spread.
    let digest = digest::digest(&digest::SHA256, pseudonym.as_bytes());
    let bytes = digest.as_ref();
    let adjective = ADJECTIVES[usize::from(bytes[0]) % ADJECTIVES.len()];
    let animal = ANIMALS[usize::from(bytes[1]) % ANIMALS.len()];
    format!("{adjective} {animal} {:02X}", bytes[2])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pseudonym_matches_independent_hmac() {
        // Expected values from Python's hmac and cryptography modules.
        let p = Pseudonyms::new([0x0b; 32]);
        assert_eq!(
            p.pseudonym("telegram", "12345"),
            "f1fd0071f007986956df8c4604a6b1f5"
        );
        let d = Pseudonyms::derive_from_master(&[0x42; 32]);
        assert_eq!(
            hex(&d.key[..]),
            "ef546154056b41ac8c2021adf10babc54b3429ba8f48db44868aaec0210c19df"
        );
        assert_eq!(
            d.pseudonym("sms", "+40712345678"),
            "21f676d2a6b8285535e160cbb1f8226d"
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&salt, &[0x0b; 22], &info);
        // The first 32 of the RFC's 42 output bytes.
        assert_eq!(
            hex(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn pseudonyms_are_deterministic_and_well_formed() {
        let p = Pseudonyms::new([7; 32]);
        let a = p.pseudonym("telegram", "123456789");
        assert_eq!(a, p.pseudonym("telegram", "123456789"));
        assert_eq!(
            a,
            Pseudonyms::new([7; 32]).pseudonym("telegram", "123456789")
        );
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{a}");
        assert!(!a.contains("123456789"));
        assert_ne!(a, p.pseudonym("telegram", "123456780"));

        let m = [9; 32];
        assert_eq!(
            Pseudonyms::derive_from_master(&m).pseudonym("sms", "+40712345678"),
            Pseudonyms::derive_from_master(&m).pseudonym("sms", "+40712345678")
        );
    }

    #[test]
    fn channels_are_separated() {
        let p = Pseudonyms::new([7; 32]);
        assert_ne!(p.pseudonym("telegram", "1"), p.pseudonym("sms", "1"));
        assert_ne!(p.pseudonym("web", "abc"), p.pseudonym("telegram", "abc"));
    }

    #[test]
    fn different_keys_give_different_pseudonyms() {
        let a = Pseudonyms::new([1; 32]).pseudonym("sms", "+40712345678");
        let b = Pseudonyms::new([2; 32]).pseudonym("sms", "+40712345678");
        assert_ne!(a, b);
        // The derived key is neither the master key itself nor a different master's.
        let master = [1; 32];
        let derived = Pseudonyms::derive_from_master(&master).pseudonym("sms", "+40712345678");
        assert_ne!(derived, a);
        assert_ne!(
            derived,
            Pseudonyms::derive_from_master(&[2; 32]).pseudonym("sms", "+40712345678")
        );
    }

    #[test]
    fn debug_has_no_key_bytes() {
        let p = Pseudonyms::new([0xA5; 32]);
        let printed = format!("{p:?} {p:#?}");
        assert!(printed.contains("redacted"));
        for needle in ["a5", "A5", "165"] {
            assert!(!printed.contains(needle), "{printed}");
        }
    }

    #[test]
    fn alias_is_stable_and_well_formed() {
        let p = Pseudonyms::new([3; 32]);
        for i in 0..500 {
            let pseudonym = p.pseudonym("telegram", &i.to_string());
            let alias = alias(&pseudonym);
            assert_eq!(alias, super::alias(&pseudonym));
            let parts: Vec<&str> = alias.split(' ').collect();
            assert_eq!(parts.len(), 3, "{alias}");
            assert!(ADJECTIVES.contains(&parts[0]), "{alias}");
            assert!(ANIMALS.contains(&parts[1]), "{alias}");
            assert_eq!(parts[2].len(), 2, "{alias}");
            assert!(
                parts[2].chars().all(|c| matches!(c, '0'..='9' | 'A'..='F')),
                "{alias}"
            );
        }
        assert_eq!(
            alias("f1fd0071f007986956df8c4604a6b1f5"),
            "Cherry Firefly 38"
        );
        // Not hex at all still gives an alias.
        assert_eq!(alias("").split(' ').count(), 3);
    }

    #[test]
    fn word_lists_are_unique_single_words_and_kind() {
        for list in [&ADJECTIVES, &ANIMALS] {
            let unique: HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len());
            for word in list {
                assert!(
                    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()),
                    "{word}"
                );
            }
        }
        let unkind = [
            "Rat",
            "Snake",
            "Spider",
            "Shark",
            "Wolf",
            "Bat",
            "Pig",
            "Cow",
            "Whale",
            "Hippo",
            "Beaver",
            "Cougar",
            "Raccoon",
            "Vulture",
            "Worm",
            "Cockroach",
            "Black",
            "White",
            "Brown",
            "Yellow",
            "Red",
        ];
        for word in unkind {
            assert!(
                !ADJECTIVES.contains(&word) && !ANIMALS.contains(&word),
                "{word}"
            );
        }
    }

    #[test]
    fn aliases_of_10000_pseudonyms_rarely_collide() {
        let p = Pseudonyms::new([5; 32]);
        let mut seen = HashSet::new();
        let mut collisions = 0;
        for i in 0..10_000 {
            if !seen.insert(alias(&p.pseudonym("sms", &format!("+4070000{i:04}")))) {
                collisions += 1;
            }
        }
        // 2^20 aliases: about 10_000^2 / 2^21 ≈ 48 repeats expected among 10 000 at once.
        println!("alias collisions among 10 000 pseudonyms: {collisions}");
        assert!(collisions < 100, "{collisions} collisions");
    }
}
