//! The Telegram channel end to end (issue 4): the real binary against a fake Bot API
//! (`helpline_tests::fake_telegram`) and a real redis-server. Polling and webhook mode, media that
//! is never taken, delivery that honours 429 and survives a crash without sending twice, and no
//! chat id, username or name left anywhere.

use std::time::Duration;

use anyhow::{anyhow, Result};
use helpline_tests::fake_telegram::{FakeTelegram, TgUser};
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn gateway(redis: &Redis, fake: &FakeTelegram, extra: &[(&str, &str)]) -> Result<Gateway> {
    let settings = fake.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Gateway::start(redis, &all)
}

/// A counsellor who is available, and the conversation the child's `/start` opened, taken.
async fn counsellor_takes(staff: &mut Staff) -> Result<String> {
    let assigned = staff.take_offer(T).await?;
    assert_eq!(assigned["channel"], "telegram");
    Ok(assigned["conversation"]
        .as_str()
        .ok_or_else(|| anyhow!("no conversation in {assigned}"))?
        .to_owned())
}

async fn available(gw: &Gateway, username: &str) -> Result<Staff> {
    let mut staff = Staff::connect(gw, username).await?;
    staff.available().await?;
    Ok(staff)
}

fn text_of(body: &Value) -> &str {
    body["text"].as_str().unwrap_or("")
}

#[tokio::test]
async fn polling_start_relay_both_ways_end_and_delete_the_chat() -> Result<()> {
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake, &[])?;
    gw.add_user("olena", "counsellor", "ru,uk", 2)?;
    fake.wait_calls("deleteWebhook", 1, T).await?;
    let mut olena = available(&gw, "olena").await?;

    let child = TgUser::new(7001, "Маша", "Петрова", "masha_p", Some("ru-RU"));
    fake.push(fake.text_update(&child, "/start"));
    let conv = counsellor_takes(&mut olena).await?;
    let welcome = fake.wait_sent(child.id, "Привет!", T).await?;
    assert!(welcome.get("parse_mode").is_none(), "{welcome}");
    fake.wait_sent(child.id, "Твоё место в очереди: 1", T)
        .await?;
    fake.wait_sent(child.id, "olena теперь здесь", T).await?;

    let first = fake.text_update(&child, "Мне страшно, помогите");
    let first_id = first["message"]["message_id"].as_i64().unwrap_or(0);
    fake.push(first);
    let heard = olena
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "Мне страшно, помогите");
    assert_eq!(heard["conversation"], conv.as_str());

    // Sent as typed: no parse mode, so Markdown or HTML stays plain text.
    let reply = "Я здесь. *Расскажи*, что случилось? <b>не HTML</b>";
    olena.say(&conv, reply).await?;
    let sent = fake.wait_sent(child.id, "Я здесь.", T).await?;
    assert_eq!(text_of(&sent), reply);
    assert!(sent.get("parse_mode").is_none(), "{sent}");
    assert_eq!(sent["chat_id"], child.id);

    fake.push(fake.text_update(&child, "/end"));
    let ended = olena
        .client
        .expect_where("ended", T, |f| f["conversation"] == conv.as_str())
        .await?;
    assert_eq!(ended["reason"], "contact_ended");
    let offer = fake
        .wait_sent(child.id, "Ты завершил(а) разговор", T)
        .await?;
    let buttons = offer["reply_markup"]["inline_keyboard"].to_string();
    assert!(buttons.contains(&format!("del:{conv}")), "{buttons}");

    // The child asks to delete the conversation from their chat.
    let offer_id = offer["message_id"].as_i64().unwrap_or(0);
    fake.push(fake.button_update(&child, offer_id, &format!("del:{conv}")));
    let deleted = fake.wait_calls("deleteMessages", 1, T).await?;
    assert_eq!(deleted[0].body["chat_id"], child.id);
    let ids: Vec<i64> = deleted[0].body["message_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let welcome_id = welcome["message_id"].as_i64().unwrap_or(0);
    let reply_id = sent["message_id"].as_i64().unwrap_or(0);
    for id in [first_id, welcome_id, reply_id, offer_id] {
        assert!(ids.contains(&id), "message {id} not deleted: {ids:?}");
    }
    let answered = fake.wait_calls("answerCallbackQuery", 1, T).await?;
    assert_eq!(answered[0].body["text"], "Сообщения удалены.");

    // Once the last message went out, the sealed chat id is dropped; the offset has moved on.
    let addr = redis.cli(&["hget", &format!("helpline:conv:{conv}"), "addr"])?;
    assert!(addr.trim().is_empty(), "address still kept: {addr}");
    let offset = redis.cli(&["get", "helpline:telegram:offset"])?;
    let last_update = fake
        .calls("getUpdates")
        .iter()
        .filter_map(|c| c.body["offset"].as_i64())
        .max()
        .unwrap_or(0);
    assert!(offset.trim().parse::<i64>()? >= last_update);
    assert!(fake.calls("getFile").is_empty());
    Ok(())
}

