//! Urgency grading: each message from a contact is checked, in memory and before it is sealed,
//! against phrase lists that the helpline's clinical staff own (`config/urgency/<lang>.txt`; the
//! format is explained at the top of each file).
//!
//! This module owns the lists' format and the matcher; its [`fold`] submodule owns the folding that
//! makes "vreau să mor", "VREAU SA MOR" and "vreau   sa... mor" (or "хочу умереть" and
//! "hochu umeret'") look alike. It must never store, return or log the text it grades or the phrase
//! that matched: [`Grader::grade`] answers only a level and a category.
//!
//! Text and phrases are folded the same way into a Latin skeleton, and a phrase matches where its
//! skeleton occurs in the message's on word edges (a phrase ending in `*` matches any word that
//! starts with it). Phrases under `[harmless]` are idioms that contain an urgent phrase: "mă bate
//! gândul" (I'm thinking of) contains "mă bate" (he beats me). An urgent phrase found only inside
//! one of them does not count. The matcher is built once: grading a message costs folding it once
//! and one pass of an Aho-Corasick automaton over it, a few microseconds for a long message.
//!
//! All lists are checked for every message whatever the conversation's language, because children
//! mix languages. Matching is whole-word: "cut myself" is not found in "haircut myself", "kill" not
//! in "skill". Figures of speech are not understood: "I'm dying to see that movie" matches nothing
//! (no list holds "dying"), but "mom is going to kill me" does match, at the level its line gives
//! (`high`, in `en.txt`), which is why such phrases carry their own level.

mod fold;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind, Span};

use self::fold::{fold, spellings, stem_is_stable};
use crate::conversation::Urgency;

/// What a matched phrase is about. Stored with the new level; the phrase itself never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Suicide and self-harm.
    SelfHarm,
    /// Abuse in progress (physical, sexual, at home or elsewhere).
    Abuse,
    /// Sextortion and blackmail with images.
    Sextortion,
    /// Immediate danger.
    Danger,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::SelfHarm,
        Category::Abuse,
        Category::Sextortion,
        Category::Danger,
    ];

    /// The name used in the lists' section headers, in Redis and in frames to staff.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::SelfHarm => "self_harm",
            Category::Abuse => "abuse",
            Category::Sextortion => "sextortion",
            Category::Danger => "danger",
        }
    }

    fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The level of a section whose header names no level.
    fn default_level(self) -> Urgency {
        match self {
            Category::SelfHarm | Category::Danger => Urgency::Critical,
            Category::Abuse | Category::Sextortion => Urgency::High,
        }
    }

    /// Breaks ties between matches at the same level, so a message always grades the same way:
    /// self-harm, then danger, then abuse, then sextortion.
    fn tie_rank(self) -> u8 {
        match self {
            Category::SelfHarm => 3,
            Category::Danger => 2,
            Category::Abuse => 1,
            Category::Sextortion => 0,
        }
    }
}

/// The outcome of grading one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grade {
    pub level: Urgency,
    pub category: Category,
}

impl Grade {
    fn rank(self) -> (Urgency, u8) {
        (self.level, self.category.tie_rank())
    }
}

/// What finding one folded phrase means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Urgent(Grade),
    /// An idiom that contains an urgent phrase ("mă bate gândul", I'm thinking of, contains "mă
    /// bate", he beats me): an urgent phrase found only inside it does not count.
    Harmless,
}

impl Meaning {
    /// Where two phrases fold alike, the one that ranks higher is kept: an urgent phrase always
    /// beats a harmless one, so no alarm is lost to a slip in the `[harmless]` section.
    fn rank(self) -> Option<(Urgency, u8)> {
        match self {
            Meaning::Urgent(grade) => Some(grade.rank()),
            Meaning::Harmless => None,
        }
    }
}

