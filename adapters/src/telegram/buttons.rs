//! The questions the bot asks with buttons (language, topic, deleting the chat after `/end`) and
//! the data their buttons carry back. Labels come from the notices files, in the contact's
//! language; button data holds only a language, a topic or a conversation id (at most 64 bytes).

use helpline_router::Router;

use super::api::Buttons;

/// A pressed button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Language(String),
    /// A topic (or none: skipped) for a conversation in `lang`.
    Topic {
        lang: String,
        topic: Option<String>,
    },
    /// Delete this conversation's messages from the chat.
    Delete(String),
    /// Keep them.
    Keep(String),
}

pub fn parse(data: &str) -> Option<Choice> {
    let (kind, rest) = data.split_once(':')?;
    match kind {
        "lang" => Some(Choice::Language(rest.to_owned())),
        "topic" => {
            let (lang, topic) = rest.split_once(':')?;
            Some(Choice::Topic {
                lang: lang.to_owned(),
                topic: (topic != "-").then(|| topic.to_owned()),
            })
        }
        "del" => Some(Choice::Delete(rest.to_owned())),
        "keep" => Some(Choice::Keep(rest.to_owned())),
        _ => None,
    }
}

/// "Choose your language", asked in every configured language at once, one button per language.
pub fn languages(router: &Router) -> (String, Buttons) {
    let notices = router.notices();
    let langs = &router.config().routing.languages;
    let text = langs
        .iter()
        .map(|l| notices.text(l, "choose_language", &[]))
        .collect::<Vec<_>>()
        .join(" · ");
    let rows = langs
        .iter()
        .map(|l| vec![(notices.text(l, "language_name", &[]), format!("lang:{l}"))])
        .collect();
    (text, rows)
}

/// "What would you like to talk about?", with the configured topics and a way to skip.
pub fn topics(router: &Router, lang: &str) -> (String, Buttons) {
    let notices = router.notices();
    let mut rows: Buttons = router
        .config()
        .routing
        .topics
        .iter()
        .map(|t| {
            let code = format!("topic_{t}");
            let label = if notices.has("en", &code) {
                notices.text(lang, &code, &[])
            } else {
                t.clone()
            };
            vec![(label, format!("topic:{lang}:{t}"))]
        })
        .collect();
    rows.push(vec![(
        notices.text(lang, "topic_skip", &[]),
        format!("topic:{lang}:-"),
    )]);
    (notices.text(lang, "choose_topic", &[]), rows)
}

/// The offer, after `/end`, to delete the conversation's messages from the chat.
pub fn delete_offer(router: &Router, lang: &str, conv: &str) -> (String, Buttons) {
    let notices = router.notices();
    let rows = vec![
        vec![(notices.text(lang, "delete_yes", &[]), format!("del:{conv}"))],
        vec![(notices.text(lang, "delete_no", &[]), format!("keep:{conv}"))],
    ];
    (notices.text(lang, "delete_offer", &[]), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_round_trips_and_fits_telegrams_limit() {
        let conv = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse(&format!("del:{conv}")),
            Some(Choice::Delete(conv.into()))
        );
        assert!(format!("keep:{conv}").len() <= 64);
        assert_eq!(parse("lang:ru"), Some(Choice::Language("ru".into())));
        assert_eq!(
            parse("topic:ro:-"),
            Some(Choice::Topic {
                lang: "ro".into(),
                topic: None
            })
        );
        assert_eq!(
            parse("topic:ro:online-safety"),
            Some(Choice::Topic {
                lang: "ro".into(),
                topic: Some("online-safety".into())
            })
        );
        assert_eq!(parse("nonsense"), None);
    }
}
