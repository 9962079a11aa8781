//! Issue 8, test 2: erasure on request from each channel (web chat's `forget`, Telegram's
//! `/forget`, the SMS keyword, a supervisor's `POST /api/conversations/{id}/erase`): immediate,
//! complete (no Redis key or value names the conversation any more, but the audit log), audited
//! without content, and a live conversation ends for its counsellor with the reason `erased`.

use std::time::Duration;

use anyhow::{anyhow, Result};
use helpline_tests::canary::{assert_absent, forms, keys_mentioning};
use helpline_tests::fake_telegram::{FakeTelegram, TgUser};
use helpline_tests::fake_twilio::{self, FakeTwilio};
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
const AUDIT: &str = "helpline:audit";

/// Asserts that nothing in Redis names `conv` any more but the audit log, that the audit log has
/// its erasure by `actor` on `channel`, and that no form of `canary` is anywhere.
fn assert_erased(
    redis: &Redis,
    conv: &str,
    actor: &str,
    channel: &str,
    canary: &str,
) -> Result<()> {
    let left = keys_mentioning(redis, conv, &[AUDIT])?;
    assert!(left.is_empty(), "keys still naming {conv}: {left:?}");
    let audit = redis.value_text(AUDIT)?;
    if !audit.contains(conv) {
        return Err(anyhow!("no audit entry names {conv}:\n{audit}"));
    }
    for needle in ["conversation.erase", actor, &format!("channel={channel}")] {
        assert!(
            audit.contains(needle),
            "no {needle:?} in the audit log:\n{audit}"
        );
    }
    assert_absent("Redis", &redis.dump_everything()?, &forms(canary));
    Ok(())
}

async fn available(gw: &Gateway, username: &str) -> Result<Staff> {
    let mut staff = Staff::connect(gw, username).await?;
    staff.available().await?;
    Ok(staff)
}

async fn ended_for(staff: &mut Staff, conv: &str) -> Result<Value> {
    staff
        .client
        .expect_where("ended", T, |f| f["conversation"] == conv)
        .await
}

#[tokio::test]
async fn web_chat_forget_erases_at_once_and_the_counsellor_is_told() -> Result<()> {
    const CANARY: &str = "CANARY-WEB-FORGET-0b7e";
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let mut ana = available(&gw, "ana").await?;

    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    contact.say(&format!("Te rog, {CANARY}")).await?;
    ana.take_offer(T).await?;
    contact.client.expect("assigned", T).await?;

    contact.client.send(json!({"type": "forget"})).await?;
    contact.client.expect("forgotten", T).await?;
    assert!(contact.client.closed(T).await?.is_some());
    let ended = ended_for(&mut ana, &conv).await?;
    assert_eq!(ended["reason"], "erased", "{ended}");
    assert_erased(&redis, &conv, "contact", "webchat", CANARY)?;
    let (status, _) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ana.cookie,
    )
    .await?;
    assert_eq!(status, 404);

    // After the end, the page can still have it erased with the resume token.
    let mut later = Contact::start(&gw, "ro").await?;
    let second = later.conversation.clone();
    later.say(&format!("a doua, {CANARY}")).await?;
    later.client.send(json!({"type": "end"})).await?;
    later.client.expect("ended", T).await?;
    let mut page = Client::contact(&gw).await?;
    page.send(json!({"type": "forget", "token": later.token}))
        .await?;
    page.expect("forgotten", T).await?;
    assert_erased(&redis, &second, "contact", "webchat", CANARY)?;
    // A token that is gone is refused, and nothing else is erased.
    let mut again = Client::contact(&gw).await?;
    again
        .send(json!({"type": "forget", "token": later.token}))
        .await?;
    let refused = again.expect("error", T).await?;
    assert_eq!(refused["code"], "unknown_token", "{refused}");
    assert!(!gw.log_text().contains(CANARY));
    Ok(())
}

