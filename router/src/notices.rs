//! The short texts the gateway sends a contact (a child, maybe in distress) in their language:
//! "you are anonymous", "you are number 3 in line", "we can't accept photos here"…
//!
//! This module owns the texts' files (`config/notices/<lang>.toml`, one string per notice code,
//! kept by the helpline's staff) and the filling of their `{name}` placeholders. It knows no
//! channel: the adapters decide whether a text goes out as a `notice` frame or as a system message.
//! The values that fill placeholders are a queue position, a counsellor's display name or a limit,
//! never anything that identifies a contact.

use std::collections::HashMap;

/// The language every lookup falls back to; its file must hold every code.
const FALLBACK: &str = "en";

/// The texts shipped in the binary.
const BUILTIN: [(&str, &str); 4] = [
    ("ro", include_str!("../../config/notices/ro.toml")),
    ("ru", include_str!("../../config/notices/ru.toml")),
    ("uk", include_str!("../../config/notices/uk.toml")),
    ("en", include_str!("../../config/notices/en.toml")),
];

/// A texts file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(
        "{file} is not a valid notices file (one `code = \"text\"` line per notice): {source}"
    )]
    Parse {
        file: String,
        source: toml::de::Error,
    },
    #[error("no {FALLBACK}.toml notices file: it is the fallback for every other language")]
    NoFallback,
}

/// Every notice text, per language, then per code.
#[derive(Debug, Clone)]
pub struct Notices {
    by_lang: HashMap<String, HashMap<String, String>>,
}

impl Notices {
    /// The texts shipped in the binary (`config/notices/*.toml`).
    pub fn builtin() -> Result<Notices, NoticeError> {
        Notices::load(
            BUILTIN
                .iter()
                .map(|(lang, text)| (*lang, format!("config/notices/{lang}.toml"), *text)),
        )
    }

    /// Texts given as `(language, file text)`; errors name the file `<language>.toml`.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Notices, NoticeError> {
        Notices::load(
            sources
                .iter()
                .map(|(lang, text)| (*lang, format!("{lang}.toml"), *text)),
        )
    }

    fn load<'a>(
        files: impl Iterator<Item = (&'a str, String, &'a str)>,
    ) -> Result<Notices, NoticeError> {
        let mut by_lang = HashMap::new();
        for (lang, file, text) in files {
            let texts: HashMap<String, String> =
                toml::from_str(text).map_err(|source| NoticeError::Parse { file, source })?;
            by_lang.insert(lang.to_ascii_lowercase(), texts);
        }
        if !by_lang.contains_key(FALLBACK) {
            return Err(NoticeError::NoFallback);
        }
        Ok(Notices { by_lang })
    }

    /// Text for `code` in `lang` (a tag like "ro" or "ro-MD"), falling back to English; `vars` fill
    /// `{name}` placeholders, and a placeholder without a value stays as written. A code that not
    /// even English has gives the code itself, so a gap shows as a word rather than a blank message
    /// (a test keeps every language complete).
    pub fn text(&self, lang: &str, code: &str, vars: &[(&str, &str)]) -> String {
        match self
            .lookup(lang, code)
            .or_else(|| self.lookup(FALLBACK, code))
        {
            Some(template) => fill(template, vars),
            None => code.to_owned(),
        }
    }

    /// Whether `lang` itself (without the English fallback) has a text for `code`.
    pub fn has(&self, lang: &str, code: &str) -> bool {
        self.lookup(lang, code).is_some()
    }

    fn lookup(&self, lang: &str, code: &str) -> Option<&str> {
        let primary = lang
            .split(['-', '_'])
            .next()
            .unwrap_or(lang)
            .to_ascii_lowercase();
        self.by_lang.get(&primary)?.get(code).map(String::as_str)
    }
}

