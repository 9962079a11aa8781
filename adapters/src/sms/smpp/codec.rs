//! Text as SMPP user data and back (3GPP TS 23.038 and 23.040): GSM-7 (`data_coding` 0, one
//! septet per octet as SMPP carries it, the SMSC packs), UCS-2 (`data_coding` 8, big-endian
//! UTF-16) and Latin-1 (3, read only); long texts split into parts behind a concatenation UDH.
//!
//! The choice of alphabet is [`segments::count`]'s, so the count the counsellor saw is the count
//! the carrier bills.

use crate::sms::segments::{self, Encoding};

/// GSM 03.38's basic table by code (0x1B, the escape to the extension table, stands for itself).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38's extension table: (code after the escape, character).
const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];
const ESCAPE: u8 = 0x1B;

/// `data_coding` values.
pub const GSM7_CODING: u8 = 0;
pub const UCS2_CODING: u8 = 8;
/// `esm_class` bit: `short_message` starts with a user data header.
pub const UDHI: u8 = 0x40;

/// Septets (GSM-7) or UTF-16 units (UCS-2) in one message, and in each part of a split one
/// (the 6-octet concatenation header takes the rest of the 140 octets).
const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// A text ready for `submit_sm`: its `data_coding`, and one `short_message` per part (with the
/// concatenation UDH when there are several; then `esm_class` needs [`UDHI`]).
pub struct Encoded {
    pub data_coding: u8,
    pub parts: Vec<Vec<u8>>,
}

/// Encodes `text` for sending; `reference` ties the parts of a long text together.
pub fn encode(text: &str, reference: u8) -> Encoded {
    let (data_coding, units, single, part) = match segments::count(text).encoding {
        Encoding::Gsm7 => (GSM7_CODING, gsm7_units(text), GSM7_SINGLE, GSM7_PART),
        Encoding::Ucs2 => (UCS2_CODING, ucs2_units(text), UCS2_SINGLE, UCS2_PART),
    };
    let total: usize = units.iter().map(Vec::len).sum();
    let per_unit = if data_coding == UCS2_CODING { 2 } else { 1 };
    if total / per_unit <= single {
        return Encoded {
            data_coding,
            parts: vec![units.concat()],
        };
    }
    // Whole characters only: an escape pair or a surrogate pair is never cut in two.
    let mut chunks: Vec<Vec<u8>> = vec![Vec::new()];
    for unit in units {
        let last = chunks.len() - 1;
        if (chunks[last].len() + unit.len()) / per_unit > part {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        chunks[last].extend_from_slice(&unit);
    }
    // The reference is 8-bit, so a text has at most 255 parts; the outbox keeps texts far shorter.
    let count = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    let parts = chunks
        .into_iter()
        .take(255)
        .enumerate()
        .map(|(i, chunk)| {
            let mut data = vec![5, 0x00, 3, reference, count, (i + 1) as u8];
            data.extend_from_slice(&chunk);
            data
        })
        .collect();
    Encoded { data_coding, parts }
}

/// Each character as its GSM-7 septets (one, or the escape and one).
fn gsm7_units(text: &str) -> Vec<Vec<u8>> {
    text.chars()
        .map(|c| {
            if let Some(code) = GSM7.chars().position(|g| g == c && c != '\u{1b}') {
                vec![code as u8]
            } else if let Some((code, _)) = GSM7_EXTENSION.iter().find(|(_, e)| *e == c) {
                vec![ESCAPE, *code]
            } else {
                // segments::count chose GSM-7, so every character is in a table.
                vec![GSM7_QUESTION_MARK]
            }
        })
        .collect()
}

const GSM7_QUESTION_MARK: u8 = 0x3F;

/// Each character as big-endian UTF-16 (two octets, or four for a surrogate pair).
fn ucs2_units(text: &str) -> Vec<Vec<u8>> {
    let mut buf = [0u16; 2];
    text.chars()
        .map(|c| {
            c.encode_utf16(&mut buf)
                .iter()
                .flat_map(|u| u.to_be_bytes())
                .collect()
        })
        .collect()
}

/// A part of a concatenated message, from its UDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub index: u8,
}

/// Splits user data into its concatenation info (if any) and the text's octets.
pub fn split_udh(esm_class: u8, data: &[u8]) -> (Option<Concat>, &[u8]) {
    if esm_class & UDHI == 0 || data.is_empty() {
        return (None, data);
    }
    let udh_len = usize::from(data[0]);
    if data.len() < udh_len + 1 {
        return (None, &[]);
    }
    let (mut ies, rest) = (&data[1..=udh_len], &data[udh_len + 1..]);
    let mut concat = None;
    while ies.len() >= 2 {
        let (id, len) = (ies[0], usize::from(ies[1]));
        let Some(value) = ies.get(2..2 + len) else {
            break;
        };
        concat = match (id, value) {
            (0x00, [r, total, index]) => Some((u16::from(*r), *total, *index)),
            (0x08, [r1, r2, total, index]) => {
                Some((u16::from_be_bytes([*r1, *r2]), *total, *index))
            }
            _ => concat,
        };
        ies = &ies[2 + len..];
    }
    let concat = concat
        .filter(|&(_, total, index)| total >= 1 && (1..=total).contains(&index))
        .map(|(reference, total, index)| Concat {
            reference,
            total,
            index,
        });
    (concat, rest)
}