/// A list file that cannot be used: which file, which line, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum UrgencyError {
    #[error("cannot read the urgency phrase lists in {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the urgency phrase list {file}: {source}")]
    ReadFile {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{dir} holds no <language>.txt urgency phrase list (e.g. ro.txt)")]
    NoLists { dir: PathBuf },
    #[error("{file}, line {line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: LineProblem,
    },
    #[error("the urgency phrase lists hold no phrase at all, so nothing would ever be graded")]
    NoPhrases,
    #[error("cannot build the urgency matcher: {0}")]
    Build(#[from] aho_corasick::BuildError),
}

/// What is wrong with one line of a list file, in words its editors understand.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error(
        "unknown category \"{0}\"; use self_harm, abuse, sextortion, danger or harmless, \
         e.g. [self_harm critical]"
    )]
    UnknownCategory(String),
    #[error("unknown level \"{0}\"; use low, normal, high or critical")]
    UnknownLevel(String),
    #[error(
        "a section header is a category and an optional level in square brackets, \
         e.g. [abuse high]"
    )]
    BadHeader,
    #[error("this phrase comes before any [category level] header, so it has no category")]
    NoSection,
    #[error("phrases under [harmless] take no level: they only stop others from counting")]
    LevelOnHarmless,
    #[error("this phrase has fewer than {MIN_LETTERS} letters, so it would match far too much")]
    TooShort,
    #[error("a * may only end a phrase, right after the last letter (e.g. sinucid*)")]
    MisplacedWildcard,
    #[error(
        "the word stem before * changes its spelling when letters follow it, so it would miss \
         words it should find; move the * one letter earlier or later"
    )]
    UnstableStem,
    #[error(
        "this phrase has more than {MAX_FORMS} Latin spellings; split it into shorter phrases"
    )]
    TooManyForms,
}

/// Fewer letters than this would match inside too many ordinary messages.
const MIN_LETTERS: usize = 3;
/// Spelling variants per phrase; six letters like ж or ц in one phrase would pass it.
const MAX_FORMS: usize = 256;

/// The lists shipped in the binary.
const BUILTIN: [(&str, &str); 4] = [
    ("ro", include_str!("../../config/urgency/ro.txt")),
    ("ru", include_str!("../../config/urgency/ru.txt")),
    ("uk", include_str!("../../config/urgency/uk.txt")),
    ("en", include_str!("../../config/urgency/en.txt")),
];

/// Grades messages against every list at once. Built once at start; grading takes `&self` and is
/// safe to share between threads.
pub struct Grader {
    /// Every folded phrase form, matched with overlapping semantics so that a lower-level phrase
    /// found first can never hide a higher-level one that overlaps it.
    matcher: AhoCorasick,
    /// What each pattern means, indexed by the matcher's pattern id.
    meanings: Vec<Meaning>,
}

impl fmt::Debug for Grader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grader")
            .field("patterns", &self.meanings.len())
            .finish()
    }
}

impl Grader {
    /// The lists shipped in the binary (`config/urgency/*.txt`).
    pub fn builtin() -> Result<Grader, UrgencyError> {
        Grader::build(
            BUILTIN
                .iter()
                .map(|(lang, text)| (format!("config/urgency/{lang}.txt"), *text)),
        )
    }

