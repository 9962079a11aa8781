//! Telegram updates, read by a parser that takes only what the channel needs: the update id, the
//! private chat's id (to reply and to make the pseudonym), the message id, the text, the language
//! setting, whether media is attached, and a button's data. Names, usernames, profile data and
//! file ids are never read into memory, so they cannot be stored or logged by mistake.

use serde::de::IgnoredAny;
use serde::Deserialize;

/// One update, as the channel acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub id: i64,
    pub kind: Kind,
}

/// What the contact did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `/start` or `/end`.
    Command(From, Command),
    /// A text message.
    Text(From, String),
    /// A photo, video, file, voice note, sticker… (never downloaded); `album` is the
    /// `media_group_id` of an album's items.
    Media(From, Option<String>),
    /// A button under one of the bot's messages was pressed.
    Button {
        chat: i64,
        lang: Option<String>,
        query: String,
        /// The message the button belongs to.
        message: Option<i64>,
        data: String,
    },
    /// Anything else (groups, service messages, unknown kinds): ignored.
    Other,
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub chat: i64,
    pub message: i64,
    /// The primary language tag of the user's Telegram setting (`ru` of `ru-RU`), if any.
    pub lang: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Start,
    End,
    /// Erase the conversation now.
    Forget,
}

#[derive(Deserialize)]
struct RawUpdate {
    update_id: i64,
    message: Option<RawMessage>,
    callback_query: Option<RawQuery>,
}

#[derive(Deserialize)]
struct RawMessage {
    message_id: i64,
    chat: RawChat,
    from: Option<RawUser>,
    text: Option<String>,
    media_group_id: Option<String>,
    caption: Option<IgnoredAny>,
    photo: Option<IgnoredAny>,
    video: Option<IgnoredAny>,
    document: Option<IgnoredAny>,
    voice: Option<IgnoredAny>,
    video_note: Option<IgnoredAny>,
    sticker: Option<IgnoredAny>,
    animation: Option<IgnoredAny>,
    audio: Option<IgnoredAny>,
    contact: Option<IgnoredAny>,
    location: Option<IgnoredAny>,
    venue: Option<IgnoredAny>,
    poll: Option<IgnoredAny>,
    dice: Option<IgnoredAny>,
    story: Option<IgnoredAny>,
    paid_media: Option<IgnoredAny>,
}

impl RawMessage {
    fn has_media(&self) -> bool {
        let fields = [
            &self.caption,
            &self.photo,
            &self.video,
            &self.document,
            &self.voice,
            &self.video_note,
            &self.sticker,
            &self.animation,
            &self.audio,
            &self.contact,
            &self.location,
            &self.venue,
            &self.poll,
            &self.dice,
            &self.story,
            &self.paid_media,
        ];
        self.media_group_id.is_some() || fields.iter().any(|f| f.is_some())
    }
}

#[derive(Deserialize)]
struct RawChat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawUser {
    id: i64,
    language_code: Option<String>,
}

#[derive(Deserialize)]
struct RawQuery {
    id: String,
    from: RawUser,
    message: Option<RawQueryMessage>,
    data: Option<String>,
}

#[derive(Deserialize)]
struct RawQueryMessage {
    message_id: i64,
    chat: RawChat,
}

/// The update id of anything that looks like an update, even one this parser cannot read (so
/// polling can move past it).
pub fn update_id(raw: &serde_json::Value) -> Option<i64> {
    raw.get("update_id").and_then(serde_json::Value::as_i64)
}

/// Reads an update; `None` when it is not one at all.
pub fn parse(raw: &[u8]) -> Option<Update> {
    let raw: RawUpdate = serde_json::from_slice(raw).ok()?;
    Some(read(raw))
}

/// Reads an update already parsed as JSON (from `getUpdates`).
pub fn parse_value(raw: serde_json::Value) -> Option<Update> {
    let raw: RawUpdate = serde_json::from_value(raw).ok()?;
    Some(read(raw))
}

fn read(raw: RawUpdate) -> Update {
    let kind = if let Some(m) = raw.message {
        message(m)
    } else if let Some(q) = raw.callback_query {
        button(q)
    } else {
        Kind::Other
    };
    Update {
        id: raw.update_id,
        kind,
    }
}

