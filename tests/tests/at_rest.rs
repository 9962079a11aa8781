//! Test 8 of the core issue: no message text is ever at rest in the clear (DESIGN.md "The
//! transcript vault", "Anonymity"). A conversation carries canary strings both ways; afterwards no
//! Redis key or value, no line of the gateway's log and nothing in `/metrics` holds one, while the
//! transcript API still opens them for the counsellor.

use std::time::Duration;

use helpline_tests::canary::{assert_absent, base64, forms, hex};
use helpline_tests::*;
use serde_json::json;

const CHILD: &str = "CANARY-CHILD-7f3a";
const COUNSELLOR: &str = "CANARY-COUNSELLOR-91bc";
const CYRILLIC: &str = "КАНАРЕЙКА-42";
const SUICIDE: &str = "CANARY-SUICIDE-d41e";
const WHISPER: &str = "CANARY-WHISPER-5c07";
/// The phrase that makes the grader raise urgency; it must not be stored either.
const SUICIDE_PHRASE: &str = "I want to die";

#[tokio::test]
async fn no_message_text_is_at_rest_in_redis_logs_or_metrics() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro,ru", 2)?;
    gw.add_user("sofia", "supervisor", "ro,ru", 2)?;

    let texts = [
        format!("Bună, {CHILD}, am nevoie de ajutor"),
        format!("{COUNSELLOR} Salut, sunt aici. Ce s-a întâmplat?"),
        format!("{CYRILLIC} мне страшно, {CHILD}"),
        format!("{SUICIDE_PHRASE} {SUICIDE}"),
        format!("Я тебя слышу, {CYRILLIC}. {COUNSELLOR}"),
    ];

    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    let token = contact.token.clone();
    // One message while queued: it is stored before anyone reads it.
    contact.say(&texts[0]).await?;

    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let assigned = ana.take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], conv.as_str());
    assert_eq!(assigned["history"][0]["text"], texts[0].as_str());
    let alias = assigned["alias"].as_str().unwrap_or_default().to_owned();
    contact.client.expect("assigned", SECS_5).await?;

    ana.say(&conv, &texts[1]).await?;
    let got = contact.client.expect("message", SECS_5).await?;
    assert_eq!(got["text"], texts[1].as_str());

    contact.say(&texts[2]).await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], texts[2].as_str());

    // The suicide phrase is graded in memory: urgency rises, the phrase is not kept.
    contact.say(&texts[3]).await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], texts[3].as_str());
    let graded = ana
        .client
        .expect_where("urgency", SECS_5, |f| f["conversation"] == conv.as_str())
        .await?;
    assert!(
        matches!(graded["urgency"].as_str(), Some("high" | "critical")),
        "{graded}"
    );
    assert_eq!(graded["category"], "self_harm", "{graded}");

    ana.say(&conv, &texts[4]).await?;
    let got = contact.client.expect("message", SECS_5).await?;
    assert_eq!(got["text"], texts[4].as_str());

    // A supervisor's whisper is a counsellor's note: sealed too.
    let mut sofia = Staff::connect(&gw, "sofia").await?;
    sofia
        .client
        .send(json!({"type": "monitor", "conversation": conv}))
        .await?;
    sofia.client.expect("monitoring", SECS_5).await?;
    let whisper = format!("Ask about school. {WHISPER}");
    let wid = uuid();
    sofia
        .client
        .send(
            json!({"type": "whisper", "conversation": conv, "text": whisper, "client_msg_id": wid}),
        )
        .await?;
    sofia
        .client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == wid.as_str())
        .await?;
    let noted = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "supervisor")
        .await?;
    assert_eq!(noted["text"], whisper.as_str());
    contact
        .client
        .expect_none("message", Duration::from_millis(500))
        .await?;

    // Let every write (urgency, metrics, sweeps) land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut needles = Vec::new();
    for secret in [
        CHILD,
        COUNSELLOR,
        CYRILLIC,
        SUICIDE,
        WHISPER,
        SUICIDE_PHRASE,
        "want to die",
    ] {
        needles.extend(forms(secret));
    }
    let mut encoded = Vec::new();
    for t in texts.iter().chain(std::iter::once(&whisper)) {
        encoded.push(base64(t.as_bytes()));
        encoded.push(hex(t.as_bytes()));
    }

    // Redis: every key and every value, stream entries included.
    let dump = redis.dump_everything()?;
    assert!(
        dump.contains(&format!("msgs:{conv}")),
        "no message stream for {conv} in:\n{dump}"
    );
    let entries = redis.cli(&["xlen", &format!("helpline:msgs:{conv}")])?;
    assert_eq!(entries.trim(), "6", "the stream should hold the 6 messages");
    assert_absent("Redis", &dump, &needles);
    assert_absent("Redis", &dump, &encoded);
    // The resume token is kept only as a hash.
    assert_absent("Redis", &dump, std::slice::from_ref(&token));

    // The gateway's log.
    let log = gw.log_text();
    assert!(!log.is_empty(), "the gateway logged nothing at all");
    assert_absent("the gateway log", &log, &needles);
    assert_absent("the gateway log", &log, &encoded);
    assert_absent("the gateway log", &log, std::slice::from_ref(&token));
    assert!(!log.contains("panicked"), "{log}");

    // /metrics: no auth, no text, no conversation id, no alias or pseudonym.
    let res = reqwest::Client::new()
        .get(format!("{}/metrics", gw.base()))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let metrics = res.text().await?;
    assert!(metrics.contains("helpline_messages_total"), "{metrics}");
    assert_absent("/metrics", &metrics, &needles);
    let pseudonym = redis
        .cli(&["hget", &format!("helpline:conv:{conv}"), "pseudonym"])?
        .trim()
        .to_owned();
    let mut ids = vec![conv.clone()];
    ids.extend([alias, pseudonym].into_iter().filter(|s| s.len() >= 4));
    assert_absent("/metrics", &metrics, &ids);

    // The counsellor still reads every message in the clear.
    let (status, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ana.cookie,
    )
    .await?;
    assert_eq!(status, 200, "{transcript}");
    let read: Vec<&str> = transcript["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    let mut expected: Vec<&str> = texts.iter().map(String::as_str).collect();
    expected.push(&whisper);
    assert_eq!(read, expected);
    Ok(())
}

#[test]
fn the_checks_themselves_see_what_they_look_for() {
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
    let f = forms(CYRILLIC);
    assert!(f.contains(&"канарейка-42".to_owned()));
    assert!(f.iter().any(|s| s.starts_with("\\xd0\\x9a")), "{f:?}");
    assert!(f.iter().any(|s| s.starts_with("\\u041a")), "{f:?}");
}
