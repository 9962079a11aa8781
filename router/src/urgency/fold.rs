//! Folding: how a message and a phrase are both turned into one Latin *skeleton*, so that the
//! spellings of one phrase children actually type look alike to the matcher.
//!
//! 1. Lower case; compatibility decomposition with combining marks dropped, so ș ş ț ţ ă â î lose
//!    their marks whichever form of the comma or cedilla was typed (Romanian letters take a short
//!    path that gives the same result).
//! 2. Cyrillic transliterated to Latin, one spelling per letter ([`cyrillic`]); apostrophes, soft
//!    and hard signs vanish; every run of other characters becomes one space between words.
//! 3. The Latin spellings children use interchangeably collapsed ([`skeleton_word`]).
//!
//! Where two Latin spellings of one Cyrillic letter cannot collapse into one (ж as "zh" or "j", ё
//! as "e" or "yo", г as "g" or "h", ц as "ts", "c" or "t"), the phrase is expanded into each
//! spelling when the lists are loaded ([`spellings`]), so the message is still folded only once.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_normalization::UnicodeNormalization;

/// A letter after the stem must not change how the stem itself folds (e.g. "ubi" + "u" folds to
/// "ubu"), or the stem would miss words that start with it. Probing every letter that can follow is
/// enough, because the folding rules look at most one letter past a stem's end.
pub(super) fn stem_is_stable(spelling: &str, form: &[u8]) -> bool {
    const PROBES: &str = "abcdefghijklmnopqrstuvwxyz4'абвгґдеёєжзиіїйклмнопрстуфхцчшщъыьэюя";
    let mut longer = String::with_capacity(spelling.len() + 4);
    PROBES.chars().all(|probe| {
        longer.clear();
        longer.push_str(spelling);
        longer.push(probe);
        fold(&longer).starts_with(form)
    })
}

/// The Latin spellings of a Cyrillic letter that fold differently from each other. The first is the
/// one [`fold`] uses for Cyrillic text, so Cyrillic text always finds the phrase.
fn alternatives(c: char) -> Option<&'static [&'static str]> {
    Some(match c {
        'ж' => &["zh", "j"],
        'ё' => &["e", "yo"],
        'г' => &["g", "h"],
        'ц' => &["ts", "c", "t"],
        _ => return None,
    })
}

/// Every spelling of `phrase` with the letters of [`alternatives`] written each way, or `None` if
/// there would be more than `max`.
pub(super) fn spellings(phrase: &str, max: usize) -> Option<Vec<String>> {
    let phrase: String = phrase.nfc().flat_map(char::to_lowercase).collect();
    let mut spellings = vec![String::new()];
    for c in phrase.chars() {
        match alternatives(c) {
            None => spellings.iter_mut().for_each(|s| s.push(c)),
            Some(alts) => {
                if spellings.len() * alts.len() > max {
                    return None;
                }
                spellings = spellings
                    .iter()
                    .flat_map(|s| alts.iter().map(move |alt| format!("{s}{alt}")))
                    .collect();
            }
        }
    }
    Some(spellings)
}

/// Folds text into its skeleton: `" word word "`, one space before, between and after words.
/// Bytes rather than a `String`: the matcher reads bytes, and the rules only ever touch ASCII, so
/// the result stays valid UTF-8 without being checked again.
pub(super) fn fold(text: &str) -> Vec<u8> {
    let mut folder = Folder {
        out: Vec::with_capacity(text.len() + 2),
        word: Vec::with_capacity(32),
        letters: Vec::with_capacity(32),
    };
    folder.out.push(b' ');
    for c in text.chars() {
        folder.push_char(c);
    }
    folder.end_word();
    folder.out
}

/// The state of one [`fold`]: the skeleton so far, and the word being read.
struct Folder {
    out: Vec<u8>,
    /// The current word, lower case and in Latin letters, before [`skeleton_word`].
    word: Vec<u8>,
    /// Scratch space for [`skeleton_word`], kept to spare an allocation per word.
    letters: Vec<u8>,
}

impl Folder {
    /// Takes `c` lower-cased, without marks, Cyrillic transliterated; anything that is not a letter
    /// or a digit ends the word. ASCII, Cyrillic and Romanian letters take short paths, so grading
    /// stays in microseconds; everything else goes through Unicode decomposition.
    fn push_char(&mut self, c: char) {
        if c.is_ascii_alphanumeric() {
            self.word.push(c.to_ascii_lowercase() as u8);
        } else if let Some(latin) = cyrillic(c).or_else(|| romanian(c)) {
            self.word.extend_from_slice(latin.as_bytes());
        } else if is_joiner(c) {
            // Nothing to add: the letters on either side stay one word.
        } else if c.is_ascii() {
            self.end_word();
        } else {
            self.push_other(c);
        }
    }

    fn push_other(&mut self, c: char) {
        for lower in c.to_lowercase() {
            decompose_compatible(lower, |part| {
                if is_combining_mark(part) {
                    return;
                }
                for part in part.to_lowercase() {
                    if let Some(latin) = cyrillic(part) {
                        self.word.extend_from_slice(latin.as_bytes());
                    } else if part.is_alphanumeric() {
                        let mut utf8 = [0; 4];
                        self.word
                            .extend_from_slice(part.encode_utf8(&mut utf8).as_bytes());
                    } else {
                        self.end_word();
                    }
                }
            });
        }
    }

    fn end_word(&mut self) {
        if !self.word.is_empty() {
            skeleton_word(&self.word, &mut self.letters, &mut self.out);
            self.out.push(b' ');
            self.word.clear();
        }
    }
}