    /// Lists from a directory of `<lang>.txt` files (helplines that edit their own).
    pub fn from_dir(dir: &Path) -> Result<Grader, UrgencyError> {
        let read_dir = |source| UrgencyError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "txt") {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(UrgencyError::NoLists {
                dir: dir.to_owned(),
            });
        }
        files.sort();
        let mut texts = Vec::with_capacity(files.len());
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => texts.push((file.display().to_string(), text)),
                Err(source) => return Err(UrgencyError::ReadFile { file, source }),
            }
        }
        Grader::build(
            texts
                .iter()
                .map(|(name, text)| (name.clone(), text.as_str())),
        )
    }

    /// Lists given as `(language, file text)`; errors name the file `<language>.txt`.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Grader, UrgencyError> {
        Grader::build(
            sources
                .iter()
                .map(|(lang, text)| (format!("{lang}.txt"), *text)),
        )
    }

    fn build<'a>(lists: impl Iterator<Item = (String, &'a str)>) -> Result<Grader, UrgencyError> {
        // One entry per folded form: where two phrases fold alike, the higher rank is kept.
        let mut forms: BTreeMap<Vec<u8>, Meaning> = BTreeMap::new();
        for (file, text) in lists {
            parse_list(&file, text, &mut forms)?;
        }
        if !forms.values().any(|m| matches!(m, Meaning::Urgent(_))) {
            return Err(UrgencyError::NoPhrases);
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(forms.keys())?;
        Ok(Grader {
            matcher,
            meanings: forms.into_values().collect(),
        })
    }

    /// The highest grade any phrase in `text` reaches, or `None`.
    pub fn grade(&self, text: &str) -> Option<Grade> {
        let folded = fold(text);
        // Neither vector allocates unless a phrase is found, which most messages never do.
        let mut urgent: Vec<(Span, Grade)> = Vec::new();
        let mut harmless: Vec<Span> = Vec::new();
        // Overlapping search cannot panic here: the matcher is built with MatchKind::Standard, the
        // one kind that supports it.
        for found in self.matcher.find_overlapping_iter(folded.as_slice()) {
            match self.meanings.get(found.pattern().as_usize()) {
                Some(Meaning::Urgent(grade)) => urgent.push((found.span(), *grade)),
                Some(Meaning::Harmless) => harmless.push(found.span()),
                None => {}
            }
        }
        let inside = |span: &Span| {
            harmless
                .iter()
                .any(|h| h.start <= span.start && span.end <= h.end)
        };
        urgent
            .into_iter()
            .filter(|(span, _)| !inside(span))
            .map(|(_, grade)| grade)
            .max_by_key(|grade| grade.rank())
    }
}

/// Reads one list file into `forms`.
fn parse_list(
    file: &str,
    text: &str,
    forms: &mut BTreeMap<Vec<u8>, Meaning>,
) -> Result<(), UrgencyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut section: Option<Meaning> = None;
    for (index, raw) in text.lines().enumerate() {
        let at = |problem| UrgencyError::Line {
            file: file.to_owned(),
            line: index + 1,
            problem,
        };
        let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            section = Some(parse_header(header).map_err(at)?);
            continue;
        }
        let section = section.ok_or_else(|| at(LineProblem::NoSection))?;
        let (phrase, meaning) = match (line.split_once('|'), section) {
            (None, section) => (line, section),
            (Some(_), Meaning::Harmless) => return Err(at(LineProblem::LevelOnHarmless)),
            (Some((phrase, level)), Meaning::Urgent(grade)) => {
                let level = parse_level(level.trim()).map_err(at)?;
                (phrase.trim(), Meaning::Urgent(Grade { level, ..grade }))
            }
        };
        for form in phrase_forms(phrase).map_err(at)? {
            let kept = forms.entry(form).or_insert(meaning);
            if meaning.rank() > kept.rank() {
                *kept = meaning;
            }
        }
    }
    Ok(())
}

/// `self_harm critical]` (the `[` already taken) into a section's category and level, or
/// `harmless]`.
fn parse_header(header: &str) -> Result<Meaning, LineProblem> {
    let inner = header.strip_suffix(']').ok_or(LineProblem::BadHeader)?;
    let mut words = inner.split_whitespace();
    let written = words.next().ok_or(LineProblem::BadHeader)?;
    let name = written.to_ascii_lowercase();
    let meaning = if name == "harmless" {
        Meaning::Harmless
    } else {
        let category = Category::parse(&name)
            .ok_or_else(|| LineProblem::UnknownCategory(written.to_owned()))?;
        let level = match words.next() {
            Some(level) => parse_level(level)?,
            None => category.default_level(),
        };
        Meaning::Urgent(Grade { level, category })
    };
    if words.next().is_some() {
        return Err(LineProblem::BadHeader);
    }
    Ok(meaning)
}