fn message(m: RawMessage) -> Kind {
    if m.chat.kind != "private" {
        return Kind::Other;
    }
    let from = From {
        chat: m.chat.id,
        message: m.message_id,
        lang: m
            .from
            .as_ref()
            .and_then(|u| primary(u.language_code.as_deref())),
    };
    if m.has_media() {
        return Kind::Media(from, m.media_group_id);
    }
    let Some(text) = m.text else {
        return Kind::Other;
    };
    match command(&text) {
        Some(c) => Kind::Command(from, c),
        None => Kind::Text(from, text),
    }
}

fn button(q: RawQuery) -> Kind {
    // In a private chat the chat id is the user's id.
    let chat = match &q.message {
        Some(m) if m.chat.kind != "private" => return Kind::Other,
        Some(m) => m.chat.id,
        None => q.from.id,
    };
    Kind::Button {
        chat,
        lang: primary(q.from.language_code.as_deref()),
        query: q.id,
        message: q.message.map(|m| m.message_id),
        data: q.data.unwrap_or_default(),
    }
}

/// `/start`, `/start@helpline_bot`, `/start payload`, `/end`, `/forget`.
fn command(text: &str) -> Option<Command> {
    let first = text.split_whitespace().next()?;
    let name = first.strip_prefix('/')?;
    let name = name.split('@').next().unwrap_or(name);
    match name.to_ascii_lowercase().as_str() {
        "start" => Some(Command::Start),
        "end" | "stop" => Some(Command::End),
        "forget" => Some(Command::Forget),
        _ => None,
    }
}

fn primary(tag: Option<&str>) -> Option<String> {
    let tag = tag?.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> serde_json::Value {
        serde_json::json!({"id": 42, "is_bot": false, "first_name": "A", "username": "b", "language_code": "ru-RU"})
    }

    fn update(message: serde_json::Value) -> Update {
        let raw = serde_json::json!({"update_id": 7, "message": message});
        parse(raw.to_string().as_bytes()).unwrap()
    }

    fn chat() -> serde_json::Value {
        serde_json::json!({"id": 42, "first_name": "A", "type": "private"})
    }

    #[test]
    fn commands_texts_media_and_buttons_are_told_apart() {
        let from = From {
            chat: 42,
            message: 3,
            lang: Some("ru".into()),
        };
        let base = |extra: serde_json::Value| {
            let mut m =
                serde_json::json!({"message_id": 3, "date": 1, "chat": chat(), "from": user()});
            for (k, v) in extra.as_object().unwrap() {
                m[k] = v.clone();
            }
            update(m).kind
        };
        assert_eq!(
            base(serde_json::json!({"text": "/start"})),
            Kind::Command(from.clone(), Command::Start)
        );
        assert_eq!(
            base(serde_json::json!({"text": "/end@helpline_bot"})),
            Kind::Command(from.clone(), Command::End)
        );
        assert_eq!(
            base(serde_json::json!({"text": "привет /start"})),
            Kind::Text(from.clone(), "привет /start".into())
        );
        let photo = serde_json::json!({"photo": [{"file_id": "F", "file_unique_id": "U", "width": 1, "height": 1}], "caption": "x"});
        assert_eq!(base(photo), Kind::Media(from.clone(), None));
        let album = serde_json::json!({"video": {"file_id": "F"}, "media_group_id": "99"});
        assert_eq!(base(album), Kind::Media(from.clone(), Some("99".into())));
        assert_eq!(base(serde_json::json!({"pinned_message": {}})), Kind::Other);

        let group = serde_json::json!({"message_id": 3, "date": 1, "chat": {"id": -5, "type": "group", "title": "t"}, "text": "hi"});
        assert_eq!(update(group).kind, Kind::Other);

        let q = serde_json::json!({"update_id": 8, "callback_query": {"id": "q1", "from": user(), "chat_instance": "c",
            "message": {"message_id": 9, "date": 1, "chat": chat(), "text": "?"}, "data": "lang:ru"}});
        assert_eq!(
            parse(q.to_string().as_bytes()).unwrap().kind,
            Kind::Button {
                chat: 42,
                lang: Some("ru".into()),
                query: "q1".into(),
                message: Some(9),
                data: "lang:ru".into()
            }
        );
        assert!(parse(b"not json").is_none());
        assert_eq!(
            parse(br#"{"update_id": 1, "edited_message": {}}"#)
                .unwrap()
                .kind,
            Kind::Other
        );
    }
}