/// Characters that join the letters around them: apostrophes ("i'm", "б'є", "umeret'") and
/// invisible characters that could split a word.
fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '\'' | '’' | '‘' | 'ʼ' | '`' | '´' | 'ʹ' | '\u{ad}' | '\u{200b}'
            ..='\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

/// The Romanian letters with their marks dropped, as decomposition would (a test checks it),
/// without its cost: ș and ț with the comma below or the cedilla alike.
fn romanian(c: char) -> Option<&'static str> {
    Some(match c {
        'ă' | 'â' | 'Ă' | 'Â' => "a",
        'î' | 'Î' => "i",
        'ș' | 'ş' | 'Ș' | 'Ş' => "s",
        'ț' | 'ţ' | 'Ț' | 'Ţ' => "t",
        _ => return None,
    })
}

/// One Latin spelling per Cyrillic letter, capital or small (Russian, Ukrainian; Belarusian ў).
/// Soft and hard signs vanish.
pub(super) fn cyrillic(c: char) -> Option<&'static str> {
    let lower = match c {
        '\u{400}'..='\u{40f}' => char::from_u32(c as u32 + 0x50)?,
        '\u{410}'..='\u{42f}' => char::from_u32(c as u32 + 0x20)?,
        'Ґ' => 'ґ',
        _ => c,
    };
    Some(match lower {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' | 'ґ' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'є' => "ye",
        'ж' => "zh",
        'з' => "z",
        'и' | 'і' => "i",
        'ї' => "yi",
        'й' | 'ы' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' | 'ў' => "u",
        'ф' => "f",
        'х' => "h",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'ь' => "",
        'ю' => "yu",
        'я' => "ya",
        _ => return None,
    })
}

/// Collapses the Latin spellings children use interchangeably, one word at a time:
///
/// 1. shch, sch, sh → s; zh → z; kh, x → h; ch, 4 → c; y, j → i; w → v
///    (щ ш ж х ч й ы written every way; "ho4u" for хочу);
/// 2. a letter written twice in a row counts once ("kill" = "kil", "ii" = "i");
/// 3. an i between a consonant (or the word's start) and a vowel is dropped, and so is an e before
///    an a: ya, ia, ja, ea → a; yu, iu, ju → u; ye, je → e; yo, io → o. So "menya", "menja",
///    "menia" and "mena" agree, and "hociu" meets "hochu".
///
/// Each rule loses a little distinction between unrelated words; phrases of two or more words keep
/// that harmless. Only ASCII bytes are ever replaced, dropped or collapsed, so the bytes of other
/// letters pass through whole.
fn skeleton_word(word: &[u8], letters: &mut Vec<u8>, out: &mut Vec<u8>) {
    const DIGRAPHS: [(&[u8], u8); 6] = [
        (b"shch", b's'),
        (b"sch", b's'),
        (b"sh", b's'),
        (b"zh", b'z'),
        (b"kh", b'h'),
        (b"ch", b'c'),
    ];
    letters.clear();
    let mut rest = word;
    while let Some(&first) = rest.first() {
        let digraph = match first {
            b's' | b'z' | b'k' | b'c' => DIGRAPHS
                .iter()
                .find(|(digraph, _)| rest.starts_with(digraph)),
            _ => None,
        };
        let (letter, used) = match digraph {
            Some(&(digraph, letter)) => (letter, digraph.len()),
            None => (single(first), 1),
        };
        rest = &rest[used..];
        if !(letter.is_ascii() && letters.last() == Some(&letter)) {
            letters.push(letter);
        }
    }
    let mut prev: Option<u8> = None;
    for (i, &letter) in letters.iter().enumerate() {
        let next = letters.get(i + 1).copied();
        let glide = match letter {
            b'i' => next.is_some_and(is_vowel),
            b'e' => next == Some(b'a'),
            _ => false,
        };
        if glide && !prev.is_some_and(is_vowel) {
            continue;
        }
        if !(letter.is_ascii() && prev == Some(letter)) {
            out.push(letter);
            prev = Some(letter);
        }
    }
}

fn single(b: u8) -> u8 {
    match b {
        b'y' | b'j' => b'i',
        b'w' => b'v',
        b'x' => b'h',
        b'4' => b'c',
        other => other,
    }
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_makes_spellings_agree() {
        let same = "щ shch|щ sch|ш sh|ж zh|х kh|х x|ч ch|ч 4|я ya|меня menja|меня menia|меня mena|\
                    люблю lyublyu|люблю ljublju|ёж еж|kill KiLL|ș ş|ț ţ|ăâî aai|i'm im|ЁЖИК ёжик";
        for pair in same.split('|') {
            let (a, b) = pair.split_once(' ').unwrap();
            assert_eq!(fold(a), fold(b), "{a:?} vs {b:?}");
        }
        assert_eq!(fold("  Vreau...să   MOR!! "), b" vrau sa mor ");
        assert_eq!(fold(""), b" ");
    }

    #[test]
    fn short_paths_fold_as_decomposition_would() {
        for c in "ăâîșşțţĂÂÎȘŞȚŢ".chars() {
            let mut slow = Folder {
                out: Vec::new(),
                word: Vec::new(),
                letters: Vec::new(),
            };
            slow.push_other(c);
            assert_eq!(
                romanian(c).map(str::as_bytes),
                Some(slow.word.as_slice()),
                "{c}"
            );
        }
        for c in ('\u{400}'..='\u{45f}').chain(['Ґ', 'ґ']) {
            let lower = c.to_lowercase().next().unwrap();
            assert_eq!(cyrillic(c), cyrillic(lower), "{c}");
        }
    }
}