/// Decodes user data (without its UDH) by `data_coding`. Codings that are not text (8-bit
/// data) read as Latin-1 rather than being lost.
pub fn decode(data_coding: u8, data: &[u8]) -> String {
    match data_coding {
        UCS2_CODING => ucs2(data),
        GSM7_CODING => gsm7(data),
        // Data coding group 0xF0: bit 2 says 8-bit data, else GSM-7.
        dc if dc & 0xF0 == 0xF0 && dc & 0x04 == 0 => gsm7(data),
        _ => data.iter().map(|&b| char::from(b)).collect(),
    }
}

fn ucs2(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn gsm7(data: &[u8]) -> String {
    let table: Vec<char> = GSM7.chars().collect();
    let mut out = String::with_capacity(data.len());
    let mut escaped = false;
    for &b in data {
        let b = b & 0x7F;
        if escaped {
            escaped = false;
            match GSM7_EXTENSION.iter().find(|(code, _)| *code == b) {
                Some((_, c)) => out.push(*c),
                None => out.push(table[usize::from(b)]),
            }
        } else if b == ESCAPE {
            escaped = true;
        } else {
            out.push(table[usize::from(b)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gsm7_table_has_128_codes_in_order() {
        let table: Vec<char> = GSM7.chars().collect();
        assert_eq!(table.len(), 128);
        assert_eq!(
            (
                table[0x00],
                table[0x11],
                table[0x20],
                table[0x41],
                table[0x7F]
            ),
            ('@', '_', ' ', 'A', 'à')
        );
    }

    #[test]
    fn plain_text_is_gsm7_septets_and_round_trips() {
        let e = encode("Hi @ 10€ {ok}", 1);
        assert_eq!(e.data_coding, GSM7_CODING);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(&e.parts[0][..6], [0x48, 0x69, 0x20, 0x00, 0x20, 0x31]);
        assert_eq!(decode(0, &e.parts[0]), "Hi @ 10€ {ok}");
    }

    #[test]
    fn a_diacritic_makes_ucs2() {
        let e = encode("ță", 1);
        assert_eq!(e.data_coding, UCS2_CODING);
        assert_eq!(e.parts, [vec![0x02, 0x1B, 0x01, 0x03]]);
        assert_eq!(decode(8, &e.parts[0]), "ță");
    }

    #[test]
    fn long_texts_split_with_a_concatenation_udh() {
        let text = "ș".repeat(140);
        let e = encode(&text, 0x2A);
        assert_eq!(e.parts.len(), 3);
        for (i, part) in e.parts.iter().enumerate() {
            assert_eq!(&part[..6], [5, 0, 3, 0x2A, 3, i as u8 + 1]);
            assert!(part.len() <= 140);
        }
        let joined: String = e
            .parts
            .iter()
            .map(|p| {
                let (concat, data) = split_udh(UDHI, p);
                assert_eq!(concat.map(|c| c.reference), Some(0x2A));
                decode(8, data)
            })
            .collect();
        assert_eq!(joined, text);
        // GSM-7: 160 in one, then 153 a part, never cutting an escape pair.
        assert_eq!(encode(&"a".repeat(160), 0).parts.len(), 1);
        let e = encode(&format!("{}€", "a".repeat(152)), 0);
        assert_eq!(e.parts.len(), 1);
        let e = encode(&format!("{}€{}", "a".repeat(152), "a".repeat(10)), 0);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].len(), 6 + 152);
    }

    #[test]
    fn a_surrogate_pair_is_never_cut() {
        let text = format!("{}😀ыыы", "ы".repeat(66));
        let e = encode(&text, 0);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].len(), 6 + 132);
        let (_, tail) = split_udh(UDHI, &e.parts[1]);
        assert_eq!(decode(8, tail), "😀ыыы");
    }

    #[test]
    fn udh_reads_8_and_16_bit_references_and_ignores_others() {
        let (c, rest) = split_udh(UDHI, &[5, 0, 3, 7, 2, 1, 0x41]);
        assert_eq!(
            c,
            Some(Concat {
                reference: 7,
                total: 2,
                index: 1
            })
        );
        assert_eq!(rest, [0x41]);
        let (c, _) = split_udh(UDHI, &[10, 0x0A, 2, 0, 0, 8, 4, 1, 2, 2, 1]);
        assert_eq!(c.map(|c| (c.reference, c.index)), Some((0x0102, 1)));
        assert_eq!(split_udh(0, &[5, 0, 3, 7, 2, 1]).0, None);
        assert_eq!(split_udh(UDHI, &[9, 0, 3]).0, None);
        assert_eq!(split_udh(UDHI, &[5, 0, 3, 7, 2, 3]).0, None);
    }

    #[test]
    fn latin1_and_odd_codings_still_read() {
        assert_eq!(decode(3, &[0x63, 0xE2, 0x69]), "câi");
        assert_eq!(decode(0xF0, &[0x41]), "A");
        assert_eq!(decode(8, &[0x04, 0x1F, 0x04]), "П");
    }
}