/// Replaces each `{name}` in `template` with its value in `vars`, in one pass: a value is never
/// read for placeholders itself, so a counsellor named "{max}" stays "{max}".
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            let (_, value) = vars.iter().find(|(var, _)| *var == name)?;
            Some((*value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The `{name}` placeholders of a text, in order.
    fn placeholders(text: &str) -> Vec<&str> {
        let parts = text.split('{').skip(1);
        parts
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
            .collect()
    }

    fn notices() -> Notices {
        Notices::builtin().expect("the shipped notices load")
    }

    const CODES: [&str; 31] = [
        "welcome",
        "queued",
        "assigned",
        "transferred",
        "media_withheld",
        "rate_limited",
        "blocked",
        "after_hours",
        "ended_by_counsellor",
        "ended_inactive",
        "too_long",
        "emergency",
        // Channels without a socket (Telegram): the wait, the contact's own end and the offer to
        // delete the chat, and the language and topic questions with their buttons.
        "wait_estimate",
        "ended_by_contact",
        "delete_offer",
        "delete_yes",
        "delete_no",
        "deleted",
        "choose_language",
        "language_name",
        "choose_topic",
        "topic_skip",
        "topic_online-safety",
        "topic_abuse",
        "topic_family",
        "topic_school",
        "topic_feelings",
        "topic_other",
        // SMS: how to choose a language and how to end, after the welcome.
        "sms_help",
        // Erasure on request (Telegram `/forget`, the SMS keyword): done, or nothing to erase.
        "forgotten",
        "forget_nothing",
    ];

    #[test]
    fn english_has_every_code_with_its_placeholders() {
        let n = notices();
        let english = &n.by_lang[FALLBACK];
        let codes: BTreeSet<&str> = english.keys().map(String::as_str).collect();
        assert_eq!(codes, CODES.into_iter().collect());
        let expected = [
            ("queued", "position"),
            ("assigned", "counsellor"),
            ("too_long", "max"),
            ("wait_estimate", "minutes"),
        ];
        for code in CODES {
            let wanted: Vec<&str> = expected
                .iter()
                .filter(|(c, _)| *c == code)
                .map(|(_, name)| *name)
                .collect();
            assert_eq!(placeholders(&english[code]), wanted, "{code}");
        }
    }

    #[test]
    fn every_language_has_every_english_code_with_the_same_placeholders() {
        let n = notices();
        let english = &n.by_lang[FALLBACK];
        for (lang, texts) in &n.by_lang {
            for (code, text) in english {
                let own = texts.get(code);
                let own = own.unwrap_or_else(|| panic!("{lang}.toml has no {code}"));
                let mut theirs = placeholders(own);
                let mut ours = placeholders(text);
                theirs.sort_unstable();
                ours.sort_unstable();
                assert_eq!(theirs, ours, "{lang}: {code}");
            }
            for code in texts.keys() {
                assert!(
                    english.contains_key(code),
                    "{lang}.toml has {code}, which en.toml lacks"
                );
            }
            assert!(
                texts.values().all(|t| !t.trim().is_empty()),
                "{lang}: an empty text"
            );
        }
        let langs: BTreeSet<&str> = n.by_lang.keys().map(String::as_str).collect();
        assert_eq!(langs, ["en", "ro", "ru", "uk"].into_iter().collect());
    }

    #[test]
    fn the_numbers_and_the_reporting_site_are_in_every_language() {
        let n = notices();
        for lang in ["ro", "ru", "uk", "en"] {
            let emergency = n.text(lang, "emergency", &[]);
            assert!(
                emergency.contains("112") && emergency.contains("116 111"),
                "{lang}"
            );
            assert!(
                n.text(lang, "media_withheld", &[])
                    .contains("siguronline.md"),
                "{lang}"
            );
        }
    }

    #[test]
    fn placeholders_are_filled() {
        let n = notices();
        let queued = n.text("en", "queued", &[("position", "3")]);
        assert!(queued.starts_with("You are number 3 in line."), "{queued}");
        let joined = n.text("ro", "assigned", &[("counsellor", "Ana")]);
        assert!(joined.starts_with("Ana este"), "{joined}");
        assert!(n
            .text("ru", "too_long", &[("max", "2000")])
            .ends_with(": 2000."));
    }

    #[test]
    fn filling_is_one_pass_and_keeps_what_it_cannot_fill() {
        assert_eq!(
            fill("{a} and {b}", &[("a", "{b}"), ("b", "x")]),
            "{b} and x"
        );
        assert_eq!(fill("{missing} {a", &[("a", "x")]), "{missing} {a");
        assert_eq!(fill("{{a}}", &[("a", "x")]), "{x}");
        assert_eq!(fill("no placeholders", &[]), "no placeholders");
        assert_eq!(fill("ș{a}ț", &[("a", "ă")]), "șăț");
    }

    #[test]
    fn unknown_languages_and_codes_fall_back() {
        let n = notices();
        assert_eq!(n.text("de", "welcome", &[]), n.text("en", "welcome", &[]));
        assert_eq!(
            n.text("ro-MD", "welcome", &[]),
            n.text("ro", "welcome", &[])
        );
        assert_eq!(
            n.text("RU_md", "welcome", &[]),
            n.text("ru", "welcome", &[])
        );
        assert_eq!(n.text("ro", "no_such_code", &[]), "no_such_code");
        let partial = Notices::from_sources(&[("en", "a = \"A\"\nb = \"B\""), ("ro", "a = \"Ă\"")]);
        let partial = partial.unwrap();
        assert_eq!(partial.text("ro", "a", &[]), "Ă");
        assert_eq!(partial.text("ro", "b", &[]), "B");
        assert!(partial.has("ro", "a") && !partial.has("ro", "b") && partial.has("en", "b"));
        assert!(n.has("uk", "welcome") && !n.has("de", "welcome"));
    }

    #[test]
    fn a_bad_file_is_named() {
        let bad = Notices::from_sources(&[("en", "a = \"A\""), ("ro", "a = 3\n")]);
        let message = bad.unwrap_err().to_string();
        assert!(
            message.starts_with("ro.toml is not a valid notices file"),
            "{message}"
        );
        let unclosed = Notices::from_sources(&[("en", "welcome = \"Hi")]).unwrap_err();
        assert!(unclosed.to_string().starts_with("en.toml"), "{unclosed}");
        let no_english = Notices::from_sources(&[("ro", "a = \"A\"")]);
        assert!(matches!(no_english, Err(NoticeError::NoFallback)));
    }
}