fn parse_level(level: &str) -> Result<Urgency, LineProblem> {
    Urgency::parse(&level.to_ascii_lowercase())
        .ok_or_else(|| LineProblem::UnknownLevel(level.to_owned()))
}

/// The patterns one phrase contributes: each spelling folded, bounded by spaces on both sides, or
/// only on the left when the phrase ends in `*`.
fn phrase_forms(phrase: &str) -> Result<Vec<Vec<u8>>, LineProblem> {
    let (body, stem) = match phrase.strip_suffix('*') {
        Some(body) => (body, true),
        None => (phrase, false),
    };
    if body.contains('*') || (stem && body.ends_with(char::is_whitespace)) {
        return Err(LineProblem::MisplacedWildcard);
    }
    let mut forms = Vec::new();
    for spelling in spellings(body, MAX_FORMS).ok_or(LineProblem::TooManyForms)? {
        let mut form = fold(&spelling);
        let letters = String::from_utf8_lossy(&form)
            .chars()
            .filter(|c| c.is_alphanumeric())
            .count();
        if letters < MIN_LETTERS {
            return Err(LineProblem::TooShort);
        }
        if stem {
            form.pop(); // the closing space: a stem matches the start of a longer word
            if !stem_is_stable(&spelling, &form) {
                return Err(LineProblem::UnstableStem);
            }
        }
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    Ok(forms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Grader {
        Grader::builtin().expect("the shipped lists load")
    }

    /// Lines of `category level: message`: each message must grade exactly so.
    fn check(grader: &Grader, table: &str) {
        for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (expected, text) = line.split_once(": ").expect("category level: message");
            let (category, level) = expected.split_once(' ').expect("category level");
            let want = Grade {
                level: Urgency::parse(level).expect("a level"),
                category: Category::parse(category).expect("a category"),
            };
            assert_eq!(grader.grade(text), Some(want), "{text:?}");
        }
    }

    /// One message per line: none may match.
    fn check_none(grader: &Grader, messages: &str) {
        for text in messages.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert_eq!(grader.grade(text), None, "{text:?}");
        }
    }

    #[test]
    fn romanian_categories() {
        check(
            &builtin(),
            "
            self_harm critical: Nu mai pot. Vreau să mor.
            self_harm critical: mă tai
            self_harm critical: ma sinucid
            self_harm critical: am baut pastile
            self_harm critical: ma gandesc la sinucidere
            self_harm high: mai bine nu ma nasteam
            abuse high: tata mă bate în fiecare seară
            abuse high: el mă atinge
            sextortion high: un tip îmi cere poze
            sextortion high: o sa publice pozele
            sextortion high: e santaj
            danger critical: sunt în pericol
            danger critical: cineva ma urmareste
            ",
        );
    }

    #[test]
    fn romanian_with_and_without_diacritics_and_both_forms_of_s_and_t() {
        check(
            &builtin(),
            "
            sextortion high: mă șantajează
            sextortion high: mă şantajează
            sextortion high: ma santajeaza
            sextortion high: MĂ ȘANTAJEAZĂ
            sextortion high: MA SANTAJEAZA!!!
            self_harm critical: nu mai vreau să fiu în viață
            self_harm critical: nu mai vreau să fiu în viaţă
            self_harm critical: nu mai vreau sa fiu in viata
            self_harm critical: îmi tai venele
            self_harm critical: imi tai venele
            ",
        );
        // ș with the comma below (U+0219) and with the cedilla (U+015F), and marks typed apart.
        let decomposed = "ma\u{306} s\u{326}antajeaza\u{306}";
        for text in ["m\u{103} \u{219}antaj", "m\u{103} \u{15f}antaj", decomposed] {
            assert!(builtin().grade(text).is_some(), "{text:?}");
        }
    }

    #[test]
    fn punctuation_and_spaces_are_ignored() {
        let g = builtin();
        for text in [
            "vreau   sa... mor",
            "VREAU-SĂ-MOR!!!",
            "vreau\nsă\tmor",
            "(vreau să mor)",
        ] {
            assert!(g.grade(text).is_some(), "{text:?}");
        }
    }

    #[test]
    fn russian_in_cyrillic_and_latin_letters() {
        check(
            &builtin(),
            "
            self_harm critical: Я хочу умереть
            self_harm critical: hochu umeret
            self_harm critical: xochu umeret'
            self_harm critical: ho4u umeret
            self_harm critical: ja hociu umeret
            self_harm critical: хочу покончить с собой
            self_harm critical: pokonchit s soboj
            self_harm critical: pokonchit' s soboi
            self_harm critical: pokoncit s soboy
            self_harm critical: ne hochu zhit
            self_harm critical: ne hochu jit'
            self_harm critical: я режу себя
            self_harm critical: ya rezhu sebya
            self_harm critical: ubyu sebya
            abuse high: он меня бьёт
            abuse high: Отчим меня бьет каждый день
            abuse high: on menya bjot
            abuse high: on menja b'et
            abuse high: on mena biot
            sextortion high: он меня шантажирует
            sextortion high: on menya shantazhiruet
            sextortion high: menja shantajiruet
            sextortion high: просит скинуть фото
            sextortion high: prosit skinut foto
            danger critical: я в опасности
            danger critical: ya v opasnosti
            danger critical: ja v opasnosti
            danger critical: u nego nozh
            danger critical: u nego noj
            ",
        );
    }

    #[test]
    fn ukrainian_in_cyrillic_and_latin_letters() {
        check(
            &builtin(),
            "
            self_harm critical: Я хочу померти
            self_harm critical: hochu pomerty
            self_harm critical: xo4u pomerti
            self_harm critical: khochu pomerty
            self_harm critical: покінчити з собою
            self_harm critical: pokinchyty z soboyu
            self_harm critical: pokinchiti z soboju
            abuse high: він мене б'є
            abuse high: він мене бʼє
            abuse high: мене бє
            abuse high: vin mene bye
            abuse high: vin mene b'je
            sextortion high: він мене шантажує
            sextortion high: vin mene shantazhuye
            sextortion high: shantazhuje
            danger critical: я в небезпеці
            danger critical: ya v nebezpetsi
            danger critical: ja v nebezpeci
            ",
        );
    }

    #[test]
    fn english_categories() {
        check(
            &builtin(),
            "
            self_harm critical: I want to die
            self_harm critical: im going to kill myself tonight
            self_harm critical: i cut myself again
            self_harm critical: i'm thinking about suicide
            self_harm critical: I took an overdose
            abuse high: my dad hits me
            abuse high: he touches me when mom is out
            sextortion high: he wants me to send nudes
            sextortion high: he's going to share my pics
            sextortion high: it's blackmail
            danger critical: i'm in danger
            danger critical: Im in danger!!
            danger critical: he has a gun
            danger high: my mom is going to kill me
            ",
        );
    }

    #[test]
    fn every_list_is_checked_whatever_the_language() {
        check(
            &builtin(),
            "
            self_harm critical: nu știu ce să fac, хочу умереть
            self_harm critical: хочу umeret
            sextortion high: please help, mă șantajează
            ",
        );
    }

    #[test]
    fn whole_words_only() {
        check_none(
            &builtin(),
            "
            there's a shortcut to school
            I love my new skills
            my haircut myself looks bad
            mama a deschis dezbaterea
            разобьёт чашку
            I'm dying to see that movie
            ",
        );
        let own = Grader::from_sources(&[("xx", "[self_harm]\nucid\ncut\nomor*\n")]).unwrap();
        check_none(&own, "sinucidere\nshortcut\nucidere\nzomor");
        check(
            &own,
            "self_harm critical: el ucid\nself_harm critical: cut!",
        );
        check(
            &own,
            "self_harm critical: omor\nself_harm critical: mă omorâți",
        );
    }

    #[test]
    fn ordinary_messages_match_nothing() {
        check_none(
            &builtin(),
            "
            bună, am o întrebare despre școală
            buna ziua! cum pot vorbi cu cineva?
            ma cert cu parintii des
            mă bat cu colegii uneori
            привет
            я поссорилась с подругой
            мама меня убьёт за двойку
            можно скинуть фото домашки?
            привіт, можна поговорити?
            hi, can I talk to someone?
            my friends are mean to me at school
            I have exams next week and I'm stressed
            this exam is killing me
            santa claus is coming
            it's 5 kms away
            😢😢😢
            ...!!!
            ",
        );
        assert_eq!(builtin().grade(""), None);
    }

    #[test]
    fn the_highest_level_wins() {
        check(
            &builtin(),
            "
            abuse high: mă bate
            self_harm critical: mă bate și vreau să mor
            self_harm critical: vreau să mor, mă bate
            danger critical: he hits me and i'm in danger
            ",
        );
        // Phrases that overlap in the text are all found, whichever starts first.
        let lists = "[abuse]\nmă bate\n[self_harm low]\nbate rău\n[danger]\nbate | normal\n";
        let own = Grader::from_sources(&[("ro", lists)]).unwrap();
        check(&own, "abuse high: mă bate rău");
    }

    #[test]
    fn a_phrase_inside_a_harmless_expression_does_not_count() {
        let g = builtin();
        check_none(
            &g,
            "mă bate gândul să plec în vacanță\nce spui mă atinge la suflet",
        );
        check(
            &g,
            "
            abuse high: mă bate gândul să spun că tata mă bate
            self_harm critical: mă bate gândul să mă sinucid
            abuse high: mă bate
            ",
        );
        let lists = "[abuse]\nmă bate\n[harmless]\nmă bate gândul\nmă bate\n";
        let own = Grader::from_sources(&[("ro", lists)]).unwrap();
        check(&own, "abuse high: mă bate"); // an urgent phrase beats the same harmless one
    }

    #[test]
    fn ties_break_the_same_way_every_time() {
        check(
            &builtin(),
            "
            self_harm critical: sunt în pericol și vreau să mor
            self_harm critical: vreau să mor, sunt în pericol
            ",
        );
    }

    #[test]
    fn levels_per_section_and_per_phrase() {
        // Names are read whatever their case.
        let lists =
            "[danger]\nsunt în pericol\nnu știu unde sunt | High\n[Abuse NORMAL]\nîmi ia tot";
        let g = Grader::from_sources(&[("ro", lists)]).unwrap();
        check(
            &g,
            "
            danger critical: sunt in pericol
            danger high: nu stiu unde sunt
            abuse normal: imi ia tot
            ",
        );
    }

    /// The phrases of one shipped list, without levels and stars, and whether each is harmless.
    fn shipped_phrases(text: &str) -> Vec<(&str, bool)> {
        let mut harmless = false;
        let mut phrases = Vec::new();
        for line in text.lines() {
            let line = line
                .split_once('#')
                .map_or(line, |(before, _)| before)
                .trim();
            if line.starts_with('[') {
                harmless = line == "[harmless]";
            } else if !line.is_empty() {
                let phrase = line.split_once('|').map_or(line, |(p, _)| p);
                phrases.push((phrase.trim_end_matches([' ', '*']), harmless));
            }
        }
        phrases
    }

    #[test]
    fn every_shipped_phrase_finds_its_own_text() {
        let g = builtin();
        for (lang, text) in BUILTIN {
            for (phrase, harmless) in shipped_phrases(text) {
                assert_eq!(g.grade(phrase).is_none(), harmless, "{lang}: {phrase:?}");
            }
        }
    }

    /// Test-only transliterations: the ways children write Russian and Ukrainian in Latin letters.
    /// A scheme is a list of a Cyrillic letter followed by its Latin spelling; other letters are
    /// spelt as [`fold::cyrillic`] spells them.
    fn transliterate(text: &str, scheme: &str) -> String {
        let letter = |c: char| {
            let mut rules = scheme.split(' ');
            match rules.find_map(|rule| rule.strip_prefix(c)) {
                Some(latin) => latin.to_owned(),
                None => fold::cyrillic(c).map_or_else(|| c.to_string(), str::to_owned),
            }
        };
        text.chars()
            .flat_map(char::to_lowercase)
            .map(letter)
            .collect()
    }

    const SCHOLARLY: &str = "хkh юyu яya ёyo ь' їyi";
    const CHAT: &str = "жj хx ч4 щsch цc юju яja йj ёjo єje їji гh";
    const ROMANIAN_STYLE: &str = "жj чc шș щș цț юiu яia йi ыî ёio єie їii";

    #[test]
    fn every_cyrillic_phrase_finds_common_transliterations() {
        let g = builtin();
        for (lang, text) in BUILTIN
            .iter()
            .filter(|(lang, _)| ["ru", "uk"].contains(lang))
        {
            for (phrase, harmless) in shipped_phrases(text) {
                for scheme in [SCHOLARLY, CHAT, ROMANIAN_STYLE] {
                    let latin = transliterate(phrase, scheme);
                    let found = g.grade(&latin).is_some();
                    assert_eq!(found, !harmless, "{lang}: {phrase:?} as {latin:?}");
                }
            }
        }
    }

    #[test]
    fn a_bad_list_names_the_file_and_line() {
        let cases = [
            (
                "[self_harm critical]\nvreau să mor\n[selfharm]\n",
                "3: unknown category \"selfharm\"",
            ),
            ("# x\n\n[abuse urgent]\n", "3: unknown level \"urgent\""),
            (
                "vreau să mor\n",
                "1: this phrase comes before any [category level] header",
            ),
            ("[abuse]\nmă bate | hihg\n", "2: unknown level \"hihg\""),
            ("[abuse\n", "1: a section header is a category"),
            (
                "[abuse high critical]\n",
                "1: a section header is a category",
            ),
            ("[abuse]\n\nmă *bate\n", "3: a * may only end a phrase"),
            ("[abuse]\nmă bate *\n", "2: a * may only end a phrase"),
            ("[abuse]\nab\n", "2: this phrase has fewer than 3 letters"),
            (
                "[harmless]\nmă bate gândul | high\n",
                "2: phrases under [harmless] take no level",
            ),
            ("[harmless high]\n", "1: a section header is a category"),
            ("[abuse]\nubi*\n", "2: the word stem before * changes"),
            ("[abuse]\nnude*\n", "2: the word stem before * changes"),
        ];
        for (text, problem) in cases {
            let message = Grader::from_sources(&[("ro", text)])
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with(&format!("ro.txt, line {problem}")),
                "{message}"
            );
        }
        for empty in ["# nothing yet\n[abuse]\n", "[harmless]\nmă bate gândul\n"] {
            let empty = Grader::from_sources(&[("ro", empty)]);
            assert!(matches!(empty, Err(UrgencyError::NoPhrases)));
        }
    }

    #[test]
    fn lists_load_from_a_directory() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/urgency");
        check(
            &Grader::from_dir(&shipped).unwrap(),
            "self_harm critical: vreau să mor",
        );

        let dir = std::env::temp_dir().join(format!("helpline-urgency-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ro.txt"), "[abuse]\nmă bate\n[danger panic]\n").unwrap();
        std::fs::write(dir.join("notes.md"), "not a list").unwrap();
        let message = Grader::from_dir(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            message.contains("ro.txt, line 3: unknown level \"panic\""),
            "{message}"
        );

        let missing = Grader::from_dir(&dir).unwrap_err();
        assert!(matches!(missing, UrgencyError::ReadDir { .. }), "{missing}");
    }

    #[test]
    fn category_names() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}