#[tokio::test]
async fn webhook_checks_the_secret_first_and_stores_an_update_once() -> Result<()> {
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    let secret = "a-test_webhook-secret-42";
    let gw = gateway(
        &redis,
        &fake,
        &[
            ("HELPLINE_CHANNELS__TELEGRAM__MODE", "webhook"),
            ("HELPLINE_CHANNELS__TELEGRAM__WEBHOOK_SECRET", secret),
        ],
    )?;
    gw.add_user("ion", "counsellor", "ro", 2)?;
    let set = fake.wait_calls("setWebhook", 1, T).await?;
    assert_eq!(
        set[0].body["url"],
        format!("{}/webhooks/telegram", gw.base())
    );
    assert_eq!(set[0].body["secret_token"], secret);

    let http = reqwest::Client::new();
    let url = format!("{}/webhooks/telegram", gw.base());
    let post = |body: String, header: Option<&str>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(h) = header {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", h);
        }
        req.send()
    };
    // Refused before parsing: garbage with a wrong or missing secret is 401, not 400.
    assert_eq!(post("not json at all".into(), None).await?.status(), 401);
    assert_eq!(
        post("not json at all".into(), Some("wrong-secret"))
            .await?
            .status(),
        401
    );
    assert_eq!(
        post("not json at all".into(), Some(secret)).await?.status(),
        400
    );
    let rejected = "helpline_webhook_rejected_total{channel=\"telegram\",reason=";
    assert_eq!(
        metric(&gw, &format!("{rejected}\"missing_secret\"}}")).await?,
        Some(1.0)
    );
    assert_eq!(
        metric(&gw, &format!("{rejected}\"bad_secret\"}}")).await?,
        Some(1.0)
    );

    let child = TgUser::new(7002, "Ana", "Rusu", "ana_r", Some("ro"));
    let start = fake.text_update(&child, "/start");
    assert_eq!(post(start.to_string(), Some(secret)).await?.status(), 200);
    let text = fake.text_update(&child, "Am nevoie de ajutor");
    for _ in 0..2 {
        assert_eq!(post(text.to_string(), Some(secret)).await?.status(), 200);
    }
    let mut ion = available(&gw, "ion").await?;
    let assigned = ion.take_offer(T).await?;
    let conv = assigned["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let from_child = |history: &Value| {
        history
            .as_array()
            .map(|h| {
                h.iter()
                    .filter(|m| m["from"] == "contact" && m["text"] == "Am nevoie de ajutor")
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(from_child(&assigned["history"]), 1, "{assigned}");

    // Telegram retrying the same update later: still stored once.
    assert_eq!(post(text.to_string(), Some(secret)).await?.status(), 200);
    let (status, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ion.cookie,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(from_child(&transcript["messages"]), 1, "{transcript}");
    fake.wait_sent(child.id, "Bună!", T).await?;
    assert!(
        fake.calls("getUpdates").is_empty(),
        "polled in webhook mode"
    );
    Ok(())
}

#[tokio::test]
async fn media_is_never_taken_deleted_and_withheld() -> Result<()> {
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake, &[])?;
    gw.add_user("olena", "counsellor", "ru", 2)?;
    fake.wait_calls("deleteWebhook", 1, T).await?;
    let mut olena = available(&gw, "olena").await?;
    let child = TgUser::new(7003, "Петя", "Иванов", "petya_i", Some("ru"));
    fake.push(fake.text_update(&child, "/start"));
    let conv = counsellor_takes(&mut olena).await?;
    fake.wait_sent(child.id, "olena теперь здесь", T).await?;

    let withheld = |f: &Value| f["from"] == "system" && f["text"] == "[media withheld]";
    let photo = fake.photo_update(&child, "FILEID-CANARY-PHOTO", "CAPTION-CANARY-ONE", None);
    let photo_id = photo["message"]["message_id"].as_i64().unwrap_or(0);
    fake.push(photo);
    let seen = olena.client.expect_where("message", T, withheld).await?;
    assert_eq!(seen["conversation"], conv.as_str());
    fake.wait_sent(child.id, "siguronline.md", T).await?;

    let group = "ALBUM-GROUP-CANARY-77";
    let one = fake.photo_update(
        &child,
        "FILEID-CANARY-ALBUM1",
        "CAPTION-CANARY-TWO",
        Some(group),
    );
    let two = fake.photo_update(&child, "FILEID-CANARY-ALBUM2", "", Some(group));
    let album_ids = [&one, &two].map(|u| u["message"]["message_id"].as_i64().unwrap_or(0));
    fake.push(one);
    fake.push(two);
    olena.client.expect_where("message", T, withheld).await?;
    olena
        .client
        .expect_none("message", Duration::from_millis(1500))
        .await?;

    let deletes = fake.wait_calls("deleteMessage", 3, T).await?;
    let deleted: Vec<i64> = deletes
        .iter()
        .filter_map(|c| c.body["message_id"].as_i64())
        .collect();
    for id in [photo_id, album_ids[0], album_ids[1]] {
        assert!(deleted.contains(&id), "{id} not deleted: {deleted:?}");
    }
    assert_eq!(fake.sent_count(child.id, "siguronline.md"), 2);
    assert!(fake.calls("getFile").is_empty(), "getFile was called");

    let (_, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &olena.cookie,
    )
    .await?;
    let shown = transcript["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["text"] == "[media withheld]").count());
    assert_eq!(shown, Some(2), "{transcript}");
    assert_eq!(
        metric(&gw, "helpline_media_withheld_total{channel=\"telegram\"}").await?,
        Some(2.0)
    );
    let everything = redis.dump_everything()?;
    for canary in ["FILEID-CANARY", "CAPTION-CANARY", group] {
        assert!(!everything.contains(canary), "{canary} is in Redis");
    }
    Ok(())
}

#[tokio::test]
async fn delivery_honours_429_and_a_crash_mid_send_sends_exactly_once() -> Result<()> {
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    // Long grace: the counsellor's socket dies with the first node and must not be re-queued.
    let settings = [("HELPLINE_ROUTING__AGENT_GRACE_S", "300")];
    let mut first = gateway(&redis, &fake, &settings)?;
    first.add_user("olena", "counsellor", "uk", 2)?;
    fake.wait_calls("deleteWebhook", 1, T).await?;
    let mut olena = available(&first, "olena").await?;
    let child = TgUser::new(7004, "Оля", "Коваль", "olya_k", Some("uk"));
    fake.push(fake.text_update(&child, "/start"));
    let conv = counsellor_takes(&mut olena).await?;
    fake.wait_sent(child.id, "olena тепер тут", T).await?;

    // 429 with retry_after, then accepted: it arrives once.
    fake.fail_sends_with_429(1, 1);
    let slow = "Відповідь після паузи 429";
    olena.say(&conv, slow).await?;
    fake.wait_sent(child.id, slow, T).await?;
    let limited: Vec<_> = fake
        .calls("sendMessage")
        .into_iter()
        .filter(|c| c.outcome == "429")
        .collect();
    assert_eq!(limited.len(), 1);
    assert_eq!(text_of(&limited[0].body), slow);
    assert_eq!(fake.sent_count(child.id, slow), 1);

    // Stored, handed to Telegram, and the gateway dies before Telegram answers.
    let survivor = "Відповідь, яка переживе збій";
    fake.hold_sends_containing(survivor);
    olena.say(&conv, survivor).await?;
    let deadline = std::time::Instant::now() + T;
    while fake.held() == 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the send never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    fake.drop_held();
    assert_eq!(fake.sent_count(child.id, survivor), 0);

    let second = gateway(&redis, &fake, &settings)?;
    fake.wait_sent(child.id, survivor, Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.sent_count(child.id, survivor), 1);
    for earlier in ["Привіт!", "olena тепер тут", slow] {
        assert_eq!(
            fake.sent_count(child.id, earlier),
            1,
            "{earlier} sent again"
        );
    }
    assert_eq!(
        metric(
            &second,
            "helpline_outbox_total{channel=\"telegram\",result=\"resent\"}"
        )
        .await?,
        Some(1.0)
    );
    let backlog = redis.cli(&["xlen", "helpline:outbox:telegram"])?;
    assert_eq!(backlog.trim(), "0");
    Ok(())
}

#[tokio::test]
async fn no_chat_id_username_or_name_is_kept_or_logged() -> Result<()> {
    let fake = FakeTelegram::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake, &[])?;
    gw.add_user("olena", "counsellor", "uk,ru", 2)?;
    fake.wait_calls("deleteWebhook", 1, T).await?;
    let mut olena = available(&gw, "olena").await?;

    let chat_id: i64 = 5_550_123_456_789;
    let child = TgUser::new(
        chat_id,
        "Zenobia-CANARY-FIRST",
        "Quixote-CANARY-LAST",
        "canary_user_k9x2",
        Some("uk"),
    );
    fake.push(fake.text_update(&child, "/start"));
    let conv = counsellor_takes(&mut olena).await?;
    fake.push(fake.text_update(&child, "Мені потрібна допомога"));
    olena
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    olena.say(&conv, "Я тут, розкажи").await?;
    fake.wait_sent(chat_id, "Я тут, розкажи", T).await?;
    olena
        .client
        .send(json!({"type": "close", "conversation": conv, "outcome": "listened", "tags": []}))
        .await?;
    fake.wait_sent(chat_id, "завершив розмову", T).await?;

    // A second child blocks the bot: the counsellor is told and the conversation ends.
    let blocker = TgUser::new(
        5_550_987_654_321,
        "Blocker-CANARY-FIRST",
        "Blocker-CANARY-LAST",
        "canary_blocker_q7",
        Some("ru"),
    );
    fake.push(fake.text_update(&blocker, "/start"));
    let second = counsellor_takes(&mut olena).await?;
    fake.wait_sent(blocker.id, "olena теперь здесь", T).await?;
    fake.block(blocker.id);
    olena.say(&second, "Ты здесь?").await?;
    let told = olena
        .client
        .expect_where("message", T, |f| {
            f["conversation"] == second.as_str() && f["from"] == "system"
        })
        .await?;
    assert!(text_of(&told).contains("blocked"), "{told}");
    olena
        .client
        .expect_where("ended", T, |f| f["conversation"] == second.as_str())
        .await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let everything = redis.dump_everything()?;
    let log = gw.log_text();
    let metrics = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    let canaries = [
        chat_id.to_string(),
        blocker.id.to_string(),
        "CANARY-FIRST".into(),
        "CANARY-LAST".into(),
        "canary_user_k9x2".into(),
        "canary_blocker_q7".into(),
    ];
    for canary in &canaries {
        assert!(
            !everything.contains(canary.as_str()),
            "{canary} is in Redis"
        );
        assert!(!log.contains(canary.as_str()), "{canary} is in the log");
        assert!(
            !metrics.contains(canary.as_str()),
            "{canary} is in /metrics"
        );
    }
    assert!(log.contains("Telegram channel ready"), "{log}");
    Ok(())
}