#[tokio::test]
async fn a_supervisor_erases_a_live_or_closed_conversation_with_a_reason() -> Result<()> {
    const CANARY: &str = "CANARY-SUPERVISOR-ERASE-77d2";
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    gw.add_user("sofia", "supervisor", "ro", 2)?;
    let mut ana = available(&gw, "ana").await?;
    let sofia = login(&gw, "sofia").await?;
    let http = reqwest::Client::new();
    let erase = |conv: &str, cookie: &str, body: Value| {
        http.post(format!("{}/api/conversations/{conv}/erase", gw.base()))
            .header("Cookie", cookie)
            .json(&body)
            .send()
    };

    let mut contact = Contact::start(&gw, "ro").await?;
    let live = contact.conversation.clone();
    contact.say(&format!("Ajutor, {CANARY}")).await?;
    ana.take_offer(T).await?;

    // Refused: a counsellor, no reason, a control character, an unknown conversation.
    let r = erase(&live, &ana.cookie, json!({"reason": "x"})).await?;
    assert_eq!(r.status(), 403);
    let r = erase(&live, &sofia, json!({})).await?;
    assert_eq!(r.status(), 400);
    let r = erase(&live, &sofia, json!({"reason": "  "})).await?;
    assert_eq!(r.status(), 400);
    let r = erase(&live, &sofia, json!({"reason": "a\nb"})).await?;
    assert_eq!(r.status(), 400);
    let r = erase(&"0".repeat(32), &sofia, json!({"reason": "test"})).await?;
    assert_eq!(r.status(), 404);
    assert!(
        keys_mentioning(&redis, &live, &[AUDIT])?.len() > 1,
        "refusals erased something"
    );

    // A live one: the contact's chat and the counsellor's tab end at once.
    let r = erase(
        &live,
        &sofia,
        json!({"reason": "the contact asked by phone"}),
    )
    .await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    assert_eq!(body["erased"], true, "{body}");
    let ended = contact.client.expect("ended", T).await?;
    assert_eq!(ended["reason"], "erased", "{ended}");
    assert_eq!(ended_for(&mut ana, &live).await?["reason"], "erased");
    assert_erased(&redis, &live, "sofia", "webchat", CANARY)?;
    assert!(redis
        .value_text(AUDIT)?
        .contains("the contact asked by phone"));

    // A closed one.
    let mut other = Contact::start(&gw, "ro").await?;
    let closed = other.conversation.clone();
    other.say(&format!("încă o dată {CANARY}")).await?;
    ana.take_offer(T).await?;
    ana.client
        .send(json!({"type": "close", "conversation": closed, "outcome": "listened", "tags": []}))
        .await?;
    ended_for(&mut ana, &closed).await?;
    let r = erase(&closed, &sofia, json!({"reason": "court order 12/2026"})).await?;
    assert_eq!(r.status(), 200);
    assert_erased(&redis, &closed, "sofia", "webchat", CANARY)?;
    // Twice: nothing left to erase.
    let r = erase(&closed, &sofia, json!({"reason": "again"})).await?;
    assert_eq!(r.status(), 404);

    let metrics = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("helpline_retention_erased_total{kind=\"request\"} 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn telegram_forget_erases_and_deletes_the_chat() -> Result<()> {
    const CANARY: &str = "CANARY-TG-FORGET-31aa";
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    let settings = fake.settings();
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    gw.add_user("olena", "counsellor", "ru,uk", 2)?;
    fake.wait_calls("deleteWebhook", 1, T).await?;
    let mut olena = available(&gw, "olena").await?;

    let child = TgUser::new(7_300_551, "Маша", "Петрова", "masha_p", Some("ru"));
    fake.push(fake.text_update(&child, "/start"));
    let assigned = olena.take_offer(T).await?;
    let conv = assigned["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    fake.push(fake.text_update(&child, &format!("Мне страшно {CANARY}")));
    olena
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;

    fake.push(fake.text_update(&child, "/forget"));
    fake.wait_sent(child.id, "Твой разговор удалён", T).await?;
    let deleted = fake.wait_calls("deleteMessages", 1, T).await?;
    assert_eq!(deleted[0].body["chat_id"], child.id);
    assert!(deleted[0].body["message_ids"]
        .as_array()
        .is_some_and(|a| a.len() >= 3));
    assert_eq!(ended_for(&mut olena, &conv).await?["reason"], "erased");
    assert_erased(&redis, &conv, "contact", "telegram", CANARY)?;
    assert_absent("Redis", &redis.dump_everything()?, &[child.id.to_string()]);

    // Nothing live: told so, in the contact's language, and nothing else happens.
    fake.push(fake.text_update(&child, "/forget"));
    fake.wait_sent(child.id, "Нет открытого разговора", T)
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_sms_keyword_erases_and_confirms_once() -> Result<()> {
    const CANARY: &str = "CANARY-SMS-FORGET-9c40";
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let settings = fake.settings();
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    gw.add_user("ion", "counsellor", "ro,ru", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369155501";

    fake_twilio::text_gateway(
        &gw,
        "SM10000000000000000000000000000001",
        child,
        &format!("Salut {CANARY}"),
    )
    .await?;
    let assigned = ion.take_offer(T).await?;
    let conv = assigned["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    fake.wait_delivered(child, "ion", T).await?;

    fake_twilio::text_gateway(&gw, "SM10000000000000000000000000000002", child, "sterge").await?;
    fake.wait_delivered(child, "ștearsă", T).await?;
    assert_eq!(ended_for(&mut ion, &conv).await?["reason"], "erased");
    assert_erased(&redis, &conv, "contact", "sms", CANARY)?;
    assert_absent(
        "Redis",
        &redis.dump_everything()?,
        &[child.to_owned(), child.trim_start_matches('+').to_owned()],
    );
    // One confirmation, and no end notice after it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: Vec<_> = fake
        .sends_to(child)
        .into_iter()
        .filter(|r| r.field("Body").is_some_and(|b| b.contains("ștearsă")))
        .collect();
    assert_eq!(after.len(), 1);
    Ok(())
}
