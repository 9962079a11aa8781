//! How many SMS a text costs (3GPP TS 23.038): GSM-7 fits 160 characters in one message and 153
//! per part when split; a single character outside GSM-7 (Romanian ș, ț, ă, â, î, any Cyrillic)
//! makes the whole text UCS-2: 70, then 67 per part. Extension characters (`{ } [ ] ~ \ | ^ €`)
//! take two GSM-7 places.

/// GSM 03.38's basic character set.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38's extension table (each costs an escape plus the character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// The encoding a text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// A text's size as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Characters as the contact sees them.
    pub chars: usize,
    pub encoding: Encoding,
    /// Messages it is sent as (at least 1).
    pub segments: usize,
}

/// Counts the characters and segments of `text`.
pub fn count(text: &str) -> Count {
    let chars = text.chars().count();
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (encoding, units, single, part) = if gsm {
        (Encoding::Gsm7, septets, 160, 153)
    } else {
        // UTF-16 code units: a character beyond the BMP (an emoji) takes two.
        let units = text.encode_utf16().count();
        (Encoding::Ucs2, units, 70, 67)
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    Count {
        chars,
        encoding,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_gsm7_with_160_then_153() {
        assert_eq!(count("").segments, 1);
        let c = count(&"a".repeat(160));
        assert_eq!((c.encoding, c.segments), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
        // An extension character takes two places.
        assert_eq!(count(&format!("{}€", "a".repeat(159))).segments, 2);
    }

    #[test]
    fn romanian_diacritics_and_cyrillic_force_ucs2_with_70_then_67() {
        let c = count("Bună, ești în siguranță");
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert_eq!(c.chars, 23);
        assert_eq!(count(&"ы".repeat(70)).segments, 1);
        assert_eq!(count(&"ы".repeat(71)).segments, 2);
        assert_eq!(count(&"ț".repeat(134)).segments, 2);
        assert_eq!(count(&"ț".repeat(135)).segments, 3);
    }
}
